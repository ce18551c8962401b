//! `pollen [OPTIONS] TORRENT...`: download one or more torrents (and
//! optionally seed them), all in one session through one listening port.
//!
//! Layer 3: options in, a [`Config`] out, then the library's session API:
//! [`Session::bind`], [`Session::add_torrent`] for each torrent, and
//! [`Session::run`]. Ctrl-C and SIGTERM set the session's stop flag (a
//! second Ctrl-C exits at once).

use std::collections::HashMap;
use std::ffi::OsString;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};

use pollen::choker::ChokerKind;
use pollen::magnet::Magnet;
use pollen::metainfo::InfoHash;
use pollen::picker::Strategy;
use pollen::session::{Config, Outcome, Session, DEFAULT_MAX_PEERS};
use pollen::tracker::http::TrackerCa;

use super::{init_logging, parse, parse_number, say, stop_on_signals, CliError};

fn options() -> getopts::Options {
    let mut opts = getopts::Options::new();
    opts.optopt(
        "d",
        "dest",
        "directory to write the files under (default: .)",
        "DIR",
    );
    opts.optopt(
        "p",
        "port",
        "port to listen on; 0 picks a free one (default: 0)",
        "N",
    );
    opts.optopt(
        "",
        "bind",
        "address to listen on, IPv4 or IPv6 (default: ::, every address of both families)",
        "IP",
    );
    opts.optmulti(
        "",
        "peer",
        "connect to this peer directly, e.g. 10.0.0.2:6881 or [::1]:6881; repeatable",
        "HOST:PORT",
    );
    opts.optflag("", "no-tracker", "do not contact any tracker");
    opts.optopt(
        "",
        "tracker-ca",
        "trust HTTPS trackers signed by this CA (PEM file)",
        "FILE",
    );
    opts.optmulti(
        "",
        "tracker",
        "also announce to this tracker URL (tried first); repeatable",
        "URL",
    );
    opts.optmulti(
        "",
        "dht-bootstrap",
        "join the DHT through this node (default: the nodes saved in \
         DEST/.pollen/dht.state, and the routers of POLLEN_DHT_ROUTERS or, in \
         release builds, public ones); repeatable",
        "HOST:PORT",
    );
    opts.optflag(
        "",
        "no-dht",
        "no DHT: find peers only through trackers, --peer and peer exchange",
    );
    opts.optflag("", "seed", "keep uploading after the download completes");
    opts.optopt(
        "",
        "seed-ratio",
        "seed until uploaded R times the torrent's size this session (implies --seed)",
        "R",
    );
    opts.optopt(
        "",
        "seed-time",
        "seed for this long, e.g. 90 (seconds), 30m, 2h, 1d (implies --seed)",
        "DURATION",
    );
    opts.optflag(
        "",
        "check",
        "re-check every piece on disk, ignoring saved resume state",
    );
    opts.optflag(
        "",
        "clean",
        "delete this torrent's files and resume state first",
    );
    opts.optflag(
        "",
        "overwrite",
        "replace files in the way that match none of the torrent's pieces",
    );
    opts.optopt(
        "",
        "choker",
        "who gets upload slots while downloading: tft (default) or propshare",
        "NAME",
    );
    opts.optopt(
        "",
        "endgame",
        "enter endgame once PCT % of pieces are verified (default: when every block is requested)",
        "PCT",
    );
    opts.optopt(
        "",
        "strategy",
        "piece order: rarest (default), random or sequential",
        "NAME",
    );
    opts.optopt(
        "",
        "max-down",
        "download rate limit, e.g. 500K or 2M (bytes per second)",
        "RATE",
    );
    opts.optopt(
        "",
        "max-up",
        "upload rate limit, e.g. 500K or 2M (bytes per second)",
        "RATE",
    );
    opts.optopt(
        "",
        "max-peers",
        &format!("most connected peers (default: {DEFAULT_MAX_PEERS})"),
        "N",
    );
    opts.optflag(
        "",
        "tui",
        "full-screen view: piece map and peer table (q quits)",
    );
    opts.optflagopt(
        "",
        "trace",
        "narrate the protocol: one line per event, to FILE or stderr",
        "FILE",
    );
    opts.optopt(
        "",
        "trace-peer",
        "trace only events about this peer (port 0: any port)",
        "ADDR",
    );
    opts.optopt(
        "",
        "trace-kinds",
        "trace only these kinds: wire,choke,pick,tracker,dht,loop",
        "LIST",
    );
    opts.optflag("q", "quiet", "no status line, errors only");
    opts.optflagmulti(
        "v",
        "verbose",
        "more log output (-v info, -vv debug); RUST_LOG also works",
    );
    super::help_option(&mut opts);
    opts
}

