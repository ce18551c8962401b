//! One RPC request body (`{"method": ..., "arguments": {...}, "tag": N}`)
//! decoded into a typed [`Call`].
//!
//! Layer 0: pure. The body is untrusted JSON (at most
//! [`super::http::MAX_BODY_BYTES`], nesting at most [`MAX_JSON_DEPTH`]);
//! anything malformed is a [`CallError`] whose text goes back to the client
//! as the documented `result` string, never a panic. Unknown methods are
//! [`CallError::UnknownMethod`]; unknown argument keys are ignored, as
//! Transmission ignores them.

use serde_json::Value;

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
    /// A list of RPC ids and info-hashes (40 hex digits, lowercase).
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
    /// `files-unwanted` was sent and not empty (pollen downloads every file: refused).
    pub files_unwanted: bool,
}

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
    let _ = body;
    Err(CallError::NotARequest)
}
