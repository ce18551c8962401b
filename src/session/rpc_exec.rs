//! Answering the RPC server's requests: the access checks, the routes
//! (`/transmission/rpc`, the status page at `/`, the Transmission web UI
//! under `/transmission/web/`), and each RPC method carried out against
//! the session's torrents.
//!
//! Layer 2. The bytes were cut into a request by [`crate::rpc::http`];
//! [`crate::rpc::access`] says who gets in, [`crate::rpc::call`] decodes
//! the body, and [`crate::rpc::fields`] renders the answer from the
//! [`crate::rpc::view`] values filled here. A method never panics and
//! never stops the loop: what goes wrong is the answer's `result` text.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use serde_json::{Map, Value};

use super::daemon::{unix_now, LimitMode};
use super::{AddOptions, Session, TorrentId};
use crate::error::Error;
use crate::metainfo::Metainfo;
use crate::rpc::call::{self, AddArgs, AddSource, Ids, Method, QueueMove};
use crate::rpc::http::{Request, Response};
use crate::rpc::view::{FileView, PeerView, SessionStats, SessionView, Status, TorrentView};
use crate::rpc::{fields, web, WEB_UI_PATH};
use crate::tracker::announce::percent_encode;

/// Largest file served from the web UI folder (its biggest script is
/// about 100 KiB): a stray huge file is not read into memory.
const MAX_WEB_FILE_BYTES: u64 = 4 * 1024 * 1024;

/// Largest `.torrent` file `torrent-add` reads by path.
const MAX_TORRENT_FILE_BYTES: u64 = crate::metainfo::MAX_TORRENT_BYTES;

/// What the heavier `torrent-get` fields need computed.
#[derive(Debug, Clone, Copy, Default)]
struct Wants {
    files: bool,
    peers: bool,
    pieces: bool,
    trackers: bool,
}

impl Wants {
    fn of(fields: &[String]) -> Wants {
        let has = |names: &[&str]| fields.iter().any(|f| names.contains(&f.as_str()));
        Wants {
            files: has(&["files", "fileStats", "wanted", "priorities", "fileCount"]),
            peers: has(&["peers"]),
            pieces: has(&["pieces"]),
            trackers: has(&["trackers", "trackerStats", "trackerList"]),
        }
    }
}

impl Session {
    /// Answers one HTTP request from `peer`: the address, Host, credentials
    /// and (for the RPC) session-id checks first, then the route.
    pub(super) fn answer_http(
        &mut self,
        request: &Request,
        peer: SocketAddr,
        now: Instant,
    ) -> Response {
        let Some(daemon) = self.daemon.as_ref() else {
            return Response::new(503, "text/plain", b"no daemon\n".to_vec());
        };
        let rpc = crate::rpc::is_rpc_path(&request.path);
        if let Err(refusal) = daemon.policy.check(peer.ip(), request, rpc) {
            log::debug!(
                "rpc: {peer}: {} {}: {refusal}",
                request.method,
                request.path
            );
            return daemon.policy.refusal_response(&refusal);
        }
        let response = match (request.method.as_str(), request.path.as_str()) {
            ("POST", _) if rpc => self.answer_rpc(&request.body, now),
            (_, _) if rpc => Response::new(405, "text/plain", b"use POST\n".to_vec()),
            ("GET" | "HEAD", "/" | "/index.html") => Response::new(
                200,
                "text/html; charset=utf-8",
                web::INDEX_HTML.as_bytes().to_vec(),
            ),
            ("GET" | "HEAD", "/transmission/web") => {
                Response::new(301, "text/plain", Vec::new()).with_header("Location", WEB_UI_PATH)
            }
            ("GET" | "HEAD", path) if path.starts_with(WEB_UI_PATH) => {
                self.web_ui_response(path.get(WEB_UI_PATH.len()..).unwrap_or_default())
            }
            _ => Response::new(404, "text/plain", b"not found\n".to_vec()),
        };
        let response = response
            .with_header("X-Content-Type-Options", "nosniff")
            .with_header("X-Frame-Options", "SAMEORIGIN")
            .with_header("Cache-Control", "no-store");
        if request.method == "HEAD" {
            return Response {
                body: Vec::new(),
                ..response
            };
        }
        response
    }

    /// A file of the Transmission web UI folder, if one is set and has it.
    /// Blocks (one small file read).
    fn web_ui_response(&self, rest: &str) -> Response {
        let not_found = || Response::new(404, "text/plain", b"not found\n".to_vec());
        let Some(root) = self.daemon.as_ref().and_then(|d| d.config.web_ui.clone()) else {
            return not_found();
        };
        let Some(path) = web::web_ui_file(&root, rest) else {
            return not_found();
        };
        match std::fs::metadata(&path) {
            Ok(meta) if meta.is_file() && meta.len() <= MAX_WEB_FILE_BYTES => {}
            _ => return not_found(),
        }
        match std::fs::read(&path) {
            Ok(bytes) => Response::new(200, web::content_type(&path), bytes),
            Err(_) => not_found(),
        }
    }

