//! One RPC request body (`{"method": ..., "arguments": {...}, "tag": N}`)
//! decoded into a typed [`Call`].
//!
//! Layer 0: pure. The body is untrusted JSON (at most
//! [`super::http::MAX_BODY_BYTES`], nesting at most [`MAX_JSON_DEPTH`]);
//! anything malformed is a [`CallError`] whose text goes back to the client
//! as the documented `result` string, never a panic. Unknown methods are
//! [`CallError::UnknownMethod`]; unknown argument keys are ignored, as
//! Transmission ignores them.
//!
//! What the real clients send (captured from `transmission-remote` 3.00,
//! the 3.00 web UI and the Python `transmission-rpc` 7) is in the specs at
//! the bottom. Two details they rely on: `transmission-remote -t HASH`
//! sends `ids` as one bare hash string, and Python sends `session-get`
//! with an empty `arguments` object and no `tag`.
//!
//! Numbers: where the spec says number, an integral JSON float (`3.0`) is
//! taken as the integer; a fraction, a negative count, a string or a value
//! too large is [`CallError::BadArgument`] naming the key. A `null`
//! argument counts as absent.

use serde_json::{Map, Value};

use super::base64;

/// Deepest JSON nesting accepted in a request: real requests nest 3 or 4
/// levels; a deeper body is hostile.
pub const MAX_JSON_DEPTH: usize = 16;

/// Most ids (or hashes) in one `ids` list, and most field names in one
/// `fields` list: bounds the work of one request.
pub const MAX_LIST_LEN: usize = 10_000;

/// Which torrents a call is about (`ids`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Ids {
    /// No `ids` key: every torrent.
    #[default]
    All,
    /// `"recently-active"`: torrents active in the last minute.
    RecentlyActive,
    /// A list of RPC ids and info-hashes (40 hex digits, lowercase). An
    /// empty list names no torrent (not every torrent: a client that
    /// builds the list and sends it empty must not remove everything).
    Some {
        /// RPC ids.
        ids: Vec<u64>,
        /// Info-hashes as 40 lowercase hex digits.
        hashes: Vec<String>,
    },
}

/// `torrent-add`'s source of the torrent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AddSource {
    /// `filename`: a magnet link.
    Magnet(String),
    /// `filename`: a path to a `.torrent` file on the daemon's machine.
    Path(String),
    /// `filename`: an http(s) URL (pollen does not fetch these: refused).
    Url(String),
    /// `metainfo`: the `.torrent` file's bytes (decoded from base64).
    Metainfo(Vec<u8>),
}

/// `torrent-add`'s arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddArgs {
    /// What to add.
    pub source: AddSource,
    /// `download-dir`, if given.
    pub download_dir: Option<String>,
    /// `paused`: add without starting.
    pub paused: bool,
}

/// `torrent-set` / `session-set` numbers that are "limit on/off plus value".
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Limit<T> {
    /// The `...Limited` / `...-enabled` flag, if sent.
    pub enabled: Option<bool>,
    /// The value, if sent.
    pub value: Option<T>,
}

/// `torrent-set`'s arguments that pollen carries out.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TorrentSetArgs {
    /// Which torrents.
    pub ids: Ids,
    /// `seedRatioLimit` with `seedRatioMode` (0 global, 1 own, 2 unlimited).
    pub seed_ratio_limit: Option<f64>,
    /// `seedRatioMode`.
    pub seed_ratio_mode: Option<u8>,
    /// `seedIdleLimit` in minutes with `seedIdleMode` (0 global, 1 own, 2 unlimited).
    pub seed_idle_limit: Option<u64>,
    /// `seedIdleMode`.
    pub seed_idle_mode: Option<u8>,
    /// `location`: pollen does not move data (refused when sent).
    pub location: Option<String>,
    /// `files-unwanted` was sent (pollen downloads every file: refused). An
    /// empty list counts: the spec reads it as "every file".
    pub files_unwanted: bool,
    /// The keys sent that pollen does not carry out (per-torrent speed
    /// limits, priorities, labels, tracker edits...): the call is refused
    /// with their names rather than answered "success" for nothing.
    pub unsupported: Vec<&'static str>,
}

/// `torrent-set` keys pollen does not carry out.
pub const UNSUPPORTED_TORRENT_SET: &[&str] = &[
    "bandwidthPriority",
    "downloadLimit",
    "downloadLimited",
    "group",
    "honorsSessionLimits",
    "labels",
    "peer-limit",
    "priority-high",
    "priority-low",
    "priority-normal",
    "queuePosition",
    "sequentialDownload",
    "trackerAdd",
    "trackerList",
    "trackerRemove",
    "trackerReplace",
    "uploadLimit",
    "uploadLimited",
];

/// `session-set`'s arguments that pollen carries out.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SessionSetArgs {
    /// `download-dir`.
    pub download_dir: Option<String>,
    /// `speed-limit-down` (KB/s) and `speed-limit-down-enabled`.
    pub speed_limit_down: Limit<u64>,
    /// `speed-limit-up` (KB/s) and `speed-limit-up-enabled`.
    pub speed_limit_up: Limit<u64>,
    /// `download-queue-size` and `download-queue-enabled`.
    pub download_queue: Limit<u32>,
    /// `seed-queue-size` and `seed-queue-enabled`.
    pub seed_queue: Limit<u32>,
    /// `seedRatioLimit` and `seedRatioLimited`.
    pub seed_ratio: Limit<f64>,
    /// `idle-seeding-limit` (minutes) and `idle-seeding-limit-enabled`.
    pub idle_seeding: Limit<u64>,
    /// `peer-limit-global`.
    pub peer_limit_global: Option<u32>,
    /// `peer-limit-per-torrent`.
    pub peer_limit_per_torrent: Option<u32>,
    /// `start-added-torrents`.
    pub start_added_torrents: Option<bool>,
}

