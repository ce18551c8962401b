//! The daemon's settings file, `settings.json` in the state directory, with
//! Transmission's key names so its users find their way.
//!
//! Layer 1: blocking disk I/O for [`Settings::load`] and [`Settings::save`];
//! the JSON mapping itself is pure. No clock, no BEP.
//!
//! Keys that are missing take their default; unknown keys are ignored (and
//! not written back); a key with the wrong type or out of range is an error
//! naming it. Speeds are in KB/s of 1000 bytes, as in Transmission. The
//! command line's flags are laid over these values by the caller, and the
//! file is read again on SIGHUP.

use std::fmt;
use std::fs::File;
use std::io::{self, Read};
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::resume::save_bytes;

/// The settings file's name in the state directory.
pub const SETTINGS_FILE: &str = "settings.json";

/// Largest settings file read: a full one is about 1 KiB; the cap bounds
/// what a wrong file (a log, a disk image) can make us allocate.
pub const MAX_SETTINGS_BYTES: u64 = 1024 * 1024;

/// Largest download or seed queue: the session holds at most 10,000
/// torrents, so a larger queue means nothing.
pub const MAX_QUEUE_SIZE: u32 = 10_000;

/// Largest global or per-torrent peer limit: far above what one process
/// can serve, small enough that no sum of them overflows.
pub const MAX_PEER_LIMIT: u32 = 65_535;

/// Largest speed limit in KB/s (about 4 TB/s): times 1000 it still fits a
/// `u64` many times over.
pub const MAX_SPEED_KBPS: u64 = u32::MAX as u64;

/// Largest ratio limit: far above any real one; keeps it a plain number.
pub const MAX_RATIO: f64 = 1_000_000.0;

/// Largest idle seeding limit in minutes (about 8,000 years).
pub const MAX_IDLE_MINUTES: u64 = u32::MAX as u64;

/// Largest text setting (a path, a list, a user name), in bytes.
pub const MAX_TEXT_BYTES: usize = 4096;

/// The daemon's settings.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// `download-dir`: where added torrents go (`None`: the caller's default).
    pub download_dir: Option<PathBuf>,
    /// `peer-port`: the port for peers (0: any free one).
    pub peer_port: u16,
    /// `peer-limit-global`: most peers over all torrents.
    pub peer_limit_global: u32,
    /// `peer-limit-per-torrent`: most peers of one torrent.
    pub peer_limit_per_torrent: u32,
    /// `speed-limit-down`, KB/s.
    pub speed_limit_down: u64,
    /// `speed-limit-down-enabled`.
    pub speed_limit_down_enabled: bool,
    /// `speed-limit-up`, KB/s.
    pub speed_limit_up: u64,
    /// `speed-limit-up-enabled`.
    pub speed_limit_up_enabled: bool,
    /// `download-queue-enabled`: at most `download_queue_size` downloading.
    pub download_queue_enabled: bool,
    /// `download-queue-size`.
    pub download_queue_size: u32,
    /// `seed-queue-enabled`: at most `seed_queue_size` seeding.
    pub seed_queue_enabled: bool,
    /// `seed-queue-size`.
    pub seed_queue_size: u32,
    /// `ratio-limit`: stop seeding at this upload/download ratio.
    pub ratio_limit: f64,
    /// `ratio-limit-enabled`.
    pub ratio_limit_enabled: bool,
    /// `idle-seeding-limit`: stop seeding after this many idle minutes.
    pub idle_seeding_limit: u64,
    /// `idle-seeding-limit-enabled`.
    pub idle_seeding_limit_enabled: bool,
    /// `start-added-torrents`: new torrents start unless told otherwise.
    pub start_added_torrents: bool,
    /// `dht-enabled` (BEP 5).
    pub dht_enabled: bool,
    /// `pex-enabled` (BEP 11).
    pub pex_enabled: bool,
    /// `watch-dir`: where dropped `.torrent` files are picked up.
    pub watch_dir: Option<PathBuf>,
    /// `watch-dir-enabled`.
    pub watch_dir_enabled: bool,
    /// `rpc-bind-address`: the RPC's listening address.
    pub rpc_bind_address: IpAddr,
    /// `rpc-port`.
    pub rpc_port: u16,
    /// `rpc-authentication-required`: HTTP Basic with `rpc_username` and the password file.
    pub rpc_authentication_required: bool,
    /// `rpc-username`.
    pub rpc_username: String,
    /// `rpc-whitelist`: client addresses allowed, comma-separated (see [`split_list`]).
    pub rpc_whitelist: String,
    /// `rpc-whitelist-enabled`.
    pub rpc_whitelist_enabled: bool,
    /// `rpc-host-whitelist`: `Host` names allowed, comma-separated.
    pub rpc_host_whitelist: String,
    /// `rpc-host-whitelist-enabled`.
    pub rpc_host_whitelist_enabled: bool,
}