    /// Decodes and carries out one RPC call; the answer is always JSON.
    fn answer_rpc(&mut self, body: &[u8], now: Instant) -> Response {
        let json = |bytes: Vec<u8>| Response::new(200, "application/json; charset=UTF-8", bytes);
        let call = match call::parse_call(body) {
            Ok(call) => call,
            Err(error) => {
                let tag = match &error {
                    call::CallError::Tagged(_, tag) => Some(tag.clone()),
                    _ => None,
                };
                return json(fields::answer(&error.to_string(), Map::new(), tag.as_ref()));
            }
        };
        let (result, arguments) = match self.execute(call.method, now) {
            Ok(arguments) => ("success".to_string(), arguments),
            Err(why) => (why, Map::new()),
        };
        // What the call changed is on disk before the answer says it was done.
        self.save_daemon_state(false, now);
        json(fields::answer(&result, arguments, call.tag.as_ref()))
    }

    /// Carries out one method.
    fn execute(&mut self, method: Method, now: Instant) -> Result<Map<String, Value>, String> {
        match method {
            Method::SessionGet { fields } => Ok(fields::session_get(&self.session_view(), &fields)),
            Method::SessionSet(args) => self.rpc_session_set(args),
            Method::SessionStats => {
                let stats = self.session_stats_view(now);
                Ok(fields::session_stats(&stats))
            }
            Method::SessionClose => {
                log::info!("rpc: session-close: stopping");
                self.stop.stop();
                Ok(Map::new())
            }
            Method::TorrentGet { ids, fields, table } => {
                let removed = matches!(ids, Ids::RecentlyActive).then(|| self.recently_removed());
                let tids = self.select(&ids, now);
                let wants = Wants::of(&fields);
                let views: Vec<TorrentView> = tids
                    .into_iter()
                    .filter_map(|tid| self.torrent_view(tid, wants, now))
                    .collect();
                Ok(fields::torrent_get(
                    &views,
                    &fields,
                    table,
                    removed.as_deref(),
                ))
            }
            Method::TorrentAdd(args) => self.rpc_add(args, now),
            Method::TorrentStart { ids, .. } => {
                for tid in self.select(&ids, now) {
                    self.rpc_start(tid);
                }
                Ok(Map::new())
            }
            Method::TorrentStop { ids } => {
                for tid in self.select(&ids, now) {
                    self.rpc_stop(tid);
                }
                Ok(Map::new())
            }
            Method::TorrentVerify { ids } => {
                for tid in self.select(&ids, now) {
                    self.rpc_verify(tid, now);
                }
                Ok(Map::new())
            }
            Method::TorrentReannounce { ids } => {
                for tid in self.select(&ids, now) {
                    if let Some(slot) = self.torrents.get_mut(tid) {
                        slot.tracker.reannounce(now);
                    }
                }
                Ok(Map::new())
            }
            Method::TorrentRemove {
                ids,
                delete_local_data,
            } => {
                for tid in self.select(&ids, now) {
                    self.rpc_remove(tid, delete_local_data, now);
                }
                Ok(Map::new())
            }
            Method::TorrentSet(args) => self.rpc_torrent_set(args, now),
            Method::QueueMove { ids, to } => {
                let tids = self.select(&ids, now);
                self.rpc_queue_move(&tids, to);
                Ok(Map::new())
            }
            Method::FreeSpace { path } => free_space(&path),
            Method::PortTest => {
                // Testing the port needs an outside server; pollen makes no
                // such traffic, so it cannot say the port is open.
                let mut out = Map::new();
                out.insert("port-is-open".into(), Value::Bool(false));
                Ok(out)
            }
            Method::BlocklistUpdate => {
                let mut out = Map::new();
                out.insert("blocklist-size".into(), Value::from(0));
                Ok(out)
            }
        }
    }

    /// The torrents `ids` names, in RPC id order.
    fn select(&self, ids: &Ids, now: Instant) -> Vec<TorrentId> {
        let Some(daemon) = self.daemon.as_ref() else {
            return Vec::new();
        };
        let mut chosen: Vec<(u64, TorrentId)> = daemon
            .entries
            .iter()
            .filter(|(tid, entry)| match ids {
                Ids::All => true,
                Ids::RecentlyActive => {
                    let _ = now;
                    entry.activity_date >= unix_now().saturating_sub(60)
                        || entry.added_date >= unix_now().saturating_sub(60)
                        || self.torrents.get(**tid).is_some_and(|s| !s.paused)
                }
                Ids::Some { ids, hashes } => {
                    ids.contains(&entry.id)
                        || self
                            .torrents
                            .get(**tid)
                            .is_some_and(|s| hashes.contains(&s.meta.info_hash.to_hex()))
                }
            })
            .map(|(tid, entry)| (entry.id, *tid))
            .collect();
        chosen.sort_unstable();
        chosen.into_iter().map(|(_, tid)| tid).collect()
    }

