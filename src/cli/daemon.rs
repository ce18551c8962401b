//! `pollen daemon`: many torrents in one loop, driven remotely through
//! Transmission's RPC (so `transmission-remote`, the Transmission web UI
//! and other front-ends work unchanged), with a state directory that
//! brings every torrent back after a restart.
//!
//! Layer 3: options in, a [`Config`] and a [`DaemonConfig`] out, then
//! [`Session::bind`], [`Session::serve_daemon`] and [`Session::run`].
//! SIGTERM and Ctrl-C stop it cleanly; SIGHUP reloads the settings file.

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use pollen::rpc::access::Credentials;
use pollen::session::{Config, DaemonConfig, Session, DEFAULT_MAX_PEERS};

use super::download::{check_dest, parse_bind, parse_dht_bootstrap, parse_rate};
use super::{init_logging, parse, parse_number, say, CliError};

/// Where Debian's Transmission web UI lives (package transmission-common).
const DEBIAN_WEB_UI: &str = "/usr/share/transmission/web";

fn options() -> getopts::Options {
    let mut opts = getopts::Options::new();
    opts.optopt(
        "",
        "state",
        "the daemon's state directory (default: $XDG_STATE_HOME/pollen or ~/.local/state/pollen)",
        "DIR",
    );
    opts.optopt(
        "d",
        "dest",
        "where new torrents are downloaded by default (default: ~/Downloads)",
        "DIR",
    );
    opts.optmulti(
        "",
        "download-root",
        "a folder RPC clients may download into (besides --dest); repeatable",
        "DIR",
    );
    opts.optopt("", "watch", "add the .torrent files dropped in DIR", "DIR");
    opts.optopt(
        "",
        "rpc-bind",
        "where the RPC listens (default: 127.0.0.1:9091)",
        "ADDR:PORT",
    );
    opts.optopt(
        "",
        "rpc-auth",
        "require HTTP Basic auth: the user name, and a file holding the password \
         (needed to listen beyond loopback)",
        "USER:PASSFILE",
    );
    opts.optopt(
        "",
        "rpc-allow",
        "client addresses let in, comma-separated, * for an octet \
         (default: 127.0.0.1,::1 on loopback; any with --rpc-auth)",
        "LIST",
    );
    opts.optopt(
        "",
        "rpc-host",
        "host names let in besides IP addresses and localhost, comma-separated",
        "LIST",
    );
    opts.optopt(
        "",
        "web-ui",
        "serve the Transmission web UI from DIR at /transmission/web/ \
         (default: /usr/share/transmission/web when it exists)",
        "DIR",
    );
    opts.optopt(
        "p",
        "port",
        "peer port; 0 picks a free one (default: 51413)",
        "N",
    );
    opts.optopt("", "bind", "address peers connect to (default: ::)", "IP");
    opts.optopt(
        "",
        "max-peers",
        &format!("most connected peers in all (default: {DEFAULT_MAX_PEERS})"),
        "N",
    );
    opts.optopt("", "max-down", "download rate limit, e.g. 2M", "RATE");
    opts.optopt("", "max-up", "upload rate limit, e.g. 500K", "RATE");
    opts.optopt(
        "",
        "download-queue",
        "most torrents downloading at once; 0 for no limit (default: 5)",
        "N",
    );
    opts.optopt(
        "",
        "seed-queue",
        "most torrents seeding at once; 0 for no limit (default: no limit)",
        "N",
    );
    opts.optopt(
        "",
        "seed-ratio",
        "stop seeding a torrent once it uploaded R times what it downloaded",
        "R",
    );
    opts.optopt(
        "",
        "idle-seeding",
        "stop seeding a torrent that uploaded nothing for this many minutes",
        "MINUTES",
    );
    opts.optmulti(
        "",
        "dht-bootstrap",
        "join the DHT through this node; repeatable",
        "HOST:PORT",
    );
    opts.optflag("", "no-dht", "no DHT");
    opts.optflagmulti("v", "verbose", "log more (-v info, -vv debug)");
    opts.optflag("q", "quiet", "log errors only");
    super::help_option(&mut opts);
    opts
}

