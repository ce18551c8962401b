//! Downloading with pollen's library API.
//!
//! ```text
//! cargo run --example download -- FILE.torrent DEST [HOST:PORT]...
//! ```
//!
//! Downloads FILE.torrent into DEST, from the torrent's trackers and the
//! peers given, printing progress once a second; Ctrl-C stops it.

use std::net::SocketAddr;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(torrent), Some(dest)) = (args.first(), args.get(1)) else {
        eprintln!("usage: download FILE.torrent DEST [HOST:PORT]...");
        return ExitCode::from(2);
    };
    let mut download = pollen::Download::new(torrent).dest(dest).on_progress(|p| {
        eprintln!(
            "{:.1} % at {} B/s",
            p.done_bytes as f64 * 100.0 / p.total_bytes.max(1) as f64,
            p.down_rate
        )
    });
    for peer in args.iter().skip(2) {
        match peer.parse::<SocketAddr>() {
            Ok(addr) => download = download.peer(addr),
            Err(e) => {
                eprintln!("{peer}: {e}");
                return ExitCode::from(2);
            }
        }
    }
    match download.run() {
        Ok(outcome) => {
            println!("{outcome:?}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(if e.is_bad_input() { 2 } else { 1 })
        }
    }
}