    /// The RPC ids removed lately.
    fn recently_removed(&self) -> Vec<u64> {
        self.daemon
            .as_ref()
            .map(|d| d.removed.iter().map(|(id, _)| *id).collect())
            .unwrap_or_default()
    }

    /// What `torrent-get` shows of torrent `tid`.
    fn torrent_view(&mut self, tid: TorrentId, wants: Wants, now: Instant) -> Option<TorrentView> {
        let entry = self.daemon.as_ref()?.entries.get(&tid)?.clone();
        let peers_connected = self
            .conns
            .iter()
            .filter(|(_, c)| c.torrent == Some(tid) && c.is_active())
            .count();
        let incoming: std::collections::HashSet<usize> = self
            .conns
            .iter()
            .filter(|(_, c)| c.torrent == Some(tid) && !c.outgoing)
            .map(|(k, _)| k)
            .collect();
        let max_peers = self.config.max_peers;
        let slot = self.torrents.get_mut(tid)?;
        let meta = Arc::clone(&slot.meta);
        let stats = slot.torrent.stats().clone();
        let total = meta.total_len();
        let left = slot.torrent.bytes_left();
        let have_valid = total.saturating_sub(left);
        let awaiting = slot.torrent.metadata_progress();
        let complete = awaiting.is_none() && slot.torrent.is_complete();
        let checking = slot.checking.filter(|_| awaiting.is_none());
        let status = if checking.is_some() && !slot.paused {
            Status::Checking
        } else if entry.queued {
            if complete {
                Status::SeedWait
            } else {
                Status::DownloadWait
            }
        } else if slot.paused || entry.stopped {
            Status::Stopped
        } else if complete {
            Status::Seeding
        } else {
            Status::Downloading
        };
        let down = slot.torrent.down_rate(now);
        let up = slot.torrent.up_rate(now);
        let peers = if wants.peers {
            peer_views(&mut slot.torrent, &incoming, now)
        } else {
            Vec::new()
        };
        let (sending, getting) = slot
            .torrent
            .peers(now)
            .iter()
            .fold((0u32, 0u32), |(s, g), p| {
                (s + u32::from(p.down_rate > 0), g + u32::from(p.up_rate > 0))
            });
        let uploaded = entry.earlier.uploaded + stats.uploaded;
        let downloaded = entry.earlier.downloaded + stats.downloaded;
        let piece_count = meta.layout.piece_count();
        let unix = unix_now();
        let view = TorrentView {
            id: entry.id,
            hash_string: meta.info_hash.to_hex(),
            name: meta.name.clone(),
            status,
            download_dir: slot.dest.to_string_lossy().into_owned(),
            total_size: total,
            size_when_done: total,
            left_until_done: left,
            have_valid,
            percent_done: if awaiting.is_some() {
                0.0
            } else if total == 0 {
                1.0
            } else {
                have_valid as f64 / total as f64
            },
            recheck_progress: match checking {
                Some(next) if piece_count > 0 => f64::from(next) / f64::from(piece_count),
                _ => 0.0,
            },
            metadata_percent_complete: match awaiting {
                None => 1.0,
                Some((got, Some(of))) if of > 0 => (got as f64 / f64::from(of)).min(1.0),
                Some(_) => 0.0,
            },
            rate_download: down,
            rate_upload: up,
            downloaded_ever: downloaded,
            uploaded_ever: uploaded,
            corrupt_ever: entry.earlier.corrupt + stats.wasted,
            upload_ratio: if downloaded > 0 {
                uploaded as f64 / downloaded as f64
            } else if complete && uploaded > 0 {
                uploaded as f64 / total.max(1) as f64
            } else if complete {
                0.0
            } else {
                -1.0
            },
            eta: if complete {
                -1
            } else {
                left.checked_div(down)
                    .map_or(-2, |secs| i64::try_from(secs).unwrap_or(i64::MAX))
            },
            peers_connected: u32::try_from(peers_connected).unwrap_or(u32::MAX),
            peers_sending_to_us: sending,
            peers_getting_from_us: getting,
            peers_known: u32::try_from(slot.torrent.peer_list().len()).unwrap_or(u32::MAX),
            peer_limit: u32::try_from(max_peers).unwrap_or(u32::MAX),
            added_date: entry.added_date,
            start_date: entry.start_date,
            done_date: entry.done_date,
            activity_date: entry.activity_date,
            date_created: meta.creation_date.unwrap_or(0),
            seconds_downloading: i64::try_from(entry.earlier.seconds_downloading).unwrap_or(0)
                + if !complete && !slot.paused && entry.start_date > 0 {
                    unix.saturating_sub(entry.start_date)
                } else {
                    0
                },
            seconds_seeding: i64::try_from(entry.earlier.seconds_seeding).unwrap_or(0)
                + slot.completed_at.filter(|_| !slot.paused).map_or(0, |at| {
                    i64::try_from(now.saturating_duration_since(at).as_secs()).unwrap_or(0)
                }),
            complete,
            seed_limit_met: entry.finished,
            is_private: meta.private,
            error: u8::from(slot.error.is_some()) * 3,
            error_string: slot.error.clone().unwrap_or_default(),
            comment: meta.comment.clone().unwrap_or_default(),
            creator: meta.created_by.clone().unwrap_or_default(),
            piece_count,
            piece_size: u64::from(meta.layout.piece_len()),
            pieces_base64: if wants.pieces {
                crate::rpc::base64::encode(slot.torrent.have().as_bytes())
            } else {
                String::new()
            },
            magnet_link: magnet_link(&meta),
            queue_position: u32::try_from(entry.queue_position).unwrap_or(u32::MAX),
            seed_ratio_limit: match entry.ratio {
                LimitMode::Own(r) => Some(r),
                _ => None,
            },
            seed_idle_limit: match entry.idle {
                LimitMode::Own(d) => Some(d.as_secs() / 60),
                _ => None,
            },
            files: if wants.files {
                file_views(&meta, slot.torrent.have())
            } else {
                Vec::new()
            },
            peers,
            trackers: if wants.trackers {
                let mut views = slot.tracker.views(now);
                if status == Status::Stopped {
                    // A stopped torrent announces nothing until started.
                    views.iter_mut().for_each(|v| v.next_announce_time = 0);
                }
                views
            } else {
                Vec::new()
            },
            webseeds: meta.url_list.clone(),
            webseeds_sending_to_us: u32::try_from(slot.web_seeds.joined_count()).unwrap_or(0),
        };
        Some(view)
    }

