//! `pollen scrape TORRENT`: ask each of the torrent's trackers how big the
//! swarm is (BEP 48 over HTTP, BEP 15 over UDP).
//!
//! Layer 3: blocking is fine here (no event loop runs): HTTP through ureq
//! with short timeouts, UDP through a plain socket driving the pure
//! [`UdpScrape`] state machine.

use std::ffi::OsString;
use std::net::{ToSocketAddrs, UdpSocket};
use std::path::Path;
use std::time::{Duration, Instant};

use pollen::rng::Rng;
use pollen::tracker::http::{self, HttpTimeouts};
use pollen::tracker::scrape::ScrapeStats;
use pollen::tracker::udp::{self, ScrapeQuery, UdpExchange, UdpScrape, UdpTimeouts};
use pollen::tracker::TrackerError;

use super::{help_option, help_text, parse, printable, say, CliError};

/// UDP scrape timing for an impatient user: 2 s, then 4 s, then give up
/// (a tracker that never answers costs 6 s; a closed port fails at once
/// through the ICMP error the connected socket reports).
const UDP_SCRAPE_TIMEOUTS: UdpTimeouts = UdpTimeouts {
    base: Duration::from_secs(2),
    max_retries: 1,
};

fn options() -> getopts::Options {
    let mut opts = getopts::Options::new();
    help_option(&mut opts);
    opts
}

/// Help text for `pollen help scrape`.
pub fn usage() -> String {
    help_text(
        &options(),
        "Usage: pollen scrape TORRENT\n\n\
         Prints seeders, leechers and completed downloads as each tracker reports them.\n\
         Exit 0 if at least one tracker answered, 1 if none did.",
    )
}

/// Runs `pollen scrape`.
pub fn run(args: &[OsString]) -> Result<(), CliError> {
    let matches = parse(&options(), args, "scrape")?;
    let [file] = matches.free.as_slice() else {
        return Err(CliError::Usage(
            "scrape: give exactly one .torrent file".into(),
        ));
    };
    let meta = pollen::load_torrent(Path::new(file))?;
    let urls: Vec<&String> = meta.trackers.iter().flatten().collect();
    if urls.is_empty() {
        return Err(CliError::Usage(format!(
            "{file}: the torrent names no tracker to scrape"
        )));
    }
    // With several trackers each one's line is printed as it comes (a
    // silent one takes seconds); with one, its failure is the error line.
    let report_each = urls.len() > 1;
    let mut answered = 0;
    let mut last_failure = String::new();
    for url in &urls {
        match scrape_one(url, &meta.info_hash.0) {
            Ok(stats) => {
                answered += 1;
                say(&format!(
                    "{}: seeders {}, leechers {}, completed {}\n",
                    printable(url),
                    stats.seeders,
                    stats.leechers,
                    stats.completed
                ))?;
            }
            Err(e) => {
                last_failure = format!("{}: {}", printable(url), printable(&e.to_string()));
                if report_each {
                    say(&format!(
                        "{}: error: {}\n",
                        printable(url),
                        printable(&e.to_string())
                    ))?;
                }
            }
        }
    }
    match (answered, report_each) {
        (0, false) => Err(CliError::Failed(format!(
            "{file}: the tracker did not answer the scrape: {last_failure}"
        ))),
        (0, true) => Err(CliError::Failed(format!(
            "{file}: none of its {} trackers answered the scrape",
            urls.len()
        ))),
        _ => Ok(()),
    }
}

/// One scrape of `url`, over UDP or HTTP(S) by its scheme.
fn scrape_one(url: &str, info_hash: &[u8; 20]) -> Result<ScrapeStats, TrackerError> {
    if url.to_ascii_lowercase().starts_with("udp://") {
        udp_scrape(url, info_hash)
    } else {
        http::scrape(url, info_hash, &HttpTimeouts::default())
    }
}

/// One UDP scrape, blocking, under [`UDP_SCRAPE_TIMEOUTS`].
fn udp_scrape(url: &str, info_hash: &[u8; 20]) -> Result<ScrapeStats, TrackerError> {
    let (host, port) = udp::parse_udp_url(url)
        .ok_or_else(|| TrackerError::BadUrl("not udp://host:port".into()))?;
    let transport = |e: std::io::Error| TrackerError::Transport(e.to_string());
    let target = (host.as_str(), port)
        .to_socket_addrs()
        .map_err(transport)?
        .next()
        .ok_or_else(|| TrackerError::Transport(format!("{host} has no address")))?;
    let socket = UdpSocket::bind(if target.is_ipv4() {
        "0.0.0.0:0"
    } else {
        "[::]:0"
    })
    .map_err(transport)?;
    socket.connect(target).map_err(transport)?;
    let query = ScrapeQuery::new(&[*info_hash])
        .ok_or_else(|| TrackerError::BadUrl("no info-hash".into()))?;
    let mut exchange: UdpScrape = UdpExchange::new(
        query,
        Instant::now(),
        None,
        UDP_SCRAPE_TIMEOUTS,
        &mut Rng::from_entropy(),
    );
    let mut buf = vec![0u8; udp::MAX_DATAGRAM_LEN + 1];
    loop {
        let now = Instant::now();
        while let Some(datagram) = exchange.poll_transmit(now) {
            socket.send(&datagram).map_err(transport)?;
        }
        if let Some(result) = exchange.poll_result() {
            return result.and_then(|stats| {
                stats
                    .into_iter()
                    .next()
                    .ok_or_else(|| TrackerError::Malformed("empty scrape reply".into()))
            });
        }
        let wait = exchange
            .next_deadline()
            .map_or(Duration::from_millis(100), |at| {
                at.saturating_duration_since(now)
            })
            .max(Duration::from_millis(1));
        socket.set_read_timeout(Some(wait)).map_err(transport)?;
        match socket.recv(&mut buf) {
            Ok(n) => exchange.handle_datagram(buf.get(..n).unwrap_or_default(), Instant::now()),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                exchange.handle_timeout(Instant::now());
            }
            Err(e) => return Err(transport(e)),
        }
    }
}
