//! Who may use the RPC: the checks every request passes before it is read
//! as a call, in Transmission's order and with its status codes.
//!
//! Layer 0: pure. In the order Transmission 4.0's `rpc-server.cc` applies
//! them ([`AccessPolicy::check`]):
//!
//! 1. The client's address must match the address allow-list (403).
//! 2. With credentials set, HTTP Basic (RFC 7617) must match them (401;
//!    compared in constant time).
//! 3. Without credentials, the `Host` header must be an IP literal,
//!    `localhost`, or match the host allow-list (421): a web page on
//!    another name that points at our address (DNS rebinding) is refused.
//!    With credentials set any `Host` is let in, as in Transmission: the
//!    rebinding page cannot supply them.
//! 4. An RPC request must carry the current `X-Transmission-Session-Id`
//!    (409, with the id in the answer's header): a page on another site
//!    cannot read it, so it cannot forge a call (CSRF).
//!
//! [`AccessPolicy::refusal_response`] writes the answer to each refusal.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::http::{Request, Response};

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
        write!(
            f,
            "Credentials {{ user: {:?}, password: <hidden> }}",
            self.user
        )
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
    /// Host names let in besides IP literals and `localhost`, when no
    /// credentials are set: exact names (any case), `*.example.org` for
    /// the names under `example.org` (not `example.org` itself), or `*`
    /// for any.
    pub allowed_hosts: Vec<String>,
    /// The current session id clients must send back.
    pub session_id: String,
}

/// Why a request is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The client's address is not on the allow-list (403).
    Address(IpAddr),
    /// The `Host` header is missing (`""`) or names a host not allowed
    /// (421); at most [`MAX_SHOWN_HOST_LEN`] characters of it are kept.
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

/// How much of a refused `Host` header [`Refusal::Host`] keeps, for the
/// log: the longest DNS name, so a 16 KiB header does not flood it.
pub const MAX_SHOWN_HOST_LEN: usize = 253;

/// The realm named in a 401's `WWW-Authenticate`.
pub const REALM: &str = "pollen";

impl AccessPolicy {
    /// Whether a connection from `ip` may be served at all (checked at
    /// accept, and again by [`AccessPolicy::check`]).
    ///
    /// An empty allow-list lets every address in; loopback is not let in
    /// by itself when a list is set (the daemon adds `127.0.0.1` and `::1`
    /// to its list). An IPv4-mapped IPv6 address (`::ffff:10.0.0.1`, what
    /// a dual-stack listener reports for IPv4 clients) is matched as its
    /// IPv4 address. A pattern that does not parse (see
    /// [`is_address_pattern`]) matches nothing.
    pub fn check_address(&self, ip: IpAddr) -> Result<(), Refusal> {
        let ip = ip.to_canonical();
        if self.allowed_addresses.is_empty()
            || self
                .allowed_addresses
                .iter()
                .any(|pattern| address_matches(ip, pattern))
        {
            Ok(())
        } else {
            Err(Refusal::Address(ip))
        }
    }

    /// Checks one request: credentials, then `Host`, then, when `rpc`
    /// (the request is for [`super::RPC_PATH`]), the session id.
    ///
    /// A request without a `Host` header is refused when the Host check
    /// applies (no credentials set), HTTP/1.0 or not: the request does
    /// not say its version, and every client pollen serves sends one.
    pub fn check_request(&self, request: &Request, rpc: bool) -> Result<(), Refusal> {
        if !self.is_authorized(request) {
            return Err(Refusal::Unauthorized);
        }
        if self.credentials.is_none() {
            let host = request.header("host").unwrap_or_default();
            if !self.is_host_allowed(host) {
                return Err(Refusal::Host(
                    host.chars().take(MAX_SHOWN_HOST_LEN).collect(),
                ));
            }
        }
        if rpc && !self.has_session_id(request) {
            return Err(Refusal::SessionId);
        }
        Ok(())
    }

    /// All the checks, in Transmission's order: address (403),
    /// credentials (401), `Host` (421), then, when `rpc`, the session id
    /// (409).
    pub fn check(&self, ip: IpAddr, request: &Request, rpc: bool) -> Result<(), Refusal> {
        self.check_address(ip)?;
        self.check_request(request, rpc)
    }