/// Help text for `pollen help download` and `pollen -h`.
pub fn usage() -> String {
    super::help_text(
        &options(),
        "Usage: pollen [OPTIONS] TORRENT...\n\n\
         Downloads each TORRENT into --dest, verifying every piece, then exits 0\n\
         (or keeps seeding with --seed until Ctrl-C; with --seed-ratio or\n\
         --seed-time each torrent stops seeding when either limit is met, and\n\
         pollen exits 0 once all have). Several torrents run in one process\n\
         through one listening port; the options apply to each. A TORRENT may\n\
         be a magnet link ('magnet:?xt=urn:btih:...', quoted): its metadata is\n\
         fetched from peers and saved as DEST/.pollen/<info-hash>.torrent.\n\
         Peers come from trackers, --peer, peer exchange and the DHT (BEP 5;\n\
         never for a private torrent). --no-tracker without --peer is refused\n\
         unless the DHT has a node to start from, the torrent is seeded (peers\n\
         must then connect to us) or its files are on disk to be checked.",
    )
}

/// Runs a download.
pub fn run(args: &[OsString]) -> Result<(), CliError> {
    let matches = parse(&options(), args, "download")?;
    if matches.opt_present("help") {
        return say(&format!("{}\n", usage()));
    }
    if matches.free.is_empty() {
        return Err(CliError::Usage(
            "give at least one .torrent file (see `pollen --help`)".into(),
        ));
    }
    // --tui draws on stdout: not a terminal (a pipe, a file), the status line instead.
    let tui = matches.opt_present("tui") && super::terminal::is_terminal();
    // Under --tui, warnings would draw over the screen: errors only, unless -v asks.
    let tui_quiet = tui && matches.opt_count("verbose") == 0;
    init_logging(
        matches.opt_count("verbose"),
        matches.opt_present("quiet") || tui_quiet,
    );
    if matches.opt_present("tui") && !tui {
        log::warn!("--tui: standard output is not a terminal; showing the status line instead");
    }
    // Options first: a wrong one is named before any torrent is read.
    let port = match matches.opt_str("port") {
        None => 0,
        Some(text) => text
            .parse::<u16>()
            .map_err(|_| CliError::Usage(format!("--port {text:?}: port must be 0-65535")))?,
    };
    let listen_ip = parse_bind(matches.opt_str("bind"))?;
    let seed_ratio = super::seeding::parse_ratio(matches.opt_str("seed-ratio"))?;
    let seed_time = super::seeding::parse_time(matches.opt_str("seed-time"))?;
    // Every torrent is read (every magnet link parsed) before anything
    // starts: a bad one is refused with its path, and nothing is downloaded.
    let mut metas = Vec::new();
    let mut magnets = Vec::new();
    let mut hashes = Vec::new();
    for torrent in &matches.free {
        if pollen::magnet::is_magnet(torrent) {
            let magnet = super::info::parse_magnet(torrent)?;
            hashes.push((torrent.as_str(), magnet.info_hash));
            magnets.push(magnet);
        } else {
            let meta = pollen::load_torrent(Path::new(torrent))?;
            hashes.push((torrent.as_str(), meta.info_hash));
            metas.push(meta);
        }
    }
    refuse_duplicates(hashes)?;
    let config =
        Config {
            dest: matches
                .opt_str("dest")
                .map_or_else(|| PathBuf::from("."), PathBuf::from),
            listen_ip,
            port,
            peers: parse_peers(&matches.opt_strs("peer"))?,
            use_trackers: !matches.opt_present("no-tracker"),
            trackers: parse_trackers(&matches.opt_strs("tracker"))?,
            tracker_ca: match matches.opt_str("tracker-ca") {
                None => None,
                Some(file) => {
                    let pem = std::fs::read(&file)
                        .map_err(|e| CliError::Usage(format!("--tracker-ca {file}: {e}")))?;
                    Some(
                        TrackerCa::from_pem(&pem)
                            .map_err(|e| CliError::Usage(format!("--tracker-ca {file}: {e}")))?,
                    )
                }
            },
            seed: matches.opt_present("seed"),
            seed_ratio,
            seed_time,
            max_peers: parse_number(&matches, "max-peers", DEFAULT_MAX_PEERS)?.max(1),
            show_status: !matches.opt_present("quiet") && !tui,
            trace: parse_trace(&matches)?,
            force_check: matches.opt_present("check"),
            clean: matches.opt_present("clean"),
            overwrite: matches.opt_present("overwrite"),
            strategy: match matches.opt_str("strategy") {
                None => Strategy::RarestFirst,
                Some(text) => text
                    .parse()
                    .map_err(|e| CliError::Usage(format!("--strategy: {e}")))?,
            },
            endgame_percent: match matches.opt_str("endgame") {
                None => None,
                Some(text) => Some(text.parse::<u8>().ok().filter(|p| *p <= 100).ok_or_else(
                    || {
                        CliError::Usage(format!(
                            "--endgame {text:?} is not a percentage from 0 to 100"
                        ))
                    },
                )?),
            },
            choker: match matches.opt_str("choker") {
                None => ChokerKind::TitForTat,
                Some(text) => text
                    .parse()
                    .map_err(|e| CliError::Usage(format!("--choker: {e}")))?,
            },
            dht: !matches.opt_present("no-dht"),
            dht_bootstrap: parse_dht_bootstrap(&matches.opt_strs("dht-bootstrap"))?,
            max_down: parse_rate(&matches, "max-down")?,
            max_up: parse_rate(&matches, "max-up")?,
            ..Config::default()
        };
    let no_peers_note = super::no_peers::check(
        &super::no_peers::PeerSources {
            no_tracker: !config.use_trackers,
            has_peers: !config.peers.is_empty(),
            seeds: config.seeds(),
            clean: config.clean,
            dest: &config.dest,
            dht: dht_usable(&config),
        },
        &metas,
    )?;
    for magnet in &magnets {
        refuse_unreachable_magnet(magnet, &config)?;
    }
    check_dest(&config.dest)?;
    let mut session = Session::bind(config)?;
    for meta in metas {
        session.add_torrent(meta)?;
    }
    for magnet in &magnets {
        if !matches.opt_present("quiet") {
            for note in &magnet.notes {
                eprintln!("note: magnet link: {note}");
            }
        }
        session.add_parsed_magnet(magnet)?;
    }
    let quiet = matches.opt_present("quiet");
    if tui {
        session.on_view(super::terminal::start(session.handle()));
    } else if !quiet {
        // Each torrent's `done:` line as it completes (a seeder goes on).
        session.on_complete(Box::new(|_, done| {
            eprintln!("{}", super::summary::done_line(done));
        }));
    }
    let signals = stop_on_signals(&session.stop_flag());
    say(&format!("listening on {}\n", session.listen_addr()))?;
    if let Some(note) = no_peers_note.filter(|_| !quiet && !tui) {
        use std::io::Write as _;
        let _ = writeln!(
            std::io::stderr(),
            "{note} (port {})",
            session.listen_addr().port()
        );
    }
    let outcome = session.run()?;
    // Under --tui, after the session, so the screen is restored first and
    // the lines stay.
    if tui && !quiet {
        super::summary::print_done_lines(&session);
    }
    let limited = seed_ratio.is_some() || seed_time.is_some();
    if limited && !quiet && outcome == Outcome::Complete {
        super::summary::print_seeded_lines(&session);
    }
    match outcome {
        Outcome::Complete => Ok(()),
        Outcome::Stopped => {
            let done = session.verified();
            let signal = signals.load(std::sync::atomic::Ordering::Relaxed);
            // Only a magnet link still fetching its metadata has no bytes.
            let message = if done.total_bytes == 0 {
                "stopped before the metadata arrived; run the same command again to retry".into()
            } else {
                let percent = done.bytes as f64 * 100.0 / done.total_bytes as f64;
                format!(
                    "stopped at {percent:.1} % ({} of {} pieces); run the same command again to resume",
                    done.pieces, done.piece_count
                )
            };
            Err(CliError::Stopped {
                code: super::stopped_exit_code(signal),
                message,
            })
        }
    }
}

