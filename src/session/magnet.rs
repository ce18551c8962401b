//! Magnet links in the session: a torrent that starts from its info-hash
//! alone, fetches its metadata from peers (BEP 9 over BEP 10), then goes
//! on as an ordinary download over the same connections.
//!
//! Layer 2. [`Session::add_magnet`] takes the torrent's lock as any torrent
//! does; if an earlier run saved the torrent file
//! (`DEST/.pollen/<info-hash>.torrent`) it is used and no metadata is
//! fetched. Otherwise the slot gets a placeholder metainfo (no files, the
//! link's trackers) and a core that fetches the metadata
//! ([`crate::torrent::Torrent::await_metadata`]); trackers are announced
//! to and the link's `x.pe` peers dialled as usual.
//!
//! When the core reports the metadata verified (its SHA-1 is the
//! info-hash), `metadata_arrived` builds the `.torrent` file from it and
//! the link's trackers, checks it like any torrent file (a torrent that
//! breaks a rule is refused, as a bad `.torrent` file would be), saves it
//! atomically, opens the files (resume state, what is in the way, free
//! space) and hands the real metainfo to the core; the start-up check
//! then runs as for any torrent.

use std::net::ToSocketAddrs;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use super::{AddOptions, Session, TorrentId};
use crate::bencode::{self, Dict, List, Value};
use crate::error::Error;
use crate::magnet::{Magnet, MagnetPeer};
use crate::metainfo::Metainfo;
use crate::resume;

impl Session {
    /// Adds a torrent by magnet link (`magnet:?xt=urn:btih:...`): its
    /// metadata is fetched from peers once the loop runs, unless an earlier
    /// run saved it under the destination. Fails with [`Error::Magnet`]
    /// for a malformed link, and as [`Session::add_torrent`] does.
    pub fn add_magnet(&mut self, link: &str) -> Result<TorrentId, Error> {
        let magnet = crate::magnet::parse(link).map_err(Error::Magnet)?;
        self.add_parsed_magnet(&magnet)
    }

    /// [`Session::add_magnet`] for a link already parsed.
    pub fn add_parsed_magnet(&mut self, magnet: &Magnet) -> Result<TorrentId, Error> {
        self.add_magnet_with(magnet, &AddOptions::default())
    }

    /// [`Session::add_parsed_magnet`] with per-torrent [`AddOptions`].
    pub fn add_magnet_with(
        &mut self,
        magnet: &Magnet,
        options: &AddOptions,
    ) -> Result<TorrentId, Error> {
        let hex = magnet.info_hash.to_hex();
        let name = magnet.name.clone().unwrap_or_else(|| hex.clone());
        self.check_room_for(&magnet.info_hash, &name)?;
        let dest = self.dest_of(options);
        let lock = super::slot::take_lock(&dest, &magnet.info_hash, &name)?;
        let tid = match saved_torrent(&dest, magnet) {
            Some(meta) => {
                log::info!("{}: metadata from an earlier run", meta.name);
                if self.config.clean {
                    super::slot::clean(&dest, &meta);
                }
                let files = self.open_files(&meta, &dest, options.force_check)?;
                self.insert_slot(lock, meta, Some(files), &dest)?
            }
            None => {
                let trackers = magnet.trackers.iter().map(|t| vec![t.clone()]).collect();
                let placeholder = Metainfo::awaiting(magnet.info_hash, &name, trackers);
                self.insert_slot(lock, placeholder, None, &dest)?
            }
        };
        if options.paused {
            if let Some(slot) = self.torrents.get_mut(tid) {
                slot.paused = true;
            }
        }
        for addr in resolve_peers(&magnet.peers) {
            if let Some(slot) = self.torrents.get_mut(tid) {
                slot.torrent.peer_list_mut().add(addr);
            }
        }
        log::debug!("torrent {tid}: added from a magnet link ({hex})");
        Ok(tid)
    }