    /// The answer to a refused request. Only the 409 carries the session
    /// id: a client refused for its address, its `Host` or its
    /// credentials must not learn it.
    pub fn refusal_response(&self, refusal: &Refusal) -> Response {
        let text = |status: u16, line: &str| {
            Response::new(
                status,
                "text/plain; charset=utf-8",
                format!("{line}\n").into_bytes(),
            )
        };
        match refusal {
            Refusal::Address(_) => text(403, &format!("Forbidden: {refusal}.")),
            Refusal::Host(_) => text(
                421,
                "Misdirected request: this server does not answer to that host name \
                 (use its address, or add the name to the allowed hosts).",
            ),
            Refusal::Unauthorized => {
                text(401, "Unauthorized: a user name and password are needed.")
                    .with_header("WWW-Authenticate", &format!("Basic realm=\"{REALM}\""))
            }
            Refusal::SessionId => self.session_id_response(),
        }
    }

    /// The 409 that hands a client the session id.
    fn session_id_response(&self) -> Response {
        let id = escape_html(&self.session_id);
        let body = format!(
            "<html><head><title>409 Conflict</title></head><body>\
             <h1>409: session id needed</h1>\
             <p>Every RPC request must carry the header \
             <code>{SESSION_ID_HEADER}</code> with the current session id. \
             Take it from this answer's header of that name, send the request \
             again with it, and again whenever an answer is a 409 like this one \
             (the id changes when the server restarts).</p>\
             <p>Web pages on other sites cannot read the id, so they cannot \
             make calls on your behalf (cross-site request forgery).</p>\
             <p><code>{SESSION_ID_HEADER}: {id}</code></p></body></html>\n"
        );
        Response::new(409, "text/html; charset=utf-8", body.into_bytes())
            .with_header(SESSION_ID_HEADER, &self.session_id)
            .with_header("Access-Control-Expose-Headers", SESSION_ID_HEADER)
    }

    /// Whether the request's HTTP Basic credentials match: always, when
    /// none are set (any `Authorization` is then ignored).
    fn is_authorized(&self, request: &Request) -> bool {
        let Some(expected) = &self.credentials else {
            return true;
        };
        let Some((user, password)) = request.header("authorization").and_then(basic_credentials)
        else {
            return false;
        };
        // `&`, not `&&`: both are compared whatever the first gives.
        constant_time_eq(&user, expected.user.as_bytes())
            & constant_time_eq(&password, expected.password.as_bytes())
    }

    /// Whether the request carries the current session id (an empty
    /// [`AccessPolicy::session_id`] matches nothing).
    fn has_session_id(&self, request: &Request) -> bool {
        !self.session_id.is_empty()
            && request
                .header(SESSION_ID_HEADER)
                .is_some_and(|id| constant_time_eq(id.as_bytes(), self.session_id.as_bytes()))
    }

    /// Whether a `Host` header value (`name`, `name:port`, `1.2.3.4:80`,
    /// `[::1]:9091`) names a host we answer to.
    fn is_host_allowed(&self, host: &str) -> bool {
        let Some(name) = host_name(host) else {
            return false;
        };
        match name {
            HostName::Ip => true,
            HostName::Name(name) => {
                name == "localhost"
                    || name == "localhost."
                    || self
                        .allowed_hosts
                        .iter()
                        .any(|pattern| host_matches(&name, pattern))
            }
        }
    }
}

/// Whether `pattern` is an address allow-list entry that can match: four
/// dot-separated IPv4 octets, each a decimal number up to 255 or `*`, or
/// an IPv6 address.
pub fn is_address_pattern(pattern: &str) -> bool {
    let pattern = pattern.trim();
    if pattern.contains(':') {
        pattern.parse::<Ipv6Addr>().is_ok()
    } else {
        ipv4_pattern(pattern).is_some()
    }
}

/// One octet of an IPv4 pattern: any (`*`) or this value.
type OctetPattern = Option<u8>;

/// An IPv4 pattern's four octets, if it is one.
fn ipv4_pattern(pattern: &str) -> Option<[OctetPattern; 4]> {
    let mut octets = [None; 4];
    let mut parts = pattern.split('.');
    for octet in &mut octets {
        let part = parts.next()?;
        *octet = if part == "*" {
            None
        } else if !part.is_empty() && part.len() <= 3 && part.bytes().all(|b| b.is_ascii_digit()) {
            Some(part.parse::<u8>().ok()?)
        } else {
            return None;
        };
    }
    parts.next().is_none().then_some(octets)
}

