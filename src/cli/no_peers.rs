//! `--no-tracker` without `--peer`: pollen then has no way to find a peer,
//! and only peers that find it can connect.
//!
//! Layer 3. What a user means by it decides what pollen does:
//!
//! - seeding (`--seed`, `--seed-ratio`, `--seed-time`): waiting for
//!   peers to connect is a seeder's job, so it runs, with a one-line note
//!   saying peers must connect to it;
//! - a download whose files may all be on disk already (each under its
//!   final name with its full size: pollen names a file `.part` until it is
//!   complete) runs: it checks the data and exits 0 if it is complete, as
//!   `pollen t.torrent --no-tracker` is the way to verify a download;
//! - a torrent with a usable web seed (BEP 19 `url-list`, `http://`) has
//!   a source without any peer, so it runs;
//! - so does a torrent that is not private when the DHT (BEP 5) is on and
//!   has a node to start from (`--dht-bootstrap`, or nodes saved by an
//!   earlier run; release builds also know the public routers);
//! - any other download could only wait for ever, so it is refused before
//!   anything starts, with a usage error (exit status 2) saying what to do.

use std::path::Path;

use pollen::metainfo::Metainfo;

use super::CliError;

/// What the command line says about where peers come from.
pub struct PeerSources<'a> {
    /// `--no-tracker` was given.
    pub no_tracker: bool,
    /// Some `--peer` was given.
    pub has_peers: bool,
    /// Complete torrents are seeded (`--seed` or a seeding limit).
    pub seeds: bool,
    /// `--clean`: the files are deleted first, so nothing is complete.
    pub clean: bool,
    /// `--dest`.
    pub dest: &'a Path,
    /// The DHT is on and has a node to start from (saved or bootstrap).
    pub dht: bool,
}

/// Refuses a download that cannot find a peer (see the module doc).
/// Returns the note to print once listening, for a seeder that waits for
/// peers; `None` when there is nothing to say.
pub fn check(sources: &PeerSources<'_>, metas: &[Metainfo]) -> Result<Option<String>, CliError> {
    if !sources.no_tracker || sources.has_peers {
        return Ok(None);
    }
    if sources.seeds {
        return Ok(Some(
            "note: --no-tracker without --peer: pollen finds no peers, they must connect to it"
                .into(),
        ));
    }
    let on_disk = |meta: &Metainfo| !sources.clean && may_be_complete(sources.dest, meta);
    let web_seeded = |meta: &Metainfo| pollen::web_seed::has_usable_web_seed(&meta.url_list);
    let dht = |meta: &Metainfo| sources.dht && !meta.private;
    if metas.iter().all(|m| dht(m) || web_seeded(m) || on_disk(m)) {
        return Ok(None);
    }
    Err(CliError::Usage(
        "--no-tracker without --peer: pollen has no way to find peers \
         (give --peer HOST:PORT, or drop --no-tracker; a seeder can use --seed)"
            .into(),
    ))
}

/// Whether every file of `meta` that holds bytes is under `dest` with its
/// final name and full size: the only way the download can be complete
/// already. (Whether its pieces verify, the start-up check finds out.)
fn may_be_complete(dest: &Path, meta: &Metainfo) -> bool {
    meta.files
        .iter()
        .filter(|f| !f.padding && !f.symlink && f.len > 0)
        .all(|f| {
            std::fs::metadata(dest.join(&f.path)).is_ok_and(|m| m.is_file() && m.len() == f.len)
        })
}