/// The help text of `pollen daemon`.
pub fn usage() -> String {
    super::help_text(
        &options(),
        "Usage: pollen daemon [OPTIONS]\n\n\
         Runs torrents in the background, controlled through Transmission's RPC:\n\
         transmission-remote, the Transmission web UI or pollen's own page at\n\
         http://127.0.0.1:9091/. Torrents, their settings and progress are kept\n\
         in the state directory and come back after a restart. SIGTERM stops it\n\
         cleanly; SIGHUP reloads the settings file (STATE/settings.json).",
    )
}

/// Runs `pollen daemon` until SIGTERM, Ctrl-C or `session-close`.
pub fn run(args: &[OsString]) -> Result<(), CliError> {
    let matches = parse(&options(), args, "daemon")?;
    if matches.opt_present("help") {
        return say(&format!("{}\n", usage()));
    }
    init_logging(
        matches.opt_count("verbose").max(1),
        matches.opt_present("quiet"),
    );
    let rpc_bind: SocketAddr = match matches.opt_str("rpc-bind") {
        None => SocketAddr::from(([127, 0, 0, 1], 9091)),
        Some(text) => text.parse().map_err(|_| {
            CliError::Usage(format!(
                "--rpc-bind {text:?} is not an address like 127.0.0.1:9091"
            ))
        })?,
    };
    let credentials = match matches.opt_str("rpc-auth") {
        None => None,
        Some(text) => Some(read_credentials(&text)?),
    };
    if !rpc_bind.ip().is_loopback() && credentials.is_none() {
        return Err(CliError::Usage(format!(
            "--rpc-bind {rpc_bind} is reachable beyond this machine: give --rpc-auth USER:PASSFILE"
        )));
    }
    let allowed_addresses = match matches.opt_str("rpc-allow") {
        Some(list) => split_list(&list),
        None if credentials.is_none() => vec!["127.0.0.1".into(), "::1".into()],
        None => Vec::new(),
    };
    let dest = match matches.opt_str("dest") {
        Some(dir) => PathBuf::from(dir),
        None => home_dir()
            .map(|h| h.join("Downloads"))
            .ok_or_else(|| CliError::Usage("no HOME: give --dest DIR".into()))?,
    };
    check_dest(&dest)?;
    let dest = std::fs::canonicalize(&dest)
        .map_err(|e| CliError::Usage(format!("--dest {}: {e}", dest.display())))?;
    let state_dir = match matches.opt_str("state") {
        Some(dir) => PathBuf::from(dir),
        None => std::env::var_os("XDG_STATE_HOME")
            .filter(|x| !x.is_empty())
            .map(|x| PathBuf::from(x).join("pollen"))
            .or_else(|| home_dir().map(|h| h.join(".local/state/pollen")))
            .ok_or_else(|| CliError::Usage("no HOME: give --state DIR".into()))?,
    };
    let port = match matches.opt_str("port") {
        None => 51413,
        Some(text) => text
            .parse::<u16>()
            .map_err(|_| CliError::Usage(format!("--port {text:?}: port must be 0-65535")))?,
    };
    let queue = |name: &str, default: Option<u32>| -> Result<Option<u32>, CliError> {
        match matches.opt_str(name) {
            None => Ok(default),
            Some(text) => match text.parse::<u32>() {
                Ok(0) => Ok(None),
                Ok(n) => Ok(Some(n)),
                Err(_) => Err(CliError::Usage(format!(
                    "--{name} {text:?} is not a number"
                ))),
            },
        }
    };
    let seed_ratio = match matches.opt_str("seed-ratio") {
        None => None,
        Some(text) => Some(
            text.parse::<f64>()
                .ok()
                .filter(|r| r.is_finite() && *r >= 0.0)
                .ok_or_else(|| CliError::Usage(format!("--seed-ratio {text:?} is not a ratio")))?,
        ),
    };
    let idle_seeding = match matches.opt_str("idle-seeding") {
        None => None,
        Some(text) => Some(std::time::Duration::from_secs(
            text.parse::<u64>()
                .map_err(|_| CliError::Usage(format!("--idle-seeding {text:?} is not minutes")))?
                .saturating_mul(60),
        )),
    };
    let web_ui = match matches.opt_str("web-ui") {
        Some(dir) => Some(PathBuf::from(dir)),
        None => Some(PathBuf::from(DEBIAN_WEB_UI)).filter(|p| p.join("index.html").is_file()),
    };
    let config = Config {
        dest: dest.clone(),
        listen_ip: parse_bind(matches.opt_str("bind"))?,
        port,
        seed: true,
        keep_running: true,
        max_peers: parse_number(&matches, "max-peers", DEFAULT_MAX_PEERS)?.max(1),
        max_down: parse_rate(&matches, "max-down")?,
        max_up: parse_rate(&matches, "max-up")?,
        dht: !matches.opt_present("no-dht"),
        dht_bootstrap: parse_dht_bootstrap(&matches.opt_strs("dht-bootstrap"))?,
        ..Config::default()
    };
    let reload = Arc::new(AtomicBool::new(false));
    let daemon = DaemonConfig {
        rpc_bind,
        credentials,
        allowed_addresses,
        allowed_hosts: matches
            .opt_str("rpc-host")
            .map(|l| split_list(&l))
            .unwrap_or_default(),
        web_ui,
        download_roots: matches
            .opt_strs("download-root")
            .into_iter()
            .map(PathBuf::from)
            .collect(),
        settings_file: Some(state_dir.join("settings.json")),
        state_dir: Some(state_dir),
        watch_dir: matches.opt_str("watch").map(PathBuf::from),
        download_queue: queue("download-queue", Some(5))?,
        seed_queue: queue("seed-queue", None)?,
        seed_ratio,
        idle_seeding,
        start_added: true,
        reload: Arc::clone(&reload),
    };
    let mut session = Session::bind(config)?;
    let rpc = session.serve_daemon(daemon)?;
    let stop = session.stop_flag();
    register_signals(&stop, &reload);
    say(&format!(
        "rpc: http://{rpc}{}\npeers: listening on {}\n",
        pollen::rpc::RPC_PATH,
        session.listen_addr()
    ))?;
    session.run()?;
    Ok(())
}

