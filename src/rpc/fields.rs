//! The answers' `arguments`: `torrent-get`'s torrents, field by field (as
//! objects or, with `format: "table"`, as rows), `session-get`'s settings
//! and `session-stats`' totals, with Transmission's field names and units.
//!
//! Layer 0: pure, from the plain values of [`super::view`]. A field name
//! pollen does not know is left out of the answer (Transmission does the
//! same), never an error.

use serde_json::{Map, Value};

use super::view::{SessionStats, SessionView, TorrentView};

/// `torrent-get`'s `arguments`: `{"torrents": [...]}` with `fields` of each
/// torrent (objects), or with `table` a first row of the field names then
/// one row of values per torrent. `removed` lists the RPC ids of torrents
/// removed lately (asked with `ids: "recently-active"`).
pub fn torrent_get(
    torrents: &[TorrentView],
    fields: &[String],
    table: bool,
    removed: Option<&[u64]>,
) -> Map<String, Value> {
    let _ = (torrents, fields, table, removed);
    Map::new()
}

/// `session-get`'s `arguments`: the asked `fields` (every one when empty).
pub fn session_get(session: &SessionView, fields: &[String]) -> Map<String, Value> {
    let _ = (session, fields);
    Map::new()
}

/// `session-stats`' `arguments`.
pub fn session_stats(stats: &SessionStats) -> Map<String, Value> {
    let _ = stats;
    Map::new()
}

/// A whole answer: `{"result": result, "arguments": arguments, "tag": tag}`
/// as bytes (`tag` left out when the request had none).
pub fn answer(result: &str, arguments: Map<String, Value>, tag: Option<&Value>) -> Vec<u8> {
    let mut body = Map::new();
    body.insert("result".into(), Value::String(result.into()));
    body.insert("arguments".into(), Value::Object(arguments));
    if let Some(tag) = tag {
        body.insert("tag".into(), tag.clone());
    }
    Value::Object(body).to_string().into_bytes()
}