/// A decoded RPC method with its arguments.
#[derive(Debug, Clone, PartialEq)]
pub enum Method {
    /// `session-get` with the `fields` asked for (empty: all).
    SessionGet {
        /// Field names.
        fields: Vec<String>,
    },
    /// `session-set`.
    SessionSet(SessionSetArgs),
    /// `session-stats`.
    SessionStats,
    /// `session-close`: stop the daemon.
    SessionClose,
    /// `torrent-get`.
    TorrentGet {
        /// Which torrents.
        ids: Ids,
        /// Field names (required by the spec; empty is an error).
        fields: Vec<String>,
        /// `format: "table"`: rows of values instead of objects.
        table: bool,
    },
    /// `torrent-add`.
    TorrentAdd(AddArgs),
    /// `torrent-start` / `torrent-start-now` / `torrent-reannounce` start
    /// (or announce) the torrents; `now` skips the queue.
    TorrentStart {
        /// Which torrents.
        ids: Ids,
        /// `torrent-start-now`.
        now: bool,
    },
    /// `torrent-stop`.
    TorrentStop {
        /// Which torrents.
        ids: Ids,
    },
    /// `torrent-verify`.
    TorrentVerify {
        /// Which torrents.
        ids: Ids,
    },
    /// `torrent-reannounce`.
    TorrentReannounce {
        /// Which torrents.
        ids: Ids,
    },
    /// `torrent-remove`.
    TorrentRemove {
        /// Which torrents.
        ids: Ids,
        /// `delete-local-data`.
        delete_local_data: bool,
    },
    /// `torrent-set`.
    TorrentSet(TorrentSetArgs),
    /// `queue-move-top` / `-up` / `-down` / `-bottom`.
    QueueMove {
        /// Which torrents.
        ids: Ids,
        /// Where to.
        to: QueueMove,
    },
    /// `free-space` for a path.
    FreeSpace {
        /// The path asked about.
        path: String,
    },
    /// `port-test` (answered false: pollen makes no outside traffic to test).
    PortTest,
    /// `blocklist-update` (pollen has no block list: answered with size 0).
    BlocklistUpdate,
}

/// `queue-move-*`'s direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueMove {
    /// `queue-move-top`.
    Top,
    /// `queue-move-up`.
    Up,
    /// `queue-move-down`.
    Down,
    /// `queue-move-bottom`.
    Bottom,
}

/// A decoded request: its method and the `tag` to echo back.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    /// The method and its arguments.
    pub method: Method,
    /// The request's `tag` (a number), echoed in the answer.
    pub tag: Option<Value>,
}

/// Why a body is not a call we carry out; its `Display` is the `result` text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallError {
    /// Not JSON, or nested deeper than [`MAX_JSON_DEPTH`].
    BadJson(String),
    /// JSON, but not an object with a string `method`.
    NotARequest,
    /// A method pollen does not know (`"method name not recognized"`).
    UnknownMethod(String),
    /// An argument of the wrong type or value (named).
    BadArgument(&'static str),
    /// The tag that came with the body, when the error is about the rest
    /// (so the answer still carries it).
    Tagged(Box<CallError>, Value),
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallError::BadJson(why) => write!(f, "invalid JSON: {why}"),
            CallError::NotARequest => f.write_str("no method name"),
            CallError::UnknownMethod(_) => f.write_str("method name not recognized"),
            CallError::BadArgument(name) => write!(f, "invalid argument: {name}"),
            CallError::Tagged(inner, _) => inner.fmt(f),
        }
    }
}

impl std::error::Error for CallError {}

/// Decodes a request body.
pub fn parse_call(body: &[u8]) -> Result<Call, CallError> {
    check_depth(body)?;
    let value: Value =
        serde_json::from_slice(body).map_err(|e| CallError::BadJson(e.to_string()))?;
    let Value::Object(request) = value else {
        return Err(CallError::NotARequest);
    };
    let tag = request.get("tag").filter(|t| t.is_number()).cloned();
    let with_tag = |error: CallError| match &tag {
        Some(tag) => CallError::Tagged(Box::new(error), tag.clone()),
        None => error,
    };
    let Some(Value::String(name)) = request.get("method") else {
        return Err(with_tag(CallError::NotARequest));
    };
    let empty = Map::new();
    let args = match request.get("arguments") {
        None | Some(Value::Null) => &empty,
        Some(Value::Object(args)) => args,
        Some(_) => return Err(with_tag(CallError::BadArgument("arguments"))),
    };
    let method = parse_method(name, args).map_err(with_tag)?;
    Ok(Call { method, tag })
}