/// The same torrent given twice (the same file, or two files with one
/// info-hash) is refused before anything starts: the second would only
/// meet the first's single-instance lock, whose message blames "another
/// pollen" (this one).
fn refuse_duplicates<'a>(
    torrents: impl IntoIterator<Item = (&'a str, InfoHash)>,
) -> Result<(), CliError> {
    let mut seen: HashMap<InfoHash, &str> = HashMap::new();
    for (path, info_hash) in torrents {
        if let Some(first) = seen.insert(info_hash, path) {
            return Err(CliError::Usage(if first == path {
                format!("{path} is given twice: give each torrent once")
            } else {
                format!(
                    "{path} and {first} are the same torrent (info-hash {}): give each torrent once",
                    info_hash.to_hex()
                )
            }));
        }
    }
    Ok(())
}

/// `--trace [FILE]` with its filters; `None` when tracing is off.
fn parse_trace(
    matches: &getopts::Matches,
) -> Result<Option<(Option<PathBuf>, pollen::trace::Filter)>, CliError> {
    if !matches.opt_present("trace") {
        if matches.opt_present("trace-peer") || matches.opt_present("trace-kinds") {
            return Err(CliError::Usage(
                "--trace-peer and --trace-kinds need --trace".into(),
            ));
        }
        return Ok(None);
    }
    let kinds = match matches.opt_str("trace-kinds") {
        None => None,
        Some(text) => Some(
            pollen::trace::parse_kinds(&text)
                .map_err(|e| CliError::Usage(format!("--trace-kinds: {e}")))?,
        ),
    };
    let peer = match matches.opt_str("trace-peer") {
        None => None,
        Some(text) => Some(text.parse::<SocketAddr>().map_err(|_| {
            CliError::Usage(format!(
                "--trace-peer {text:?} is not an address like 127.0.0.1:6881"
            ))
        })?),
    };
    let file = matches.opt_str("trace").map(PathBuf::from);
    Ok(Some((file, pollen::trace::Filter::new(kinds, peer))))
}