    /// What `session-get` shows.
    fn session_view(&self) -> SessionView {
        let daemon = self.daemon.as_ref();
        let kb = |limit: Option<u64>| limit.map(|b| b / 1000);
        SessionView {
            download_dir: self.config.dest.to_string_lossy().into_owned(),
            download_dir_free_space: crate::storage::free_bytes(&self.config.dest)
                .ok()
                .and_then(|b| i64::try_from(b).ok())
                .unwrap_or(-1),
            peer_port: self.listen_addr.port(),
            peer_limit_global: u32::try_from(self.config.max_peers).unwrap_or(u32::MAX),
            peer_limit_per_torrent: u32::try_from(self.config.max_peers).unwrap_or(u32::MAX),
            speed_limit_down: kb(self.config.max_down),
            speed_limit_up: kb(self.config.max_up),
            download_queue_size: daemon.and_then(|d| d.config.download_queue),
            seed_queue_size: daemon.and_then(|d| d.config.seed_queue),
            seed_ratio_limit: daemon.and_then(|d| d.config.seed_ratio),
            idle_seeding_limit: daemon
                .and_then(|d| d.config.idle_seeding.map(|t| t.as_secs() / 60)),
            dht_enabled: self.dht.is_some(),
            pex_enabled: true,
            start_added_torrents: daemon.is_none_or(|d| d.config.start_added),
            watch_dir: daemon
                .and_then(|d| d.config.watch_dir.as_ref())
                .map(|p| p.to_string_lossy().into_owned()),
            session_id: daemon
                .map(|d| d.policy.session_id.clone())
                .unwrap_or_default(),
            config_dir: daemon
                .and_then(|d| d.config.state_dir.as_ref())
                .map(|p| p.to_string_lossy().into_owned())
                .unwrap_or_default(),
        }
    }

    /// What `session-stats` shows.
    fn session_stats_view(&mut self, now: Instant) -> SessionStats {
        let mut stats = SessionStats {
            torrent_count: u32::try_from(self.torrents.len()).unwrap_or(u32::MAX),
            ..SessionStats::default()
        };
        for (_, slot) in self.torrents.iter_mut() {
            if slot.paused {
                stats.paused_torrent_count += 1;
            } else {
                stats.active_torrent_count += 1;
            }
            stats.download_speed += slot.torrent.down_rate(now);
            stats.upload_speed += slot.torrent.up_rate(now);
        }
        let (current, cumulative) = self.transfer_totals();
        let view = |t: crate::daemon::state::Totals| crate::rpc::view::TransferTotals {
            uploaded_bytes: t.uploaded_bytes,
            downloaded_bytes: t.downloaded_bytes,
            files_added: t.files_added,
            session_count: t.session_count,
            seconds_active: t.seconds_active,
        };
        stats.current = view(current);
        stats.cumulative = view(cumulative);
        stats
    }