impl Default for Settings {
    /// Transmission's defaults, except the RPC: pollen listens on loopback
    /// only until told otherwise.
    fn default() -> Self {
        Settings {
            download_dir: None,
            peer_port: 51413,
            peer_limit_global: 200,
            peer_limit_per_torrent: 50,
            speed_limit_down: 100,
            speed_limit_down_enabled: false,
            speed_limit_up: 100,
            speed_limit_up_enabled: false,
            download_queue_enabled: true,
            download_queue_size: 5,
            seed_queue_enabled: false,
            seed_queue_size: 10,
            ratio_limit: 2.0,
            ratio_limit_enabled: false,
            idle_seeding_limit: 30,
            idle_seeding_limit_enabled: false,
            start_added_torrents: true,
            dht_enabled: true,
            pex_enabled: true,
            watch_dir: None,
            watch_dir_enabled: false,
            rpc_bind_address: IpAddr::from([127, 0, 0, 1]),
            rpc_port: 9091,
            rpc_authentication_required: false,
            rpc_username: String::new(),
            rpc_whitelist: "127.0.0.1,::1".into(),
            rpc_whitelist_enabled: true,
            rpc_host_whitelist: String::new(),
            rpc_host_whitelist_enabled: true,
        }
    }
}

/// Why the settings could not be read.
#[derive(Debug)]
pub enum SettingsError {
    /// The file could not be read.
    Io {
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        source: io::Error,
    },
    /// The file is larger than [`MAX_SETTINGS_BYTES`].
    TooLarge {
        /// Its size in bytes.
        len: u64,
    },
    /// The file is not a JSON object.
    Json(String),
    /// A key has the wrong type or is out of range.
    Key {
        /// The key, as written in the file.
        key: &'static str,
        /// What is wrong with it.
        reason: String,
    },
}

impl fmt::Display for SettingsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SettingsError::Io { path, source } => {
                write!(f, "cannot read {}: {source}", path.display())
            }
            SettingsError::TooLarge { len } => write!(
                f,
                "settings file of {len} bytes is over the {MAX_SETTINGS_BYTES}-byte cap"
            ),
            SettingsError::Json(e) => write!(f, "settings are not a JSON object: {e}"),
            SettingsError::Key { key, reason } => write!(f, "setting {key:?}: {reason}"),
        }
    }
}

impl std::error::Error for SettingsError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SettingsError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// The non-empty, trimmed entries of a comma-separated list
/// (`rpc-whitelist`, `rpc-host-whitelist`).
pub fn split_list(list: &str) -> Vec<&str> {
    list.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect()
}

/// The keys of one JSON object, read with typed, range-checked getters
/// that leave the default when a key is absent.
struct Reader<'a>(&'a Map<String, Value>);

/// A key's error.
fn key_error(key: &'static str, reason: impl Into<String>) -> SettingsError {
    SettingsError::Key {
        key,
        reason: reason.into(),
    }
}

