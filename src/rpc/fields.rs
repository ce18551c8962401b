//! The answers' `arguments`: `torrent-get`'s torrents, field by field (as
//! objects or, with `format: "table"`, as rows), `session-get`'s settings
//! and `session-stats`' totals, with Transmission's field names and units.
//!
//! Layer 0: pure, from the plain values of [`super::view`]. A field name
//! pollen does not know is left out of the answer (Transmission does the
//! same), never an error.
//!
//! Fields pollen has no notion of are still answered, with the value a
//! Transmission torrent or session shows when the feature is off (no
//! bandwidth priority, no per-torrent speed limit, no labels, no uTP, no
//! encryption, no block list...), so clients that insist on every key
//! (`transmission-remote -it` prints a tracker only when all its keys are
//! there) keep working. Which fields each real client asks for is listed
//! in the specs at the bottom.

use serde_json::{json, Map, Value};

use super::view::{PeerView, SessionStats, SessionView, TorrentView, TrackerView};
use super::{RPC_VERSION, RPC_VERSION_MINIMUM, VERSION_STRING};

/// `rpc-version-semver` for rpc-version 17 (Transmission 4.0's).
pub const RPC_VERSION_SEMVER: &str = "5.3.0";

/// Every `torrent-get` field name pollen answers.
pub const TORRENT_FIELDS: &[&str] = &[
    "activityDate",
    "addedDate",
    "bandwidthPriority",
    "comment",
    "corruptEver",
    "creator",
    "dateCreated",
    "desiredAvailable",
    "doneDate",
    "downloadDir",
    "downloadLimit",
    "downloadLimited",
    "downloadedEver",
    "editDate",
    "error",
    "errorString",
    "eta",
    "etaIdle",
    "file-count",
    "fileStats",
    "files",
    "group",
    "hashString",
    "haveUnchecked",
    "haveValid",
    "honorsSessionLimits",
    "id",
    "isFinished",
    "isPrivate",
    "isStalled",
    "labels",
    "leftUntilDone",
    "magnetLink",
    "manualAnnounceTime",
    "maxConnectedPeers",
    "metadataPercentComplete",
    "name",
    "peer-limit",
    "peers",
    "peersConnected",
    "peersFrom",
    "peersGettingFromUs",
    "peersSendingToUs",
    "percentComplete",
    "percentDone",
    "pieceCount",
    "pieceSize",
    "pieces",
    "primary-mime-type",
    "priorities",
    "queuePosition",
    "rateDownload",
    "rateUpload",
    "recheckProgress",
    "secondsDownloading",
    "secondsSeeding",
    "seedIdleLimit",
    "seedIdleMode",
    "seedRatioLimit",
    "seedRatioMode",
    "sizeWhenDone",
    "startDate",
    "status",
    "torrentFile",
    "totalSize",
    "trackerList",
    "trackerStats",
    "trackers",
    "uploadLimit",
    "uploadLimited",
    "uploadRatio",
    "uploadedEver",
    "wanted",
    "webseeds",
    "webseedsSendingToUs",
];

/// `torrent-get`'s `arguments`: `{"torrents": [...]}` with `fields` of each
/// torrent (objects), or with `table` a first row of the field names then
/// one row of values per torrent. `removed` lists the RPC ids of torrents
/// removed lately (asked with `ids: "recently-active"`). Unknown names and
/// repeated names are left out, of the objects and of the table alike.
pub fn torrent_get(
    torrents: &[TorrentView],
    fields: &[String],
    table: bool,
    removed: Option<&[u64]>,
) -> Map<String, Value> {
    let mut known: Vec<&str> = Vec::new();
    for name in fields {
        if TORRENT_FIELDS.contains(&name.as_str()) && !known.contains(&name.as_str()) {
            known.push(name);
        }
    }
    let rows: Vec<Value> = if table {
        let header = Value::from(known.clone());
        let values = torrents.iter().map(|t| {
            let row = known
                .iter()
                .map(|name| torrent_field(t, name).unwrap_or(Value::Null));
            Value::Array(row.collect())
        });
        std::iter::once(header).chain(values).collect()
    } else {
        let objects = torrents.iter().map(|t| {
            let object = known
                .iter()
                .filter_map(|name| Some((name.to_string(), torrent_field(t, name)?)));
            Value::Object(object.collect())
        });
        objects.collect()
    };
    let mut arguments = Map::new();
    arguments.insert("torrents".into(), Value::Array(rows));
    if let Some(removed) = removed {
        arguments.insert("removed".into(), Value::from(removed));
    }
    arguments
}

/// One field of a torrent, or `None` for a name pollen does not know.
fn torrent_field(t: &TorrentView, name: &str) -> Option<Value> {
    stat_field(t, name)
        .or_else(|| info_field(t, name))
        .or_else(|| setting_field(t, name))
        .or_else(|| list_field(t, name))
}