/// SIGTERM and SIGINT stop the loop (a second one exits at once); SIGHUP
/// asks for the settings to be reloaded.
fn register_signals(stop: &Arc<AtomicBool>, reload: &Arc<AtomicBool>) {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    for signal in [SIGINT, SIGTERM] {
        let _ = signal_hook::flag::register_conditional_shutdown(signal, 1, Arc::clone(stop));
        let _ = signal_hook::flag::register(signal, Arc::clone(stop));
    }
    let _ = signal_hook::flag::register(SIGHUP, Arc::clone(reload));
}

/// `USER:PASSFILE`: the user name, and the password read from the file
/// (its first line). The password never appears on the command line.
fn read_credentials(text: &str) -> Result<Credentials, CliError> {
    let Some((user, file)) = text
        .split_once(':')
        .filter(|(u, f)| !u.is_empty() && !f.is_empty())
    else {
        return Err(CliError::Usage(
            "--rpc-auth wants USER:PASSFILE (a file holding the password)".into(),
        ));
    };
    let content = std::fs::read_to_string(file)
        .map_err(|e| CliError::Usage(format!("--rpc-auth: {file}: {e}")))?;
    let password = content.lines().next().unwrap_or_default().to_string();
    if password.is_empty() {
        return Err(CliError::Usage(format!(
            "--rpc-auth: {file} holds no password"
        )));
    }
    Ok(Credentials {
        user: user.to_string(),
        password,
    })
}

/// A comma-separated list, trimmed, without empty items.
fn split_list(text: &str) -> Vec<String> {
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect()
}

/// `$HOME`, if set.
fn home_dir() -> Option<PathBuf> {
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(PathBuf::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_are_split_on_commas_and_trimmed() {
        assert_eq!(split_list(" a, b,,c "), vec!["a", "b", "c"]);
    }

    #[test]
    fn credentials_need_a_user_and_a_password_file() {
        assert!(read_credentials("nouser").is_err());
        assert!(read_credentials(":file").is_err());
        assert!(read_credentials("user:/nonexistent/pollen-pass").is_err());
    }
}
