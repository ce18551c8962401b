//! The plain values the RPC shows: a torrent ([`TorrentView`]), its files,
//! peers and trackers, and the session ([`SessionView`], [`SessionStats`]).
//!
//! Layer 0: the session fills these from its torrents (`session/rpc_exec.rs`)
//! and [`super::fields`] renders the fields a client asked for. Times are
//! Unix seconds (0: never), as Transmission sends them; rates are bytes per
//! second.

/// A torrent's state, numbered as Transmission's `status` field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Status {
    /// Paused (`0`).
    #[default]
    Stopped,
    /// Waiting for its turn to be checked (`1`).
    CheckWait,
    /// Its data on disk is being checked (`2`).
    Checking,
    /// Queued: waiting for a download slot (`3`).
    DownloadWait,
    /// Downloading, or fetching its metadata (`4`).
    Downloading,
    /// Queued: waiting for a seeding slot (`5`).
    SeedWait,
    /// Seeding (`6`).
    Seeding,
}

impl Status {
    /// Transmission's number for this status.
    pub fn code(self) -> u8 {
        match self {
            Status::Stopped => 0,
            Status::CheckWait => 1,
            Status::Checking => 2,
            Status::DownloadWait => 3,
            Status::Downloading => 4,
            Status::SeedWait => 5,
            Status::Seeding => 6,
        }
    }
}

/// One file of a torrent (`files`, `fileStats`, `wanted`, `priorities`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FileView {
    /// Its path inside the torrent, `/`-separated, starting with the torrent's name.
    pub name: String,
    /// Its length in bytes.
    pub length: u64,
    /// Its bytes in verified pieces.
    pub bytes_completed: u64,
    /// Whether it is downloaded (pollen downloads every file: always true).
    pub wanted: bool,
}

/// One connected peer (`peers`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PeerView {
    /// Its IP address, as text.
    pub address: String,
    /// Its port.
    pub port: u16,
    /// Its client, from its peer id.
    pub client_name: String,
    /// Fraction of the torrent it has, 0 to 1.
    pub progress: f64,
    /// Bytes a second we get from it.
    pub rate_to_client: u64,
    /// Bytes a second we send it.
    pub rate_to_peer: u64,
    /// We connected to it (false: it connected to us).
    pub is_incoming: bool,
    /// It chokes us.
    pub peer_choking: bool,
    /// We choke it.
    pub client_choking: bool,
    /// It is interested in us.
    pub peer_interested: bool,
    /// We are interested in it.
    pub client_interested: bool,
    /// Transmission's flag letters (`D`, `U`, `I`, `E`...).
    pub flag_str: String,
}

/// One tracker (`trackers`, `trackerStats`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TrackerView {
    /// Its announce URL.
    pub announce: String,
    /// Its tier, from 0.
    pub tier: u32,
    /// Its index in the torrent's list (Transmission's `id`).
    pub id: u32,
    /// The host name from the URL.
    pub host: String,
    /// Seeders it last reported, or -1.
    pub seeder_count: i64,
    /// Leechers it last reported, or -1.
    pub leecher_count: i64,
    /// What the last announce said (`Success`, or the error).
    pub last_announce_result: String,
    /// Unix time of the next announce, or 0.
    pub next_announce_time: i64,
    /// Unix time of the last announce, or 0 (`lastAnnounceTime`).
    pub last_announce_time: i64,
}

