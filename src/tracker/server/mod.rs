//! The built-in tracker's pure core: `pollen tracker` serves announces and
//! scrapes over HTTP (BEP 3, compact peers of BEP 23, `peers6` of BEP 7,
//! scrape of BEP 48) and UDP (BEP 15) on a loopback or LAN address.
//!
//! Layer 0: pure (no sockets, no clock: `now` and the [`Rng`] are passed in).
//! The mio server around it only moves bytes:
//!
//! - [`http_request`] parses a request head into a [`TrackerRequest`] and
//!   builds HTTP responses;
//! - [`udp_request`] parses BEP 15 datagrams into [`UdpRequest`]s, builds the
//!   replies and issues and checks the stateless connection ids;
//! - [`state`] holds the swarms ([`TrackerState`]) and bencodes the replies.
//!
//! [`respond_http`] and [`respond_udp`] chain the three: bytes in, bytes out.
//! Everything that arrives is hostile until checked, every table is capped
//! ([`state::Limits`]), and a peer's address is always the one its packets
//! came from.

pub mod http_request;
pub mod serve;
pub mod state;
pub mod udp_request;

use std::net::IpAddr;
use std::time::Instant;

pub use http_request::{
    failure_body, http_response, parse_request, request_head_complete, AnnounceParams,
    RequestError, TrackerRequest, MAX_REQUEST_HEAD_BYTES,
};
pub use state::{
    encode_announce_reply, encode_scrape_reply, AnnounceReply, Limits, ScrapeEntry, TrackerConfig,
    TrackerFailure, TrackerState, ANNOUNCE_INTERVAL, PEER_TIMEOUT,
};
pub use udp_request::{parse_udp_request, ConnectionIds, UdpRequest, UdpRequestError};

use crate::rng::Rng;
use state::Family;

/// The complete HTTP response to one request head from `source_ip` (the
/// connection's peer address): announces update `state`; a refused announce
/// or scrape is a 200 with a bencoded `failure reason`; an unknown path is
/// 404; a broken request gets its error status and a line of text.
pub fn respond_http(
    state: &mut TrackerState,
    source_ip: IpAddr,
    head: &[u8],
    now: Instant,
    rng: &mut Rng,
) -> Vec<u8> {
    match parse_request(head) {
        Ok(TrackerRequest::Announce(params)) => {
            match state.announce(source_ip, &params, now, rng) {
                Ok(reply) => http_response(
                    200,
                    &encode_announce_reply(&reply, params.compact, params.no_peer_id),
                ),
                Err(failure) => http_response(200, &failure_body(&failure.to_string())),
            }
        }
        Ok(TrackerRequest::Scrape(hashes)) => {
            http_response(200, &encode_scrape_reply(&state.scrape(&hashes)))
        }
        Ok(TrackerRequest::Other(_)) => http_response(404, b"not found\n"),
        Err(error) if error.http_status() == 200 => {
            http_response(200, &failure_body(&error.to_string()))
        }
        Err(error) => http_response(error.http_status(), format!("{error}\n").as_bytes()),
    }
}