/// Whether the (canonical) address `ip` matches an allow-list entry.
fn address_matches(ip: IpAddr, pattern: &str) -> bool {
    let pattern = pattern.trim();
    match ip {
        IpAddr::V4(ip) => match ipv4_pattern(pattern) {
            Some(octets) => octets
                .iter()
                .zip(ip.octets())
                .all(|(want, got)| want.is_none_or(|want| want == got)),
            None => pattern
                .parse::<Ipv6Addr>()
                .is_ok_and(|p| IpAddr::V6(p).to_canonical() == IpAddr::V4(ip)),
        },
        IpAddr::V6(ip) => pattern.parse::<Ipv6Addr>().is_ok_and(|p| p == ip),
    }
}

/// What a `Host` header names, its port cut off.
enum HostName {
    /// An IPv4 or IPv6 literal.
    Ip,
    /// A name, lowercased.
    Name(String),
}

/// The host in a `Host` header value, or `None` if it does not parse (an
/// empty value, a bad port, an unclosed `[`).
fn host_name(host: &str) -> Option<HostName> {
    if let Some(bracketed) = host.strip_prefix('[') {
        let (inside, after) = bracketed.split_once(']')?;
        inside.parse::<Ipv6Addr>().ok()?;
        return port_suffix_ok(after).then_some(HostName::Ip);
    }
    if host.parse::<IpAddr>().is_ok() {
        return Some(HostName::Ip); // a bare IPv6 literal, too
    }
    let (name, after) = match host.find(':') {
        Some(colon) => (host.get(..colon)?, host.get(colon..)?),
        None => (host, ""),
    };
    if name.is_empty() || !port_suffix_ok(after) {
        return None;
    }
    if name.parse::<Ipv4Addr>().is_ok() {
        return Some(HostName::Ip);
    }
    Some(HostName::Name(name.to_ascii_lowercase()))
}

/// Whether what follows the host is nothing, `:` or `:` and a port.
fn port_suffix_ok(after: &str) -> bool {
    match after.strip_prefix(':') {
        None => after.is_empty(),
        Some(port) => {
            port.is_empty()
                || (port.bytes().all(|b| b.is_ascii_digit()) && port.parse::<u16>().is_ok())
        }
    }
}

/// Whether a lowercased host name matches a host allow-list entry: `*`,
/// `*.example.org` (names under it) or an exact name, any case, a
/// trailing dot on either side ignored.
fn host_matches(name: &str, pattern: &str) -> bool {
    let name = name.strip_suffix('.').unwrap_or(name);
    let pattern = pattern.trim().to_ascii_lowercase();
    let pattern = pattern.strip_suffix('.').unwrap_or(&pattern);
    if pattern == "*" {
        return true;
    }
    match pattern.strip_prefix("*.") {
        Some(domain) => name
            .strip_suffix(domain)
            .and_then(|sub| sub.strip_suffix('.'))
            .is_some_and(|sub| !sub.is_empty()),
        None => !pattern.is_empty() && name == pattern,
    }
}

/// The user and password of an `Authorization: Basic ...` value (scheme
/// any case), split at the first `:` (RFC 7617 §2).
fn basic_credentials(value: &str) -> Option<(Vec<u8>, Vec<u8>)> {
    let (scheme, token) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = super::base64::decode(token.trim().as_bytes()).ok()?;
    let colon = decoded.iter().position(|&b| b == b':')?;
    let user = decoded.get(..colon)?.to_vec();
    let password = decoded.get(colon.saturating_add(1)..)?.to_vec();
    Some((user, password))
}

/// Whether `given` equals `expected`, in a time that depends only on
/// `expected`'s length, not on where the first difference is: every byte
/// of `expected` is XORed with the byte at its place in `given` (zero past
/// `given`'s end) and the differences ORed together. Different lengths
/// are unequal; the loop still runs over all of `expected`. The length of
/// the secret itself may show in the timing; its contents do not.
fn constant_time_eq(given: &[u8], expected: &[u8]) -> bool {
    let mut diff = u8::from(given.len() != expected.len());
    let padded = given.iter().copied().chain(std::iter::repeat(0));
    for (want, got) in expected.iter().zip(padded) {
        diff |= want ^ got;
    }
    std::hint::black_box(diff) == 0
}