/// `--bind IP`: an IPv4 or IPv6 literal (brackets allowed: `[::1]`);
/// without it `::`, every address of both families (see [`Config::listen_ip`]).
pub(super) fn parse_bind(text: Option<String>) -> Result<IpAddr, CliError> {
    let Some(text) = text else {
        return Ok(Config::default().listen_ip);
    };
    let bare = text
        .strip_prefix('[')
        .and_then(|t| t.strip_suffix(']'))
        .unwrap_or(&text);
    bare.parse().map_err(|_| {
        CliError::Usage(format!(
            "--bind {text:?} is not an IP address like 127.0.0.1 or ::1"
        ))
    })
}

/// A rate like `500K`; `None` when the option is absent. Zero is refused.
pub(super) fn parse_rate(matches: &getopts::Matches, name: &str) -> Result<Option<u64>, CliError> {
    match matches.opt_str(name) {
        None => Ok(None),
        Some(text) => pollen::units::parse_size(&text)
            .filter(|&n| n > 0)
            .map(Some)
            .ok_or_else(|| {
                CliError::Usage(format!("--{name} {text:?} is not a rate like 500K or 2M"))
            }),
    }
}

/// `--tracker` URLs must be http, https or udp.
fn parse_trackers(urls: &[String]) -> Result<Vec<String>, CliError> {
    for url in urls {
        if !pollen::metainfo::is_tracker_url(url) {
            return Err(CliError::Usage(format!(
                "--tracker {url:?} is not an http, https or udp URL"
            )));
        }
    }
    Ok(urls.to_vec())
}

/// `--dht-bootstrap` values, checked (`HOST:PORT`, `IPV4:PORT` or
/// `[IPV6]:PORT`; the session looks names up off the loop). None given:
/// the public DHT routers in a release build, none in a debug build (the
/// test suite's, which must never reach outside the machine).
pub(super) fn parse_dht_bootstrap(texts: &[String]) -> Result<Vec<String>, CliError> {
    if texts.is_empty() {
        return default_dht_routers();
    }
    check_dht_nodes(texts, "--dht-bootstrap")?;
    Ok(texts.to_vec())
}

