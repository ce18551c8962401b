//! `pollen info FILE.torrent`: what a torrent holds and where each file
//! would be written after sanitizing; `pollen info 'magnet:?...'`: what a
//! magnet link holds (no metadata is fetched).
//!
//! Layer 3. Prints to stdout; refusals go through the caller to stderr.

use std::ffi::OsString;
use std::fmt::Write;
use std::path::Path;

use pollen::magnet::Magnet;
use pollen::metainfo::Metainfo;
use pollen::units::format_bytes;

use super::{help_option, help_text, parse, printable, say, CliError};

fn options() -> getopts::Options {
    let mut opts = getopts::Options::new();
    help_option(&mut opts);
    opts
}

/// Help text for `pollen help info`.
pub fn usage() -> String {
    help_text(
        &options(),
        "Usage: pollen info FILE.torrent\n       pollen info 'magnet:?xt=urn:btih:...'\n\n\
         Prints the name, info-hash (hex), total size, piece size and count, trackers,\n\
         and every file with the path it will be written to under --dest (BEP 47\n\
         padding files are left out; symlinks are listed but never created).\n\
         For a magnet link: its name, info-hash, trackers, peers and the parameters\n\
         pollen ignores (a file whose name starts with magnet: is given as ./magnet:...).",
    )
}

/// Runs `pollen info`.
pub fn run(args: &[OsString]) -> Result<(), CliError> {
    let matches = parse(&options(), args, "info")?;
    let [file] = matches.free.as_slice() else {
        return Err(CliError::Usage(
            "info: give exactly one .torrent file (see `pollen help info`)".into(),
        ));
    };
    if pollen::magnet::is_magnet(file) {
        let magnet = parse_magnet(file)?;
        return say(&describe_magnet(&magnet));
    }
    let meta = pollen::load_torrent(Path::new(file))?;
    say(&describe(&meta))
}

/// Parses a magnet link given on the command line; a malformed one is bad
/// input (exit 2), one line.
pub(super) fn parse_magnet(link: &str) -> Result<Magnet, CliError> {
    pollen::magnet::parse(link).map_err(|e| CliError::Usage(e.to_string()))
}

/// The report on a magnet link, as text.
fn describe_magnet(magnet: &Magnet) -> String {
    let mut out = String::new();
    let mut line = |label: &str, value: String| out.push_str(&format!("{label:<14}{value}\n"));
    let name = magnet.name.as_deref().map_or("(no name)".into(), printable);
    line("name:", name);
    line("info-hash:", magnet.info_hash.to_hex());
    if magnet.trackers.is_empty() {
        line("trackers:", "none".into());
    }
    for (i, url) in magnet.trackers.iter().enumerate() {
        line(if i == 0 { "trackers:" } else { "" }, printable(url));
    }
    if magnet.peers.is_empty() {
        line("peers:", "none".into());
    }
    for (i, peer) in magnet.peers.iter().enumerate() {
        line(
            if i == 0 { "peers:" } else { "" },
            printable(&peer.to_string()),
        );
    }
    for note in &magnet.notes {
        let _ = writeln!(out, "note: {}", printable(note));
    }
    out
}

/// The report, as text.
fn describe(meta: &Metainfo) -> String {
    let mut out = String::new();
    let mut line = |label: &str, value: String| out.push_str(&format!("{label:<14}{value}\n"));
    let layout = &meta.layout;
    line("name:", meta.name.clone());
    line("info-hash:", meta.info_hash.to_hex());
    line(
        "total size:",
        format!(
            "{} bytes ({})",
            meta.total_len(),
            format_bytes(meta.total_len())
        ),
    );
    line(
        "piece size:",
        format!(
            "{} bytes ({})",
            layout.piece_len(),
            format_bytes(layout.piece_len().into())
        ),
    );
    line("pieces:", layout.piece_count().to_string());
    line("private:", if meta.private { "yes" } else { "no" }.into());
    if let Some(by) = &meta.created_by {
        line("created by:", printable(by));
    }
    if let Some(date) = meta.creation_date {
        line("created on:", format_utc(date));
    }
    if let Some(comment) = &meta.comment {
        line("comment:", printable(comment));
    }
    if meta.trackers.is_empty() {
        line("trackers:", "none (peers only from --peer)".into());
    }
    for (tier, urls) in meta.trackers.iter().enumerate() {
        let label = if tier == 0 { "trackers:" } else { "" };
        let urls: Vec<String> = urls.iter().map(|u| printable(u)).collect();
        line(label, format!("tier {}: {}", tier + 1, urls.join(" ")));
    }
    for url in &meta.url_list {
        line("web seed:", printable(url));
    }
    let shown: Vec<_> = meta.files.iter().filter(|f| !f.padding).collect();
    out.push_str(&format!("files ({}):\n", shown.len()));
    let width = shown
        .iter()
        .map(|f| f.len.to_string().len())
        .max()
        .unwrap_or(1);
    for file in shown {
        let note = if file.symlink {
            "  (symlink, not created)"
        } else {
            ""
        };
        let path = file.path.to_string_lossy();
        let _ = writeln!(out, "  {:>width$}  {}{note}", file.len, printable(&path));
    }
    for warning in &meta.warnings {
        let _ = writeln!(out, "warning: {}", printable(warning));
    }
    out
}

/// `seconds` since the Unix epoch as `YYYY-MM-DD HH:MM:SS UTC` (proleptic
/// Gregorian calendar; no time-zone database needed).
fn format_utc(seconds: i64) -> String {
    let days = seconds.div_euclid(86_400);
    let secs = seconds.rem_euclid(86_400);
    // Howard Hinnant's days-to-civil algorithm.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_dates() {
        assert_eq!(format_utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(format_utc(1_700_000_000), "2023-11-14 22:13:20 UTC");
        assert_eq!(format_utc(951_782_400), "2000-02-29 00:00:00 UTC");
        assert_eq!(format_utc(-1), "1969-12-31 23:59:59 UTC");
        // Hostile values do not panic.
        let _ = format_utc(i64::MAX);
        let _ = format_utc(i64::MIN);
    }
}