impl Reader<'_> {
    fn bool(&self, key: &'static str, out: &mut bool) -> Result<(), SettingsError> {
        if let Some(v) = self.0.get(key) {
            *out = v
                .as_bool()
                .ok_or_else(|| key_error(key, "not true or false"))?;
        }
        Ok(())
    }

    fn uint(&self, key: &'static str, max: u64) -> Result<Option<u64>, SettingsError> {
        let Some(v) = self.0.get(key) else {
            return Ok(None);
        };
        let n = v
            .as_u64()
            .ok_or_else(|| key_error(key, "not a whole number of 0 or more"))?;
        if n > max {
            return Err(key_error(key, format!("{n} is over {max}")));
        }
        Ok(Some(n))
    }

    fn u64(&self, key: &'static str, max: u64, out: &mut u64) -> Result<(), SettingsError> {
        if let Some(n) = self.uint(key, max)? {
            *out = n;
        }
        Ok(())
    }

    fn u32(&self, key: &'static str, max: u32, out: &mut u32) -> Result<(), SettingsError> {
        if let Some(n) = self.uint(key, u64::from(max))? {
            *out = u32::try_from(n).map_err(|_| key_error(key, "too large"))?;
        }
        Ok(())
    }

    fn port(&self, key: &'static str, out: &mut u16) -> Result<(), SettingsError> {
        if let Some(n) = self.uint(key, u64::from(u16::MAX))? {
            *out = u16::try_from(n).map_err(|_| key_error(key, "too large"))?;
        }
        Ok(())
    }

    fn ratio(&self, key: &'static str, out: &mut f64) -> Result<(), SettingsError> {
        if let Some(v) = self.0.get(key) {
            let r = v
                .as_f64()
                .filter(|r| (0.0..=MAX_RATIO).contains(r))
                .ok_or_else(|| key_error(key, format!("not a number in 0..={MAX_RATIO}")))?;
            *out = r;
        }
        Ok(())
    }

    fn text(&self, key: &'static str, out: &mut String) -> Result<(), SettingsError> {
        if let Some(v) = self.0.get(key) {
            let s = v.as_str().ok_or_else(|| key_error(key, "not a string"))?;
            if s.len() > MAX_TEXT_BYTES {
                return Err(key_error(key, format!("over {MAX_TEXT_BYTES} bytes")));
            }
            *out = s.to_owned();
        }
        Ok(())
    }

    /// A path; an empty string means none.
    fn path(&self, key: &'static str, out: &mut Option<PathBuf>) -> Result<(), SettingsError> {
        let mut text = String::new();
        if self.0.contains_key(key) {
            self.text(key, &mut text)?;
            *out = Some(PathBuf::from(text)).filter(|p| !p.as_os_str().is_empty());
        }
        Ok(())
    }

    fn address(&self, key: &'static str, out: &mut IpAddr) -> Result<(), SettingsError> {
        let mut text = String::new();
        if self.0.contains_key(key) {
            self.text(key, &mut text)?;
            *out = text
                .parse()
                .map_err(|_| key_error(key, format!("{text:?} is not an IP address")))?;
        }
        Ok(())
    }
}

