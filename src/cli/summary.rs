//! The summary line printed when a download completes, one per torrent:
//! `done: 200.0 MiB in 0:01, avg 190.0 MiB/s -> /dest/name`.
//!
//! Layer 3: the library says how each torrent completed
//! ([`Session::on_complete`], [`Session::completion`]); the command line
//! words it and prints it on stderr: as each torrent completes (a seeder
//! goes on seeding), or under `--tui` after the session has ended and the
//! screen is restored, so the lines stay on the terminal.

use pollen::session::status::clock;
use pollen::session::{Completion, Session};
use pollen::units::format_bytes;

use super::printable;

/// The summary line of one completed torrent.
pub fn done_line(done: &Completion) -> String {
    let path = printable(&done.path.to_string_lossy());
    let size = format_bytes(done.total_bytes);
    if done.downloaded_bytes == 0 {
        return format!("done: {size}, all of it already on disk -> {path}");
    }
    let part = if done.downloaded_bytes < done.total_bytes {
        format!(" ({} downloaded)", format_bytes(done.downloaded_bytes))
    } else {
        String::new()
    };
    let secs = done.took.as_secs_f64();
    let avg = if secs > 0.0 {
        format!(
            ", avg {}/s",
            format_bytes((done.downloaded_bytes as f64 / secs) as u64)
        )
    } else {
        String::new()
    };
    format!("done: {size}{part} in {}{avg} -> {path}", clock(done.took))
}

/// Prints a summary line for every complete torrent of `session`.
pub fn print_done_lines(session: &Session) {
    for id in session.torrent_ids() {
        if let Some(done) = session.completion(id) {
            eprintln!("{}", done_line(&done));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;
    use std::time::Duration;

    fn completion(downloaded_bytes: u64, took: Duration) -> Completion {
        Completion {
            path: PathBuf::from("/dest/name"),
            total_bytes: 200 << 20,
            downloaded_bytes,
            took,
        }
    }

    #[test]
    fn done_line_says_size_time_average_and_path() {
        let done = completion(200 << 20, Duration::from_millis(1_250));
        assert_eq!(
            done_line(&done),
            "done: 200.0 MiB in 0:01, avg 160.0 MiB/s -> /dest/name"
        );
    }

    #[test]
    fn done_line_of_a_resumed_download_says_what_was_downloaded() {
        let done = completion(50 << 20, Duration::from_secs(100));
        assert_eq!(
            done_line(&done),
            "done: 200.0 MiB (50.0 MiB downloaded) in 1:40, avg 512.0 KiB/s -> /dest/name"
        );
    }

    #[test]
    fn done_line_of_data_already_on_disk_says_so() {
        let done = completion(0, Duration::from_secs(3));
        assert_eq!(
            done_line(&done),
            "done: 200.0 MiB, all of it already on disk -> /dest/name"
        );
    }

    #[test]
    fn done_line_escapes_the_path() {
        let mut done = completion(0, Duration::ZERO);
        done.path = PathBuf::from("/dest/evil\u{1b}[2J");
        assert!(done_line(&done).ends_with("-> /dest/evil\\u{1b}[2J"));
    }
}