/// What a torrent shows through `torrent-get`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TorrentView {
    /// The RPC id: a small number, stable while the daemon runs.
    pub id: u64,
    /// The info-hash, 40 lowercase hex digits (`hashString`).
    pub hash_string: String,
    /// The torrent's name (the info-hash while a magnet awaits its metadata).
    pub name: String,
    /// Its state.
    pub status: Status,
    /// Where its files go (`downloadDir`).
    pub download_dir: String,
    /// Bytes in all its files (`totalSize`).
    pub total_size: u64,
    /// Bytes wanted (`sizeWhenDone`; every file is wanted).
    pub size_when_done: u64,
    /// Bytes still missing (`leftUntilDone`).
    pub left_until_done: u64,
    /// Verified bytes (`haveValid`).
    pub have_valid: u64,
    /// Fraction verified, 0 to 1 (`percentDone`).
    pub percent_done: f64,
    /// Fraction of the start-up check done, 0 to 1 (`recheckProgress`).
    pub recheck_progress: f64,
    /// Fraction of the metadata fetched, 0 to 1 (`metadataPercentComplete`).
    pub metadata_percent_complete: f64,
    /// Bytes a second down (`rateDownload`).
    pub rate_download: u64,
    /// Bytes a second up (`rateUpload`).
    pub rate_upload: u64,
    /// Bytes downloaded (`downloadedEver`).
    pub downloaded_ever: u64,
    /// Bytes uploaded (`uploadedEver`).
    pub uploaded_ever: u64,
    /// Bytes thrown away: failed hash checks (`corruptEver`).
    pub corrupt_ever: u64,
    /// Uploaded over downloaded (or over the size for a torrent that came
    /// complete); -1 when nothing was downloaded (`uploadRatio`).
    pub upload_ratio: f64,
    /// Seconds to completion, -1 unknown, -2 unknown forever (`eta`).
    pub eta: i64,
    /// Connected peers (`peersConnected`).
    pub peers_connected: u32,
    /// Peers we download from (`peersSendingToUs`).
    pub peers_sending_to_us: u32,
    /// Peers we upload to (`peersGettingFromUs`).
    pub peers_getting_from_us: u32,
    /// Addresses known (`peersFrom`' total).
    pub peers_known: u32,
    /// Unix time it was added (`addedDate`).
    pub added_date: i64,
    /// Unix time it was last started (`startDate`).
    pub start_date: i64,
    /// Unix time it completed, or 0 (`doneDate`).
    pub done_date: i64,
    /// Unix time of the last byte moved, or 0 (`activityDate`).
    pub activity_date: i64,
    /// Unix time the torrent was created (`dateCreated`), or 0.
    pub date_created: i64,
    /// Seconds spent downloading (`secondsDownloading`).
    pub seconds_downloading: i64,
    /// Seconds spent seeding (`secondsSeeding`).
    pub seconds_seeding: i64,
    /// Every piece is verified (`isFinished`'s first half; Transmission's
    /// `isFinished` also needs the seeding limit met: see `seed_limit_met`).
    pub complete: bool,
    /// It met its seeding limit and stopped (`isFinished`).
    pub seed_limit_met: bool,
    /// BEP 27 private flag (`isPrivate`).
    pub is_private: bool,
    /// 0 ok; 1 tracker warning; 2 tracker error; 3 local error (`error`).
    pub error: u8,
    /// What the error is (`errorString`).
    pub error_string: String,
    /// The torrent's comment.
    pub comment: String,
    /// The torrent's `created by`.
    pub creator: String,
    /// Pieces (`pieceCount`).
    pub piece_count: u32,
    /// Bytes per piece (`pieceSize`).
    pub piece_size: u64,
    /// The verified pieces as a bitfield, base64 (`pieces`).
    pub pieces_base64: String,
    /// A magnet link for it (`magnetLink`).
    pub magnet_link: String,
    /// Most peers connected to it at once (`peer-limit`, `maxConnectedPeers`).
    pub peer_limit: u32,
    /// Its place in the queue, from 0 (`queuePosition`).
    pub queue_position: u32,
    /// Seeding ratio limit: Some(ratio) for its own (`seedRatioMode` 1).
    pub seed_ratio_limit: Option<f64>,
    /// Seeding idle/time limit in minutes: Some for its own (`seedIdleMode` 1).
    pub seed_idle_limit: Option<u64>,
    /// Its files.
    pub files: Vec<FileView>,
    /// Its connected peers.
    pub peers: Vec<PeerView>,
    /// Its trackers.
    pub trackers: Vec<TrackerView>,
    /// Web seeds (`webseeds`).
    pub webseeds: Vec<String>,
    /// Web seeds sending to us now (`webseedsSendingToUs`).
    pub webseeds_sending_to_us: u32,
}

/// What `session-get` shows: the session's settings.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SessionView {
    /// Where new torrents go by default (`download-dir`).
    pub download_dir: String,
    /// Free bytes under `download_dir` (`download-dir-free-space`), -1 unknown.
    pub download_dir_free_space: i64,
    /// The peer port (`peer-port`).
    pub peer_port: u16,
    /// Most connected peers in all (`peer-limit-global`).
    pub peer_limit_global: u32,
    /// Most connected peers per torrent (`peer-limit-per-torrent`).
    pub peer_limit_per_torrent: u32,
    /// Download limit in KB/s (`speed-limit-down`), and whether it is on.
    pub speed_limit_down: Option<u64>,
    /// Upload limit in KB/s (`speed-limit-up`), and whether it is on.
    pub speed_limit_up: Option<u64>,
    /// Most torrents downloading at once (`download-queue-size`), if on.
    pub download_queue_size: Option<u32>,
    /// Most torrents seeding at once (`seed-queue-size`), if on.
    pub seed_queue_size: Option<u32>,
    /// Default seeding ratio limit (`seedRatioLimit`), if on.
    pub seed_ratio_limit: Option<f64>,
    /// Default idle seeding limit in minutes (`idle-seeding-limit`), if on.
    pub idle_seeding_limit: Option<u64>,
    /// Whether the DHT runs (`dht-enabled`).
    pub dht_enabled: bool,
    /// Whether PEX runs (`pex-enabled`).
    pub pex_enabled: bool,
    /// New torrents start paused (`start-added-torrents` is the opposite).
    pub start_added_torrents: bool,
    /// The folder watched for `.torrent` files, if any.
    pub watch_dir: Option<String>,
    /// The session id clients must send back (`session-id`).
    pub session_id: String,
    /// The folder holding the daemon's state (`config-dir`).
    pub config_dir: String,
}

/// Transfer totals (`session-stats`' `current-stats` and `cumulative-stats`).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct TransferTotals {
    /// Bytes uploaded.
    pub uploaded_bytes: u64,
    /// Bytes downloaded.
    pub downloaded_bytes: u64,
    /// Torrents added.
    pub files_added: u64,
    /// Times the daemon started.
    pub session_count: u64,
    /// Seconds running.
    pub seconds_active: u64,
}

/// What `session-stats` shows.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct SessionStats {
    /// Torrents in the session.
    pub torrent_count: u32,
    /// Torrents not paused.
    pub active_torrent_count: u32,
    /// Torrents paused.
    pub paused_torrent_count: u32,
    /// Bytes a second down, all torrents.
    pub download_speed: u64,
    /// Bytes a second up, all torrents.
    pub upload_speed: u64,
    /// Since the daemon started.
    pub current: TransferTotals,
    /// Over every run (as far as the state directory remembers).
    pub cumulative: TransferTotals,
}