    /// The core of torrent `tid` verified its metadata (`info`, the raw
    /// info dictionary): the torrent file is built, checked and saved, the
    /// files are opened and the core goes on as an ordinary download.
    pub(super) fn metadata_arrived(&mut self, tid: TorrentId, info: &[u8]) {
        let Some(slot) = self.torrents.get(tid) else {
            return;
        };
        let hex = slot.meta.info_hash.to_hex();
        let bytes = torrent_file(info, &slot.meta.trackers);
        let meta = match Metainfo::from_bytes(&bytes) {
            Ok(meta) if meta.info_hash == slot.meta.info_hash => meta,
            Ok(_) => return log::error!("magnet {hex}: rebuilt metadata changed its hash"),
            Err(source) => {
                return self.fail_torrent(
                    tid,
                    Error::Torrent {
                        path: PathBuf::from(format!("magnet:?xt=urn:btih:{hex} (its metadata)")),
                        source,
                    },
                )
            }
        };
        let dest = slot.dest.clone();
        let path = resume::torrent_path(&dest, &meta.info_hash);
        match resume::save_bytes(&path, &bytes) {
            Ok(()) => log::info!("{}: metadata saved to {}", meta.name, path.display()),
            Err(e) => log::warn!("{}: cannot save the metadata: {e}", meta.name),
        }
        if self.config.clean {
            super::slot::clean(&dest, &meta);
        }
        let files = match self.open_files(&meta, &dest, false) {
            Ok(files) => files,
            Err(e) => return self.fail_torrent(tid, e),
        };
        log::info!(
            "{}: {} in {} file(s), {} pieces",
            meta.name,
            crate::units::format_bytes(meta.total_len()),
            meta.files.len(),
            meta.layout.piece_count()
        );
        let meta = Arc::new(meta);
        let Some(slot) = self.torrents.get_mut(tid) else {
            return;
        };
        slot.meta = Arc::clone(&meta);
        // The placeholder had no files: the web seeds' file map is made anew.
        slot.web_seeds =
            super::web_seed::WebSeeds::new(&meta, Arc::clone(&self.waker), Instant::now());
        slot.storage = files.storage;
        slot.resume_path = files.resume_path;
        slot.last_stamps = files.last_stamps;
        slot.existing = files.existing;
        slot.space_needed = files.space_needed;
        slot.checking = Some(0);
        slot.started = Instant::now();
        slot.torrent.handle_metadata(meta, files.have);
        // Frames are now checked against the real piece count.
        let cap = self.read_cap(Some(tid));
        for (_, conn) in self.conns.iter_mut() {
            if conn.torrent == Some(tid) {
                conn.read_cap = cap;
            }
        }
    }
}

/// The torrent file an earlier run saved under `dest` for this magnet, if
/// it is there, valid and of the same info-hash (anything else is
/// ignored: the metadata is fetched again).
fn saved_torrent(dest: &std::path::Path, magnet: &Magnet) -> Option<Metainfo> {
    let path = resume::torrent_path(dest, &magnet.info_hash);
    let bytes = std::fs::read(&path).ok()?;
    match Metainfo::from_bytes(&bytes) {
        Ok(meta) if meta.info_hash == magnet.info_hash => Some(meta),
        Ok(_) => {
            log::warn!("{}: another torrent's metadata; ignored", path.display());
            None
        }
        Err(e) => {
            log::warn!("{}: {e}; fetching the metadata again", path.display());
            None
        }
    }
}

/// The bytes of a `.torrent` file for the info dictionary `info` (kept
/// byte for byte: its SHA-1 is the info-hash) with `trackers` as its
/// `announce` and `announce-list`.
fn torrent_file(info: &[u8], trackers: &[Vec<String>]) -> Vec<u8> {
    let mut entries = Vec::new();
    if let Some(first) = trackers.iter().flatten().next() {
        entries.push((&b"announce"[..], Value::Bytes(first.as_bytes())));
        let tiers = trackers
            .iter()
            .map(|tier| {
                Value::List(List::new(
                    tier.iter()
                        .map(|url| Value::Bytes(url.as_bytes()))
                        .collect(),
                ))
            })
            .collect();
        entries.push((b"announce-list", Value::List(List::new(tiers))));
    }
    // `info` sorts after both keys: the dictionary stays canonical with
    // the raw info dictionary spliced in before its closing `e`.
    let mut out = bencode::encode(&Value::Dict(Dict::new(entries)));
    out.pop();
    out.extend_from_slice(b"4:info");
    out.extend_from_slice(info);
    out.push(b'e');
    out
}

/// The addresses of a link's `x.pe` peers; host names are looked up here
/// (blocking, before the loop runs) and the ones that fail are skipped.
fn resolve_peers(peers: &[MagnetPeer]) -> Vec<std::net::SocketAddr> {
    let mut out = Vec::new();
    for peer in peers {
        match peer {
            MagnetPeer::Ip(addr) => out.push(*addr),
            MagnetPeer::Name { host, port } => match (host.as_str(), *port).to_socket_addrs() {
                Ok(addrs) => out.extend(addrs.take(1)),
                Err(e) => log::warn!("x.pe {host}:{port}: {e}; skipped"),
            },
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::torrent::sim::test_torrent;

    #[test]
    fn the_saved_torrent_file_has_the_magnets_info_hash_and_trackers() {
        let (meta, _) = test_torrent(100_000, 16 * 1024, 9);
        let trackers = vec![
            vec!["http://127.0.0.1:1/announce".to_string()],
            vec!["udp://127.0.0.1:2".to_string()],
        ];
        let bytes = torrent_file(&meta.info_bytes, &trackers);
        let again = Metainfo::from_bytes(&bytes).unwrap();
        assert_eq!(again.info_hash, meta.info_hash);
        assert_eq!(again.trackers, trackers);
        assert_eq!(again.layout, meta.layout);
    }

    #[test]
    fn without_trackers_the_torrent_file_is_the_info_dictionary_alone() {
        let (meta, _) = test_torrent(100_000, 16 * 1024, 10);
        let bytes = torrent_file(&meta.info_bytes, &[]);
        assert_eq!(&bytes[..7], b"d4:info");
        let again = Metainfo::from_bytes(&bytes).unwrap();
        assert_eq!(again.info_hash, meta.info_hash);
        assert!(again.trackers.is_empty());
    }
}