impl Settings {
    /// Settings from the JSON bytes of a settings file: missing keys take
    /// their default, unknown keys are ignored, a wrong type or a value out
    /// of range is an error naming the key.
    pub fn from_json(bytes: &[u8]) -> Result<Settings, SettingsError> {
        let value: Value =
            serde_json::from_slice(bytes).map_err(|e| SettingsError::Json(e.to_string()))?;
        let map = value
            .as_object()
            .ok_or_else(|| SettingsError::Json("the top level is not an object".into()))?;
        let r = Reader(map);
        let mut s = Settings::default();
        r.path("download-dir", &mut s.download_dir)?;
        r.port("peer-port", &mut s.peer_port)?;
        r.u32(
            "peer-limit-global",
            MAX_PEER_LIMIT,
            &mut s.peer_limit_global,
        )?;
        r.u32(
            "peer-limit-per-torrent",
            MAX_PEER_LIMIT,
            &mut s.peer_limit_per_torrent,
        )?;
        r.u64("speed-limit-down", MAX_SPEED_KBPS, &mut s.speed_limit_down)?;
        r.bool("speed-limit-down-enabled", &mut s.speed_limit_down_enabled)?;
        r.u64("speed-limit-up", MAX_SPEED_KBPS, &mut s.speed_limit_up)?;
        r.bool("speed-limit-up-enabled", &mut s.speed_limit_up_enabled)?;
        r.bool("download-queue-enabled", &mut s.download_queue_enabled)?;
        r.u32(
            "download-queue-size",
            MAX_QUEUE_SIZE,
            &mut s.download_queue_size,
        )?;
        r.bool("seed-queue-enabled", &mut s.seed_queue_enabled)?;
        r.u32("seed-queue-size", MAX_QUEUE_SIZE, &mut s.seed_queue_size)?;
        r.ratio("ratio-limit", &mut s.ratio_limit)?;
        r.bool("ratio-limit-enabled", &mut s.ratio_limit_enabled)?;
        r.u64(
            "idle-seeding-limit",
            MAX_IDLE_MINUTES,
            &mut s.idle_seeding_limit,
        )?;
        r.bool(
            "idle-seeding-limit-enabled",
            &mut s.idle_seeding_limit_enabled,
        )?;
        r.bool("start-added-torrents", &mut s.start_added_torrents)?;
        r.bool("dht-enabled", &mut s.dht_enabled)?;
        r.bool("pex-enabled", &mut s.pex_enabled)?;
        r.path("watch-dir", &mut s.watch_dir)?;
        r.bool("watch-dir-enabled", &mut s.watch_dir_enabled)?;
        r.address("rpc-bind-address", &mut s.rpc_bind_address)?;
        r.port("rpc-port", &mut s.rpc_port)?;
        r.bool(
            "rpc-authentication-required",
            &mut s.rpc_authentication_required,
        )?;
        r.text("rpc-username", &mut s.rpc_username)?;
        r.text("rpc-whitelist", &mut s.rpc_whitelist)?;
        r.bool("rpc-whitelist-enabled", &mut s.rpc_whitelist_enabled)?;
        r.text("rpc-host-whitelist", &mut s.rpc_host_whitelist)?;
        r.bool(
            "rpc-host-whitelist-enabled",
            &mut s.rpc_host_whitelist_enabled,
        )?;
        Ok(s)
    }

    /// The settings as a pretty-printed JSON object, keys sorted, with a
    /// final newline. A path that is not UTF-8 is written lossily.
    pub fn to_json(&self) -> Vec<u8> {
        let path = |p: &Option<PathBuf>| {
            Value::from(
                p.as_ref()
                    .map_or(String::new(), |p| p.to_string_lossy().into_owned()),
            )
        };
        let pairs: Vec<(&str, Value)> = vec![
            ("download-dir", path(&self.download_dir)),
            ("peer-port", self.peer_port.into()),
            ("peer-limit-global", self.peer_limit_global.into()),
            ("peer-limit-per-torrent", self.peer_limit_per_torrent.into()),
            ("speed-limit-down", self.speed_limit_down.into()),
            (
                "speed-limit-down-enabled",
                self.speed_limit_down_enabled.into(),
            ),
            ("speed-limit-up", self.speed_limit_up.into()),
            ("speed-limit-up-enabled", self.speed_limit_up_enabled.into()),
            ("download-queue-enabled", self.download_queue_enabled.into()),
            ("download-queue-size", self.download_queue_size.into()),
            ("seed-queue-enabled", self.seed_queue_enabled.into()),
            ("seed-queue-size", self.seed_queue_size.into()),
            ("ratio-limit", self.ratio_limit.into()),
            ("ratio-limit-enabled", self.ratio_limit_enabled.into()),
            ("idle-seeding-limit", self.idle_seeding_limit.into()),
            (
                "idle-seeding-limit-enabled",
                self.idle_seeding_limit_enabled.into(),
            ),
            ("start-added-torrents", self.start_added_torrents.into()),
            ("dht-enabled", self.dht_enabled.into()),
            ("pex-enabled", self.pex_enabled.into()),
            ("watch-dir", path(&self.watch_dir)),
            ("watch-dir-enabled", self.watch_dir_enabled.into()),
            ("rpc-bind-address", self.rpc_bind_address.to_string().into()),
            ("rpc-port", self.rpc_port.into()),
            (
                "rpc-authentication-required",
                self.rpc_authentication_required.into(),
            ),
            ("rpc-username", self.rpc_username.clone().into()),
            ("rpc-whitelist", self.rpc_whitelist.clone().into()),
            ("rpc-whitelist-enabled", self.rpc_whitelist_enabled.into()),
            ("rpc-host-whitelist", self.rpc_host_whitelist.clone().into()),
            (
                "rpc-host-whitelist-enabled",
                self.rpc_host_whitelist_enabled.into(),
            ),
        ];
        let map: Map<String, Value> = pairs.into_iter().map(|(k, v)| (k.into(), v)).collect();
        let mut out = serde_json::to_vec_pretty(&Value::Object(map)).unwrap_or_default();
        out.push(b'\n');
        out
    }

