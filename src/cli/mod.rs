//! Command dispatch: `pollen info`, `pollen create`, and (later) downloading.
//!
//! Layer 3. Each subcommand has its own file with its getopts options and
//! its help text; this file picks one from the first argument.

mod create;
mod daemon;
mod download;
mod error;
mod info;
#[cfg(feature = "tracker-server")]
mod interfaces;
mod no_peers;
mod scrape;
mod seeding;
mod summary;
mod terminal;
mod tracker;

use std::ffi::OsString;
use std::io::{self, Write};

pub use error::CliError;

/// The overview printed by `pollen --help`.
const USAGE: &str = "\
pollen: a small BitTorrent client

Usage:
  pollen [OPTIONS] TORRENT          download TORRENT (see `pollen help download`)
  pollen info FILE.torrent|MAGNET   show what a torrent or magnet link holds (and where files go)
  pollen create PATH -o OUT.torrent make a torrent from a file or directory
  pollen scrape TORRENT             ask the trackers how many seeders and leechers there are
  pollen tracker [--port N]         run a small tracker for a local swarm
  pollen daemon [OPTIONS]           run torrents in the background, controlled by
                                    transmission-remote or a browser (Transmission RPC)
  pollen help COMMAND               help for one command

Exit status: 0 done, 1 failure while running, 2 bad input.";

/// Runs the command named by `args` (without the program name).
pub fn run(args: &[OsString]) -> Result<(), CliError> {
    let Some(first) = args.first() else {
        return Err(CliError::Usage(format!("no command given\n{USAGE}")));
    };
    let rest = args.get(1..).unwrap_or_default();
    // `pollen info --help` is `pollen help info`, for every subcommand.
    let asks_help = rest.iter().any(|a| a == "-h" || a == "--help");
    if let Some(command @ ("info" | "create" | "scrape" | "tracker" | "daemon")) = first.to_str() {
        if asks_help {
            return help(Some(command));
        }
    }
    match first.to_str() {
        Some("info") => info::run(rest),
        Some("create") => create::run(rest),
        Some("scrape") => scrape::run(rest),
        Some("tracker") => tracker::run(rest),
        Some("daemon") => daemon::run(rest),
        Some("help") => help(rest.first().and_then(|a| a.to_str())),
        Some("-h" | "--help") => help(None),
        Some("-V" | "--version") => say(&format!("pollen {}\n", env!("CARGO_PKG_VERSION"))),
        _ => download::run(args),
    }
}

fn help(command: Option<&str>) -> Result<(), CliError> {
    let text = match command {
        Some("info") => info::usage(),
        Some("create") => create::usage(),
        Some("download") => download::usage(),
        Some("scrape") => scrape::usage(),
        Some("tracker") => tracker::usage(),
        Some("daemon") => daemon::usage(),
        None => USAGE.to_string(),
        Some(other) => return Err(CliError::Usage(format!("no command named {other:?}"))),
    };
    say(&format!("{text}\n"))
}

/// Writes `text` to standard output, for the user. A closed stdout (the
/// reader went away, as in `pollen info x.torrent | head -1`) is not an
/// error: the reader has what it wanted, so the rest is dropped quietly
/// (`println!` would panic there). Other write failures (a full disk behind
/// `>`) are errors.
pub fn say(text: &str) -> Result<(), CliError> {
    let mut out = io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(pollen::Error::Io("write to standard output", e).into()),
        Ok(()) => Ok(()),
    }
}

/// The help text of a command: getopts' usage for `options` under `brief`,
/// tidied: no trailing spaces, no section header (`Options:`) left with
/// nothing under it, and no blank lines at the end.
fn help_text(options: &getopts::Options, brief: &str) -> String {
    tidy_help(&options.usage(brief))
}

/// See [`help_text`].
fn tidy_help(text: &str) -> String {
    let lines: Vec<&str> = text.lines().map(str::trim_end).collect();
    let mut kept: Vec<&str> = Vec::with_capacity(lines.len());
    for (i, line) in lines.iter().enumerate() {
        let next = lines.get(i + 1).copied().unwrap_or_default();
        if is_section_header(line) && (next.is_empty() || is_section_header(next)) {
            continue;
        }
        kept.push(line);
    }
    while kept.last().is_some_and(|l| l.is_empty()) {
        kept.pop();
    }
    kept.join("\n")
}

