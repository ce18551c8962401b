//! `pollen create PATH -o OUT.torrent`: make a torrent from a file or a
//! directory.
//!
//! Layer 3: options in, [`pollen::create`] does the hashing, the result is
//! written to a temporary file and renamed into place.

use std::ffi::OsString;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use pollen::create::{create_torrent, CreateOptions};
use pollen::metainfo::Metainfo;
use pollen::units::{format_bytes, parse_size};

use super::{help_option, help_text, parse, say, CliError};

fn options() -> getopts::Options {
    let mut opts = getopts::Options::new();
    opts.optopt(
        "o",
        "output",
        "where to write the torrent (required)",
        "OUT.torrent",
    );
    opts.optmulti(
        "t",
        "tracker",
        "tracker URL; repeat for more (each its own tier)",
        "URL",
    );
    opts.optopt(
        "",
        "piece-size",
        "piece size, a power of two from 16K to 32M (default: about 1500 pieces)",
        "N",
    );
    opts.optflag(
        "",
        "private",
        "private torrent (BEP 27): peers only from trackers",
    );
    opts.optopt("c", "comment", "free-text comment", "TEXT");
    opts.optflag(
        "",
        "no-date",
        "leave out the creation date (same input, same bytes)",
    );
    opts.optflag("f", "force", "replace OUT if it exists");
    help_option(&mut opts);
    opts
}

/// Help text for `pollen help create`.
pub fn usage() -> String {
    help_text(
        &options(),
        "Usage: pollen create PATH -o OUT.torrent [--tracker URL]... [--piece-size N] \
         [--private] [--comment TEXT]\n\n\
         Hashes PATH (a file or a directory) and writes a .torrent for it.",
    )
}

/// Runs `pollen create`.
pub fn run(args: &[OsString]) -> Result<(), CliError> {
    let matches = parse(&options(), args, "create")?;
    let [input] = matches.free.as_slice() else {
        return Err(CliError::Usage(
            "create: give exactly one file or directory to share (see `pollen help create`)".into(),
        ));
    };
    let Some(output) = matches.opt_str("output").map(PathBuf::from) else {
        return Err(CliError::Usage("create: -o OUT.torrent is required".into()));
    };
    let piece_len = match matches.opt_str("piece-size") {
        None => None,
        Some(text) => Some(
            parse_size(&text)
                .and_then(|n| u32::try_from(n).ok())
                .ok_or_else(|| CliError::Usage(format!("create: bad --piece-size {text:?}")))?,
        ),
    };
    if output.exists() && !matches.opt_present("force") {
        return Err(CliError::Usage(format!(
            "create: {} exists (use --force to replace it)",
            output.display()
        )));
    }
    let creation_date = (!matches.opt_present("no-date")).then(|| {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(0))
    });
    let options = CreateOptions {
        trackers: matches.opt_strs("tracker"),
        piece_len,
        private: matches.opt_present("private"),
        comment: matches.opt_str("comment"),
        created_by: Some(format!("pollen {}", env!("CARGO_PKG_VERSION"))),
        creation_date,
    };
    let bytes = create_torrent(Path::new(input), &options)?;
    write_atomically(&output, &bytes)?;
    let meta = Metainfo::from_bytes(&bytes).map_err(|source| pollen::Error::Torrent {
        path: output.clone(),
        source,
    })?;
    say(&format!(
        "created {}: info-hash {}, {} in {} pieces of {}\n",
        output.display(),
        meta.info_hash,
        format_bytes(meta.total_len()),
        meta.layout.piece_count(),
        format_bytes(meta.layout.piece_len().into())
    ))
}

/// Writes `bytes` to `path` through a temporary file and a rename, so a
/// crash never leaves a half-written torrent under the final name.
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), pollen::Error> {
    let output_error = |source| pollen::Error::Output {
        path: path.to_path_buf(),
        source,
    };
    let mut tmp_name = path.as_os_str().to_os_string();
    tmp_name.push(".tmp");
    let tmp = PathBuf::from(tmp_name);
    let mut file = fs::File::create(&tmp).map_err(output_error)?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(output_error)?;
    fs::rename(&tmp, path).map_err(output_error)
}