/// The changing numbers (Transmission's `tr_stat`).
fn stat_field(t: &TorrentView, name: &str) -> Option<Value> {
    let value = match name {
        "activityDate" => t.activity_date.into(),
        "addedDate" => t.added_date.into(),
        "corruptEver" => t.corrupt_ever.into(),
        // What connected peers could still give us: pollen does not count
        // it, so it shows what is missing while any peer is connected.
        "desiredAvailable" => (if t.peers_connected > 0 {
            t.left_until_done
        } else {
            0
        })
        .into(),
        "doneDate" => t.done_date.into(),
        "downloadedEver" => t.downloaded_ever.into(),
        "editDate" => 0.into(),
        "error" => t.error.into(),
        "errorString" => t.error_string.as_str().into(),
        "eta" => t.eta.into(),
        "etaIdle" => (-1).into(),
        "haveUnchecked" => 0.into(),
        "haveValid" => t.have_valid.into(),
        "isFinished" => t.seed_limit_met.into(),
        "isStalled" => false.into(),
        "leftUntilDone" => t.left_until_done.into(),
        "manualAnnounceTime" => (-1).into(),
        "metadataPercentComplete" => t.metadata_percent_complete.into(),
        "peersConnected" => t.peers_connected.into(),
        "peersFrom" => peers_from(t),
        "peersGettingFromUs" => t.peers_getting_from_us.into(),
        "peersSendingToUs" => t.peers_sending_to_us.into(),
        // Every file is wanted: done of the wanted is done of the whole.
        "percentComplete" | "percentDone" => t.percent_done.into(),
        "queuePosition" => t.queue_position.into(),
        "rateDownload" => t.rate_download.into(),
        "rateUpload" => t.rate_upload.into(),
        "recheckProgress" => t.recheck_progress.into(),
        "secondsDownloading" => t.seconds_downloading.into(),
        "secondsSeeding" => t.seconds_seeding.into(),
        "sizeWhenDone" => t.size_when_done.into(),
        "startDate" => t.start_date.into(),
        "status" => t.status.code().into(),
        "uploadRatio" => t.upload_ratio.into(),
        "uploadedEver" => t.uploaded_ever.into(),
        "webseedsSendingToUs" => t.webseeds_sending_to_us.into(),
        _ => return None,
    };
    Some(value)
}

/// What the torrent file says (Transmission's `tr_torrent_view`).
fn info_field(t: &TorrentView, name: &str) -> Option<Value> {
    let value = match name {
        "comment" => t.comment.as_str().into(),
        "creator" => t.creator.as_str().into(),
        "dateCreated" => t.date_created.into(),
        "file-count" => t.files.len().into(),
        "hashString" => t.hash_string.as_str().into(),
        "id" => t.id.into(),
        "isPrivate" => t.is_private.into(),
        "magnetLink" => t.magnet_link.as_str().into(),
        "name" => t.name.as_str().into(),
        "pieceCount" => t.piece_count.into(),
        "pieceSize" => t.piece_size.into(),
        "pieces" => t.pieces_base64.as_str().into(),
        "primary-mime-type" => "".into(),
        "torrentFile" => "".into(),
        "totalSize" => t.total_size.into(),
        _ => return None,
    };
    Some(value)
}

/// The torrent's own settings; the ones pollen lacks show as off.
fn setting_field(t: &TorrentView, name: &str) -> Option<Value> {
    let value = match name {
        "bandwidthPriority" => 0.into(),
        "downloadDir" => t.download_dir.as_str().into(),
        "downloadLimit" | "uploadLimit" => 0.into(),
        "downloadLimited" | "uploadLimited" => false.into(),
        "group" => "".into(),
        "honorsSessionLimits" => true.into(),
        "labels" => json!([]),
        "maxConnectedPeers" | "peer-limit" => t.peer_limit.into(),
        "seedIdleLimit" => t.seed_idle_limit.unwrap_or(0).into(),
        "seedIdleMode" => u8::from(t.seed_idle_limit.is_some()).into(),
        "seedRatioLimit" => t.seed_ratio_limit.unwrap_or(0.0).into(),
        "seedRatioMode" => u8::from(t.seed_ratio_limit.is_some()).into(),
        _ => return None,
    };
    Some(value)
}

/// The per-file, per-peer and per-tracker lists.
fn list_field(t: &TorrentView, name: &str) -> Option<Value> {
    let value = match name {
        "files" => t
            .files
            .iter()
            .map(|f| json!({"name": f.name, "length": f.length, "bytesCompleted": f.bytes_completed}))
            .collect(),
        "fileStats" => t
            .files
            .iter()
            .map(|f| json!({"bytesCompleted": f.bytes_completed, "wanted": f.wanted, "priority": 0}))
            .collect(),
        // rpc 17 (4.x) sends `wanted` as 0/1, not booleans.
        "wanted" => t.files.iter().map(|f| Value::from(u8::from(f.wanted))).collect(),
        "priorities" => t.files.iter().map(|_| Value::from(0)).collect(),
        "peers" => t.peers.iter().map(peer).collect(),
        "trackers" => t.trackers.iter().map(tracker).collect(),
        "trackerStats" => t.trackers.iter().map(tracker_stats).collect(),
        "trackerList" => tracker_list(&t.trackers).into(),
        "webseeds" => Value::from(t.webseeds.as_slice()),
        _ => return None,
    };
    Some(value)
}