    /// `torrent-add`: a magnet link, a `.torrent` file by path (under the
    /// download roots or the watch folder only) or its bytes.
    fn rpc_add(&mut self, args: AddArgs, now: Instant) -> Result<Map<String, Value>, String> {
        let dest = match &args.download_dir {
            Some(dir) => {
                let dir = PathBuf::from(dir);
                if !self.allowed_download_dir(&dir) {
                    return Err(format!(
                        "download-dir {} is not under a download root",
                        dir.display()
                    ));
                }
                Some(dir)
            }
            None => None,
        };
        let start_added = self.daemon.as_ref().is_none_or(|d| d.config.start_added);
        let options = AddOptions {
            dest,
            paused: args.paused || !start_added,
            force_check: false,
        };
        let mut bytes_added: Option<Vec<u8>> = None;
        let added = match &args.source {
            AddSource::Magnet(link) => {
                let magnet =
                    crate::magnet::parse(link).map_err(|e| format!("invalid magnet link: {e}"))?;
                if let Some(found) = self.duplicate_of(&magnet.info_hash) {
                    return Ok(added_answer("torrent-duplicate", found));
                }
                self.add_magnet_with(&magnet, &options)
                    .map(|tid| (tid, Some(link.clone())))
            }
            AddSource::Metainfo(bytes) => {
                let meta = Metainfo::from_bytes(bytes)
                    .map_err(|e| format!("invalid or corrupt torrent file: {e}"))?;
                bytes_added = Some(bytes.clone());
                self.add_metainfo(meta, &options)?
            }
            AddSource::Path(path) => {
                let bytes = self.read_torrent_path(Path::new(path))?;
                let meta = Metainfo::from_bytes(&bytes)
                    .map_err(|e| format!("invalid or corrupt torrent file: {e}"))?;
                bytes_added = Some(bytes);
                self.add_metainfo(meta, &options)?
            }
            AddSource::Url(_) => {
                return Err("pollen does not fetch torrent files by URL; send its metainfo".into())
            }
        }
        .map_err(|e| e.to_string())?;
        let (tid, magnet) = added;
        self.enter_torrent(tid, now);
        if let Some(entry) = self.daemon.as_mut().and_then(|d| d.entries.get_mut(&tid)) {
            entry.meta_saved = magnet.is_none();
            entry.magnet = magnet;
        }
        // Saved before the answer: a kill right after it loses nothing.
        self.save_new_torrent(tid, bytes_added.as_deref(), now);
        let Some(view) = self.brief(tid) else {
            return Err("the torrent vanished".into());
        };
        log::info!("rpc: added {} (id {})", view.1, view.0);
        Ok(added_answer("torrent-added", view))
    }

    /// Adds a parsed torrent, or says it is there already.
    fn add_metainfo(
        &mut self,
        meta: Metainfo,
        options: &AddOptions,
    ) -> Result<Result<(TorrentId, Option<String>), Error>, String> {
        if let Some(found) = self.duplicate_of(&meta.info_hash) {
            return Err(format!("duplicate torrent: {} (id {})", found.1, found.0));
        }
        Ok(self.add_torrent_with(meta, options).map(|tid| (tid, None)))
    }

    /// The RPC id, name and hash of the torrent with this info-hash.
    fn duplicate_of(&self, info_hash: &crate::metainfo::InfoHash) -> Option<(u64, String, String)> {
        let tid = self
            .torrents
            .iter()
            .find(|(_, s)| s.meta.info_hash == *info_hash)
            .map(|(tid, _)| tid)?;
        self.brief(tid)
    }

    /// A torrent's RPC id, name and hash.
    fn brief(&self, tid: TorrentId) -> Option<(u64, String, String)> {
        let id = self.daemon.as_ref()?.entries.get(&tid)?.id;
        let slot = self.torrents.get(tid)?;
        Some((id, slot.meta.name.clone(), slot.meta.info_hash.to_hex()))
    }