/// The reply to one datagram from `source_ip`, or `None` when it deserves
/// none (not a tracker packet). Announces and scrapes need a valid
/// connection id; without one, and for any refusal, the reply is a BEP 15
/// error no longer than the request.
pub fn respond_udp(
    state: &mut TrackerState,
    ids: &ConnectionIds,
    source_ip: IpAddr,
    datagram: &[u8],
    now: Instant,
    rng: &mut Rng,
) -> Option<Vec<u8>> {
    let error = |transaction_id, message: &str| {
        Some(udp_request::encode_error_response(
            transaction_id,
            message,
            datagram.len(),
        ))
    };
    let request = match parse_udp_request(datagram) {
        Ok(request) => request,
        Err(refusal) if refusal.deserves_reply() => {
            return error(udp_request::transaction_id(datagram)?, &refusal.to_string());
        }
        Err(_) => return None,
    };
    match request {
        UdpRequest::Connect { transaction_id } => Some(udp_request::encode_connect_response(
            transaction_id,
            ids.issue(source_ip, now),
        )),
        UdpRequest::Announce {
            connection_id,
            transaction_id,
            ..
        }
        | UdpRequest::Scrape {
            connection_id,
            transaction_id,
            ..
        } if !ids.is_valid(source_ip, connection_id, now) => {
            error(transaction_id, "connection id expired, connect again")
        }
        UdpRequest::Announce {
            transaction_id,
            params,
            ..
        } => {
            let family = Family::SameAs(source_ip);
            match state.announce_for(source_ip, &params, now, rng, family) {
                Ok(reply) => Some(udp_request::encode_announce_response(
                    transaction_id,
                    &reply,
                    source_ip.to_canonical().is_ipv6(),
                )),
                Err(failure) => error(transaction_id, &failure.to_string()),
            }
        }
        UdpRequest::Scrape {
            transaction_id,
            info_hashes,
            ..
        } => {
            let known = state.scrape(&info_hashes);
            // One entry per requested hash, in order; zeros for refused ones.
            let entries: Vec<ScrapeEntry> = info_hashes
                .iter()
                .map(|hash| {
                    known
                        .iter()
                        .find(|e| e.info_hash == *hash)
                        .copied()
                        .unwrap_or(ScrapeEntry {
                            info_hash: *hash,
                            seeders: 0,
                            leechers: 0,
                            completed: 0,
                        })
                })
                .collect();
            Some(udp_request::encode_scrape_response(
                transaction_id,
                &entries,
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::net::SocketAddr;
    use std::time::Duration;

    use super::*;
    use crate::tracker::announce::{announce_url, AnnounceRequest, Event};
    use crate::tracker::{parse_response, TrackerError};

    fn request(peer: u8, event: Event) -> AnnounceRequest {
        AnnounceRequest {
            info_hash: [0x5a; 20],
            peer_id: [peer; 20],
            port: 6881,
            uploaded: 0,
            downloaded: 0,
            left: 10,
            event,
            numwant: None,
            key: None,
            tracker_id: None,
            ipv6: None,
        }
    }

    /// The head pollen's own client would send for `req`.
    fn head(req: &AnnounceRequest) -> Vec<u8> {
        let url = announce_url("http://127.0.0.1:6969/announce", req);
        let target = url.strip_prefix("http://127.0.0.1:6969").unwrap();
        format!("GET {target} HTTP/1.1\r\nHost: 127.0.0.1:6969\r\n\r\n").into_bytes()
    }

    /// The body of a response, after checking its status line.
    fn body(response: &[u8], status: &str) -> Vec<u8> {
        let text = String::from_utf8_lossy(response);
        assert!(
            text.starts_with(&format!("HTTP/1.1 {status}\r\n")),
            "{text}"
        );
        let end = request_head_complete(response).unwrap();
        response[end..].to_vec()
    }

    #[test]
    fn http_peers_find_each_other_through_pollens_client_codec() {
        let now = Instant::now();
        let mut rng = Rng::new(1);
        let mut state = TrackerState::new(TrackerConfig::default());
        let a: IpAddr = "127.0.0.2".parse().unwrap();
        let b: IpAddr = "127.0.0.3".parse().unwrap();
        let first = respond_http(
            &mut state,
            a,
            &head(&request(1, Event::Started)),
            now,
            &mut rng,
        );
        assert_eq!(
            parse_response(&body(&first, "200 OK")).unwrap().peers,
            vec![]
        );
        let second = respond_http(
            &mut state,
            b,
            &head(&request(2, Event::Started)),
            now,
            &mut rng,
        );
        let reply = parse_response(&body(&second, "200 OK")).unwrap();
        assert_eq!(reply.peers, vec![SocketAddr::new(a, 6881)]);
        assert_eq!((reply.complete, reply.incomplete), (Some(0), Some(2)));
        assert_eq!(reply.interval, ANNOUNCE_INTERVAL);
    }

    #[test]
    fn http_refusals_are_failure_reasons_or_statuses() {
        let now = Instant::now();
        let mut rng = Rng::new(1);
        let mut state = TrackerState::new(TrackerConfig {
            allow: Some(BTreeSet::from([[1; 20]])),
            ..TrackerConfig::default()
        });
        let ip: IpAddr = "10.1.1.1".parse().unwrap();
        let refused = respond_http(
            &mut state,
            ip,
            &head(&request(1, Event::Started)),
            now,
            &mut rng,
        );
        assert_eq!(
            parse_response(&body(&refused, "200 OK")),
            Err(TrackerError::Failure("torrent not tracked here".into()))
        );
        let missing = respond_http(
            &mut state,
            ip,
            b"GET /announce?port=1 HTTP/1.1\r\n\r\n",
            now,
            &mut rng,
        );
        assert_eq!(
            parse_response(&body(&missing, "200 OK")),
            Err(TrackerError::Failure("missing parameter info_hash".into()))
        );
        let cases: [(&[u8], &str); 3] = [
            (b"GET /favicon.ico HTTP/1.1\r\n\r\n", "404 Not Found"),
            (b"POST /announce HTTP/1.1\r\n\r\n", "405 Method Not Allowed"),
            (b"GARBAGE\r\n\r\n", "400 Bad Request"),
        ];
        for (input, status) in cases {
            body(&respond_http(&mut state, ip, input, now, &mut rng), status);
        }
        let scrape = respond_http(&mut state, ip, b"GET /scrape?info_hash=%01%01%01%01%01%01%01%01%01%01%01%01%01%01%01%01%01%01%01%01 HTTP/1.1\r\n\r\n", now, &mut rng);
        assert_eq!(
            body(&scrape, "200 OK"),
            b"d5:filesd20:\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01d8:completei0e10:downloadedi0e10:incompletei0eeee"
        );
    }

    /// A BEP 15 announce datagram.
    fn udp_announce(connection_id: u64, port: u16) -> Vec<u8> {
        let mut out = connection_id.to_be_bytes().to_vec();
        out.extend_from_slice(&1_u32.to_be_bytes());
        out.extend_from_slice(&42_u32.to_be_bytes());
        out.extend_from_slice(&[0x5a; 20]);
        out.extend_from_slice(&[port.to_be_bytes()[1]; 20]);
        out.extend_from_slice(&[0; 24]); // downloaded, left, uploaded
        out.extend_from_slice(&2_u32.to_be_bytes()); // started
        out.extend_from_slice(&[0; 8]); // IP, key
        out.extend_from_slice(&(-1_i32).to_be_bytes());
        out.extend_from_slice(&port.to_be_bytes());
        out
    }

    #[test]
    fn udp_connect_then_announce_then_expire_the_id() {
        let t0 = Instant::now();
        let mut rng = Rng::new(1);
        let mut state = TrackerState::new(TrackerConfig::default());
        let ids = ConnectionIds::new(rng.next_u64(), t0);
        let ip: IpAddr = "10.0.0.7".parse().unwrap();
        let mut connect = udp_request::PROTOCOL_ID.to_be_bytes().to_vec();
        connect.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 9]);
        let reply = respond_udp(&mut state, &ids, ip, &connect, t0, &mut rng).unwrap();
        assert_eq!(reply[..8], [0, 0, 0, 0, 0, 0, 0, 9]);
        let id = u64::from_be_bytes(reply[8..16].try_into().unwrap());

        let other: IpAddr = "10.0.0.8".parse().unwrap();
        state
            .announce(
                other,
                &AnnounceParams {
                    info_hash: [0x5a; 20],
                    peer_id: [8; 20],
                    port: 7000,
                    uploaded: 0,
                    downloaded: 0,
                    left: 0,
                    event: Event::Started,
                    numwant: 50,
                    compact: true,
                    no_peer_id: true,
                    key: None,
                },
                t0,
                &mut rng,
            )
            .unwrap();
        let v6: IpAddr = "fe80::8".parse().unwrap();
        state
            .announce(
                v6,
                &AnnounceParams {
                    info_hash: [0x5a; 20],
                    peer_id: [9; 20],
                    port: 7000,
                    uploaded: 0,
                    downloaded: 0,
                    left: 0,
                    event: Event::Started,
                    numwant: 50,
                    compact: true,
                    no_peer_id: true,
                    key: None,
                },
                t0,
                &mut rng,
            )
            .unwrap();

        let reply =
            respond_udp(&mut state, &ids, ip, &udp_announce(id, 6881), t0, &mut rng).unwrap();
        // Action 1, transaction 42, interval 60, no leechers, 3 seeders (us
        // too: left is 0), and only the IPv4 peer.
        assert_eq!(
            reply,
            [
                0, 0, 0, 1, 0, 0, 0, 42, 0, 0, 0, 60, 0, 0, 0, 0, 0, 0, 0, 3, 10, 0, 0, 8, 0x1b,
                0x58
            ]
        );
        let late = t0 + Duration::from_secs(3 * 60);
        let refused = respond_udp(
            &mut state,
            &ids,
            ip,
            &udp_announce(id, 6881),
            late,
            &mut rng,
        )
        .unwrap();
        assert_eq!(refused[..8], [0, 0, 0, 3, 0, 0, 0, 42]);
        assert_eq!(&refused[8..], b"connection id expired, connect again");
        let wrong_ip = respond_udp(
            &mut state,
            &ids,
            other,
            &udp_announce(id, 6881),
            t0,
            &mut rng,
        )
        .unwrap();
        assert_eq!(wrong_ip[..4], [0, 0, 0, 3]);

        // Not a tracker packet: no reply at all.
        assert_eq!(
            respond_udp(&mut state, &ids, ip, b"hello", t0, &mut rng),
            None
        );
        let mut bad_magic = connect.clone();
        bad_magic[0] = 1;
        assert_eq!(
            respond_udp(&mut state, &ids, ip, &bad_magic, t0, &mut rng),
            None
        );
        // A malformed announce gets an error no longer than itself.
        let port_zero = udp_announce(id, 0);
        let error = respond_udp(&mut state, &ids, ip, &port_zero, t0, &mut rng).unwrap();
        assert_eq!(&error[8..], b"invalid port 0");
        // A bare scrape header with a stale id: the error is cut to 16 bytes.
        let mut scrape = 1_u64.to_be_bytes().to_vec();
        scrape.extend_from_slice(&[0, 0, 0, 2, 0, 0, 0, 3]);
        let error = respond_udp(&mut state, &ids, ip, &scrape, t0, &mut rng).unwrap();
        assert_eq!(error, b"\0\0\0\x03\0\0\0\x03connecti");
    }

    #[test]
    fn udp_scrape_answers_every_hash_in_order() {
        let t0 = Instant::now();
        let mut rng = Rng::new(1);
        let mut state = TrackerState::new(TrackerConfig::default());
        let ids = ConnectionIds::new(7, t0);
        let ip: IpAddr = "10.0.0.7".parse().unwrap();
        let mut announce = udp_announce(ids.issue(ip, t0), 6881);
        announce[80..84].copy_from_slice(&1_u32.to_be_bytes()); // completed
        respond_udp(&mut state, &ids, ip, &announce, t0, &mut rng).unwrap();
        let mut scrape = ids.issue(ip, t0).to_be_bytes().to_vec();
        scrape.extend_from_slice(&[0, 0, 0, 2, 0, 0, 0, 3]);
        scrape.extend_from_slice(&[0x11; 20]);
        scrape.extend_from_slice(&[0x5a; 20]);
        let reply = respond_udp(&mut state, &ids, ip, &scrape, t0, &mut rng).unwrap();
        assert_eq!(
            reply,
            [
                0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1,
                0, 0, 0, 0
            ]
        );
    }
}