/// `peersFrom`: pollen counts the addresses it knows, not where each came
/// from; they show as from trackers.
fn peers_from(t: &TorrentView) -> Value {
    json!({
        "fromCache": 0,
        "fromDht": 0,
        "fromIncoming": 0,
        "fromLpd": 0,
        "fromLtep": 0,
        "fromPex": 0,
        "fromTracker": t.peers_known,
    })
}

/// One `peers` entry. Transmission's "client/peer is choked" name who is
/// choked: `clientIsChoked` is the peer choking us.
fn peer(p: &PeerView) -> Value {
    json!({
        "address": p.address,
        "port": p.port,
        "clientName": p.client_name,
        "progress": p.progress,
        "rateToClient": p.rate_to_client,
        "rateToPeer": p.rate_to_peer,
        "isIncoming": p.is_incoming,
        "clientIsChoked": p.peer_choking,
        "clientIsInterested": p.client_interested,
        "peerIsChoked": p.client_choking,
        "peerIsInterested": p.peer_interested,
        "isDownloadingFrom": !p.peer_choking && p.client_interested,
        "isUploadingTo": !p.client_choking && p.peer_interested,
        "flagStr": p.flag_str,
        "isEncrypted": false,
        "isUTP": false,
    })
}

/// One `trackers` entry.
fn tracker(tr: &TrackerView) -> Value {
    json!({
        "announce": tr.announce,
        "id": tr.id,
        "scrape": scrape_url(&tr.announce),
        "sitename": sitename(&tr.host),
        "tier": tr.tier,
    })
}

/// One `trackerStats` entry: every key Transmission sends (the 3.00
/// `transmission-remote -it` skips a tracker missing any of them).
fn tracker_stats(tr: &TrackerView) -> Value {
    let announced = !tr.last_announce_result.is_empty();
    json!({
        "announce": tr.announce,
        "announceState": if tr.next_announce_time > 0 { 1 } else { 0 },
        "downloadCount": -1,
        "hasAnnounced": announced,
        "hasScraped": false,
        "host": tr.host,
        "id": tr.id,
        "isBackup": false,
        "lastAnnouncePeerCount": 0,
        "lastAnnounceResult": tr.last_announce_result,
        "lastAnnounceStartTime": tr.last_announce_time,
        "lastAnnounceSucceeded": tr.last_announce_result == "Success",
        "lastAnnounceTime": tr.last_announce_time,
        "lastAnnounceTimedOut": false,
        "lastScrapeResult": "",
        "lastScrapeStartTime": 0,
        "lastScrapeSucceeded": false,
        "lastScrapeTime": 0,
        "lastScrapeTimedOut": false,
        "leecherCount": tr.leecher_count,
        "nextAnnounceTime": tr.next_announce_time,
        "nextScrapeTime": 0,
        "scrape": scrape_url(&tr.announce),
        "scrapeState": 0,
        "seederCount": tr.seeder_count,
        "sitename": sitename(&tr.host),
        "tier": tr.tier,
    })
}

/// The scrape URL by the usual convention (the last path segment's
/// `announce` becomes `scrape`), or empty when the URL does not follow it.
fn scrape_url(announce: &str) -> String {
    match announce.rfind('/') {
        Some(slash) if announce[slash + 1..].starts_with("announce") => {
            format!("{}scrape{}", &announce[..=slash], &announce[slash + 9..])
        }
        _ => String::new(),
    }
}

/// A tracker's short name: the label before the top-level domain
/// (`tracker.example.org:6969` -> `example`), or the host itself for an
/// address or a one-label name.
fn sitename(host: &str) -> String {
    let host = host.rsplit_once("://").map_or(host, |(_, rest)| rest);
    if host.starts_with('[') || host.parse::<std::net::IpAddr>().is_ok() {
        return host.to_string();
    }
    let name = host.split(':').next().unwrap_or(host);
    if name.parse::<std::net::IpAddr>().is_ok() {
        return name.to_string();
    }
    let labels: Vec<&str> = name.split('.').filter(|l| !l.is_empty()).collect();
    match labels.as_slice() {
        [.., site, _tld] => site.to_string(),
        _ => name.to_string(),
    }
}

/// `trackerList`: the announce URLs one a line, a blank line between tiers.
fn tracker_list(trackers: &[TrackerView]) -> String {
    let mut list = String::new();
    let mut tier = None;
    for tr in trackers {
        if tier.is_some_and(|t| t != tr.tier) {
            list.push('\n');
        }
        tier = Some(tr.tier);
        list.push_str(&tr.announce);
        list.push('\n');
    }
    list
}

/// Transmission's defaults, shown for limits that are off (clients show
/// the number next to the unticked box).
mod off {
    /// `speed-limit-down` / `-up`, KB/s.
    pub const SPEED_LIMIT: u64 = 100;
    /// `download-queue-size`.
    pub const DOWNLOAD_QUEUE: u32 = 5;
    /// `seed-queue-size`.
    pub const SEED_QUEUE: u32 = 10;
    /// `seedRatioLimit`.
    pub const SEED_RATIO: f64 = 2.0;
    /// `idle-seeding-limit`, minutes.
    pub const IDLE_SEEDING: u64 = 30;
}

