//! The remote control: Transmission's RPC protocol (rpc-version 17, as
//! Transmission 4.0 speaks it) over HTTP, so `transmission-remote`, the
//! Transmission web UI, desktop and phone front-ends drive `pollen daemon`
//! unchanged; and pollen's own small status page.
//!
//! Layer 0: pure. Bytes in, values out; nothing here touches a socket, a
//! file or the clock. The session (`session/rpc.rs`) owns the listener and
//! the connections, feeds their bytes to [`http`], checks each request with
//! [`access`], decodes the JSON body with [`call`], carries the call out
//! against its torrents and renders the answer with [`fields`] from the
//! plain values of [`view`].
//!
//! | file | what |
//! | --- | --- |
//! | `http.rs` | HTTP/1.1 request parsing under hard caps; responses as bytes |
//! | `access.rs` | who gets in: Basic auth, the `X-Transmission-Session-Id` handshake, Host and address allow-lists |
//! | `call.rs` | a JSON request body to a typed [`call::Call`] |
//! | `fields.rs` | `torrent-get` / `session-get` / `session-stats` answers, field by field |
//! | `view.rs` | the plain values a torrent and the session show |
//! | `base64.rs` | `torrent-add`'s `metainfo` |
//! | `web.rs` | the built-in status page, and paths under a web UI folder |

pub mod access;
pub mod base64;
pub mod call;
pub mod fields;
pub mod http;
pub mod view;
pub mod web;

/// The RPC version pollen speaks (`rpc-version`): Transmission 4.0's.
pub const RPC_VERSION: u32 = 17;

/// The oldest RPC version whose clients pollen serves (`rpc-version-minimum`).
pub const RPC_VERSION_MINIMUM: u32 = 14;

/// The version string front-ends show (`version`).
pub const VERSION_STRING: &str = concat!("pollen ", env!("CARGO_PKG_VERSION"));

/// Where the RPC is served (Transmission's default `rpc-url` plus `rpc`).
pub const RPC_PATH: &str = "/transmission/rpc";

/// Whether a request path is the RPC's: [`RPC_PATH`], with or without a
/// trailing slash (`transmission-remote` 3.00 posts to `/transmission/rpc/`).
pub fn is_rpc_path(path: &str) -> bool {
    path.strip_suffix('/').unwrap_or(path) == RPC_PATH
}

/// Where the Transmission web UI's files are served, when there are any.
pub const WEB_UI_PATH: &str = "/transmission/web/";
