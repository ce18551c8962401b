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

use super::{parse, printable, say, CliError};

/// UDP scrape timing for an impatient user: 3 s, then 6 s, then give up.
const UDP_SCRAPE_TIMEOUTS: UdpTimeouts = UdpTimeouts {
    base: Duration::from_secs(3),
    max_retries: 1,
};

/// Help text for `pollen help scrape`.
pub fn usage() -> String {
    getopts::Options::new().usage(
        "Usage: pollen scrape TORRENT\n\n\
         Prints seeders, leechers and completed downloads as each tracker reports them.\n\
         Exit 0 if at least one tracker answered.",
    )
}

/// Runs `pollen scrape`.
pub fn run(args: &[OsString]) -> Result<(), CliError> {
    let matches = parse(&getopts::Options::new(), args, "scrape")?;
    let [file] = matches.free.as_slice() else {
        return Err(CliError::Usage(
            "scrape: give exactly one .torrent file".into(),
        ));
    };
    let meta = pollen::load_torrent(Path::new(file))?;
    let mut answered = 0;
    for url in meta.trackers.iter().flatten() {
        let result = if url.to_ascii_lowercase().starts_with("udp://") {
            udp_scrape(url, &meta.info_hash.0)
        } else {
            http::scrape(url, &meta.info_hash.0, &HttpTimeouts::default())
        };
        match result {
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
            Err(e) => say(&format!(
                "{}: error: {}\n",
                printable(url),
                printable(&e.to_string())
            ))?,
        }
    }
    if answered == 0 {
        return Err(CliError::Usage(format!(
            "{file}: no tracker answered the scrape"
        )));
    }
    Ok(())
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
