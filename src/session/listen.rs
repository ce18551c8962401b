//! The listening socket for incoming peers: on one address, or on every
//! address of both families.
//!
//! Layer 2 (the session owns the sockets). [`Config::listen_ip`] `::` (the
//! default) means every address, IPv4 and IPv6: one IPv6 socket with
//! `IPV6_V6ONLY` turned off, so IPv4 peers connect to the same port (the
//! kernel shows them as IPv4-mapped `::ffff:a.b.c.d`; the accept phase
//! turns those back into `a.b.c.d` with [`crate::peer_list::canonical`], so
//! bans, PEX and duplicate checks see one address per peer). On a host
//! without IPv6 it listens on `0.0.0.0` instead. Any other address is
//! bound as given and serves that family only: `--bind 0.0.0.0` (IPv4
//! only), `--bind ::1`, `--bind 127.0.0.5`.
//!
//! [`Config::listen_ip`]: super::Config::listen_ip

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV6};

use mio::net::TcpListener;

use crate::Error;

/// Connections the kernel queues for us between two accept phases: the
/// same backlog as mio's own `TcpListener::bind`.
const LISTEN_BACKLOG: i32 = 1024;

/// Where [`global_ipv6`] points a UDP socket to learn which source address
/// the kernel would use for the IPv6 internet: a public DNS resolver's
/// address (any global address would do). `connect()` on a UDP socket only
/// looks up the route; nothing is ever sent on that socket.
const ROUTE_PROBE: SocketAddrV6 = SocketAddrV6::new(
    Ipv6Addr::new(0x2001, 0x4860, 0x4860, 0, 0, 0, 0, 0x8888),
    53,
    0,
    0,
);

/// The listening socket for `ip` and `port` (port 0: any free one); see the
/// module doc for what `::` means.
pub(super) fn bind_listener(ip: IpAddr, port: u16) -> Result<TcpListener, Error> {
    let asked = SocketAddr::new(ip, port);
    if ip != IpAddr::V6(Ipv6Addr::UNSPECIFIED) {
        return TcpListener::bind(asked).map_err(|e| Error::Bind(asked, e));
    }
    match bind_dual_stack(port) {
        Ok(listener) => Ok(listener),
        // A busy or privileged port is the user's to fix, on either family.
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::AddrInUse | io::ErrorKind::PermissionDenied
            ) =>
        {
            Err(Error::Bind(asked, e))
        }
        Err(e) => {
            let v4 = SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port);
            log::info!("cannot listen on {asked} ({e}): no IPv6 here? listening on {v4} only");
            TcpListener::bind(v4).map_err(|e| Error::Bind(v4, e))
        }
    }
}

/// One IPv6 socket on `[::]:port` that takes IPv4 peers too: `IPV6_V6ONLY`
/// is set off explicitly, since some systems (the BSDs, Linux with
/// `net.ipv6.bindv6only=1`) default it on.
fn bind_dual_stack(port: u16) -> io::Result<TcpListener> {
    use rustix::net::{sockopt, AddressFamily, SocketType};
    let fd = rustix::net::socket(AddressFamily::INET6, SocketType::STREAM, None)?;
    // As std's sockets: not inherited by the programs we run (`stty`).
    rustix::io::fcntl_setfd(&fd, rustix::io::FdFlags::CLOEXEC)?;
    // As std's and mio's listeners: a restarted pollen can take its port
    // back while old connections linger in TIME_WAIT.
    sockopt::set_socket_reuseaddr(&fd, true)?;
    sockopt::set_ipv6_v6only(&fd, false)?;
    rustix::net::bind(&fd, &SocketAddrV6::new(Ipv6Addr::UNSPECIFIED, port, 0, 0))?;
    rustix::net::listen(&fd, LISTEN_BACKLOG)?;
    let listener = std::net::TcpListener::from(fd);
    listener.set_nonblocking(true)?;
    Ok(TcpListener::from_std(listener))
}

/// The IPv6 address to send as `ipv6=` in HTTP announces (BEP 7), given
/// the address we listen on: an IPv6 address given with `--bind` (unless
/// loopback, link-local, multicast or IPv4-mapped: of no use to a
/// tracker); listening on `[::]`, this host's global IPv6 address (the one
/// the kernel would send from, see [`global_ipv6`]); otherwise none.
pub(in crate::session) fn announce_ipv6(listen: IpAddr) -> Option<Ipv6Addr> {
    match listen {
        IpAddr::V6(ip) if ip.is_unspecified() => global_ipv6().filter(|ip| is_global_unicast(*ip)),
        IpAddr::V6(ip) => is_routable(ip).then_some(ip),
        IpAddr::V4(_) => None,
    }
}

/// The source address the kernel picks for [`ROUTE_PROBE`], found by
/// `connect()`ing a UDP socket there (which sends nothing) and reading its
/// local address; `None` without an IPv6 route.
fn global_ipv6() -> Option<Ipv6Addr> {
    let socket = std::net::UdpSocket::bind((Ipv6Addr::UNSPECIFIED, 0)).ok()?;
    socket.connect(ROUTE_PROBE).ok()?;
    match socket.local_addr().ok()?.ip() {
        IpAddr::V6(ip) => Some(ip),
        IpAddr::V4(_) => None,
    }
}

/// Whether another host could reach us at `ip`: not unspecified, loopback,
/// multicast, link-local (`fe80::/10`) or IPv4-mapped.
fn is_routable(ip: Ipv6Addr) -> bool {
    let link_local = ip.segments()[0] & 0xffc0 == 0xfe80;
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        || link_local
        || ip.to_ipv4_mapped().is_some())
}

