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

use pollen::daemon::{Settings, SETTINGS_FILE};
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
        "most connected peers in all (default: 200)",
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
         in the state directory and come back after a restart. Options given are\n\
         saved in STATE/settings.json (Transmission's key names) and used at the\n\
         next start. SIGTERM stops it cleanly; SIGHUP reloads the settings file.",
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
    let state_dir = match matches.opt_str("state") {
        Some(dir) => PathBuf::from(dir),
        None => pollen::daemon::default_root()
            .ok_or_else(|| CliError::Usage("no HOME: give --state DIR".into()))?,
    };
    let settings_file = state_dir.join(SETTINGS_FILE);
    let mut settings =
        Settings::load(&settings_file).map_err(|e| CliError::Usage(e.to_string()))?;
    let credentials = apply_flags(&matches, &mut settings)?;
    let rpc_bind = SocketAddr::new(settings.rpc_bind_address, settings.rpc_port);
    if settings.rpc_authentication_required && credentials.is_none() {
        return Err(CliError::Usage(format!(
            "{} asks for RPC authentication: give --rpc-auth {}:PASSFILE",
            settings_file.display(),
            settings.rpc_username
        )));
    }
    if !rpc_bind.ip().is_loopback() && credentials.is_none() {
        return Err(CliError::Usage(format!(
            "--rpc-bind {rpc_bind} is reachable beyond this machine: give --rpc-auth USER:PASSFILE"
        )));
    }
    let dest = match &settings.download_dir {
        Some(dir) => dir.clone(),
        None => home_dir()
            .map(|h| h.join("Downloads"))
            .ok_or_else(|| CliError::Usage("no HOME: give --dest DIR".into()))?,
    };
    check_dest(&dest)?;
    let dest = std::fs::canonicalize(&dest)
        .map_err(|e| CliError::Usage(format!("--dest {}: {e}", dest.display())))?;
    settings.download_dir = Some(dest.clone());
    let mut download_roots: Vec<PathBuf> = matches
        .opt_strs("download-root")
        .into_iter()
        .map(PathBuf::from)
        .collect();
    download_roots.push(dest.clone());
    let web_ui = match matches.opt_str("web-ui") {
        Some(dir) => Some(PathBuf::from(dir)),
        None => Some(PathBuf::from(DEBIAN_WEB_UI)).filter(|p| p.join("index.html").is_file()),
    };
    let config = Config {
        dest,
        listen_ip: parse_bind(matches.opt_str("bind"))?,
        port: settings.peer_port,
        seed: true,
        keep_running: true,
        max_peers: usize::try_from(settings.peer_limit_global.max(1)).unwrap_or(usize::MAX),
        max_down: settings
            .speed_limit_down_enabled
            .then(|| settings.speed_limit_down.saturating_mul(1000)),
        max_up: settings
            .speed_limit_up_enabled
            .then(|| settings.speed_limit_up.saturating_mul(1000)),
        dht: settings.dht_enabled,
        dht_bootstrap: parse_dht_bootstrap(&matches.opt_strs("dht-bootstrap"))?,
        ..Config::default()
    };
    let reload = Arc::new(AtomicBool::new(false));
    let list = |text: &str| -> Vec<String> {
        pollen::daemon::settings::split_list(text)
            .into_iter()
            .map(String::from)
            .collect()
    };
    let daemon = DaemonConfig {
        rpc_bind,
        credentials,
        allowed_addresses: if settings.rpc_whitelist_enabled {
            list(&settings.rpc_whitelist)
        } else {
            Vec::new()
        },
        allowed_hosts: if settings.rpc_host_whitelist_enabled {
            list(&settings.rpc_host_whitelist)
        } else {
            vec!["*".into()]
        },
        web_ui,
        download_roots,
        settings_file: Some(settings_file.clone()),
        state_dir: Some(state_dir.clone()),
        watch_dir: settings
            .watch_dir
            .clone()
            .filter(|_| settings.watch_dir_enabled),
        download_queue: settings
            .download_queue_enabled
            .then_some(settings.download_queue_size),
        seed_queue: settings
            .seed_queue_enabled
            .then_some(settings.seed_queue_size),
        seed_ratio: settings.ratio_limit_enabled.then_some(settings.ratio_limit),
        idle_seeding: settings.idle_seeding_limit_enabled.then(|| {
            std::time::Duration::from_secs(settings.idle_seeding_limit.saturating_mul(60))
        }),
        start_added: settings.start_added_torrents,
        reload: Arc::clone(&reload),
    };
    let mut session = Session::bind(config)?;
    // Takes the state directory's lock: a second daemon stops here.
    let rpc = session.serve_daemon(daemon).map_err(|e| match e {
        // Which directory: the user may not know the default one.
        pollen::Error::State(e) => CliError::Failed(format!("{}: {e}", state_dir.display())),
        e => CliError::from(e),
    })?;
    // Only now, under the lock: the flags given become the saved settings.
    if let Err(e) = settings.save(&settings_file) {
        log::warn!("cannot save {}: {e}", settings_file.display());
    }
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

/// Puts the command line's options over the settings file's values (an
/// option given wins, and is saved); returns the RPC credentials.
fn apply_flags(
    matches: &getopts::Matches,
    settings: &mut Settings,
) -> Result<Option<Credentials>, CliError> {
    if let Some(dir) = matches.opt_str("dest") {
        settings.download_dir = Some(PathBuf::from(dir));
    }
    if let Some(text) = matches.opt_str("rpc-bind") {
        let addr: SocketAddr = text.parse().map_err(|_| {
            CliError::Usage(format!(
                "--rpc-bind {text:?} is not an address like 127.0.0.1:9091"
            ))
        })?;
        settings.rpc_bind_address = addr.ip();
        settings.rpc_port = addr.port();
    }
    let credentials = match matches.opt_str("rpc-auth") {
        None => None,
        Some(text) => Some(read_credentials(&text)?),
    };
    if let Some(credentials) = &credentials {
        settings.rpc_authentication_required = true;
        settings.rpc_username = credentials.user.clone();
        if matches.opt_str("rpc-allow").is_none() && settings.rpc_whitelist == "127.0.0.1,::1" {
            // A password guards it: any address may try (as --rpc-allow can narrow).
            settings.rpc_whitelist_enabled = false;
        }
    }
    if let Some(list) = matches.opt_str("rpc-allow") {
        settings.rpc_whitelist = list;
        settings.rpc_whitelist_enabled = true;
    }
    if let Some(list) = matches.opt_str("rpc-host") {
        settings.rpc_host_whitelist = list;
        settings.rpc_host_whitelist_enabled = true;
    }
    if let Some(text) = matches.opt_str("port") {
        settings.peer_port = text
            .parse::<u16>()
            .map_err(|_| CliError::Usage(format!("--port {text:?}: port must be 0-65535")))?;
    }
    if matches.opt_present("max-peers") {
        let peers = parse_number(matches, "max-peers", DEFAULT_MAX_PEERS)?.max(1);
        settings.peer_limit_global = u32::try_from(peers).unwrap_or(u32::MAX);
    }
    for (name, limit, enabled) in [
        (
            "max-down",
            &mut settings.speed_limit_down,
            &mut settings.speed_limit_down_enabled,
        ),
        (
            "max-up",
            &mut settings.speed_limit_up,
            &mut settings.speed_limit_up_enabled,
        ),
    ] {
        if let Some(bytes) = parse_rate(matches, name)? {
            *limit = (bytes / 1000).max(1);
            *enabled = true;
        }
    }
    for (name, size, enabled) in [
        (
            "download-queue",
            &mut settings.download_queue_size,
            &mut settings.download_queue_enabled,
        ),
        (
            "seed-queue",
            &mut settings.seed_queue_size,
            &mut settings.seed_queue_enabled,
        ),
    ] {
        if let Some(text) = matches.opt_str(name) {
            let n = text
                .parse::<u32>()
                .map_err(|_| CliError::Usage(format!("--{name} {text:?} is not a number")))?;
            *enabled = n > 0;
            if n > 0 {
                *size = n;
            }
        }
    }
    if let Some(text) = matches.opt_str("seed-ratio") {
        settings.ratio_limit = text
            .parse::<f64>()
            .ok()
            .filter(|r| r.is_finite() && *r >= 0.0)
            .ok_or_else(|| CliError::Usage(format!("--seed-ratio {text:?} is not a ratio")))?;
        settings.ratio_limit_enabled = true;
    }
    if let Some(text) = matches.opt_str("idle-seeding") {
        settings.idle_seeding_limit = text
            .parse::<u64>()
            .map_err(|_| CliError::Usage(format!("--idle-seeding {text:?} is not minutes")))?;
        settings.idle_seeding_limit_enabled = true;
    }
    if let Some(dir) = matches.opt_str("watch") {
        settings.watch_dir = Some(PathBuf::from(dir));
        settings.watch_dir_enabled = true;
    }
    if matches.opt_present("no-dht") {
        settings.dht_enabled = false;
    }
    Ok(credentials)
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
    fn credentials_need_a_user_and_a_password_file() {
        assert!(read_credentials("nouser").is_err());
        assert!(read_credentials(":file").is_err());
        assert!(read_credentials("user:/nonexistent/pollen-pass").is_err());
    }
}