    /// Reads the settings file at `path`; a missing file gives the
    /// defaults. Refuses a file over [`MAX_SETTINGS_BYTES`] before reading
    /// it. Blocks (one small read).
    pub fn load(path: &Path) -> Result<Settings, SettingsError> {
        let io_error = |source| SettingsError::Io {
            path: path.to_path_buf(),
            source,
        };
        let file = match File::open(path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Settings::default()),
            Err(e) => return Err(io_error(e)),
        };
        let len = file.metadata().map_err(io_error)?.len();
        if len > MAX_SETTINGS_BYTES {
            return Err(SettingsError::TooLarge { len });
        }
        let mut bytes = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
        file.take(MAX_SETTINGS_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(io_error)?;
        let read = u64::try_from(bytes.len()).unwrap_or(u64::MAX);
        if read > MAX_SETTINGS_BYTES {
            return Err(SettingsError::TooLarge { len: read });
        }
        Settings::from_json(&bytes)
    }

    /// Writes the settings to `path` atomically (tmp, `fsync`, rename,
    /// directory `fsync`). Blocks.
    pub fn save(&self, path: &Path) -> io::Result<()> {
        save_bytes(path, &self.to_json())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::TempDir;
    use std::fs;

    fn changed() -> Settings {
        Settings {
            download_dir: Some("/data/in".into()),
            peer_port: 0,
            peer_limit_global: 1,
            peer_limit_per_torrent: 65_535,
            speed_limit_down: 0,
            speed_limit_down_enabled: true,
            speed_limit_up: MAX_SPEED_KBPS,
            speed_limit_up_enabled: true,
            download_queue_enabled: false,
            download_queue_size: 10_000,
            seed_queue_enabled: true,
            seed_queue_size: 0,
            ratio_limit: 0.5,
            ratio_limit_enabled: true,
            idle_seeding_limit: 0,
            idle_seeding_limit_enabled: true,
            start_added_torrents: false,
            dht_enabled: false,
            pex_enabled: false,
            watch_dir: Some("/data/watch".into()),
            watch_dir_enabled: true,
            rpc_bind_address: "::".parse().unwrap(),
            rpc_port: 65_535,
            rpc_authentication_required: true,
            rpc_username: "ann".into(),
            rpc_whitelist: "192.168.1.*".into(),
            rpc_whitelist_enabled: false,
            rpc_host_whitelist: "nas.local".into(),
            rpc_host_whitelist_enabled: false,
        }
    }

    #[test]
    fn settings_round_trip_through_json_and_an_empty_object_is_the_defaults() {
        for s in [Settings::default(), changed()] {
            assert_eq!(Settings::from_json(&s.to_json()).unwrap(), s);
        }
        assert_eq!(Settings::from_json(b"{}").unwrap(), Settings::default());
    }

    #[test]
    fn the_defaults_are_transmissions_with_a_loopback_rpc() {
        let s = Settings::default();
        assert!(s.download_queue_enabled);
        assert_eq!(s.download_queue_size, 5);
        assert!(!s.seed_queue_enabled);
        assert_eq!(s.seed_queue_size, 10);
        assert!(s.start_added_torrents && s.dht_enabled && s.pex_enabled);
        assert_eq!(s.rpc_port, 9091);
        assert!(s.rpc_bind_address.is_loopback());
        let json = String::from_utf8(s.to_json()).unwrap();
        assert!(json.contains("\"download-queue-size\": 5"), "{json}");
        assert!(json.ends_with("}\n"), "{json}");
    }

    #[test]
    fn unknown_keys_are_ignored_and_known_ones_read() {
        let s = Settings::from_json(
            br#"{"blocklist-enabled": true, "peer-port": 6881, "ratio-limit": 3,
                 "rpc-whitelist": "127.0.0.1, 10.0.0.*,", "download-dir": ""}"#,
        )
        .unwrap();
        assert_eq!(s.peer_port, 6881);
        assert_eq!(s.ratio_limit, 3.0);
        assert_eq!(s.download_dir, None);
        assert_eq!(split_list(&s.rpc_whitelist), ["127.0.0.1", "10.0.0.*"]);
    }