/// `text` with `&`, `<`, `>` and `"` escaped, for an HTML body.
fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            _ => out.push(c),
        }
    }
    out
}

/// A fresh session id: 24 random bytes as 48 lowercase hex digits.
pub fn session_id(random: [u8; 24]) -> String {
    random.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "0123456789abcdef0123456789abcdef0123456789abcdef";

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
    }

    fn policy() -> AccessPolicy {
        AccessPolicy {
            session_id: ID.to_owned(),
            ..AccessPolicy::default()
        }
    }

    fn with_credentials() -> AccessPolicy {
        AccessPolicy {
            credentials: Some(Credentials {
                user: "alice".into(),
                password: "s3cret:pass".into(),
            }),
            ..policy()
        }
    }

    fn request(headers: &[(&str, &str)]) -> Request {
        Request {
            method: "POST".into(),
            path: super::super::RPC_PATH.into(),
            headers: headers
                .iter()
                .map(|(n, v)| (n.to_ascii_lowercase(), (*v).to_owned()))
                .collect(),
            ..Request::default()
        }
    }

    /// `Authorization: Basic base64(user:password)`, encoded by hand here
    /// so the spec does not lean on the decoder it checks.
    fn basic(user_password: &str) -> String {
        const DIGITS: &[u8; 64] =
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut out = String::from("Basic ");
        for chunk in user_password.as_bytes().chunks(3) {
            let b = [0, 1, 2].map(|i| chunk.get(i).copied().unwrap_or(0));
            let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
            for (i, shift) in [18u32, 12, 6, 0].iter().enumerate() {
                if i <= chunk.len() {
                    let index = usize::try_from((n >> shift) & 63).unwrap_or(0);
                    out.push(char::from(DIGITS.get(index).copied().unwrap_or(b'A')));
                } else {
                    out.push('=');
                }
            }
        }
        out
    }

    fn allowing(addresses: &[&str]) -> AccessPolicy {
        AccessPolicy {
            allowed_addresses: addresses.iter().map(|a| (*a).to_owned()).collect(),
            ..policy()
        }
    }

    fn hosts(allowed: &[&str]) -> AccessPolicy {
        AccessPolicy {
            allowed_hosts: allowed.iter().map(|a| (*a).to_owned()).collect(),
            ..policy()
        }
    }

    fn host_ok(policy: &AccessPolicy, host: &str) -> bool {
        policy
            .check_request(&request(&[("Host", host)]), false)
            .is_ok()
    }

    #[test]
    fn address_empty_list_lets_everyone_in() {
        for a in ["127.0.0.1", "8.8.8.8", "::1", "2001:db8::1"] {
            assert_eq!(policy().check_address(ip(a)), Ok(()), "{a}");
        }
    }

    #[test]
    fn address_ipv4_patterns_match_octet_by_octet_with_wildcards() {
        let p = allowing(&["192.168.*.*", "10.0.0.1", " 172.16.*.9 "]);
        for a in ["192.168.0.1", "192.168.255.255", "10.0.0.1", "172.16.200.9"] {
            assert_eq!(p.check_address(ip(a)), Ok(()), "{a}");
        }
        for a in ["192.169.0.1", "10.0.0.2", "172.16.200.10", "1.2.3.4", "::1"] {
            assert_eq!(p.check_address(ip(a)), Err(Refusal::Address(ip(a))), "{a}");
        }
    }

    #[test]
    fn address_loopback_is_not_let_in_by_itself() {
        let p = allowing(&["192.168.1.*"]);
        assert!(p.check_address(ip("127.0.0.1")).is_err());
        assert!(p.check_address(ip("::1")).is_err());
        let p = allowing(&["192.168.1.*", "127.0.0.1", "::1"]);
        assert!(p.check_address(ip("127.0.0.1")).is_ok());
        assert!(p.check_address(ip("::1")).is_ok());
    }

    #[test]
    fn address_ipv6_matches_exactly_as_parsed() {
        let p = allowing(&["2001:DB8:0:0::1"]);
        assert!(p.check_address(ip("2001:db8::1")).is_ok());
        assert!(p.check_address(ip("2001:db8::2")).is_err());
    }

    #[test]
    fn address_ipv4_mapped_ipv6_is_matched_as_ipv4() {
        let p = allowing(&["192.168.*.*"]);
        assert!(p.check_address(ip("::ffff:192.168.3.4")).is_ok());
        assert_eq!(
            p.check_address(ip("::ffff:10.0.0.1")),
            Err(Refusal::Address(ip("10.0.0.1")))
        );
        // A mapped pattern stands for its IPv4 address.
        let p = allowing(&["::ffff:10.0.0.1"]);
        assert!(p.check_address(ip("10.0.0.1")).is_ok());
        assert!(p.check_address(ip("::ffff:10.0.0.1")).is_ok());
    }

    #[test]
    fn address_bad_patterns_match_nothing() {
        let bad = [
            "",
            "*",
            "192.168.*",
            "192.168.1.1.1",
            "256.0.0.1",
            "1.2.3.-1",
            "1.2.3.1*",
            "::g",
        ];
        for pattern in bad {
            assert!(!is_address_pattern(pattern), "{pattern}");
        }
        let p = allowing(&bad);
        assert!(p.check_address(ip("192.168.1.1")).is_err());
        for pattern in ["*.*.*.*", "127.0.0.1", "::1", "fe80::1", "010.0.0.1"] {
            assert!(is_address_pattern(pattern), "{pattern}");
        }
    }

    #[test]
    fn host_ip_literals_and_localhost_are_let_in() {
        let p = policy();
        for host in [
            "127.0.0.1",
            "127.0.0.1:9091",
            "192.168.1.20:80",
            "[::1]:9091",
            "[::1]",
            "[2001:db8::1]:",
            "::1",
            "localhost",
            "localhost:9091",
            "LocalHost:9091",
            "localhost.",
            "localhost.:9091",
        ] {
            assert!(host_ok(&p, host), "{host}");
        }
    }

    #[test]
    fn host_other_names_are_refused_with_421() {
        let p = policy();
        for host in [
            "evil.example",
            "evil.example:9091",
            "localhost.evil",
            "127.0.0.1.evil",
        ] {
            let refused = p.check_request(&request(&[("Host", host)]), false);
            assert_eq!(refused, Err(Refusal::Host(host.into())), "{host}");
        }
    }

    #[test]
    fn host_missing_or_broken_is_refused() {
        let p = policy();
        assert_eq!(
            p.check_request(&request(&[]), false),
            Err(Refusal::Host(String::new()))
        );
        for host in [
            "",
            "[::1",
            "[::1]x",
            "[nothost]:1",
            "h:port",
            "h:99999",
            ":9091",
            "h:+1",
        ] {
            assert!(!host_ok(&p, host), "{host}");
        }
    }

    #[test]
    fn host_allow_list_matches_exact_names_and_subdomains() {
        let p = hosts(&["NAS.lan", "*.example.org", "box.home."]);
        for host in [
            "nas.lan",
            "nas.LAN:9091",
            "a.example.org",
            "a.b.Example.org:1",
            "box.home",
            "box.home.:9091",
        ] {
            assert!(host_ok(&p, host), "{host}");
        }
        for host in [
            "example.org",
            "xexample.org",
            "nas.lan.evil",
            "evil.nas.lan",
            ".example.org",
        ] {
            assert!(!host_ok(&p, host), "{host}");
        }
        assert!(host_ok(&hosts(&["*"]), "anything.at.all"));
        assert!(!host_ok(&hosts(&[""]), "x"));
    }

    #[test]
    fn host_refusal_keeps_a_bounded_part_of_the_header() {
        let long = "a".repeat(5000);
        match policy().check_request(&request(&[("Host", &long)]), false) {
            Err(Refusal::Host(shown)) => assert_eq!(shown.len(), MAX_SHOWN_HOST_LEN),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn host_is_not_checked_when_credentials_are_set() {
        let p = with_credentials();
        let good = basic("alice:s3cret:pass");
        let r = request(&[("Host", "evil.example"), ("Authorization", &good)]);
        assert_eq!(p.check_request(&r, false), Ok(()));
    }

    #[test]
    fn basic_auth_lets_the_right_user_and_password_in() {
        let p = with_credentials();
        let good = basic("alice:s3cret:pass");
        assert_eq!(good, "Basic YWxpY2U6czNjcmV0OnBhc3M=");
        let lower = good.replacen("Basic", "basic", 1);
        let spaced = good.replacen("Basic ", "BASIC   ", 1);
        let unpadded = good.trim_end_matches('=').to_owned();
        for auth in [&good, &lower, &spaced, &unpadded] {
            let r = request(&[("Host", "localhost"), ("Authorization", auth)]);
            assert_eq!(p.check_request(&r, false), Ok(()), "{auth}");
        }
    }

    #[test]
    fn basic_auth_refuses_wrong_missing_or_broken_credentials() {
        let p = with_credentials();
        let wrong = [
            basic("alice:s3cret:pasS"),
            basic("alice:s3cret"),
            basic("alice:s3cret:pass "),
            basic("Alice:s3cret:pass"),
            basic("alic:s3cret:pass"),
            basic("alices3cret:pass"),
            basic(":"),
            basic(""),
            "Basic".into(),
            "Basic !!!!".into(),
            "Basic YWxpY2U6czNjcmV0OnBhc3M=x".into(),
            "Bearer YWxpY2U6czNjcmV0OnBhc3M=".into(),
            "YWxpY2U6czNjcmV0OnBhc3M=".into(),
        ];
        for auth in &wrong {
            let r = request(&[("Host", "localhost"), ("Authorization", auth)]);
            assert_eq!(
                p.check_request(&r, false),
                Err(Refusal::Unauthorized),
                "{auth}"
            );
        }
        let r = request(&[("Host", "localhost")]);
        assert_eq!(p.check_request(&r, false), Err(Refusal::Unauthorized));
    }

    #[test]
    fn basic_auth_is_ignored_without_credentials() {
        let r = request(&[
            ("Host", "localhost"),
            ("Authorization", "Basic Z2FyYmFnZQ=="),
        ]);
        assert_eq!(policy().check_request(&r, false), Ok(()));
        let r = request(&[("Host", "localhost"), ("Authorization", "nonsense")]);
        assert_eq!(policy().check_request(&r, false), Ok(()));
    }

    #[test]
    fn session_id_is_needed_only_for_rpc_and_must_match_exactly() {
        let p = policy();
        let bare = request(&[("Host", "localhost")]);
        assert_eq!(p.check_request(&bare, false), Ok(()));
        assert_eq!(p.check_request(&bare, true), Err(Refusal::SessionId));
        let good = request(&[("Host", "localhost"), ("x-transmission-session-id", ID)]);
        assert_eq!(p.check_request(&good, true), Ok(()));
        let upper = ID.to_ascii_uppercase();
        let short = ID.get(..47).unwrap_or_default().to_owned();
        let long = format!("{ID}0");
        for id in [upper.as_str(), short.as_str(), long.as_str(), ""] {
            let r = request(&[("Host", "localhost"), (SESSION_ID_HEADER, id)]);
            assert_eq!(p.check_request(&r, true), Err(Refusal::SessionId), "{id}");
        }
    }

    #[test]
    fn session_id_empty_in_the_policy_matches_nothing() {
        let p = AccessPolicy::default();
        let r = request(&[("Host", "localhost"), (SESSION_ID_HEADER, "")]);
        assert_eq!(p.check_request(&r, true), Err(Refusal::SessionId));
    }

    #[test]
    fn order_refused_address_with_good_credentials_is_403() {
        let p = AccessPolicy {
            allowed_addresses: vec!["10.*.*.*".into()],
            ..with_credentials()
        };
        let good = basic("alice:s3cret:pass");
        let r = request(&[
            ("Host", "localhost"),
            ("Authorization", &good),
            (SESSION_ID_HEADER, ID),
        ]);
        let refused = p.check(ip("192.168.1.2"), &r, true);
        assert_eq!(refused, Err(Refusal::Address(ip("192.168.1.2"))));
        assert_eq!(refused.map_err(|e| e.status()), Err(403));
        assert_eq!(p.check(ip("10.1.2.3"), &r, true), Ok(()));
    }

    #[test]
    fn order_wrong_password_and_no_session_id_is_401_not_409() {
        let p = with_credentials();
        let bad = basic("alice:nope");
        let r = request(&[("Host", "localhost"), ("Authorization", &bad)]);
        assert_eq!(
            p.check(ip("127.0.0.1"), &r, true),
            Err(Refusal::Unauthorized)
        );
    }

    #[test]
    fn order_good_credentials_and_no_session_id_is_409() {
        let p = with_credentials();
        let good = basic("alice:s3cret:pass");
        let r = request(&[("Host", "localhost"), ("Authorization", &good)]);
        let refused = p.check(ip("127.0.0.1"), &r, true);
        assert_eq!(refused, Err(Refusal::SessionId));
        let response = p.refusal_response(&Refusal::SessionId);
        assert_eq!(response.status, 409);
        assert!(response
            .headers
            .contains(&(SESSION_ID_HEADER.to_owned(), ID.to_owned())));
    }

    #[test]
    fn order_bad_host_and_no_session_id_is_421_not_409() {
        let r = request(&[("Host", "evil.example")]);
        assert_eq!(
            policy().check(ip("127.0.0.1"), &r, true),
            Err(Refusal::Host("evil.example".into()))
        );
    }

    #[test]
    fn order_bad_host_and_wrong_password_is_401_as_in_transmission() {
        // Transmission checks credentials before the Host.
        let p = AccessPolicy {
            credentials: with_credentials().credentials,
            ..hosts(&[])
        };
        let r = request(&[("Host", "evil.example"), ("Authorization", "Basic eDp5")]);
        assert_eq!(
            p.check(ip("127.0.0.1"), &r, true),
            Err(Refusal::Unauthorized)
        );
    }

    #[test]
    fn refusal_409_carries_the_id_and_says_how_to_send_it() {
        let response = policy().refusal_response(&Refusal::SessionId);
        let bytes = response.to_bytes(true);
        let text = String::from_utf8_lossy(&bytes);
        assert!(text.starts_with("HTTP/1.1 409 Conflict\r\n"));
        assert!(text.contains(&format!("\r\nX-Transmission-Session-Id: {ID}\r\n")));
        assert!(text.contains("Content-Type: text/html"));
        let body = String::from_utf8_lossy(&response.body);
        assert!(body.contains(SESSION_ID_HEADER));
        assert!(body.contains(ID));
    }

    #[test]
    fn refusal_401_asks_for_basic_and_hides_the_id() {
        let response = policy().refusal_response(&Refusal::Unauthorized);
        assert_eq!(response.status, 401);
        assert!(response.headers.contains(&(
            "WWW-Authenticate".to_owned(),
            "Basic realm=\"pollen\"".to_owned()
        )));
        assert_no_id(&response);
    }

    #[test]
    fn refusal_403_and_421_are_one_line_of_text_without_the_id() {
        for refusal in [
            Refusal::Address(ip("1.2.3.4")),
            Refusal::Host("evil".into()),
        ] {
            let response = policy().refusal_response(&refusal);
            assert_eq!(response.status, refusal.status());
            let body = String::from_utf8_lossy(&response.body);
            assert_eq!(body.lines().count(), 1, "{body}");
            assert!(body.ends_with('\n'));
            assert!(response
                .headers
                .iter()
                .any(|(n, v)| n == "Content-Type" && v.starts_with("text/plain")));
            assert_no_id(&response);
        }
    }

    fn assert_no_id(response: &Response) {
        let bytes = response.to_bytes(true);
        let text = String::from_utf8_lossy(&bytes);
        assert!(!text.contains(ID), "{text}");
        assert!(
            !text
                .to_ascii_lowercase()
                .contains("x-transmission-session-id"),
            "{text}"
        );
    }

    #[test]
    fn refusal_statuses_are_transmissions() {
        assert_eq!(Refusal::Address(ip("1.2.3.4")).status(), 403);
        assert_eq!(Refusal::Host(String::new()).status(), 421);
        assert_eq!(Refusal::Unauthorized.status(), 401);
        assert_eq!(Refusal::SessionId.status(), 409);
    }

    #[test]
    fn constant_time_eq_compares_whole_strings() {
        assert!(constant_time_eq(b"", b""));
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abd", b"abc"));
        assert!(!constant_time_eq(b"ab", b"abc"));
        assert!(!constant_time_eq(b"abc", b"ab"));
        assert!(!constant_time_eq(b"ab\0", b"ab"));
        assert!(!constant_time_eq(b"ab", b"ab\0"));
        assert!(!constant_time_eq(b"x", b""));
    }

    #[test]
    fn credentials_debug_hides_the_password() {
        let shown = format!("{:?}", with_credentials());
        assert!(shown.contains("alice"));
        assert!(!shown.contains("s3cret"));
    }

    #[test]
    fn session_id_is_48_hex_digits() {
        let id = session_id([0xab; 24]);
        assert_eq!(id.len(), 48);
        assert!(id
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
    }
}