/// Refuses a body nested deeper than [`MAX_JSON_DEPTH`] before serde_json
/// recurses into it: one pass over the bytes counting brackets outside
/// strings (a malformed body passes here and fails in the parser).
fn check_depth(body: &[u8]) -> Result<(), CallError> {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for &byte in body {
        if in_string {
            match byte {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > MAX_JSON_DEPTH {
                    return Err(CallError::BadJson(format!(
                        "nested deeper than {MAX_JSON_DEPTH}"
                    )));
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}

/// The arguments of one method.
type Args = Map<String, Value>;

fn parse_method(name: &str, args: &Args) -> Result<Method, CallError> {
    let method = match name {
        "session-get" => Method::SessionGet {
            fields: opt_strings(args, "fields")?.unwrap_or_default(),
        },
        "session-set" => Method::SessionSet(session_set(args)?),
        "session-stats" => Method::SessionStats,
        "session-close" => Method::SessionClose,
        "torrent-get" => torrent_get(args)?,
        "torrent-add" => Method::TorrentAdd(torrent_add(args)?),
        "torrent-start" | "torrent-start-now" => Method::TorrentStart {
            ids: ids(args)?,
            now: name == "torrent-start-now",
        },
        "torrent-stop" => Method::TorrentStop { ids: ids(args)? },
        "torrent-verify" => Method::TorrentVerify { ids: ids(args)? },
        "torrent-reannounce" => Method::TorrentReannounce { ids: ids(args)? },
        "torrent-remove" => Method::TorrentRemove {
            ids: ids(args)?,
            delete_local_data: opt_bool(args, "delete-local-data")?.unwrap_or(false),
        },
        "torrent-set" => Method::TorrentSet(torrent_set(args)?),
        "queue-move-top" => queue_move(args, QueueMove::Top)?,
        "queue-move-up" => queue_move(args, QueueMove::Up)?,
        "queue-move-down" => queue_move(args, QueueMove::Down)?,
        "queue-move-bottom" => queue_move(args, QueueMove::Bottom)?,
        "free-space" => Method::FreeSpace {
            path: opt_string(args, "path")?.ok_or(CallError::BadArgument("path"))?,
        },
        "port-test" => Method::PortTest,
        "blocklist-update" => Method::BlocklistUpdate,
        other => return Err(CallError::UnknownMethod(other.to_string())),
    };
    Ok(method)
}

fn queue_move(args: &Args, to: QueueMove) -> Result<Method, CallError> {
    Ok(Method::QueueMove {
        ids: ids(args)?,
        to,
    })
}

fn torrent_get(args: &Args) -> Result<Method, CallError> {
    let fields = opt_strings(args, "fields")?.unwrap_or_default();
    if fields.is_empty() {
        return Err(CallError::BadArgument("fields"));
    }
    let table = match opt_string(args, "format")?.as_deref() {
        None | Some("objects") => false,
        Some("table") => true,
        Some(_) => return Err(CallError::BadArgument("format")),
    };
    Ok(Method::TorrentGet {
        ids: ids(args)?,
        fields,
        table,
    })
}

fn torrent_add(args: &Args) -> Result<AddArgs, CallError> {
    let filename = opt_string(args, "filename")?;
    let metainfo = opt_string(args, "metainfo")?;
    let source = match (filename, metainfo) {
        (Some(name), None) => add_source(name),
        (None, Some(text)) => AddSource::Metainfo(
            base64::decode(text.as_bytes()).map_err(|_| CallError::BadArgument("metainfo"))?,
        ),
        (Some(_), Some(_)) | (None, None) => {
            return Err(CallError::BadArgument("filename or metainfo"))
        }
    };
    Ok(AddArgs {
        source,
        download_dir: opt_string(args, "download-dir")?,
        paused: opt_bool(args, "paused")?.unwrap_or(false),
    })
}

/// What a `filename` names, by its scheme (case-insensitive).
fn add_source(name: String) -> AddSource {
    let starts = |prefix: &str| {
        name.get(..prefix.len())
            .is_some_and(|head| head.eq_ignore_ascii_case(prefix))
    };
    if starts("magnet:") {
        AddSource::Magnet(name)
    } else if starts("http://") || starts("https://") {
        AddSource::Url(name)
    } else {
        AddSource::Path(name)
    }
}

fn torrent_set(args: &Args) -> Result<TorrentSetArgs, CallError> {
    Ok(TorrentSetArgs {
        ids: ids(args)?,
        seed_ratio_limit: opt_ratio(args, "seedRatioLimit")?,
        seed_ratio_mode: opt_mode(args, "seedRatioMode")?,
        seed_idle_limit: opt_u64(args, "seedIdleLimit")?,
        seed_idle_mode: opt_mode(args, "seedIdleMode")?,
        location: opt_string(args, "location")?,
        files_unwanted: match present(args, "files-unwanted") {
            None => false,
            Some(Value::Array(_)) => true,
            Some(_) => return Err(CallError::BadArgument("files-unwanted")),
        },
        unsupported: UNSUPPORTED_TORRENT_SET
            .iter()
            .copied()
            .filter(|key| present(args, key).is_some())
            .collect(),
    })
}

fn session_set(args: &Args) -> Result<SessionSetArgs, CallError> {
    Ok(SessionSetArgs {
        download_dir: opt_string(args, "download-dir")?,
        speed_limit_down: Limit {
            enabled: opt_bool(args, "speed-limit-down-enabled")?,
            value: opt_u64(args, "speed-limit-down")?,
        },
        speed_limit_up: Limit {
            enabled: opt_bool(args, "speed-limit-up-enabled")?,
            value: opt_u64(args, "speed-limit-up")?,
        },
        download_queue: Limit {
            enabled: opt_bool(args, "download-queue-enabled")?,
            value: opt_u32(args, "download-queue-size")?,
        },
        seed_queue: Limit {
            enabled: opt_bool(args, "seed-queue-enabled")?,
            value: opt_u32(args, "seed-queue-size")?,
        },
        seed_ratio: Limit {
            enabled: opt_bool(args, "seedRatioLimited")?,
            value: opt_ratio(args, "seedRatioLimit")?,
        },
        idle_seeding: Limit {
            enabled: opt_bool(args, "idle-seeding-limit-enabled")?,
            value: opt_u64(args, "idle-seeding-limit")?,
        },
        peer_limit_global: opt_u32(args, "peer-limit-global")?,
        peer_limit_per_torrent: opt_u32(args, "peer-limit-per-torrent")?,
        start_added_torrents: opt_bool(args, "start-added-torrents")?,
    })
}

/// `ids`: absent for all; a number; `"recently-active"`; one hash string
/// (as `transmission-remote -t HASH` sends it); or a list of numbers and
/// hash strings.
fn ids(args: &Args) -> Result<Ids, CallError> {
    const KEY: &str = "ids";
    let mut ids = Vec::new();
    let mut hashes = Vec::new();
    match present(args, KEY) {
        None => return Ok(Ids::All),
        Some(Value::String(s)) if s == "recently-active" => return Ok(Ids::RecentlyActive),
        Some(Value::Array(items)) => {
            if items.len() > MAX_LIST_LEN {
                return Err(CallError::BadArgument(KEY));
            }
            for item in items {
                id_item(item, &mut ids, &mut hashes)?;
            }
        }
        Some(one) => id_item(one, &mut ids, &mut hashes)?,
    }
    Ok(Ids::Some { ids, hashes })
}

/// One element of `ids`: an RPC id or an info-hash.
fn id_item(item: &Value, ids: &mut Vec<u64>, hashes: &mut Vec<String>) -> Result<(), CallError> {
    match item {
        Value::String(s) if s.len() == 40 && s.bytes().all(|b| b.is_ascii_hexdigit()) => {
            hashes.push(s.to_ascii_lowercase());
        }
        Value::Number(_) => ids.push(as_u64(item, "ids")?),
        _ => return Err(CallError::BadArgument("ids")),
    }
    Ok(())
}

/// The value of `key`, with `null` as absent.
fn present<'a>(args: &'a Args, key: &str) -> Option<&'a Value> {
    args.get(key).filter(|v| !v.is_null())
}

fn opt_string(args: &Args, key: &'static str) -> Result<Option<String>, CallError> {
    match present(args, key) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(CallError::BadArgument(key)),
    }
}

fn opt_bool(args: &Args, key: &'static str) -> Result<Option<bool>, CallError> {
    match present(args, key) {
        None => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err(CallError::BadArgument(key)),
    }
}

/// A list of strings, at most [`MAX_LIST_LEN`] long.
fn opt_strings(args: &Args, key: &'static str) -> Result<Option<Vec<String>>, CallError> {
    let Some(value) = present(args, key) else {
        return Ok(None);
    };
    let Value::Array(items) = value else {
        return Err(CallError::BadArgument(key));
    };
    if items.len() > MAX_LIST_LEN {
        return Err(CallError::BadArgument(key));
    }
    items
        .iter()
        .map(|item| match item {
            Value::String(s) => Ok(s.clone()),
            _ => Err(CallError::BadArgument(key)),
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

/// A whole number: a JSON integer, or a float with no fraction.
fn as_u64(value: &Value, key: &'static str) -> Result<u64, CallError> {
    /// 2^64 as a float: the first value past `u64::MAX`.
    const TWO_POW_64: f64 = 18_446_744_073_709_551_616.0;
    if let Some(n) = value.as_u64() {
        return Ok(n);
    }
    match value.as_f64() {
        Some(f) if value.is_f64() && f.fract() == 0.0 && (0.0..TWO_POW_64).contains(&f) => {
            // In range and whole: the conversion is exact.
            Ok(f as u64)
        }
        _ => Err(CallError::BadArgument(key)),
    }
}

fn opt_u64(args: &Args, key: &'static str) -> Result<Option<u64>, CallError> {
    present(args, key).map(|v| as_u64(v, key)).transpose()
}

fn opt_u32(args: &Args, key: &'static str) -> Result<Option<u32>, CallError> {
    opt_u64(args, key)?
        .map(|n| u32::try_from(n).map_err(|_| CallError::BadArgument(key)))
        .transpose()
}

/// A seeding mode: 0 global, 1 own, 2 unlimited.
fn opt_mode(args: &Args, key: &'static str) -> Result<Option<u8>, CallError> {
    match opt_u64(args, key)? {
        None => Ok(None),
        Some(n) if n <= 2 => u8::try_from(n)
            .map(Some)
            .map_err(|_| CallError::BadArgument(key)),
        Some(_) => Err(CallError::BadArgument(key)),
    }
}

/// A ratio: a finite number, not negative.
fn opt_ratio(args: &Args, key: &'static str) -> Result<Option<f64>, CallError> {
    match present(args, key) {
        None => Ok(None),
        Some(v) => match v.as_f64() {
            Some(f) if f.is_finite() && f >= 0.0 => Ok(Some(f)),
            _ => Err(CallError::BadArgument(key)),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids_of(ids: &[u64]) -> Ids {
        Ids::Some {
            ids: ids.to_vec(),
            hashes: vec![],
        }
    }

    fn strings(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    fn method(body: &str) -> Method {
        match parse_call(body.as_bytes()) {
            Ok(call) => call.method,
            Err(e) => panic!("{body}: {e:?}"),
        }
    }

    const HASH: &str = "0123456789abcdef0123456789abcdef01234567";
    const MAGNET: &str = "magnet:?xt=urn:btih:0123456789abcdef0123456789abcdef01234567";

    /// `transmission-remote -l` (3.00), as captured.
    const REMOTE_LIST: &str = r#"{"arguments":{"fields":["error","errorString","eta","id","isFinished","leftUntilDone","name","peersGettingFromUs","peersSendingToUs","rateDownload","rateUpload","sizeWhenDone","status","uploadRatio"]},"method":"torrent-get","tag":4}"#;

    #[test]
    fn transmission_remote_list_is_torrent_get_of_all_with_its_tag() {
        let call = parse_call(REMOTE_LIST.as_bytes()).unwrap();
        assert_eq!(call.tag, Some(Value::from(4)));
        let Method::TorrentGet { ids, fields, table } = call.method else {
            panic!("{:?}", call.method);
        };
        assert_eq!((ids, fields.len(), table), (Ids::All, 14, false));
        assert_eq!(fields[0], "error");
    }

    #[test]
    fn transmission_remote_requests_decode_to_their_methods() {
        let one = ids_of(&[1]);
        let cases: Vec<(&str, Method)> = vec![
            // -t 1 -f
            (
                r#"{"arguments":{"fields":["files","name","priorities","wanted"],"ids":1},"method":"torrent-get","tag":3}"#,
                Method::TorrentGet {
                    ids: one.clone(),
                    fields: strings(&["files", "name", "priorities", "wanted"]),
                    table: false,
                },
            ),
            // -t 1 -pi
            (
                r#"{"arguments":{"fields":["peers"],"ids":1},"method":"torrent-get","tag":5}"#,
                Method::TorrentGet {
                    ids: one.clone(),
                    fields: strings(&["peers"]),
                    table: false,
                },
            ),
            // -t 1 -it
            (
                r#"{"arguments":{"fields":["trackerStats"],"ids":1},"method":"torrent-get","tag":9}"#,
                Method::TorrentGet {
                    ids: one.clone(),
                    fields: strings(&["trackerStats"]),
                    table: false,
                },
            ),
            // -t active -l (fields cut short here)
            (
                r#"{"arguments":{"fields":["id","name"],"ids":"recently-active"},"method":"torrent-get","tag":4}"#,
                Method::TorrentGet {
                    ids: Ids::RecentlyActive,
                    fields: strings(&["id", "name"]),
                    table: false,
                },
            ),
            // -t 1 -s
            (
                r#"{"arguments":{"ids":1},"method":"torrent-start"}"#,
                Method::TorrentStart {
                    ids: one.clone(),
                    now: false,
                },
            ),
            // -t 1 -S
            (
                r#"{"arguments":{"ids":1},"method":"torrent-stop"}"#,
                Method::TorrentStop { ids: one.clone() },
            ),
            // -t 1,3-4 -S
            (
                r#"{"arguments":{"ids":[1,3,4]},"method":"torrent-stop"}"#,
                Method::TorrentStop {
                    ids: ids_of(&[1, 3, 4]),
                },
            ),
            // -t HASH -s: one bare hash string, in upper and lower case
            (
                r#"{"arguments":{"ids":"0123456789ABCDEF0123456789abcdef01234567"},"method":"torrent-start"}"#,
                Method::TorrentStart {
                    ids: Ids::Some {
                        ids: vec![],
                        hashes: vec![HASH.into()],
                    },
                    now: false,
                },
            ),
            // -t 1 -r
            (
                r#"{"arguments":{"delete-local-data":false,"ids":1},"method":"torrent-remove"}"#,
                Method::TorrentRemove {
                    ids: one.clone(),
                    delete_local_data: false,
                },
            ),
            // -t 1 --remove-and-delete
            (
                r#"{"arguments":{"delete-local-data":true,"ids":1},"method":"torrent-remove"}"#,
                Method::TorrentRemove {
                    ids: one.clone(),
                    delete_local_data: true,
                },
            ),
            // -t 1 -v
            (
                r#"{"arguments":{"ids":1},"method":"torrent-verify"}"#,
                Method::TorrentVerify { ids: one.clone() },
            ),
            // -t 1 --reannounce
            (
                r#"{"arguments":{"ids":1},"method":"torrent-reannounce"}"#,
                Method::TorrentReannounce { ids: one.clone() },
            ),
            // -a MAGNET
            (
                r#"{"arguments":{"filename":"magnet:?xt=urn:btih:0123456789abcdef0123456789abcdef01234567"},"method":"torrent-add","tag":8}"#,
                Method::TorrentAdd(AddArgs {
                    source: AddSource::Magnet(MAGNET.into()),
                    download_dir: None,
                    paused: false,
                }),
            ),
            // -a FILE (the base64 cut to its first 8 bytes: "d8:annou")
            (
                r#"{"arguments":{"metainfo":"ZDg6YW5ub3U="},"method":"torrent-add","tag":8}"#,
                Method::TorrentAdd(AddArgs {
                    source: AddSource::Metainfo(b"d8:annou".to_vec()),
                    download_dir: None,
                    paused: false,
                }),
            ),
            // -si
            (
                r#"{"method":"session-get","tag":0}"#,
                Method::SessionGet { fields: vec![] },
            ),
            // -st
            (
                r#"{"method":"session-stats","tag":1}"#,
                Method::SessionStats,
            ),
            // -t 1 -sr 1.5
            (
                r#"{"arguments":{"ids":1,"seedRatioLimit":1.5000,"seedRatioMode":1},"method":"torrent-set"}"#,
                Method::TorrentSet(TorrentSetArgs {
                    ids: one.clone(),
                    seed_ratio_limit: Some(1.5),
                    seed_ratio_mode: Some(1),
                    ..TorrentSetArgs::default()
                }),
            ),
            // -d 100
            (
                r#"{"arguments":{"speed-limit-down":100,"speed-limit-down-enabled":true},"method":"session-set"}"#,
                Method::SessionSet(SessionSetArgs {
                    speed_limit_down: Limit {
                        enabled: Some(true),
                        value: Some(100),
                    },
                    ..SessionSetArgs::default()
                }),
            ),
        ];
        for (body, want) in cases {
            assert_eq!(method(body), want, "{body}");
        }
    }

    #[test]
    fn transmission_remote_info_asks_for_its_49_fields() {
        // -t 1 -i, as captured.
        let body = r#"{"arguments":{"fields":["activityDate","addedDate","bandwidthPriority","comment","corruptEver","creator","dateCreated","desiredAvailable","doneDate","downloadDir","downloadedEver","downloadLimit","downloadLimited","error","errorString","eta","hashString","haveUnchecked","haveValid","honorsSessionLimits","id","isFinished","isPrivate","labels","leftUntilDone","magnetLink","name","peersConnected","peersGettingFromUs","peersSendingToUs","peer-limit","pieceCount","pieceSize","rateDownload","rateUpload","recheckProgress","secondsDownloading","secondsSeeding","seedRatioMode","seedRatioLimit","sizeWhenDone","startDate","status","totalSize","uploadedEver","uploadLimit","uploadLimited","webseeds","webseedsSendingToUs"],"ids":1},"method":"torrent-get","tag":2}"#;
        let Method::TorrentGet { ids, fields, .. } = method(body) else {
            panic!()
        };
        assert_eq!((ids, fields.len()), (ids_of(&[1]), 49));
    }

    #[test]
    fn python_transmission_rpc_requests_decode_to_their_methods() {
        // transmission-rpc 7.0.12: Client() connects with this session-get.
        let cases: Vec<(&str, Method)> = vec![
            (
                r#"{"method": "session-get", "arguments": {}}"#,
                Method::SessionGet { fields: vec![] },
            ),
            (
                r#"{"method": "torrent-start", "arguments": {"ids": ["0123456789abcdef0123456789abcdef01234567"]}}"#,
                Method::TorrentStart {
                    ids: Ids::Some {
                        ids: vec![],
                        hashes: vec![HASH.into()],
                    },
                    now: false,
                },
            ),
            (
                r#"{"method": "torrent-remove", "arguments": {"delete-local-data": true, "ids": [1]}}"#,
                Method::TorrentRemove {
                    ids: ids_of(&[1]),
                    delete_local_data: true,
                },
            ),
            (
                r#"{"method": "torrent-get", "arguments": {"fields": ["id", "peer-limit", "primary-mime-type", "file-count", "trackerList"], "ids": [1]}}"#,
                Method::TorrentGet {
                    ids: ids_of(&[1]),
                    fields: strings(&[
                        "id",
                        "peer-limit",
                        "primary-mime-type",
                        "file-count",
                        "trackerList",
                    ]),
                    table: false,
                },
            ),
        ];
        for (body, want) in cases {
            let call = parse_call(body.as_bytes()).unwrap();
            assert_eq!((call.method, call.tag), (want, None), "{body}");
        }
    }

    #[test]
    fn web_ui_requests_decode_to_their_methods() {
        // The 3.00 web UI (remote.js, transmission.js), fields cut short.
        let cases: Vec<(&str, Method)> = vec![
            (
                r#"{"method":"torrent-get","arguments":{"fields":["id","error"],"ids":"recently-active"}}"#,
                Method::TorrentGet {
                    ids: Ids::RecentlyActive,
                    fields: strings(&["id", "error"]),
                    table: false,
                },
            ),
            (
                r#"{"method":"torrent-start-now","arguments":{"ids":[2,5]}}"#,
                Method::TorrentStart {
                    ids: ids_of(&[2, 5]),
                    now: true,
                },
            ),
            (
                r#"{"method":"torrent-add","arguments":{"paused":true,"download-dir":"/srv/dl","metainfo":"ZDg6YW5ub3U="}}"#,
                Method::TorrentAdd(AddArgs {
                    source: AddSource::Metainfo(b"d8:annou".to_vec()),
                    download_dir: Some("/srv/dl".into()),
                    paused: true,
                }),
            ),
            (
                r#"{"method":"torrent-add","arguments":{"paused":false,"filename":"https://example.org/a.torrent"}}"#,
                Method::TorrentAdd(AddArgs {
                    source: AddSource::Url("https://example.org/a.torrent".into()),
                    download_dir: None,
                    paused: false,
                }),
            ),
            (
                r#"{"method":"torrent-set","arguments":{"ids":[3],"files-unwanted":[0,2]}}"#,
                Method::TorrentSet(TorrentSetArgs {
                    ids: ids_of(&[3]),
                    files_unwanted: true,
                    ..TorrentSetArgs::default()
                }),
            ),
            (
                r#"{"method":"torrent-set","arguments":{"ids":[3],"downloadLimit":100,"downloadLimited":true,"labels":["x"]}}"#,
                Method::TorrentSet(TorrentSetArgs {
                    ids: ids_of(&[3]),
                    unsupported: vec!["downloadLimit", "downloadLimited", "labels"],
                    ..TorrentSetArgs::default()
                }),
            ),
            (
                r#"{"method":"free-space","arguments":{"path":"/srv/dl"}}"#,
                Method::FreeSpace {
                    path: "/srv/dl".into(),
                },
            ),
            (
                r#"{"method":"queue-move-top","arguments":{"ids":[1]}}"#,
                Method::QueueMove {
                    ids: ids_of(&[1]),
                    to: QueueMove::Top,
                },
            ),
            (r#"{"method":"port-test"}"#, Method::PortTest),
            (r#"{"method":"blocklist-update"}"#, Method::BlocklistUpdate),
            (r#"{"method":"session-close"}"#, Method::SessionClose),
        ];
        for (body, want) in cases {
            assert_eq!(method(body), want, "{body}");
        }
    }

    #[test]
    fn every_session_set_key_is_read() {
        let body = r#"{"method":"session-set","arguments":{
            "download-dir":"/d","speed-limit-down":1,"speed-limit-down-enabled":false,
            "speed-limit-up":2,"speed-limit-up-enabled":true,"download-queue-size":3,
            "download-queue-enabled":true,"seed-queue-size":4,"seed-queue-enabled":false,
            "seedRatioLimit":2,"seedRatioLimited":true,"idle-seeding-limit":30,
            "idle-seeding-limit-enabled":true,"peer-limit-global":200,
            "peer-limit-per-torrent":50,"start-added-torrents":false,"utp-enabled":true}}"#;
        let want = SessionSetArgs {
            download_dir: Some("/d".into()),
            speed_limit_down: Limit {
                enabled: Some(false),
                value: Some(1),
            },
            speed_limit_up: Limit {
                enabled: Some(true),
                value: Some(2),
            },
            download_queue: Limit {
                enabled: Some(true),
                value: Some(3),
            },
            seed_queue: Limit {
                enabled: Some(false),
                value: Some(4),
            },
            seed_ratio: Limit {
                enabled: Some(true),
                value: Some(2.0),
            },
            idle_seeding: Limit {
                enabled: Some(true),
                value: Some(30),
            },
            peer_limit_global: Some(200),
            peer_limit_per_torrent: Some(50),
            start_added_torrents: Some(false),
        };
        assert_eq!(method(body), Method::SessionSet(want));
    }

    #[test]
    fn filename_scheme_picks_the_source() {
        let cases = [
            (
                "magnet:?xt=urn:btih:x",
                AddSource::Magnet("magnet:?xt=urn:btih:x".into()),
            ),
            ("MAGNET:?xt", AddSource::Magnet("MAGNET:?xt".into())),
            (
                "http://h/a.torrent",
                AddSource::Url("http://h/a.torrent".into()),
            ),
            ("HTTPS://h/a", AddSource::Url("HTTPS://h/a".into())),
            ("/home/a.torrent", AddSource::Path("/home/a.torrent".into())),
            ("magnet", AddSource::Path("magnet".into())),
            ("é", AddSource::Path("é".into())),
        ];
        for (name, want) in cases {
            let body =
                serde_json::json!({"method": "torrent-add", "arguments": {"filename": name}});
            let Method::TorrentAdd(add) = method(&body.to_string()) else {
                panic!()
            };
            assert_eq!(add.source, want, "{name}");
        }
    }

    #[test]
    fn ids_take_every_documented_shape() {
        let cases: Vec<(&str, Ids)> = vec![
            ("", Ids::All),
            (r#","ids":null"#, Ids::All),
            (r#","ids":7"#, ids_of(&[7])),
            (r#","ids":7.0"#, ids_of(&[7])),
            (r#","ids":[]"#, ids_of(&[])),
            (r#","ids":"recently-active""#, Ids::RecentlyActive),
            (
                r#","ids":[2,"0123456789ABCDEF0123456789ABCDEF01234567",9]"#,
                Ids::Some {
                    ids: vec![2, 9],
                    hashes: vec![HASH.into()],
                },
            ),
        ];
        for (ids, want) in cases {
            let body = format!(r#"{{"method":"torrent-stop","arguments":{{"x":0{ids}}}}}"#);
            assert_eq!(method(&body), Method::TorrentStop { ids: want }, "{body}");
        }
    }

    #[test]
    fn bad_arguments_are_named() {
        let too_many = format!(
            r#"{{"method":"torrent-stop","arguments":{{"ids":[{}0]}}}}"#,
            "0,".repeat(MAX_LIST_LEN)
        );
        let cases: Vec<(String, &str)> = [
            (r#"{"method":"torrent-stop","arguments":{"ids":-1}}"#, "ids"),
            (
                r#"{"method":"torrent-stop","arguments":{"ids":1.5}}"#,
                "ids",
            ),
            (
                r#"{"method":"torrent-stop","arguments":{"ids":"1"}}"#,
                "ids",
            ),
            (
                r#"{"method":"torrent-stop","arguments":{"ids":"recently_active"}}"#,
                "ids",
            ),
            (
                r#"{"method":"torrent-stop","arguments":{"ids":["0123"]}}"#,
                "ids",
            ),
            (
                r#"{"method":"torrent-stop","arguments":{"ids":[[1]]}}"#,
                "ids",
            ),
            (
                r#"{"method":"torrent-stop","arguments":{"ids":1e30}}"#,
                "ids",
            ),
            (r#"{"method":"torrent-get","arguments":{}}"#, "fields"),
            (
                r#"{"method":"torrent-get","arguments":{"fields":[]}}"#,
                "fields",
            ),
            (
                r#"{"method":"torrent-get","arguments":{"fields":"id"}}"#,
                "fields",
            ),
            (
                r#"{"method":"torrent-get","arguments":{"fields":[1]}}"#,
                "fields",
            ),
            (
                r#"{"method":"torrent-get","arguments":{"fields":["id"],"format":"csv"}}"#,
                "format",
            ),
            (
                r#"{"method":"torrent-add","arguments":{}}"#,
                "filename or metainfo",
            ),
            (
                r#"{"method":"torrent-add","arguments":{"filename":"a","metainfo":"ZA=="}}"#,
                "filename or metainfo",
            ),
            (
                r#"{"method":"torrent-add","arguments":{"metainfo":"Z!=="}}"#,
                "metainfo",
            ),
            (
                r#"{"method":"torrent-add","arguments":{"filename":3}}"#,
                "filename",
            ),
            (
                r#"{"method":"torrent-add","arguments":{"filename":"a","paused":"yes"}}"#,
                "paused",
            ),
            (
                r#"{"method":"torrent-remove","arguments":{"delete-local-data":1}}"#,
                "delete-local-data",
            ),
            (
                r#"{"method":"torrent-set","arguments":{"seedRatioMode":3}}"#,
                "seedRatioMode",
            ),
            (
                r#"{"method":"torrent-set","arguments":{"seedRatioLimit":-1}}"#,
                "seedRatioLimit",
            ),
            (
                r#"{"method":"torrent-set","arguments":{"seedIdleLimit":"30"}}"#,
                "seedIdleLimit",
            ),
            (
                r#"{"method":"torrent-set","arguments":{"files-unwanted":1}}"#,
                "files-unwanted",
            ),
            (
                r#"{"method":"session-set","arguments":{"peer-limit-global":4294967296}}"#,
                "peer-limit-global",
            ),
            (
                r#"{"method":"session-set","arguments":{"speed-limit-up":0.5}}"#,
                "speed-limit-up",
            ),
            (r#"{"method":"free-space","arguments":{}}"#, "path"),
            (r#"{"method":"session-get","arguments":[]}"#, "arguments"),
        ]
        .into_iter()
        .map(|(b, k)| (b.to_string(), k))
        .chain([(too_many, "ids")])
        .collect();
        for (body, key) in cases {
            assert_eq!(
                parse_call(body.as_bytes()),
                Err(CallError::BadArgument(key)),
                "{body}"
            );
        }
    }

    #[test]
    fn errors_keep_the_tag() {
        let body = br#"{"method":"torrent-get","arguments":{},"tag":12.5}"#;
        let want = CallError::Tagged(
            Box::new(CallError::BadArgument("fields")),
            Value::from(12.5),
        );
        assert_eq!(parse_call(body), Err(want.clone()));
        assert_eq!(want.to_string(), "invalid argument: fields");
        let body = br#"{"method":"torrent-fly","tag":3}"#;
        let Err(CallError::Tagged(inner, tag)) = parse_call(body) else {
            panic!()
        };
        assert_eq!(
            (*inner, tag),
            (
                CallError::UnknownMethod("torrent-fly".into()),
                Value::from(3)
            )
        );
        let body = br#"{"tag":3}"#;
        let want = CallError::Tagged(Box::new(CallError::NotARequest), Value::from(3));
        assert_eq!(parse_call(body), Err(want));
    }

    #[test]
    fn a_tag_that_is_not_a_number_is_dropped() {
        let call = parse_call(br#"{"method":"session-stats","tag":"x"}"#).unwrap();
        assert_eq!(call.tag, None);
    }

    #[test]
    fn malformed_bodies_are_refused_without_a_panic() {
        let cases: &[&[u8]] = &[
            b"",
            b"{",
            b"nul",
            b"\xff\xfe",
            b"{\"method\":\"session-get\"} x",
        ];
        for body in cases {
            assert!(
                matches!(parse_call(body), Err(CallError::BadJson(_))),
                "{body:?}"
            );
        }
        let cases: &[&[u8]] = &[
            b"[]",
            b"3",
            b"{}",
            br#"{"method":3}"#,
            br#"{"arguments":{}}"#,
        ];
        for body in cases {
            assert_eq!(parse_call(body), Err(CallError::NotARequest), "{body:?}");
        }
        assert!(matches!(
            parse_call(br#"{"method":"session-gets"}"#),
            Err(CallError::UnknownMethod(_))
        ));
        assert_eq!(
            CallError::UnknownMethod("x".into()).to_string(),
            "method name not recognized"
        );
    }

    #[test]
    fn nesting_is_capped_at_max_json_depth() {
        let nested = |depth: usize| {
            let inner = format!("{}{}", "[".repeat(depth - 2), "]".repeat(depth - 2));
            format!(r#"{{"method":"session-stats","arguments":{{"x":{inner}}}}}"#)
        };
        assert_eq!(method(&nested(MAX_JSON_DEPTH)), Method::SessionStats);
        let deep = nested(MAX_JSON_DEPTH + 1);
        assert!(matches!(
            parse_call(deep.as_bytes()),
            Err(CallError::BadJson(_))
        ));
        // Far past serde_json's own limit, and brackets inside strings
        // (with escaped quotes) do not count.
        let hostile = "[".repeat(100_000);
        assert!(matches!(
            parse_call(hostile.as_bytes()),
            Err(CallError::BadJson(_))
        ));
        let quoted = format!(
            r#"{{"method":"session-stats","tag":1,"x":"\"{}"}}"#,
            "[".repeat(100)
        );
        assert_eq!(method(&quoted), Method::SessionStats);
    }
}