/// The DHT routers used when `--dht-bootstrap` is not given: those of the
/// environment variable [`DHT_ROUTERS_VAR`] (comma-separated `HOST:PORT`s;
/// empty for none), else the public ones in a release build and none in a
/// debug build.
fn default_dht_routers() -> Result<Vec<String>, CliError> {
    if let Some(list) = std::env::var_os(DHT_ROUTERS_VAR) {
        let list = list.to_string_lossy().into_owned();
        let routers: Vec<String> = list
            .split(',')
            .map(str::trim)
            .filter(|r| !r.is_empty())
            .map(String::from)
            .collect();
        check_dht_nodes(&routers, DHT_ROUTERS_VAR)?;
        return Ok(routers);
    }
    Ok(if cfg!(debug_assertions) {
        Vec::new()
    } else {
        pollen::session::PUBLIC_DHT_ROUTERS
            .iter()
            .map(|r| r.to_string())
            .collect()
    })
}

/// The environment variable that replaces the built-in DHT routers (for a
/// private network, or none at all: the test suite sets it empty).
const DHT_ROUTERS_VAR: &str = "POLLEN_DHT_ROUTERS";

/// Checks that each of `texts` (from `source`) is a `HOST:PORT`.
fn check_dht_nodes(texts: &[String], source: &str) -> Result<(), CliError> {
    for text in texts {
        let port = text.rsplit_once(':').and_then(|(host, port)| {
            let host_ok = !host.is_empty() && (!host.contains(':') || host.starts_with('['));
            port.parse::<u16>().ok().filter(|p| *p != 0 && host_ok)
        });
        if port.is_none() {
            return Err(CliError::Usage(format!(
                "{source} {text:?}: expected HOST:PORT (a port from 1 to 65535)"
            )));
        }
    }
    Ok(())
}

/// Whether the DHT can find peers: it is on and has a node to start from
/// (a bootstrap node, or nodes saved by an earlier run in `dest`).
fn dht_usable(config: &Config) -> bool {
    let saved = config
        .dest
        .join(pollen::resume::RESUME_DIR)
        .join(pollen::session::DHT_STATE_FILE);
    config.dht && (!config.dht_bootstrap.is_empty() || saved.exists())
}

/// `HOST:PORT` strings to addresses (a host name is looked up once, here).
/// A magnet link with no tracker and no peer to ask for its metadata
/// (pollen has no DHT yet) could only wait for ever: refused up front.
fn refuse_unreachable_magnet(magnet: &Magnet, config: &Config) -> Result<(), CliError> {
    let trackers =
        config.use_trackers && !(magnet.trackers.is_empty() && config.trackers.is_empty());
    // A torrent file saved by an earlier run: it is as good as a torrent file.
    let saved = pollen::resume::torrent_path(&config.dest, &magnet.info_hash).exists();
    let peers = !magnet.peers.is_empty() || !config.peers.is_empty();
    if saved || trackers || peers || dht_usable(config) {
        return Ok(());
    }
    Err(CliError::Usage(format!(
        "magnet link {}: no tracker (tr=), no peer (x.pe) and no DHT node to get it from{} \
         (give --peer HOST:PORT, --tracker URL or --dht-bootstrap HOST:PORT)",
        magnet.info_hash.to_hex(),
        if config.use_trackers {
            ""
        } else {
            " with --no-tracker"
        }
    )))
}

/// `HOST:PORT` strings to addresses (a host name is looked up once, here).
fn parse_peers(texts: &[String]) -> Result<Vec<SocketAddr>, CliError> {
    let mut peers = Vec::new();
    for text in texts {
        let addrs = text
            .to_socket_addrs()
            .map_err(|e| CliError::Usage(format!("--peer {text:?}: {e} (expected HOST:PORT)")))?;
        peers.extend(addrs.take(1));
    }
    Ok(peers)
}