/// Whether `ip` is in `2000::/3`, the global unicast space: a discovered
/// address outside it (a unique local `fd00::/8` behind a NAT66) is no use
/// to a tracker on the internet.
fn is_global_unicast(ip: Ipv6Addr) -> bool {
    ip.segments()[0] & 0xe000 == 0x2000
}

/// The local address for a UDP tracker socket to `target`: the listening
/// address when it is one address of `target`'s family (so the tracker
/// lists the address peers can reach us at: `--bind 127.0.0.5` announces
/// from 127.0.0.5), else any address of that family.
pub(in crate::session) fn tracker_source(listen: IpAddr, target: SocketAddr) -> SocketAddr {
    let ip = match (listen, target) {
        (IpAddr::V4(ip), SocketAddr::V4(_)) if !ip.is_unspecified() => IpAddr::V4(ip),
        (IpAddr::V6(ip), SocketAddr::V6(_)) if !ip.is_unspecified() => IpAddr::V6(ip),
        (_, SocketAddr::V4(_)) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        (_, SocketAddr::V6(_)) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
    };
    SocketAddr::new(ip, 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpStream;
    use std::time::{Duration, Instant};

    /// Accepts one connection (the listener is non-blocking), within 5 s.
    fn accept_one(listener: &TcpListener) -> SocketAddr {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            match listener.accept() {
                Ok((_, addr)) => return addr,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock && Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(e) => panic!("accept: {e}"),
            }
        }
    }

    #[test]
    fn the_default_listens_on_both_families_at_one_port() {
        let listener = bind_listener(IpAddr::V6(Ipv6Addr::UNSPECIFIED), 0).unwrap();
        let local = listener.local_addr().unwrap();
        if local.is_ipv4() {
            eprintln!("skipped: no IPv6 on this host (listening on {local})");
            return;
        }
        let port = local.port();
        let _v4 = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).unwrap();
        let seen = accept_one(&listener);
        assert_eq!(seen.ip().to_canonical(), IpAddr::V4(Ipv4Addr::LOCALHOST));
        assert_eq!(crate::peer_list::canonical(seen).ip(), Ipv4Addr::LOCALHOST);
        match TcpStream::connect((Ipv6Addr::LOCALHOST, port)) {
            Ok(_) => assert_eq!(accept_one(&listener).ip(), Ipv6Addr::LOCALHOST),
            Err(e) => eprintln!("skipped the ::1 half: no IPv6 loopback ({e})"),
        }
    }

    #[test]
    fn a_given_address_is_bound_as_is() {
        let listener = bind_listener(IpAddr::V4(Ipv4Addr::LOCALHOST), 0).unwrap();
        assert_eq!(listener.local_addr().unwrap().ip(), Ipv4Addr::LOCALHOST);
        let any_v4 = bind_listener(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0).unwrap();
        assert_eq!(any_v4.local_addr().unwrap().ip(), Ipv4Addr::UNSPECIFIED);
    }

    #[test]
    fn a_busy_port_is_an_error_not_a_fallback() {
        let busy = std::net::TcpListener::bind((Ipv4Addr::UNSPECIFIED, 0)).unwrap();
        let port = busy.local_addr().unwrap().port();
        let err = bind_listener(IpAddr::V6(Ipv6Addr::UNSPECIFIED), port).unwrap_err();
        assert!(
            matches!(err, Error::Bind(addr, _) if addr.port() == port),
            "{err}"
        );
    }

    #[test]
    fn ipv6_is_announced_for_a_bound_address_others_can_reach() {
        let ip = |text: &str| text.parse::<IpAddr>().unwrap();
        let global: Ipv6Addr = "2001:db8::5".parse().unwrap();
        assert_eq!(announce_ipv6(IpAddr::V6(global)), Some(global));
        let unique_local: Ipv6Addr = "fd00::2".parse().unwrap();
        assert_eq!(announce_ipv6(IpAddr::V6(unique_local)), Some(unique_local));
        for none in [
            "::1",
            "fe80::1",
            "ff02::1",
            "::ffff:10.0.0.1",
            "127.0.0.1",
            "0.0.0.0",
        ] {
            assert_eq!(announce_ipv6(ip(none)), None, "{none}");
        }
    }

    #[test]
    fn a_discovered_ipv6_address_is_announced_only_if_global_unicast() {
        assert!(is_global_unicast("2a01:4f8::1".parse().unwrap()));
        assert!(is_global_unicast("2001:db8::1".parse().unwrap()));
        for not in ["fd00::2", "fe80::1", "::1", "ff02::1", "::ffff:1.2.3.4"] {
            assert!(!is_global_unicast(not.parse().unwrap()), "{not}");
        }
        // Listening on [::]: whatever this host has, never a local address.
        if let Some(found) = announce_ipv6(IpAddr::V6(Ipv6Addr::UNSPECIFIED)) {
            assert!(is_global_unicast(found), "{found}");
        }
    }

    #[test]
    fn a_udp_tracker_is_announced_to_from_the_bound_address_of_its_family() {
        let at = |listen: &str, target: &str| {
            tracker_source(listen.parse().unwrap(), target.parse().unwrap()).to_string()
        };
        assert_eq!(at("127.0.0.5", "127.0.0.1:6969"), "127.0.0.5:0");
        assert_eq!(at("::1", "[::1]:6969"), "[::1]:0");
        assert_eq!(at("::", "[::1]:6969"), "[::]:0");
        assert_eq!(at("::", "127.0.0.1:6969"), "0.0.0.0:0");
        assert_eq!(at("0.0.0.0", "127.0.0.1:6969"), "0.0.0.0:0");
        assert_eq!(at("::1", "127.0.0.1:6969"), "0.0.0.0:0");
        assert_eq!(at("127.0.0.5", "[::1]:6969"), "[::]:0");
    }
}
