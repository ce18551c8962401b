//! `pollen create PATH -o OUT.torrent`: make a torrent from a file or a
//! directory.
//!
//! Layer 3: options in, [`pollen::create`] does the hashing, the result is
//! written to a temporary file and renamed into place. While a large input
//! is hashed, progress goes to stderr: one line rewritten in place on a
//! terminal, a line at each quarter otherwise (a log file, systemd), and
//! nothing with `-q`.

use std::ffi::OsString;
use std::fs;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use pollen::create::{create_torrent_with_progress, CreateOptions, CreateProgress};
use pollen::metainfo::Metainfo;
use pollen::units::{format_bytes, parse_size};

use super::{help_option, help_text, parse, say, CliError};

/// Inputs smaller than this get no progress output: they hash in well
/// under a second even on a small box's disk (about 100 MB/s).
const PROGRESS_MIN_BYTES: u64 = 32 * 1024 * 1024;

/// How often the terminal line is redrawn: often enough to look alive,
/// rarely enough to cost nothing next to the hashing.
const REDRAW_PERIOD: Duration = Duration::from_millis(200);

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
    opts.optmulti(
        "w",
        "web-seed",
        "web seed URL (BEP 19 url-list); repeat for more",
        "URL",
    );
    opts.optopt("c", "comment", "free-text comment", "TEXT");
    opts.optflag(
        "",
        "no-date",
        "leave out the creation date (same input, same bytes)",
    );
    opts.optflag("f", "force", "replace OUT if it exists");
    opts.optflag("q", "quiet", "no progress on standard error");
    help_option(&mut opts);
    opts
}

/// Help text for `pollen help create`.
pub fn usage() -> String {
    help_text(
        &options(),
        "Usage: pollen create PATH -o OUT.torrent [--tracker URL]... [--piece-size N] \
         [--web-seed URL]... [--private] [--comment TEXT]\n\n\
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
        web_seeds: matches.opt_strs("web-seed"),
    };
    let mut progress = HashProgress::new(!matches.opt_present("quiet"), Instant::now());
    let bytes = create_torrent_with_progress(Path::new(input), &options, &mut |p| {
        progress.update(p, Instant::now())
    })?;
    progress.finish(Instant::now());
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

/// The progress output of one `pollen create` (see the module doc).
struct HashProgress {
    /// Output at all (not `-q`).
    enabled: bool,
    /// Standard error is a terminal: one line, redrawn in place.
    terminal: bool,
    started: Instant,
    /// When the terminal line was last drawn.
    drawn_at: Option<Instant>,
    /// The next quarter (1 to 3) to print a plain line at.
    next_quarter: u64,
    /// The last numbers seen (for the final line).
    last: Option<CreateProgress>,
}

impl HashProgress {
    fn new(enabled: bool, now: Instant) -> HashProgress {
        HashProgress {
            enabled,
            terminal: std::io::stderr().is_terminal(),
            started: now,
            drawn_at: None,
            next_quarter: 1,
            last: None,
        }
    }

    /// Takes the numbers after a piece; prints when a line is due.
    fn update(&mut self, progress: CreateProgress, now: Instant) {
        self.last = Some(progress);
        if !self.enabled || progress.total_bytes < PROGRESS_MIN_BYTES {
            return;
        }
        let text = format!(
            "hashing: {} % ({} of {})",
            progress.hashed_bytes * 100 / progress.total_bytes.max(1),
            format_bytes(progress.hashed_bytes),
            format_bytes(progress.total_bytes)
        );
        if self.terminal {
            if self.drawn_at.is_none_or(|at| now >= at + REDRAW_PERIOD) {
                self.drawn_at = Some(now);
                write_stderr(&format!("\r{text}\x1b[K"));
            }
        } else if self.next_quarter < 4
            && progress.hashed_bytes * 4 >= progress.total_bytes * self.next_quarter
        {
            self.next_quarter += 1;
            if progress.hashed_bytes < progress.total_bytes {
                write_stderr(&format!("{text}\n"));
            }
        }
    }

    /// Hashing is over: clears the terminal line, or says how long it took.
    fn finish(&mut self, now: Instant) {
        let Some(last) = self
            .last
            .filter(|p| self.enabled && p.total_bytes >= PROGRESS_MIN_BYTES)
        else {
            return;
        };
        if self.terminal {
            write_stderr("\r\x1b[K");
        } else {
            let seconds = now.saturating_duration_since(self.started).as_secs_f64();
            write_stderr(&format!(
                "hashed {} in {seconds:.1} s\n",
                format_bytes(last.hashed_bytes)
            ));
        }
    }
}

/// Progress is a courtesy: a closed or full stderr does not stop the work.
fn write_stderr(text: &str) {
    let mut err = std::io::stderr().lock();
    let _ = err.write_all(text.as_bytes()).and_then(|()| err.flush());
}
