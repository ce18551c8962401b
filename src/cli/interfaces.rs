//! This machine's interface addresses, for the URLs `pollen tracker`
//! prints when it listens on every address (`0.0.0.0` or `::`): a URL
//! with `0.0.0.0` in it is of no use to another machine.
//!
//! Layer 3. std has no getifaddrs, so the kernel's own tables are read:
//! IPv4 from `/proc/net/fib_trie` (each address the kernel routes to
//! this host, `/32 host LOCAL`), IPv6 from `/proc/net/if_inet6`. No socket
//! is opened and no packet sent. Where `/proc` is missing (not Linux),
//! the loopback address stands in.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The addresses a listener bound to `bound` can be reached on: `bound`
/// itself unless it is unspecified; otherwise this machine's addresses of
/// that family (both families for `::`, which on Linux also takes IPv4),
/// others first, loopback last, never an unspecified one.
pub fn reachable_addresses(bound: IpAddr) -> Vec<IpAddr> {
    if !bound.is_unspecified() {
        return vec![bound];
    }
    let v4 = || {
        let found = std::fs::read_to_string("/proc/net/fib_trie")
            .map(|text| parse_fib_trie(&text))
            .unwrap_or_default();
        if found.is_empty() {
            vec![Ipv4Addr::LOCALHOST]
        } else {
            found
        }
    };
    let v6 = || {
        let found = std::fs::read_to_string("/proc/net/if_inet6")
            .map(|text| parse_if_inet6(&text))
            .unwrap_or_default();
        if found.is_empty() {
            vec![Ipv6Addr::LOCALHOST]
        } else {
            found
        }
    };
    let mut all: Vec<IpAddr> = v4().into_iter().map(IpAddr::V4).collect();
    if bound.is_ipv6() {
        all.extend(v6().into_iter().map(IpAddr::V6));
    }
    // Addresses other machines can use first; loopback (this machine) last.
    all.sort_by_key(|ip| (ip.is_loopback(), ip.is_ipv6()));
    all
}

/// The local IPv4 addresses in a `/proc/net/fib_trie` listing: each leaf
/// line `|-- A.B.C.D` followed by a `/32 host LOCAL` line. Each once, in
/// order; unspecified addresses left out.
fn parse_fib_trie(text: &str) -> Vec<Ipv4Addr> {
    let mut seen = BTreeSet::new();
    let mut found = Vec::new();
    let mut leaf: Option<Ipv4Addr> = None;
    for line in text.lines() {
        let line = line.trim();
        if let Some(addr) = line.strip_prefix("|-- ") {
            leaf = addr.trim().parse().ok();
        } else if line.starts_with("/32 host LOCAL") {
            if let Some(addr) = leaf.take().filter(|a| !a.is_unspecified()) {
                if seen.insert(addr) {
                    found.push(addr);
                }
            }
        }
    }
    found
}

/// The IPv6 addresses in a `/proc/net/if_inet6` listing (32 hex digits,
/// index, prefix length, scope, flags, name). Link-local ones are left
/// out: a URL would need the interface's zone, which differs on the other
/// machine.
fn parse_if_inet6(text: &str) -> Vec<Ipv6Addr> {
    let mut found = Vec::new();
    for line in text.lines() {
        let Some(hex) = line.split_whitespace().next().filter(|h| h.len() == 32) else {
            continue;
        };
        let Ok(bits) = u128::from_str_radix(hex, 16) else {
            continue;
        };
        let addr = Ipv6Addr::from(bits);
        let link_local = addr
            .segments()
            .first()
            .is_some_and(|s| s & 0xffc0 == 0xfe80);
        if !link_local && !addr.is_unspecified() && !found.contains(&addr) {
            found.push(addr);
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A container's table: loopback and one Ethernet address, listed in
    /// both the Main and the Local trie.
    const FIB_TRIE: &str = "\
Main:
  +-- 0.0.0.0/0 3 0 5
     |-- 0.0.0.0
        /0 universe UNICAST
     +-- 127.0.0.0/8 2 0 2
        +-- 127.0.0.0/31 1 0 0
           |-- 127.0.0.0
              /8 host LOCAL
           |-- 127.0.0.1
              /32 host LOCAL
        |-- 127.255.255.255
           /32 link BROADCAST
     +-- 192.0.2.0/24 2 0 2
        +-- 192.0.2.0/30 2 0 2
           |-- 192.0.2.0
              /24 link UNICAST
           |-- 192.0.2.2
              /32 host LOCAL
        |-- 192.0.2.255
           /32 link BROADCAST
Local:
  +-- 0.0.0.0/0 3 0 5
           |-- 127.0.0.1
              /32 host LOCAL
           |-- 192.0.2.2
              /32 host LOCAL
";

    #[test]
    fn fib_trie_gives_each_local_address_once() {
        assert_eq!(
            parse_fib_trie(FIB_TRIE),
            vec![Ipv4Addr::LOCALHOST, Ipv4Addr::new(192, 0, 2, 2)]
        );
        assert!(parse_fib_trie("").is_empty());
        assert!(parse_fib_trie("|-- not-an-ip\n/32 host LOCAL\n").is_empty());
    }

    #[test]
    fn if_inet6_skips_link_local_and_bad_lines() {
        let text = "\
fe8000000000000000fc00fffe000001 04 40 20 80     eth0
fd000000000000000000000000000002 04 40 00 82     eth0
00000000000000000000000000000001 01 80 10 80       lo
zz000000000000000000000000000001 01 80 10 80       lo
short
";
        assert_eq!(
            parse_if_inet6(text),
            vec!["fd00::2".parse::<Ipv6Addr>().unwrap(), Ipv6Addr::LOCALHOST]
        );
    }

    #[test]
    fn a_specific_address_is_its_own_url_and_unspecified_never_is() {
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        assert_eq!(reachable_addresses(ip), vec![ip]);
        let all = reachable_addresses(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        assert!(!all.is_empty());
        assert!(all.iter().all(|a| a.is_ipv4() && !a.is_unspecified()));
        assert!(all.last().is_some_and(IpAddr::is_loopback), "{all:?}");
    }
}