/// A help section's header: an unindented `Word:` line such as `Options:`.
fn is_section_header(line: &str) -> bool {
    !line.starts_with(' ') && line.ends_with(':') && !line.contains(' ')
}

/// Declares `-h, --help` (every command takes it; see [`run`]).
fn help_option(options: &mut getopts::Options) {
    options.optflag("h", "help", "show this help");
}

/// Parses the value of `--name`, or gives `default` when absent.
fn parse_number<T: std::str::FromStr>(
    matches: &getopts::Matches,
    name: &str,
    default: T,
) -> Result<T, CliError> {
    match matches.opt_str(name) {
        None => Ok(default),
        Some(text) => text
            .parse()
            .map_err(|_| CliError::Usage(format!("--{name} {text:?} is not a valid number"))),
    }
}

/// Makes Ctrl-C, SIGTERM and SIGHUP (the ssh session closed) set `flag`,
/// a clean stop; a second signal exits at once. Returns where the number
/// of the last such signal is kept (0: none yet).
///
/// SIGXFSZ (a write past the file size limit, `ulimit -f`) is caught and
/// ignored: its default action kills the process, with no resume state
/// saved; caught, the write fails with `EFBIG` instead and the session
/// stops cleanly on that disk-full error.
fn stop_on_signals(
    flag: &std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> std::sync::Arc<std::sync::atomic::AtomicUsize> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM, SIGXFSZ};
    let _ = signal_hook::flag::register(
        SIGXFSZ,
        std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false)),
    );
    let seen = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    for signal in [SIGINT, SIGTERM, SIGHUP] {
        let _ = signal_hook::flag::register_conditional_shutdown(
            signal,
            1,
            std::sync::Arc::clone(flag),
        );
        let _ = signal_hook::flag::register(signal, std::sync::Arc::clone(flag));
        if let Ok(number) = usize::try_from(signal) {
            let _ = signal_hook::flag::register_usize(signal, std::sync::Arc::clone(&seen), number);
        }
    }
    seen
}

/// The exit status of a download stopped by `signal` (0: by `q` or the
/// library): 128 + its number, as shells report a process a signal ended;
/// Ctrl-C's 130 when no signal did it.
fn stopped_exit_code(signal: usize) -> u8 {
    let signal = if signal == 0 {
        2 // SIGINT: `q` in the TUI is the same wish as Ctrl-C
    } else {
        signal
    };
    u8::try_from(128 + signal.min(127)).unwrap_or(130)
}

/// Logging to stderr: warnings by default, info with -v, debug with -vv;
/// RUST_LOG, when set, decides instead.
fn init_logging(verbose: usize, quiet: bool) {
    let level = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "info",
        _ => "debug",
    };
    let env = env_logger::Env::default().default_filter_or(level);
    let _ = env_logger::Builder::from_env(env)
        .format_timestamp(None)
        .try_init();
}

/// Parses `args` with `options`, turning getopts failures into usage errors
/// that name the command.
fn parse(
    options: &getopts::Options,
    args: &[OsString],
    command: &str,
) -> Result<getopts::Matches, CliError> {
    options
        .parse(args)
        .map_err(|e| CliError::Usage(format!("{command}: {e} (see `pollen help {command}`)")))
}

/// Text from a torrent made safe for a terminal: control characters (escape
/// sequences could rewrite the screen), bidi overrides and zero-width
/// characters are shown as `\u{...}` escapes.
pub fn printable(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        let invisible = matches!(c, '\u{061C}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{2069}' | '\u{FEFF}');
        if c.is_control() || invisible {
            out.push_str(&c.escape_unicode().to_string());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tidy_help_drops_empty_sections_and_trailing_blanks() {
        let text = "Usage: pollen x\n\nSays x.\n\nOptions:\n\n";
        assert_eq!(tidy_help(text), "Usage: pollen x\n\nSays x.");
        let text = "Usage: y\n\nOptions:\n    -h, --help  help \n    --long \n";
        assert_eq!(
            tidy_help(text),
            "Usage: y\n\nOptions:\n    -h, --help  help\n    --long"
        );
    }

    #[test]
    fn printable_escapes_terminal_tricks() {
        assert_eq!(printable("plain"), "plain");
        assert_eq!(printable("a\u{1b}[31mred"), "a\\u{1b}[31mred");
        assert_eq!(printable("evil\u{202E}iva.exe"), "evil\\u{202e}iva.exe");
        assert_eq!(printable("del\u{7f}"), "del\\u{7f}");
    }
}
