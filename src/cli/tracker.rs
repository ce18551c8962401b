//! `pollen tracker`: run the built-in tracker (HTTP, and UDP on its own
//! port) for a LAN or a classroom swarm.
//!
//! Layer 3: options in, a [`ServerConfig`] out, then [`TrackerServer::run`].
//! The tracker is the cargo feature `tracker-server` (on by default); a
//! build without it (`--no-default-features`, the smallest router build)
//! keeps the command, which then says so and exits with status 2.

use std::ffi::OsString;

use super::CliError;

#[cfg(feature = "tracker-server")]
use {
    super::{help_option, help_text, parse, parse_number, say},
    pollen::tracker::server::serve::{ServerConfig, TrackerServer},
    pollen::tracker::server::state::TrackerConfig,
    std::collections::BTreeSet,
    std::net::{IpAddr, Ipv4Addr, SocketAddr},
    std::path::Path,
};

/// What `pollen tracker` says in a build without the tracker.
#[cfg(not(feature = "tracker-server"))]
const NOT_BUILT: &str =
    "tracker: this pollen was built without the built-in tracker (cargo feature tracker-server)";

/// Help text for `pollen help tracker` in a build without the tracker.
#[cfg(not(feature = "tracker-server"))]
pub fn usage() -> String {
    format!("Usage: pollen tracker (not available)\n\n{NOT_BUILT}.")
}

/// In a build without the tracker: a usage error (exit status 2) saying so.
#[cfg(not(feature = "tracker-server"))]
pub fn run(_args: &[OsString]) -> Result<(), CliError> {
    Err(CliError::Usage(NOT_BUILT.into()))
}

#[cfg(feature = "tracker-server")]
fn options() -> getopts::Options {
    let mut opts = getopts::Options::new();
    opts.optopt(
        "p",
        "port",
        "HTTP port; 0 picks a free one (default: 6969)",
        "N",
    );
    opts.optopt(
        "u",
        "udp-port",
        "also serve UDP (BEP 15) on this port; 0 picks a free one",
        "N",
    );
    opts.optopt("b", "bind", "address to listen on (default: 0.0.0.0)", "IP");
    opts.optmulti(
        "a",
        "allow",
        "serve only this torrent's info-hash; repeatable",
        "FILE.torrent",
    );
    opts.optflag(
        "",
        "rank-by-upload",
        "hand out the peers that report the most uploaded first",
    );
    opts.optflagmulti("v", "verbose", "more log output");
    help_option(&mut opts);
    opts
}

/// Help text for `pollen help tracker`.
#[cfg(feature = "tracker-server")]
pub fn usage() -> String {
    help_text(
        &options(),
        "Usage: pollen tracker [--port N] [--udp-port N] [--allow FILE.torrent]... [--rank-by-upload]\n\n\
         Serves HTTP announce and scrape (and UDP with --udp-port) until Ctrl-C.\n\
         Peers are forgotten two minutes after their last announce. Prints one\n\
         announce URL per address it can be reached on (with the default --bind,\n\
         each of this machine's addresses, loopback last).",
    )
}

/// Runs the tracker until Ctrl-C or SIGTERM.
#[cfg(feature = "tracker-server")]
pub fn run(args: &[OsString]) -> Result<(), CliError> {
    let matches = parse(&options(), args, "tracker")?;
    if !matches.free.is_empty() {
        return Err(CliError::Usage(
            "tracker: unexpected arguments (see `pollen help tracker`)".into(),
        ));
    }
    super::init_logging(matches.opt_count("verbose"), false);
    let ip: IpAddr = match matches.opt_str("bind") {
        None => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        Some(text) => text.parse().map_err(|_| {
            CliError::Usage(format!("tracker: --bind {text:?} is not an IP address"))
        })?,
    };
    let http_port: u16 = parse_number(&matches, "port", 6969)?;
    let udp_port: Option<u16> = match matches.opt_str("udp-port") {
        None => None,
        Some(_) => Some(parse_number(&matches, "udp-port", 0)?),
    };
    let allow = if matches.opt_present("allow") {
        let mut hashes = BTreeSet::new();
        for file in matches.opt_strs("allow") {
            hashes.insert(pollen::load_torrent(Path::new(&file))?.info_hash.0);
        }
        Some(hashes)
    } else {
        None
    };
    let config = ServerConfig {
        http: SocketAddr::new(ip, http_port),
        udp: udp_port.map(|port| SocketAddr::new(ip, port)),
        tracker: TrackerConfig {
            allow,
            rank_by_upload: matches.opt_present("rank-by-upload"),
            ..TrackerConfig::default()
        },
    };
    let mut server = TrackerServer::bind(config)?;
    super::stop_on_signals(&server.stop_flag());
    let http = server
        .http_addr()
        .map_err(|e| pollen::Error::Io("read the bound address", e))?;
    for ip in super::interfaces::reachable_addresses(http.ip()) {
        let at = SocketAddr::new(ip, http.port());
        say(&format!("tracker listening on http://{at}/announce\n"))?;
    }
    if let Some(udp) = server.udp_addr() {
        for ip in super::interfaces::reachable_addresses(udp.ip()) {
            let at = SocketAddr::new(ip, udp.port());
            say(&format!("tracker listening on udp://{at}\n"))?;
        }
    }
    Ok(server.run()?)
}