    /// Reads a `.torrent` file named by `torrent-add`: only under a
    /// download root or the watch folder, and at most
    /// [`MAX_TORRENT_FILE_BYTES`]. Blocks (one small read).
    fn read_torrent_path(&self, path: &Path) -> Result<Vec<u8>, String> {
        let in_watch = self
            .daemon
            .as_ref()
            .and_then(|d| d.config.watch_dir.as_ref())
            .and_then(|w| std::fs::canonicalize(w).ok())
            .zip(std::fs::canonicalize(path).ok())
            .is_some_and(|(w, p)| p.starts_with(w));
        if !in_watch && !self.allowed_download_dir(path) {
            return Err(format!("{} is not under a download root", path.display()));
        }
        match std::fs::metadata(path) {
            Ok(m) if m.is_file() && m.len() <= MAX_TORRENT_FILE_BYTES => {}
            Ok(_) => return Err(format!("{} is not a torrent file", path.display())),
            Err(e) => return Err(format!("{}: {e}", path.display())),
        }
        std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// `torrent-start`: the user wants it running (the queue decides when).
    fn rpc_start(&mut self, tid: TorrentId) {
        if let Some(entry) = self.daemon.as_mut().and_then(|d| d.entries.get_mut(&tid)) {
            if entry.stopped {
                entry.stopped = false;
                entry.finished = false;
                entry.start_date = unix_now();
                entry.dirty = true;
            }
        }
        if let Some(slot) = self.torrents.get_mut(tid) {
            slot.error = None;
        }
        self.run_queue_now();
    }

    /// `torrent-stop`: paused until started again.
    fn rpc_stop(&mut self, tid: TorrentId) {
        if let Some(entry) = self.daemon.as_mut().and_then(|d| d.entries.get_mut(&tid)) {
            entry.stopped = true;
            entry.queued = false;
            entry.dirty = true;
        }
        self.pause(tid);
        self.run_queue_now();
    }

    /// The queue, re-run at once after a start or stop (so
    /// `torrent-get` right after shows the new state).
    fn run_queue_now(&mut self) {
        self.drive_daemon(Instant::now());
    }

    /// `torrent-remove`: out of the session (its trackers told), its RPC
    /// entry forgotten; with `delete`, its files, partial files, resume
    /// state and saved metadata deleted too, and the folders it made if
    /// they are left empty. Only paths the torrent names, under its
    /// destination.
    fn rpc_remove(&mut self, tid: TorrentId, delete: bool, now: Instant) {
        let Some((meta, dest)) = self
            .torrents
            .get(tid)
            .map(|s| (Arc::clone(&s.meta), s.dest.clone()))
        else {
            return;
        };
        if !self.remove(tid) {
            return;
        }
        self.note_removed(tid, now);
        self.forget_saved(&meta.info_hash);
        if delete {
            super::slot::clean(&dest, &meta);
            let _ = std::fs::remove_file(crate::resume::torrent_path(&dest, &meta.info_hash));
            remove_empty_dirs(&dest, &meta);
            log::info!("{}: removed with its data", meta.name);
        }
    }

    /// `torrent-verify`: the torrent is re-added with every piece hashed
    /// again (its connections are closed meanwhile; its RPC entry stays).
    fn rpc_verify(&mut self, tid: TorrentId, now: Instant) {
        let Some(slot) = self.torrents.get(tid) else {
            return;
        };
        if slot.torrent.metadata_progress().is_some() {
            return; // nothing to verify before the metadata
        }
        let meta = (*slot.meta).clone();
        let options = AddOptions {
            dest: Some(slot.dest.clone()),
            paused: slot.paused,
            force_check: true,
        };
        let entry = self.daemon.as_mut().and_then(|d| d.entries.remove(&tid));
        if !self.remove(tid) {
            return;
        }
        match self.add_torrent_with(meta, &options) {
            Ok(new_tid) => {
                if let (Some(daemon), Some(entry)) = (self.daemon.as_mut(), entry) {
                    daemon.entries.insert(new_tid, entry);
                }
            }
            Err(e) => {
                log::error!("verify: cannot re-add the torrent: {e}");
                if let Some(entry) = entry {
                    self.note_removed_entry(entry.id, now);
                }
            }
        }
    }

    /// Notes an RPC id as removed when its torrent is already gone.
    fn note_removed_entry(&mut self, id: u64, now: Instant) {
        if let Some(daemon) = self.daemon.as_mut() {
            daemon.removed.push_back((id, now));
        }
    }

    /// `torrent-set`: seeding limits; moving data and skipping files are
    /// refused (pollen does neither).
    fn rpc_torrent_set(
        &mut self,
        args: call::TorrentSetArgs,
        now: Instant,
    ) -> Result<Map<String, Value>, String> {
        if args.location.is_some() {
            return Err("pollen does not move data: remove and add the torrent again".into());
        }
        if args.files_unwanted {
            return Err("pollen downloads every file of a torrent".into());
        }
        if !args.unsupported.is_empty() {
            return Err(format!(
                "pollen does not support these torrent-set arguments: {}",
                args.unsupported.join(", ")
            ));
        }
        for tid in self.select(&args.ids, now) {
            let Some(entry) = self.daemon.as_mut().and_then(|d| d.entries.get_mut(&tid)) else {
                continue;
            };
            match args.seed_ratio_mode {
                Some(0) => entry.ratio = LimitMode::Global,
                Some(1) => {
                    entry.ratio =
                        LimitMode::Own(args.seed_ratio_limit.unwrap_or(match entry.ratio {
                            LimitMode::Own(r) => r,
                            _ => 2.0,
                        }))
                }
                Some(2) => entry.ratio = LimitMode::Unlimited,
                _ => {
                    if let Some(limit) = args.seed_ratio_limit {
                        entry.ratio = LimitMode::Own(limit);
                    }
                }
            }
            let minutes = |m: u64| std::time::Duration::from_secs(m.saturating_mul(60));
            match args.seed_idle_mode {
                Some(0) => entry.idle = LimitMode::Global,
                Some(1) => entry.idle = LimitMode::Own(minutes(args.seed_idle_limit.unwrap_or(30))),
                Some(2) => entry.idle = LimitMode::Unlimited,
                _ => {
                    if let Some(limit) = args.seed_idle_limit {
                        entry.idle = LimitMode::Own(minutes(limit));
                    }
                }
            }
            entry.dirty = true;
        }
        Ok(Map::new())
    }

    /// `session-set`: the settings pollen can change while running.
    fn rpc_session_set(
        &mut self,
        args: call::SessionSetArgs,
    ) -> Result<Map<String, Value>, String> {
        if let Some(dir) = &args.download_dir {
            let dir = PathBuf::from(dir);
            if !self.allowed_download_dir(&dir) {
                return Err(format!(
                    "download-dir {} is not under a download root",
                    dir.display()
                ));
            }
            std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
            self.config.dest = dir;
        }
        let rate = |limit: &call::Limit<u64>, current: Option<u64>| -> Option<u64> {
            let value = limit.value.map(|kb| kb.saturating_mul(1000)).or(current);
            match limit.enabled {
                Some(false) => None,
                Some(true) => value.or(Some(100_000)),
                None => current.and(value),
            }
        };
        let down = rate(&args.speed_limit_down, self.config.max_down);
        let up = rate(&args.speed_limit_up, self.config.max_up);
        if down != self.config.max_down {
            self.config.max_down = down;
            self.down_limit = super::config_limit(down);
        }
        if up != self.config.max_up {
            self.config.max_up = up;
            self.up_limit = super::config_limit(up);
        }
        if let Some(peers) = args.peer_limit_global {
            self.config.max_peers = usize::try_from(peers.max(1)).unwrap_or(usize::MAX);
        }
        let Some(daemon) = self.daemon.as_mut() else {
            return Ok(Map::new());
        };
        let queue = |limit: &call::Limit<u32>, current: Option<u32>| match limit.enabled {
            Some(false) => None,
            Some(true) => limit.value.or(current).or(Some(5)),
            None => current.map(|c| limit.value.unwrap_or(c)),
        };
        daemon.config.download_queue = queue(&args.download_queue, daemon.config.download_queue);
        daemon.config.seed_queue = queue(&args.seed_queue, daemon.config.seed_queue);
        daemon.config.seed_ratio = match args.seed_ratio.enabled {
            Some(false) => None,
            Some(true) => args
                .seed_ratio
                .value
                .or(daemon.config.seed_ratio)
                .or(Some(2.0)),
            None => daemon
                .config
                .seed_ratio
                .map(|r| args.seed_ratio.value.unwrap_or(r)),
        };
        let idle = |m: u64| std::time::Duration::from_secs(m.saturating_mul(60));
        daemon.config.idle_seeding = match args.idle_seeding.enabled {
            Some(false) => None,
            Some(true) => args
                .idle_seeding
                .value
                .map(idle)
                .or(daemon.config.idle_seeding)
                .or(Some(idle(30))),
            None => daemon
                .config
                .idle_seeding
                .map(|d| args.idle_seeding.value.map_or(d, idle)),
        };
        if let Some(start) = args.start_added_torrents {
            daemon.config.start_added = start;
        }
        self.settings_changed();
        Ok(Map::new())
    }

    /// `queue-move-*`: the torrents move as a block, keeping their order.
    fn rpc_queue_move(&mut self, tids: &[TorrentId], to: QueueMove) {
        let Some(daemon) = self.daemon.as_mut() else {
            return;
        };
        let mut order = daemon.queue_order();
        for &tid in tids {
            let Some(at) = order.iter().position(|t| *t == tid) else {
                continue;
            };
            order.remove(at);
            let new_at = match to {
                QueueMove::Top => 0,
                QueueMove::Up => at.saturating_sub(1),
                QueueMove::Down => (at + 1).min(order.len()),
                QueueMove::Bottom => order.len(),
            };
            order.insert(new_at, tid);
        }
        for (position, tid) in order.into_iter().enumerate() {
            if let Some(entry) = daemon.entries.get_mut(&tid) {
                let position = u64::try_from(position).unwrap_or(u64::MAX);
                if entry.queue_position != position {
                    entry.queue_position = position;
                    entry.dirty = true;
                }
            }
        }
    }
}

/// `torrent-add`'s answer for a torrent added or found.
fn added_answer(key: &str, (id, name, hash): (u64, String, String)) -> Map<String, Value> {
    let mut torrent = Map::new();
    torrent.insert("id".into(), Value::from(id));
    torrent.insert("name".into(), Value::String(name));
    torrent.insert("hashString".into(), Value::String(hash));
    let mut out = Map::new();
    out.insert(key.into(), Value::Object(torrent));
    out
}

/// `free-space`: the free bytes under `path`. Blocks (one `statvfs`).
fn free_space(path: &str) -> Result<Map<String, Value>, String> {
    let free = crate::storage::free_bytes(Path::new(path)).map_err(|e| format!("{path}: {e}"))?;
    let mut out = Map::new();
    out.insert("path".into(), Value::String(path.into()));
    out.insert("size-bytes".into(), Value::from(free));
    Ok(out)
}

/// Each file of `meta` with its bytes in verified pieces.
fn file_views(meta: &Metainfo, have: &crate::bitfield::Bitfield) -> Vec<FileView> {
    let layout = &meta.layout;
    let piece_len = u64::from(layout.piece_len());
    meta.files
        .iter()
        .enumerate()
        .filter(|(_, f)| !f.padding)
        .map(|(index, file)| {
            let start = layout.file_offset(index);
            let end = start + layout.file_len(index);
            let done: u64 = layout
                .pieces_of_file(index)
                .filter(|p| have.has(*p))
                .map(|p| {
                    let p_start = u64::from(p) * piece_len;
                    let p_end = p_start + piece_len;
                    p_end.min(end).saturating_sub(p_start.max(start))
                })
                .sum();
            let mut name = meta.name.clone();
            if meta.multi_file {
                for part in file.path.iter() {
                    name.push('/');
                    name.push_str(&part.to_string_lossy());
                }
            }
            FileView {
                name,
                length: file.len,
                bytes_completed: done,
                wanted: true,
            }
        })
        .collect()
}

/// Each connected peer of a torrent, as the RPC shows it.
fn peer_views(
    torrent: &mut crate::torrent::Torrent,
    incoming: &std::collections::HashSet<usize>,
    now: Instant,
) -> Vec<PeerView> {
    let pieces = torrent.meta().layout.piece_count().max(1);
    torrent
        .peers(now)
        .into_iter()
        .map(|p| {
            let state = p.state;
            let mut flags = String::new();
            if p.down_rate > 0 {
                flags.push('D');
            } else if state.am_interested() && !state.peer_choking() {
                flags.push('d');
            }
            if p.up_rate > 0 {
                flags.push('U');
            } else if state.peer_interested() && !state.am_choking() {
                flags.push('u');
            }
            if state.optimistic() {
                flags.push('O');
            }
            if incoming.contains(&p.key) {
                flags.push('I');
            }
            PeerView {
                address: p.addr.ip().to_string(),
                port: p.addr.port(),
                client_name: crate::ui::client_name::client_name(&p.peer_id),
                progress: f64::from(state.has().count_ones()) / f64::from(pieces),
                rate_to_client: p.down_rate,
                rate_to_peer: p.up_rate,
                is_incoming: incoming.contains(&p.key),
                peer_choking: state.peer_choking(),
                client_choking: state.am_choking(),
                peer_interested: state.peer_interested(),
                client_interested: state.am_interested(),
                flag_str: flags,
            }
        })
        .collect()
}

/// A magnet link for a torrent: its hash, name and trackers.
fn magnet_link(meta: &Metainfo) -> String {
    let mut link = format!("magnet:?xt=urn:btih:{}", meta.info_hash.to_hex());
    link.push_str("&dn=");
    link.push_str(&percent_encode(meta.name.as_bytes()));
    for url in meta.trackers.iter().flatten() {
        link.push_str("&tr=");
        link.push_str(&percent_encode(url.as_bytes()));
    }
    link
}

/// Removes the folders a torrent's files were in, deepest first, while
/// they are empty; never `dest` itself or anything above it.
fn remove_empty_dirs(dest: &Path, meta: &Metainfo) {
    let mut dirs: Vec<PathBuf> = Vec::new();
    for file in &meta.files {
        let mut dir = file.path.parent();
        while let Some(d) = dir {
            if d.as_os_str().is_empty() {
                break;
            }
            dirs.push(dest.join(d));
            dir = d.parent();
        }
    }
    dirs.sort_by_key(|d| std::cmp::Reverse(d.components().count()));
    dirs.dedup();
    for dir in dirs {
        if dir.starts_with(dest) && dir != dest {
            let _ = std::fs::remove_dir(&dir); // fails (and keeps it) unless empty
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_magnet_link_names_the_hash_the_name_and_each_tracker_encoded() {
        let (meta, _) = crate::torrent::sim::test_torrent(100_000, 16 * 1024, 3);
        let mut meta = (*meta).clone();
        meta.name = "a b/é".into();
        meta.trackers = vec![
            vec!["http://t.example/a?b".into()],
            vec!["udp://u:1".into()],
        ];
        let link = magnet_link(&meta);
        let hex = meta.info_hash.to_hex();
        assert_eq!(
            link,
            format!("magnet:?xt=urn:btih:{hex}&dn=a%20b%2F%C3%A9&tr=http%3A%2F%2Ft.example%2Fa%3Fb&tr=udp%3A%2F%2Fu%3A1")
        );
        let parsed = crate::magnet::parse(&link).unwrap();
        assert_eq!(parsed.info_hash, meta.info_hash);
        assert_eq!(parsed.name.as_deref(), Some("a b/é"));
    }

    #[test]
    fn wants_follow_the_field_names() {
        let w = Wants::of(&["id".into(), "files".into(), "peers".into()]);
        assert!(w.files && w.peers && !w.pieces && !w.trackers);
    }
}