/// `session-get`'s `arguments`: the asked `fields` (every one when empty).
pub fn session_get(session: &SessionView, fields: &[String]) -> Map<String, Value> {
    let mut all = session_settings(session);
    all.extend(session_fixed());
    if fields.is_empty() {
        return all;
    }
    all.into_iter()
        .filter(|(key, _)| fields.iter().any(|f| f == key))
        .collect()
}

/// The settings that come from the session.
fn session_settings(s: &SessionView) -> Map<String, Value> {
    let json = json!({
        "config-dir": s.config_dir,
        "dht-enabled": s.dht_enabled,
        "download-dir": s.download_dir,
        "download-dir-free-space": s.download_dir_free_space,
        "download-queue-enabled": s.download_queue_size.is_some(),
        "download-queue-size": s.download_queue_size.unwrap_or(off::DOWNLOAD_QUEUE),
        "idle-seeding-limit": s.idle_seeding_limit.unwrap_or(off::IDLE_SEEDING),
        "idle-seeding-limit-enabled": s.idle_seeding_limit.is_some(),
        "peer-limit-global": s.peer_limit_global,
        "peer-limit-per-torrent": s.peer_limit_per_torrent,
        "peer-port": s.peer_port,
        "pex-enabled": s.pex_enabled,
        "seed-queue-enabled": s.seed_queue_size.is_some(),
        "seed-queue-size": s.seed_queue_size.unwrap_or(off::SEED_QUEUE),
        "seedRatioLimit": s.seed_ratio_limit.unwrap_or(off::SEED_RATIO),
        "seedRatioLimited": s.seed_ratio_limit.is_some(),
        "session-id": s.session_id,
        "speed-limit-down": s.speed_limit_down.unwrap_or(off::SPEED_LIMIT),
        "speed-limit-down-enabled": s.speed_limit_down.is_some(),
        "speed-limit-up": s.speed_limit_up.unwrap_or(off::SPEED_LIMIT),
        "speed-limit-up-enabled": s.speed_limit_up.is_some(),
        "start-added-torrents": s.start_added_torrents,
        "watch-dir": s.watch_dir.as_deref().unwrap_or(""),
        "watch-dir-enabled": s.watch_dir.is_some(),
    });
    match json {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

/// The settings pollen does not have, as Transmission shows them off, and
/// the version and units.
fn session_fixed() -> Map<String, Value> {
    let json = json!({
        "alt-speed-down": 50,
        "alt-speed-enabled": false,
        "alt-speed-time-begin": 540,
        "alt-speed-time-day": 127,
        "alt-speed-time-enabled": false,
        "alt-speed-time-end": 1020,
        "alt-speed-up": 50,
        "blocklist-enabled": false,
        "blocklist-size": 0,
        "blocklist-url": "",
        "cache-size-mb": 4,
        "encryption": "tolerated",
        "incomplete-dir": "",
        "incomplete-dir-enabled": false,
        "lpd-enabled": false,
        "peer-port-random-on-start": false,
        "port-forwarding-enabled": false,
        "queue-stalled-enabled": false,
        "queue-stalled-minutes": 30,
        "rename-partial-files": false,
        "rpc-version": RPC_VERSION,
        "rpc-version-minimum": RPC_VERSION_MINIMUM,
        "rpc-version-semver": RPC_VERSION_SEMVER,
        "script-torrent-added-enabled": false,
        "script-torrent-added-filename": "",
        "script-torrent-done-enabled": false,
        "script-torrent-done-filename": "",
        "script-torrent-done-seeding-enabled": false,
        "script-torrent-done-seeding-filename": "",
        "trash-original-torrent-files": false,
        "units": {
            "speed-units": ["kB/s", "MB/s", "GB/s", "TB/s"],
            "speed-bytes": 1000,
            "size-units": ["kB", "MB", "GB", "TB"],
            "size-bytes": 1000,
            "memory-units": ["KiB", "MiB", "GiB", "TiB"],
            "memory-bytes": 1024,
        },
        "utp-enabled": false,
        "version": VERSION_STRING,
    });
    match json {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

/// `session-stats`' `arguments`.
pub fn session_stats(stats: &SessionStats) -> Map<String, Value> {
    let totals = |t: &super::view::TransferTotals| {
        json!({
            "uploadedBytes": t.uploaded_bytes,
            "downloadedBytes": t.downloaded_bytes,
            "filesAdded": t.files_added,
            "sessionCount": t.session_count,
            "secondsActive": t.seconds_active,
        })
    };
    let mut map = Map::new();
    map.insert(
        "activeTorrentCount".into(),
        stats.active_torrent_count.into(),
    );
    map.insert("downloadSpeed".into(), stats.download_speed.into());
    map.insert(
        "pausedTorrentCount".into(),
        stats.paused_torrent_count.into(),
    );
    map.insert("torrentCount".into(), stats.torrent_count.into());
    map.insert("uploadSpeed".into(), stats.upload_speed.into());
    map.insert("cumulative-stats".into(), totals(&stats.cumulative));
    map.insert("current-stats".into(), totals(&stats.current));
    map
}

/// A whole answer: `{"result": result, "arguments": arguments, "tag": tag}`
/// as bytes (`tag` left out when the request had none).
pub fn answer(result: &str, arguments: Map<String, Value>, tag: Option<&Value>) -> Vec<u8> {
    let mut body = Map::new();
    body.insert("result".into(), Value::String(result.into()));
    body.insert("arguments".into(), Value::Object(arguments));
    if let Some(tag) = tag {
        body.insert("tag".into(), tag.clone());
    }
    Value::Object(body).to_string().into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rpc::view::{FileView, Status, TransferTotals};

    /// Fields each real client asks for, as captured.
    const REMOTE_LIST: &[&str] = &[
        "error",
        "errorString",
        "eta",
        "id",
        "isFinished",
        "leftUntilDone",
        "name",
        "peersGettingFromUs",
        "peersSendingToUs",
        "rateDownload",
        "rateUpload",
        "sizeWhenDone",
        "status",
        "uploadRatio",
    ];
    const REMOTE_INFO: &[&str] = &[
        "activityDate",
        "addedDate",
        "bandwidthPriority",
        "comment",
        "corruptEver",
        "creator",
        "dateCreated",
        "desiredAvailable",
        "doneDate",
        "downloadDir",
        "downloadedEver",
        "downloadLimit",
        "downloadLimited",
        "error",
        "errorString",
        "eta",
        "hashString",
        "haveUnchecked",
        "haveValid",
        "honorsSessionLimits",
        "id",
        "isFinished",
        "isPrivate",
        "labels",
        "leftUntilDone",
        "magnetLink",
        "name",
        "peersConnected",
        "peersGettingFromUs",
        "peersSendingToUs",
        "peer-limit",
        "pieceCount",
        "pieceSize",
        "rateDownload",
        "rateUpload",
        "recheckProgress",
        "secondsDownloading",
        "secondsSeeding",
        "seedRatioMode",
        "seedRatioLimit",
        "sizeWhenDone",
        "startDate",
        "status",
        "totalSize",
        "uploadedEver",
        "uploadLimit",
        "uploadLimited",
        "webseeds",
        "webseedsSendingToUs",
    ];
    /// `-f`, `-pi`, `-it`.
    const REMOTE_OTHER: &[&str] = &[
        "files",
        "name",
        "priorities",
        "wanted",
        "peers",
        "trackerStats",
    ];
    /// The 3.00 web UI's `Torrent.Fields` (Metadata, Stats, InfoExtra, StatsExtra).
    const WEB_UI: &[&str] = &[
        "id",
        "addedDate",
        "name",
        "totalSize",
        "error",
        "errorString",
        "eta",
        "isFinished",
        "isStalled",
        "leftUntilDone",
        "metadataPercentComplete",
        "peersConnected",
        "peersGettingFromUs",
        "peersSendingToUs",
        "percentDone",
        "queuePosition",
        "rateDownload",
        "rateUpload",
        "recheckProgress",
        "seedRatioMode",
        "seedRatioLimit",
        "sizeWhenDone",
        "status",
        "trackers",
        "downloadDir",
        "uploadedEver",
        "uploadRatio",
        "webseedsSendingToUs",
        "comment",
        "creator",
        "dateCreated",
        "files",
        "hashString",
        "isPrivate",
        "pieceCount",
        "pieceSize",
        "activityDate",
        "corruptEver",
        "desiredAvailable",
        "downloadedEver",
        "fileStats",
        "haveUnchecked",
        "haveValid",
        "peers",
        "startDate",
        "trackerStats",
    ];
    /// transmission-rpc 7.0.12's default `torrent-get` list.
    const PYTHON: &[&str] = &[
        "activityDate",
        "addedDate",
        "bandwidthPriority",
        "comment",
        "corruptEver",
        "creator",
        "dateCreated",
        "desiredAvailable",
        "doneDate",
        "downloadDir",
        "downloadedEver",
        "downloadLimit",
        "downloadLimited",
        "editDate",
        "error",
        "errorString",
        "eta",
        "etaIdle",
        "files",
        "fileStats",
        "group",
        "hashString",
        "haveUnchecked",
        "haveValid",
        "honorsSessionLimits",
        "id",
        "isFinished",
        "isPrivate",
        "isStalled",
        "labels",
        "leftUntilDone",
        "magnetLink",
        "manualAnnounceTime",
        "maxConnectedPeers",
        "metadataPercentComplete",
        "name",
        "peer-limit",
        "peers",
        "peersConnected",
        "peersFrom",
        "peersGettingFromUs",
        "peersSendingToUs",
        "percentComplete",
        "percentDone",
        "pieces",
        "pieceCount",
        "pieceSize",
        "priorities",
        "primary-mime-type",
        "queuePosition",
        "rateDownload",
        "rateUpload",
        "recheckProgress",
        "secondsDownloading",
        "secondsSeeding",
        "seedIdleLimit",
        "seedIdleMode",
        "seedRatioLimit",
        "seedRatioMode",
        "sizeWhenDone",
        "startDate",
        "status",
        "trackers",
        "trackerStats",
        "totalSize",
        "torrentFile",
        "uploadedEver",
        "uploadLimit",
        "uploadLimited",
        "uploadRatio",
        "wanted",
        "webseeds",
        "webseedsSendingToUs",
        "file-count",
        "trackerList",
    ];

    /// A check of a JSON value's type.
    type TypeCheck = fn(&Value) -> bool;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    fn sample() -> TorrentView {
        TorrentView {
            id: 3,
            hash_string: "0123456789abcdef0123456789abcdef01234567".into(),
            name: "hybrid".into(),
            status: Status::Downloading,
            total_size: 25_000,
            size_when_done: 25_000,
            left_until_done: 5_000,
            have_valid: 20_000,
            percent_done: 0.8,
            upload_ratio: -1.0,
            eta: -1,
            peers_connected: 1,
            peers_known: 4,
            peer_limit: 50,
            seed_ratio_limit: Some(1.5),
            files: vec![
                FileView {
                    name: "hybrid/a.bin".into(),
                    length: 20_000,
                    bytes_completed: 20_000,
                    wanted: true,
                },
                FileView {
                    name: "hybrid/sub/b.bin".into(),
                    length: 5_000,
                    bytes_completed: 0,
                    wanted: true,
                },
            ],
            peers: vec![PeerView {
                address: "127.0.0.1".into(),
                port: 6881,
                client_name: "Transmission 3.00".into(),
                progress: 1.0,
                rate_to_client: 1000,
                peer_choking: false,
                client_interested: true,
                client_choking: true,
                peer_interested: false,
                flag_str: "DE".into(),
                ..PeerView::default()
            }],
            trackers: vec![
                TrackerView {
                    announce: "http://tracker.example.org:6969/announce".into(),
                    host: "tracker.example.org:6969".into(),
                    seeder_count: 3,
                    leecher_count: -1,
                    last_announce_result: "Success".into(),
                    last_announce_time: 1_700_000_000,
                    next_announce_time: 1_700_001_800,
                    ..TrackerView::default()
                },
                TrackerView {
                    announce: "udp://127.0.0.1:6969".into(),
                    host: "127.0.0.1:6969".into(),
                    tier: 1,
                    id: 1,
                    ..TrackerView::default()
                },
            ],
            ..TorrentView::default()
        }
    }

    fn one(fields: &[&str]) -> Map<String, Value> {
        let args = torrent_get(&[sample()], &names(fields), false, None);
        match &args["torrents"][0] {
            Value::Object(t) => t.clone(),
            other => panic!("{other}"),
        }
    }

    #[test]
    fn every_field_a_real_client_asks_for_is_answered() {
        for (client, list) in [
            ("remote -l", REMOTE_LIST),
            ("remote -i", REMOTE_INFO),
            ("remote -f/-pi/-it", REMOTE_OTHER),
            ("web UI 3.00", WEB_UI),
            ("transmission-rpc", PYTHON),
        ] {
            let t = one(list);
            for name in list {
                assert!(t.contains_key(*name), "{client}: {name}");
            }
        }
        for name in TORRENT_FIELDS {
            assert!(
                torrent_field(&TorrentView::default(), name).is_some(),
                "{name}"
            );
        }
    }

    #[test]
    fn fields_have_transmissions_types() {
        let t = one(PYTHON);
        let number = |v: &Value| v.is_number();
        let cases: &[(&str, TypeCheck)] = &[
            ("id", number),
            ("status", number),
            ("totalSize", number),
            ("eta", number),
            ("error", number),
            ("peer-limit", number),
            ("file-count", number),
            ("percentDone", Value::is_f64),
            ("uploadRatio", Value::is_f64),
            ("seedRatioLimit", Value::is_f64),
            ("recheckProgress", Value::is_f64),
            ("metadataPercentComplete", Value::is_f64),
            ("name", Value::is_string),
            ("hashString", Value::is_string),
            ("pieces", Value::is_string),
            ("trackerList", Value::is_string),
            ("isFinished", Value::is_boolean),
            ("isPrivate", Value::is_boolean),
            ("labels", Value::is_array),
            ("webseeds", Value::is_array),
            ("peersFrom", Value::is_object),
        ];
        for (name, is) in cases {
            assert!(is(&t[*name]), "{name}: {}", t[*name]);
        }
        let want = [
            ("id", json!(3)),
            ("status", json!(4)),
            ("percentDone", json!(0.8)),
            ("seedRatioMode", json!(1)),
            ("seedIdleMode", json!(0)),
            ("uploadRatio", json!(-1.0)),
            ("desiredAvailable", json!(5000)),
            ("peer-limit", json!(50)),
            ("file-count", json!(2)),
        ];
        for (name, value) in want {
            assert_eq!(t[name], value, "{name}");
        }
    }

    #[test]
    fn files_file_stats_wanted_and_priorities_line_up() {
        let t = one(&["files", "fileStats", "wanted", "priorities"]);
        assert_eq!(
            t["files"],
            json!([{"name": "hybrid/a.bin", "length": 20000, "bytesCompleted": 20000},
                   {"name": "hybrid/sub/b.bin", "length": 5000, "bytesCompleted": 0}])
        );
        assert_eq!(
            t["fileStats"],
            json!([{"bytesCompleted": 20000, "wanted": true, "priority": 0},
                   {"bytesCompleted": 0, "wanted": true, "priority": 0}])
        );
        assert_eq!(t["wanted"], json!([1, 1]));
        assert_eq!(t["priorities"], json!([0, 0]));
    }

    #[test]
    fn peers_name_who_chokes_whom_as_transmission_does() {
        let t = one(&["peers"]);
        let want = json!([{
            "address": "127.0.0.1", "port": 6881, "clientName": "Transmission 3.00",
            "progress": 1.0, "rateToClient": 1000, "rateToPeer": 0, "isIncoming": false,
            "clientIsChoked": false, "clientIsInterested": true,
            "peerIsChoked": true, "peerIsInterested": false,
            "isDownloadingFrom": true, "isUploadingTo": false,
            "flagStr": "DE", "isEncrypted": false, "isUTP": false,
        }]);
        assert_eq!(t["peers"], want);
    }

    #[test]
    fn tracker_stats_carry_every_key_transmission_sends() {
        let t = one(&["trackerStats", "trackers", "trackerList"]);
        let keys = [
            "announce",
            "announceState",
            "downloadCount",
            "hasAnnounced",
            "hasScraped",
            "host",
            "id",
            "isBackup",
            "lastAnnouncePeerCount",
            "lastAnnounceResult",
            "lastAnnounceStartTime",
            "lastAnnounceSucceeded",
            "lastAnnounceTime",
            "lastAnnounceTimedOut",
            "lastScrapeResult",
            "lastScrapeStartTime",
            "lastScrapeSucceeded",
            "lastScrapeTime",
            "lastScrapeTimedOut",
            "leecherCount",
            "nextAnnounceTime",
            "nextScrapeTime",
            "scrape",
            "scrapeState",
            "seederCount",
            "sitename",
            "tier",
        ];
        let Value::Object(first) = &t["trackerStats"][0] else {
            panic!()
        };
        let mut got: Vec<&str> = first.keys().map(String::as_str).collect();
        got.sort_unstable();
        assert_eq!(got, keys);
        assert_eq!(first["lastAnnounceSucceeded"], json!(true));
        assert_eq!(first["seederCount"], json!(3));
        assert_eq!(t["trackerStats"][1]["hasAnnounced"], json!(false));
        assert_eq!(
            t["trackers"],
            json!([
                {"announce": "http://tracker.example.org:6969/announce", "id": 0,
                 "scrape": "http://tracker.example.org:6969/scrape", "sitename": "example", "tier": 0},
                {"announce": "udp://127.0.0.1:6969", "id": 1, "scrape": "",
                 "sitename": "127.0.0.1", "tier": 1},
            ])
        );
        assert_eq!(
            t["trackerList"],
            json!("http://tracker.example.org:6969/announce\n\nudp://127.0.0.1:6969\n")
        );
    }

    #[test]
    fn sitename_and_scrape_follow_the_usual_conventions() {
        let sites = [
            ("tracker.example.org:6969", "example"),
            ("http://tracker.example.org:80", "example"),
            ("example.org", "example"),
            ("localhost:6969", "localhost"),
            ("10.0.0.1:6969", "10.0.0.1"),
            ("[::1]:6969", "[::1]:6969"),
            ("", ""),
        ];
        for (host, want) in sites {
            assert_eq!(sitename(host), want, "{host}");
        }
        let scrapes = [
            ("http://h/announce", "http://h/scrape"),
            ("http://h/x/announce.php?k=1", "http://h/x/scrape.php?k=1"),
            ("http://h/a", ""),
            ("udp://h:1", ""),
            ("announce", ""),
        ];
        for (announce, want) in scrapes {
            assert_eq!(scrape_url(announce), want, "{announce}");
        }
    }

    #[test]
    fn unknown_and_repeated_fields_are_left_out() {
        let t = one(&["id", "noSuchField", "id", "availability"]);
        assert_eq!(Value::Object(t), json!({"id": 3}));
    }

    #[test]
    fn table_format_is_a_header_row_then_one_row_per_torrent() {
        let mut second = sample();
        second.id = 4;
        second.name = "other".into();
        let fields = names(&["id", "bogus", "name", "status"]);
        let args = torrent_get(&[sample(), second], &fields, true, None);
        assert_eq!(
            Value::Object(args),
            json!({"torrents": [["id", "name", "status"], [3, "hybrid", 4], [4, "other", 4]]})
        );
        let args = torrent_get(&[], &fields, true, None);
        assert_eq!(
            Value::Object(args),
            json!({"torrents": [["id", "name", "status"]]})
        );
    }

    #[test]
    fn removed_is_sent_only_when_given() {
        let fields = names(&["id"]);
        let args = torrent_get(&[], &fields, false, Some(&[7, 9]));
        assert_eq!(
            Value::Object(args),
            json!({"torrents": [], "removed": [7, 9]})
        );
        let args = torrent_get(&[], &fields, false, None);
        assert_eq!(Value::Object(args), json!({"torrents": []}));
    }

    fn session() -> SessionView {
        SessionView {
            download_dir: "/srv/dl".into(),
            download_dir_free_space: 1 << 30,
            peer_port: 51413,
            peer_limit_global: 200,
            peer_limit_per_torrent: 50,
            speed_limit_up: Some(250),
            seed_ratio_limit: Some(1.0),
            dht_enabled: true,
            pex_enabled: true,
            start_added_torrents: true,
            session_id: "abc".into(),
            config_dir: "/srv/dl/.pollen".into(),
            ..SessionView::default()
        }
    }

    #[test]
    fn session_get_answers_what_remote_web_ui_and_python_read() {
        let all = session_get(&session(), &[]);
        // transmission-remote -si, the web UI's prefs and transmission-rpc's Session.
        let keys = [
            "alt-speed-down",
            "alt-speed-enabled",
            "alt-speed-time-begin",
            "alt-speed-time-day",
            "alt-speed-time-enabled",
            "alt-speed-time-end",
            "alt-speed-up",
            "blocklist-enabled",
            "blocklist-size",
            "blocklist-url",
            "cache-size-mb",
            "config-dir",
            "dht-enabled",
            "download-dir",
            "download-dir-free-space",
            "download-queue-enabled",
            "download-queue-size",
            "encryption",
            "idle-seeding-limit",
            "idle-seeding-limit-enabled",
            "incomplete-dir",
            "incomplete-dir-enabled",
            "lpd-enabled",
            "peer-limit-global",
            "peer-limit-per-torrent",
            "peer-port",
            "peer-port-random-on-start",
            "pex-enabled",
            "port-forwarding-enabled",
            "queue-stalled-enabled",
            "queue-stalled-minutes",
            "rename-partial-files",
            "rpc-version",
            "rpc-version-minimum",
            "rpc-version-semver",
            "script-torrent-done-enabled",
            "script-torrent-done-filename",
            "seed-queue-enabled",
            "seed-queue-size",
            "seedRatioLimit",
            "seedRatioLimited",
            "session-id",
            "speed-limit-down",
            "speed-limit-down-enabled",
            "speed-limit-up",
            "speed-limit-up-enabled",
            "start-added-torrents",
            "trash-original-torrent-files",
            "units",
            "utp-enabled",
            "version",
            "watch-dir",
            "watch-dir-enabled",
        ];
        for key in keys {
            assert!(all.contains_key(key), "{key}");
        }
        let want = [
            ("rpc-version", json!(17)),
            ("rpc-version-minimum", json!(14)),
            ("rpc-version-semver", json!("5.3.0")),
            ("version", json!(VERSION_STRING)),
            ("session-id", json!("abc")),
            ("download-dir-free-space", json!(1u64 << 30)),
            ("speed-limit-up", json!(250)),
            ("speed-limit-up-enabled", json!(true)),
            ("speed-limit-down", json!(100)),
            ("speed-limit-down-enabled", json!(false)),
            ("seedRatioLimit", json!(1.0)),
            ("seedRatioLimited", json!(true)),
            ("download-queue-enabled", json!(false)),
            ("encryption", json!("tolerated")),
            ("watch-dir-enabled", json!(false)),
        ];
        for (key, value) in want {
            assert_eq!(all[key], value, "{key}");
        }
        assert_eq!(all["units"]["speed-bytes"], json!(1000));
        assert_eq!(all["units"]["size-bytes"], json!(1000));
        assert_eq!(all["units"]["memory-bytes"], json!(1024));
        assert_eq!(
            all["units"]["speed-units"].as_array().map(Vec::len),
            Some(4)
        );
    }

    #[test]
    fn session_get_keeps_only_the_asked_fields() {
        let fields = names(&["version", "rpc-version", "nonsense"]);
        let some = session_get(&session(), &fields);
        assert_eq!(
            Value::Object(some),
            json!({"version": VERSION_STRING, "rpc-version": RPC_VERSION})
        );
    }

    #[test]
    fn session_stats_has_the_spec_keys() {
        let stats = SessionStats {
            torrent_count: 3,
            active_torrent_count: 2,
            paused_torrent_count: 1,
            download_speed: 10,
            upload_speed: 20,
            current: TransferTotals {
                uploaded_bytes: 5,
                downloaded_bytes: 6,
                files_added: 1,
                session_count: 1,
                seconds_active: 60,
            },
            cumulative: TransferTotals::default(),
        };
        let zero = json!({"uploadedBytes": 0, "downloadedBytes": 0, "filesAdded": 0,
            "sessionCount": 0, "secondsActive": 0});
        assert_eq!(
            Value::Object(session_stats(&stats)),
            json!({
                "activeTorrentCount": 2, "downloadSpeed": 10, "pausedTorrentCount": 1,
                "torrentCount": 3, "uploadSpeed": 20, "cumulative-stats": zero,
                "current-stats": {"uploadedBytes": 5, "downloadedBytes": 6, "filesAdded": 1,
                    "sessionCount": 1, "secondsActive": 60},
            })
        );
    }

    #[test]
    fn answer_echoes_the_tag_only_when_given() {
        let body = answer("success", Map::new(), Some(&json!(4)));
        let back: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            back,
            json!({"result": "success", "arguments": {}, "tag": 4})
        );
        let body = answer("invalid argument: ids", Map::new(), None);
        let back: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            back,
            json!({"result": "invalid argument: ids", "arguments": {}})
        );
    }
}