/// The destination must be a directory we can create and write into.
pub(super) fn check_dest(dest: &Path) -> Result<(), CliError> {
    let unusable = |e: std::io::Error| CliError::Usage(format!("--dest {}: {e}", dest.display()));
    std::fs::create_dir_all(dest).map_err(unusable)?;
    let probe = dest.join(format!(".pollen-write-test-{}", std::process::id()));
    std::fs::write(&probe, b"")
        .map_err(|e| CliError::Usage(format!("--dest {} is not writable: {e}", dest.display())))?;
    let _ = std::fs::remove_file(&probe);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use pollen::hash::Sha1Hash;

    #[test]
    fn refuse_duplicates_names_the_torrent_given_twice() {
        let (a, b) = (Sha1Hash([1; 20]), Sha1Hash([2; 20]));
        let torrents = [("a.torrent", a), ("b.torrent", b), ("a.torrent", a)];
        let message = refuse_duplicates(torrents).unwrap_err().to_string();
        assert_eq!(message, "a.torrent is given twice: give each torrent once");
    }

    #[test]
    fn refuse_duplicates_names_both_files_of_one_info_hash() {
        let a = Sha1Hash([0xab; 20]);
        let torrents = [("a.torrent", a), ("copy.torrent", a)];
        let message = refuse_duplicates(torrents).unwrap_err().to_string();
        assert_eq!(
            message,
            format!(
                "copy.torrent and a.torrent are the same torrent (info-hash {}): give each torrent once",
                "ab".repeat(20)
            )
        );
    }

    #[test]
    fn refuse_duplicates_lets_distinct_torrents_through() {
        let torrents = [
            ("a.torrent", Sha1Hash([1; 20])),
            ("b.torrent", Sha1Hash([2; 20])),
        ];
        assert!(refuse_duplicates(torrents).is_ok());
    }

    #[test]
    fn bind_takes_ipv4_and_ipv6_literals_and_defaults_to_both_families() {
        let ip = |text: &str| parse_bind(Some(text.to_string()));
        assert_eq!(ip("127.0.0.5").unwrap(), IpAddr::from([127, 0, 0, 5]));
        assert_eq!(
            ip("::1").unwrap(),
            IpAddr::from(std::net::Ipv6Addr::LOCALHOST)
        );
        assert_eq!(
            ip("[::1]").unwrap(),
            IpAddr::from(std::net::Ipv6Addr::LOCALHOST)
        );
        assert_eq!(
            parse_bind(None).unwrap(),
            IpAddr::from(std::net::Ipv6Addr::UNSPECIFIED)
        );
        for bad in ["localhost", "127.0.0.1:6881", "[::1]:6881", ""] {
            let message = ip(bad).unwrap_err().to_string();
            assert!(message.contains("is not an IP address"), "{bad}: {message}");
        }
    }

    #[test]
    fn peer_takes_bracketed_ipv6_addresses() {
        let peers = parse_peers(&["[::1]:6881".into(), "127.0.0.1:7".into()]).unwrap();
        assert_eq!(
            peers,
            [
                "[::1]:6881".parse().unwrap(),
                "127.0.0.1:7".parse().unwrap()
            ]
        );
    }

    /// Every option the code reads must be declared (getopts panics otherwise).
    #[test]
    fn every_option_parses_together() {
        let args: Vec<OsString> = [
            "-d",
            "/tmp/x",
            "-p",
            "0",
            "--bind",
            "::1",
            "--peer",
            "127.0.0.1:1",
            "--no-tracker",
            "--tracker-ca",
            "ca.pem",
            "--tracker",
            "http://127.0.0.1:1/announce",
            "--seed",
            "--seed-ratio",
            "1.5",
            "--seed-time",
            "2h",
            "--check",
            "--clean",
            "--overwrite",
            "--endgame",
            "90",
            "--strategy",
            "random",
            "--choker",
            "propshare",
            "--max-down",
            "1M",
            "--max-up",
            "1M",
            "--max-peers",
            "5",
            "-q",
            "-v",
            "--tui",
            "--trace=/dev/null",
            "--trace-peer",
            "127.0.0.1:1",
            "--trace-kinds",
            "wire,pick",
            "t.torrent",
        ]
        .iter()
        .map(OsString::from)
        .collect();
        let matches = parse(&options(), &args, "download").unwrap();
        for name in [
            "dest",
            "port",
            "bind",
            "peer",
            "no-tracker",
            "tracker-ca",
            "tracker",
            "seed",
            "seed-ratio",
            "seed-time",
            "check",
            "clean",
            "overwrite",
            "endgame",
            "choker",
            "strategy",
            "max-down",
            "max-up",
            "max-peers",
            "quiet",
            "verbose",
            "tui",
            "trace",
            "trace-peer",
            "trace-kinds",
        ] {
            assert!(matches.opt_present(name), "{name}");
        }
    }
}