    #[test]
    fn damaged_json_wrong_types_and_out_of_range_values_are_errors_naming_the_key() {
        for bad in [
            &b""[..],
            b"{",
            b"[1]",
            b"\"x\"",
            b"{\"peer-port\": 1,}",
            b"\xff",
        ] {
            let err = Settings::from_json(bad).unwrap_err();
            assert!(matches!(err, SettingsError::Json(_)), "{bad:?}: {err:?}");
        }
        let cases = [
            (r#"{"peer-port": 65536}"#, "peer-port"),
            (r#"{"peer-port": -1}"#, "peer-port"),
            (r#"{"rpc-port": "9091"}"#, "rpc-port"),
            (r#"{"download-queue-size": 10001}"#, "download-queue-size"),
            (r#"{"seed-queue-size": 1.5}"#, "seed-queue-size"),
            (r#"{"dht-enabled": 1}"#, "dht-enabled"),
            (r#"{"ratio-limit": -0.5}"#, "ratio-limit"),
            (r#"{"ratio-limit": 1e300}"#, "ratio-limit"),
            (r#"{"rpc-bind-address": "localhost"}"#, "rpc-bind-address"),
            (r#"{"watch-dir": 5}"#, "watch-dir"),
            (
                r#"{"speed-limit-down": 18446744073709551615}"#,
                "speed-limit-down",
            ),
        ];
        for (json, key) in cases {
            match Settings::from_json(json.as_bytes()) {
                Err(SettingsError::Key { key: k, .. }) => assert_eq!(k, key, "{json}"),
                other => panic!("{json}: {other:?}"),
            }
        }
        let long = format!(r#"{{"rpc-username": "{}"}}"#, "u".repeat(5000));
        let err = Settings::from_json(long.as_bytes()).unwrap_err();
        assert!(err.to_string().contains("rpc-username"), "{err}");
    }

    #[test]
    fn load_gives_defaults_for_a_missing_file_and_save_then_load_round_trips() {
        let dir = TempDir::new("daemon-settings");
        let path = dir.0.join(SETTINGS_FILE);
        assert_eq!(Settings::load(&path).unwrap(), Settings::default());
        changed().save(&path).unwrap();
        assert_eq!(Settings::load(&path).unwrap(), changed());
        fs::write(&path, b"{\"peer-port\": true}").unwrap();
        let err = Settings::load(&path).unwrap_err();
        assert_eq!(
            err.to_string(),
            "setting \"peer-port\": not a whole number of 0 or more"
        );
    }

    #[test]
    fn load_refuses_an_oversize_file_unread() {
        let dir = TempDir::new("daemon-settings-big");
        let path = dir.0.join(SETTINGS_FILE);
        File::create(&path)
            .unwrap()
            .set_len(MAX_SETTINGS_BYTES + 1)
            .unwrap();
        assert!(matches!(
            Settings::load(&path),
            Err(SettingsError::TooLarge { len }) if len == MAX_SETTINGS_BYTES + 1
        ));
    }
}
