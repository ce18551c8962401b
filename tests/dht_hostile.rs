//! The DHT (BEP 5) under hostile input, against a real pollen on loopback:
//! the issue's "bad input" list, each case a test, the hostile node a UDP
//! socket in the test speaking hand-made KRPC (`common/krpc.rs`, which does
//! not use pollen's codec, so the wire format is checked on its own).
//!
//! 1. Malformed and oversize datagrams (garbage, every truncation of a
//!    ping, deep nesting, a 64 KiB datagram, huge length prefixes, wrong
//!    types, answers to nothing we asked): pollen keeps answering a valid
//!    `ping` from another address, and keeps seeding to a leecher.
//! 2. A spoofed `announce_peer` token (made up, or another address's) is
//!    refused and its peer is not handed out; the honest flow (`get_peers`
//!    -> token -> `announce_peer`) is stored and handed out.
//! 3. A flood of pings from one IP gets fewer answers than pings pollen
//!    received (its trace counts both), and another IP is answered after.
//! 4. Two hundred node ids on one IP (from 200 ports, or all from one
//!    port), all in one bucket, leave at most one of them in the routing
//!    table's `find_node` answers, and nodes on other IPs still get in.
//! 5. A `get_peers` answer full of garbage `values` (wrong lengths and
//!    types, port 0, an 8 KB datagram of 1,000 entries) beside one real
//!    seeder: pollen ignores the garbage (it never connects to a listener
//!    only the garbage names) and downloads the magnet byte for byte.
//!
//! Each test has its own 127.0.15.X addresses (pollen, hostile nodes,
//! peers), far from the 127.0.0.X other DHT tests use, so that tests
//! running at once cannot talk to each other's nodes. Every wait has a
//! deadline; every process is killed when its test ends.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
#[path = "common/krpc.rs"]
mod krpc;

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpListener};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::process::{assert_same_tree, wait_for, Pollen};
use common::{seeded_torrent, TempDir};
use krpc::{bint, blist, bstr, compact_peer, response, Krpc, Node};

/// Longest pollen may take to answer a ping (resent every
/// [`krpc::RESEND_EVERY`]); mostly slack for a busy machine.
const ANSWER_LIMIT: Duration = Duration::from_secs(10);
/// Longest pollen may take to start and open its DHT socket.
const START_LIMIT: Duration = Duration::from_secs(30);
/// Longest a download (metadata and data) may take here.
const DOWNLOAD_LIMIT: Duration = Duration::from_secs(90);
/// How long a spoofed `announce_peer` is given to be answered: silence
/// after this counts as "ignored" (the `get_peers` after it is the check).
const REFUSAL_LIMIT: Duration = Duration::from_secs(3);

/// A small torrent: 1 MiB and a bit, 32 KiB pieces.
const FILES: &[(&str, usize, u64)] = &[
    ("hostile/a.bin", (1 << 20) + 12_345, 1501),
    ("hostile/b.txt", 777, 1502),
];

/// 127.0.15.`last`.
fn ip(last: u8) -> Ipv4Addr {
    Ipv4Addr::new(127, 0, 15, last)
}

/// A pollen with its DHT node's UDP address and id (from its `-v` log line
/// `DHT node HEX on UDP ADDR: ...`).
struct DhtPollen {
    process: Pollen,
    /// Its TCP listening port.
    port: u16,
    udp: SocketAddr,
    id: [u8; 20],
}

impl DhtPollen {
    /// Starts pollen with `args` (plus `-v`) and reads its DHT address.
    fn start(args: &[&str]) -> DhtPollen {
        let mut all: Vec<&str> = args.to_vec();
        all.push("-v");
        let mut process = Pollen::start(&all);
        let port = process.port();
        let mut found = None;
        let seen = wait_for(START_LIMIT, || {
            found = process.stderr().lines().find_map(parse_dht_line);
            found.is_some()
        });
        assert!(seen, "no DHT node line; stderr:\n{}", process.stderr());
        let (id, udp) = found.unwrap();
        DhtPollen {
            process,
            port,
            udp,
            id,
        }
    }

    /// A seeder of `torrent` from `seed` on `bind`, DHT on, no tracker.
    fn seeder(torrent: &Path, seed: &Path, bind: Ipv4Addr, extra: &[&str]) -> DhtPollen {
        let bind = bind.to_string();
        let mut args = vec![
            torrent.to_str().unwrap(),
            "-d",
            seed.to_str().unwrap(),
            "--seed",
            "--no-tracker",
            "--bind",
            &bind,
        ];
        args.extend_from_slice(extra);
        DhtPollen::start(&args)
    }

    /// Panics (with its log) if it has exited.
    fn assert_running(&mut self, when: &str) {
        assert!(
            !self.process.has_exited(),
            "pollen exited {when}; stderr:\n{}",
            self.process.stderr()
        );
    }
}

/// `(id, addr)` from `[INFO  pollen::session::dht] DHT node HEX on UDP ADDR: ...`.
fn parse_dht_line(line: &str) -> Option<([u8; 20], SocketAddr)> {
    let rest = line.split("DHT node ").nth(1)?;
    let (hex, rest) = rest.split_once(" on UDP ")?;
    let addr = rest.split_once(": ")?.0.parse().ok()?;
    Some((from_hex(hex)?, addr))
}

fn from_hex(hex: &str) -> Option<[u8; 20]> {
    let bytes: Vec<u8> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect::<Option<_>>()?;
    bytes.try_into().ok()
}

/// The torrent's info-hash as bytes.
fn info_hash(torrent: &Path) -> [u8; 20] {
    let meta = pollen::metainfo::Metainfo::from_bytes(&std::fs::read(torrent).unwrap()).unwrap();
    from_hex(&meta.info_hash.to_hex()).unwrap()
}

/// The liveness probe: `probe` pings `dht` and must get a valid response
/// (canonical bencode, `y` = `r`) that echoes its transaction id and
/// carries pollen's 20-byte id. Resent until answered (a lost datagram,
/// the rate limit), within [`ANSWER_LIMIT`].
fn assert_answers_ping(probe: &mut Node, pollen: &DhtPollen, when: &str) {
    let id = probe.id;
    let reply = probe
        .ask(pollen.udp, |t| krpc::ping(t, &id), ANSWER_LIMIT)
        .unwrap_or_else(|| {
            panic!(
                "no answer to a ping from {} {when}; pollen's stderr:\n{}",
                probe.addr(),
                pollen.process.stderr()
            )
        });
    assert_eq!(
        reply.responder_id(),
        Some(pollen.id),
        "the ping's answer {when} is not a response with pollen's id: {reply:?}"
    );
}

/// Waits for the leecher to finish and checks its files against `seed`.
fn assert_downloads(leecher: &mut Pollen, seed: &Path, dest: &Path) {
    let status = leecher.wait(DOWNLOAD_LIMIT);
    assert!(
        status.success(),
        "leecher failed ({status}); stderr:\n{}",
        leecher.stderr()
    );
    assert_same_tree(seed, dest);
}

/// The hostile datagrams, by name. All addresses they name are on
/// 127.0.15.11 (the hostile node's own IP).
fn hostile_datagrams(hostile_id: &[u8; 20]) -> Vec<(&'static str, Vec<Vec<u8>>)> {
    let id = hostile_id;
    let ping = krpc::ping(b"aa", id);
    let mut cases: Vec<(&'static str, Vec<Vec<u8>>)> = Vec::new();
    cases.push(("an empty datagram", vec![Vec::new()]));
    cases.push((
        "not bencode",
        vec![
            b"hello, DHT".to_vec(),
            b"\x00\xff\xfe garbage".to_vec(),
            b"GET / HTTP/1.1\r\n\r\n".to_vec(),
        ],
    ));
    cases.push((
        "random bytes",
        vec![common::payload(1511, 1000), common::payload(1512, 1500)],
    ));
    cases.push((
        "every truncation of a ping",
        (0..ping.len()).map(|n| ping[..n].to_vec()).collect(),
    ));
    cases.push((
        "a ping with a byte flipped at each position",
        (0..ping.len())
            .map(|n| {
                let mut bad = ping.clone();
                bad[n] ^= 0x5a;
                bad
            })
            .collect(),
    ));
    let deep = |n: usize| {
        let mut bytes = b"l".repeat(n);
        bytes.extend(b"e".repeat(n));
        bytes
    };
    let deep_dicts = |n: usize| {
        // d1:ad1:ad1:a...i1e...ee: `a` nested n deep inside a query.
        let mut bytes = b"d1:t2:dd1:y1:q1:q4:ping".to_vec();
        bytes.extend(b"1:ad".repeat(n));
        bytes.extend(b"1:xi1e");
        bytes.extend(b"e".repeat(n + 1));
        bytes
    };
    cases.push((
        "deep nesting",
        vec![deep(700), deep(5_000), deep(30_000), deep_dicts(200)],
    ));
    // The largest IPv4 UDP payload: a ping whose `a` carries 65 KB more.
    let mut huge = b"d1:ad2:id20:".to_vec();
    huge.extend_from_slice(id);
    huge.extend(b"3:pad");
    let filler = 65_507 - huge.len() - b"65445:".len() - b"e1:q4:ping1:t2:aa1:y1:qe".len();
    huge.extend(format!("{filler}:").into_bytes());
    huge.extend(vec![b'x'; filler]);
    huge.extend(b"e1:q4:ping1:t2:aa1:y1:qe");
    huge.truncate(65_507);
    cases.push(("a 64 KiB datagram", vec![huge]));
    cases.push((
        "huge string length prefixes",
        vec![
            b"d1:t99999999999:aa1:y1:qe".to_vec(),
            b"d1:t4294967296:aa1:y1:qe".to_vec(),
            b"d1:t18446744073709551616:aa1:y1:qe".to_vec(),
            b"d1:ad2:id2000000000:abce1:q4:ping1:t2:aa1:y1:qe".to_vec(),
            b"d999999999999999999999999999:".to_vec(),
            b"d1:t-5:aa1:y1:qe".to_vec(),
        ],
    ));
    cases.push((
        "bad integers",
        vec![
            b"d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:ti99999999999999999999999e1:y1:qe"
                .to_vec(),
            b"d1:ti-0e1:y1:qe".to_vec(),
            b"d1:ti03e1:y1:qe".to_vec(),
            b"d1:tie1:y1:qe".to_vec(),
            b"d1:ti1-2e1:y1:qe".to_vec(),
        ],
    ));
    let with_id = |rest: &[u8]| {
        let mut bytes = b"d1:ad2:id20:".to_vec();
        bytes.extend_from_slice(id);
        bytes.extend_from_slice(rest);
        bytes
    };
    cases.push((
        "wrong types",
        vec![
            with_id(b"e1:q4:ping1:ti7e1:y1:qe"),              // t an integer
            with_id(b"e1:q4:ping1:t2:aa1:yl1:qee"),           // y a list
            with_id(b"e1:qd1:xi1ee1:t2:aa1:y1:qe"),           // q a dict
            with_id(b"e1:q4:ping1:t2:aa1:y1:xe"),             // y unknown
            with_id(b"e1:q4:ping1:t2:aa1:yi0ee"),             // y an integer
            b"d1:al2:ide1:q4:ping1:t2:aa1:y1:qe".to_vec(),    // a a list
            b"d1:ad2:idi5ee1:q4:ping1:t2:aa1:y1:qe".to_vec(), // id an integer
            b"d1:ad2:id19:abcdefghij012345678e1:q4:ping1:t2:aa1:y1:qe".to_vec(),
            b"d1:ad2:id21:abcdefghij0123456789Xe1:q4:ping1:t2:aa1:y1:qe".to_vec(),
            krpc::query(
                b"ab",
                "find_node",
                &[("id", bstr(id)), ("target", bstr(b"abc"))],
            ),
            krpc::query(b"ab", "find_node", &[("id", bstr(id))]),
            krpc::query(b"ab", "get_peers", &[("id", bstr(id))]),
            krpc::query(
                b"ab",
                "get_peers",
                &[("id", bstr(id)), ("info_hash", bint(5))],
            ),
            krpc::query(
                b"ab",
                "announce_peer",
                &[
                    ("id", bstr(id)),
                    ("info_hash", bstr(&[7; 20])),
                    ("port", bstr(b"6881")),
                    ("token", bint(1)),
                ],
            ),
            krpc::query(
                b"ab",
                "announce_peer",
                &[
                    ("id", bstr(id)),
                    ("info_hash", bstr(&[7; 20])),
                    ("port", bint(-1)),
                    ("token", bstr(b"x")),
                ],
            ),
            krpc::query(
                b"ab",
                "announce_peer",
                &[
                    ("id", bstr(id)),
                    ("info_hash", bstr(&[7; 20])),
                    ("port", bint(70_000)),
                    ("token", bstr(b"x")),
                ],
            ),
            krpc::query(b"ab", "vote", &[("id", bstr(id))]), // unknown method
            krpc::ping(b"", id),                             // empty t
            krpc::ping(&[b't'; 1000], id),                   // t of 1000 bytes
            b"l4:pinge".to_vec(),                            // a list at the top
            b"i42e".to_vec(),
            b"4:ping".to_vec(),
            b"de".to_vec(),
        ],
    ));
    let mut trailing = ping.clone();
    trailing.extend(b"trailing junk");
    cases.push((
        "unsorted, duplicate keys and trailing bytes",
        vec![
            with_id(b"e1:y1:q1:q4:ping1:t2:aae"),
            [b"d1:t2:aa1:t2:bb".as_slice(), &ping[1..]].concat(),
            trailing,
        ],
    ));
    let hostile_node = |port: u16| {
        let mut node = id_near(id, port);
        node.extend(compact_peer(SocketAddrV4::new(ip(11), port)));
        node
    };
    let nodes: Vec<u8> = (1..=8).flat_map(hostile_node).collect();
    cases.push((
        "answers to nothing we asked",
        vec![
            response(b"zz", id, &[("nodes", bstr(&nodes))]),
            response(b"\x00\x01", id, &[("nodes", bstr(&nodes[..25]))]),
            response(
                b"\x00\x02",
                id,
                &[("values", blist(&[bstr(&[127, 0, 15, 11, 0, 1])]))],
            ),
            response(b"\x00\x03", id, &[("token", bstr(b"x"))]),
            krpc::error(b"zz", 201, "A Generic Error Ocurred"),
            krpc::bdict(&[("e", bstr(b"oops")), ("t", bstr(b"zz")), ("y", bstr(b"e"))]),
            krpc::bdict(&[("r", bint(1)), ("t", bstr(b"zz")), ("y", bstr(b"r"))]),
        ],
    ));
    cases
}

/// A 20-byte id made from `id` and `n` (for made-up nodes).
fn id_near(id: &[u8; 20], n: u16) -> Vec<u8> {
    let mut out = id.to_vec();
    out[18..].copy_from_slice(&n.to_be_bytes());
    out
}

/// Case 1: after each kind of malformed or oversize datagram from
/// 127.0.15.11, pollen (a seeder on 127.0.15.10) still answers a ping from
/// 127.0.15.12 with a valid response; anything it sent back to the hostile
/// node is valid KRPC; and afterwards, with the garbage still coming, a
/// leecher on 127.0.15.13 downloads the torrent from it.
#[test]
fn malformed_and_oversize_krpc_leave_pollen_answering_and_seeding() {
    let tmp = TempDir::new("dht-hostile-bad-input");
    let (seed, torrent) = seeded_torrent(tmp.path(), FILES, Some(32 * 1024));
    let mut seeder = DhtPollen::seeder(&torrent, &seed, ip(10), &[]);
    let mut probe = Node::bind(ip(12), 1201);
    assert_answers_ping(&mut probe, &seeder, "at start");

    let hostile = Node::bind(ip(11), 1101);
    hostile.socket.set_nonblocking(true).unwrap();
    let cases = hostile_datagrams(&hostile.id);
    let mut replies_to_hostile = 0;
    for (name, datagrams) in &cases {
        for datagram in datagrams {
            hostile.send(seeder.udp, datagram);
        }
        assert_answers_ping(&mut probe, &seeder, &format!("after {name}"));
        seeder.assert_running(&format!("after {name}"));
        // Whatever pollen said to the hostile node is well-formed KRPC.
        let mut buf = vec![0u8; 65_536];
        while let Ok((len, from)) = hostile.socket.recv_from(&mut buf) {
            let reply = Krpc::parse(&buf[..len]);
            assert!(
                reply.is_ok(),
                "after {name}, pollen sent {from}'s hostile node invalid KRPC {:?}: {reply:?}",
                String::from_utf8_lossy(&buf[..len])
            );
            replies_to_hostile += 1;
        }
    }
    println!(
        "{} hostile cases, {} datagrams; pollen sent the hostile node {replies_to_hostile} datagrams",
        cases.len(),
        cases.iter().map(|c| c.1.len()).sum::<usize>()
    );

    // The seed keeps working, with the garbage still coming.
    let dest = TempDir::new("dht-hostile-bad-input-leech");
    let peer = format!("{}:{}", ip(10), seeder.port);
    let bind = ip(13).to_string();
    let mut leecher = Pollen::start([
        torrent.to_str().unwrap(),
        "--dest",
        dest.path().to_str().unwrap(),
        "--no-tracker",
        "--no-dht",
        "--bind",
        &bind,
        "--peer",
        &peer,
        "-q",
    ]);
    let deadline = Instant::now() + DOWNLOAD_LIMIT;
    while !leecher.has_exited() && Instant::now() < deadline {
        for (_, datagrams) in &cases {
            for datagram in datagrams {
                hostile.send(seeder.udp, datagram);
            }
        }
        wait_for(Duration::from_millis(200), || leecher.has_exited());
    }
    assert_downloads(&mut leecher, &seed, dest.path());
    assert_answers_ping(&mut probe, &seeder, "at the end");
    seeder.assert_running("at the end");
}

/// Case 2: on pollen (127.0.15.20), an `announce_peer` from 127.0.15.21
/// with a made-up token, then with the token pollen gave 127.0.15.22, is
/// refused (error 203, or no answer) and 127.0.15.23's `get_peers` does
/// not hand out 127.0.15.21; 127.0.15.22's own announce with its token is
/// accepted and handed out to 127.0.15.23.
#[test]
fn a_spoofed_token_stores_nothing_and_a_real_one_does() {
    let tmp = TempDir::new("dht-hostile-token");
    let (seed, torrent) = seeded_torrent(tmp.path(), FILES, Some(32 * 1024));
    let pollen = DhtPollen::seeder(&torrent, &seed, ip(20), &[]);
    let info_hash: [u8; 20] = krpc::id_from_seed(2020);
    let mut spoofer = Node::bind(ip(21), 2101);
    let mut honest = Node::bind(ip(22), 2201);
    let mut checker = Node::bind(ip(23), 2301);

    let get_token = |node: &mut Node| -> Vec<u8> {
        let id = node.id;
        let reply = node
            .ask(
                pollen.udp,
                |t| krpc::get_peers(t, &id, &info_hash),
                ANSWER_LIMIT,
            )
            .expect("an answer to get_peers");
        assert_eq!(reply.responder_id(), Some(pollen.id), "{reply:?}");
        reply.field("token").expect("a token").to_vec()
    };
    let refused = |node: &mut Node, port: u16, token: &[u8], what: &str| {
        let id = node.id;
        let reply = node.ask(
            pollen.udp,
            |t| krpc::announce_peer(t, &id, &info_hash, port, token),
            REFUSAL_LIMIT,
        );
        match &reply {
            None => println!("{what}: no answer"),
            Some(Krpc::Error { code, text, .. }) => {
                println!("{what}: error {code} {:?}", String::from_utf8_lossy(text));
                assert_eq!(*code, 203, "{what}: a protocol error");
            }
            Some(other) => panic!("{what}: accepted: {other:?}"),
        }
    };
    let peers_seen = |node: &mut Node| -> Vec<SocketAddrV4> {
        let id = node.id;
        let reply = node
            .ask(
                pollen.udp,
                |t| krpc::get_peers(t, &id, &info_hash),
                ANSWER_LIMIT,
            )
            .expect("an answer to get_peers");
        assert!(reply.field("token").is_some(), "{reply:?}");
        reply.values().unwrap_or_else(|e| panic!("{e}: {reply:?}"))
    };

    refused(&mut spoofer, 6881, b"made-up!", "a made-up token");
    let honest_token = get_token(&mut honest);
    refused(&mut spoofer, 6882, &honest_token, "another address's token");
    let spoofed = |p: &SocketAddrV4| *p.ip() == ip(21);
    let before = peers_seen(&mut checker);
    assert!(
        !before.iter().any(spoofed),
        "the spoofed announce is handed out: {before:?}"
    );

    let id = honest.id;
    let accepted = honest
        .ask(
            pollen.udp,
            |t| krpc::announce_peer(t, &id, &info_hash, 6883, &honest_token),
            ANSWER_LIMIT,
        )
        .expect("an answer to the honest announce");
    assert_eq!(accepted.responder_id(), Some(pollen.id), "{accepted:?}");
    let after = peers_seen(&mut checker);
    assert!(
        after.contains(&SocketAddrV4::new(ip(22), 6883)),
        "the honest announce is not handed out: {after:?}"
    );
    assert!(
        !after.iter().any(spoofed),
        "the spoofed announce is handed out: {after:?}"
    );
}

/// Case 3: 3,000 pings in a burst from 127.0.15.31 to pollen (127.0.15.30):
/// pollen's trace shows it answered fewer of them than it received (the
/// kernel may drop some before pollen reads them, so the trace, not the
/// count sent, is the measure), the flooder got no more answers than that,
/// and a ping from 127.0.15.32 right after is answered. No timing is
/// asserted.
#[test]
fn a_ping_flood_from_one_ip_is_answered_in_part_and_others_still_are() {
    const FLOOD: usize = 3_000;
    let tmp = TempDir::new("dht-hostile-flood");
    let (seed, torrent) = seeded_torrent(tmp.path(), FILES, Some(32 * 1024));
    let trace = tmp.path().join("trace.txt");
    let trace_arg = format!("--trace={}", trace.display());
    let pollen = DhtPollen::seeder(
        &torrent,
        &seed,
        ip(30),
        &[&trace_arg, "--trace-kinds", "dht"],
    );
    let flooder = Node::bind(ip(31), 3101);
    let mut other = Node::bind(ip(32), 3201);

    // Count pollen's answers as they come (its pings too, if any).
    let answers = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let reader = {
        let socket = flooder.socket.try_clone().unwrap();
        let (answers, stop) = (Arc::clone(&answers), Arc::clone(&stop));
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 2048];
            while !stop.load(Ordering::Relaxed) {
                if let Ok((len, _)) = socket.recv_from(&mut buf) {
                    if let Ok(Krpc::Response { t, .. }) = Krpc::parse(&buf[..len]) {
                        if t.first() == Some(&b'f') {
                            answers.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            }
        })
    };
    for n in 0..FLOOD {
        let t = [b"f".as_slice(), &(n as u32).to_be_bytes()].concat();
        flooder.send(pollen.udp, &krpc::ping(&t, &flooder.id));
        if n % 100 == 99 {
            std::thread::yield_now();
        }
    }
    assert_answers_ping(&mut other, &pollen, "right after the flood");
    // The other ping came after the whole flood on the same socket: once
    // its line is in the trace, every flood datagram pollen read is too.
    let other_line = format!("dht <- {}", other.addr());
    let traced = wait_for(ANSWER_LIMIT, || {
        std::fs::read_to_string(&trace).is_ok_and(|t| t.contains(&other_line))
    });
    assert!(traced, "the other ping is not in the trace");
    stop.store(true, Ordering::Relaxed);
    reader.join().unwrap();
    let text = std::fs::read_to_string(&trace).unwrap();
    assert!(!text.contains("lines dropped"), "the trace dropped lines");
    let from_flooder = format!("dht <- {} ", flooder.addr());
    let to_flooder = format!("dht -> {} response", flooder.addr());
    let received = text.lines().filter(|l| l.contains(&from_flooder)).count();
    let answered = text.lines().filter(|l| l.contains(&to_flooder)).count();
    let got = answers.load(Ordering::Relaxed);
    println!(
        "flood: {FLOOD} pings sent, {received} received by pollen, {answered} answered, {got} answers read"
    );
    assert!(received > 0, "pollen saw none of the flood");
    assert!(
        answered < received,
        "pollen answered all {received} pings of a flood from one IP"
    );
    assert!(got <= answered && got < FLOOD, "{got} answers read");
}

/// Case 4: 200 node ids on 127.0.15.41 (each its own port) ping pollen
/// (127.0.15.40) until each is answered, so each has introduced itself;
/// then six nodes on 127.0.15.42-47 do too. Every one of those 206 ids
/// was chosen to differ from pollen's id in its first bit, so they all
/// belong to one bucket (the half of the id space farthest from pollen's
/// id, which Kademlia never splits). One node per IP per bucket then
/// leaves at most one 127.0.15.41 node in the table, and room for all six
/// others (k = 8). A `find_node` from 127.0.15.48 (an id in the near half)
/// for one attacker's id gets at most one 127.0.15.41 entry and all six
/// others.
#[test]
fn many_ids_on_one_ip_take_one_slot_per_bucket() {
    const ATTACKERS: usize = 200;
    let attackers = (0..ATTACKERS).map(|_| Node::bind(ip(41), 0)).collect();
    poisoning(40, attackers, "dht-hostile-poison-ip");
}

/// Case 4 from a single socket: the 200 ids all come from one address and
/// port (127.0.15.61:P), the cheapest attack; pollen (127.0.15.60) keeps
/// at most one of them in the bucket, and the six nodes on 127.0.15.62-67
/// all get in.
#[test]
fn many_ids_on_one_address_take_one_slot_per_bucket() {
    const ATTACKERS: usize = 200;
    let first = Node::bind(ip(61), 0);
    let mut attackers: Vec<Node> = (1..ATTACKERS).map(|_| Node::sharing(&first)).collect();
    attackers.insert(0, first);
    poisoning(60, attackers, "dht-hostile-poison-addr");
}

/// Case 4's scenario: pollen on 127.0.15.`base`; `attackers` (sockets on
/// 127.0.15.`base + 1`) get ids in the far half and introduce themselves;
/// six controls on `base + 2 ..= base + 7` do too; an asker on `base + 8`
/// asks `find_node` for the first attacker's id. Asserts at most one
/// attacker and all six controls in the answer.
fn poisoning(base: u8, mut attackers: Vec<Node>, tag: &str) {
    let tmp = TempDir::new(tag);
    let (seed, torrent) = seeded_torrent(tmp.path(), FILES, Some(32 * 1024));
    let pollen = DhtPollen::seeder(&torrent, &seed, ip(base), &[]);
    let far = |seed: u64| {
        let mut id = krpc::id_from_seed(seed);
        id[0] = (!pollen.id[0] & 0x80) | (id[0] & 0x7f);
        id
    };
    for (n, node) in attackers.iter_mut().enumerate() {
        node.id = far(u64::from(base) * 1000 + n as u64);
    }
    let introduced = introduce(&attackers, pollen.udp);
    assert_eq!(introduced, attackers.len(), "every attacker was answered");
    let control_ips = ip(base + 2)..=ip(base + 7);
    let controls: Vec<Node> = (base + 2..=base + 7)
        .map(|last| {
            let mut node = Node::bind(ip(last), 0);
            node.id = far(u64::from(last));
            node
        })
        .collect();
    assert_eq!(introduce(&controls, pollen.udp), controls.len());

    let mut asker = Node::bind(ip(base + 8), u64::from(base) + 8);
    asker.id[0] = (pollen.id[0] & 0x80) | (asker.id[0] & 0x7f);
    let (asker_id, target) = (asker.id, attackers[0].id);
    let reply = asker
        .ask(
            pollen.udp,
            |t| krpc::find_node(t, &asker_id, &target),
            ANSWER_LIMIT,
        )
        .expect("an answer to find_node");
    let nodes = reply.nodes().unwrap_or_else(|e| panic!("{e}: {reply:?}"));
    let addrs: Vec<SocketAddrV4> = nodes.iter().map(|(_, a)| *a).collect();
    println!("find_node answer: {addrs:?}");
    let from_attacker = addrs.iter().filter(|a| *a.ip() == ip(base + 1)).count();
    assert!(
        from_attacker <= 1,
        "{from_attacker} of the {} nodes pollen returned are on {}: {addrs:?}",
        nodes.len(),
        ip(base + 1)
    );
    let controls_seen: BTreeSet<Ipv4Addr> = addrs
        .iter()
        .map(|a| *a.ip())
        .filter(|a| control_ips.contains(a))
        .collect();
    assert_eq!(
        controls_seen.len(),
        controls.len(),
        "nodes on distinct IPs joined the bucket: {addrs:?}"
    );
}

/// Each node pings `dht` with its id (resending until answered, within
/// 60 s: the rate limit per IP spreads 200 answers over several seconds)
/// and answers whatever pollen asks it meanwhile. Nodes may share a socket
/// ([`Node::sharing`]): answers are matched by transaction id, whichever
/// handle reads them. Returns how many were answered.
fn introduce(nodes: &[Node], dht: SocketAddr) -> usize {
    const LIMIT: Duration = Duration::from_secs(60);
    const RESEND: Duration = Duration::from_millis(500);
    let t_of = |i: usize| [b"i".as_slice(), &(i as u32).to_be_bytes()].concat();
    let mut answered = vec![false; nodes.len()];
    let mut next_send = vec![Instant::now(); nodes.len()];
    for node in nodes {
        node.socket.set_nonblocking(true).unwrap();
    }
    let deadline = Instant::now() + LIMIT;
    let mut buf = vec![0u8; 4096];
    while answered.iter().any(|a| !a) && Instant::now() < deadline {
        for (i, node) in nodes.iter().enumerate() {
            if !answered[i] && Instant::now() >= next_send[i] {
                node.send(dht, &krpc::ping(&t_of(i), &node.id));
                next_send[i] = Instant::now() + RESEND;
            }
            while let Ok((len, from)) = node.socket.recv_from(&mut buf) {
                match Krpc::parse(&buf[..len]) {
                    Ok(query @ Krpc::Query { .. }) => node.answer_plainly(&query, from),
                    Ok(reply) => {
                        let index = reply
                            .t()
                            .strip_prefix(b"i")
                            .and_then(|n| <[u8; 4]>::try_from(n).ok())
                            .map(|n| u32::from_be_bytes(n) as usize);
                        if let Some(flag) = index.and_then(|n| answered.get_mut(n)) {
                            *flag = true;
                        }
                    }
                    Err(_) => {}
                }
            }
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    for node in nodes {
        node.socket.set_nonblocking(false).unwrap();
    }
    answered.iter().filter(|a| **a).count()
}

/// Case 5: pollen (127.0.15.50) is given a bare magnet and one bootstrap
/// node, ours (127.0.15.51). Our node answers every `get_peers` twice
/// under its transaction id: first with an 8 KB datagram of 1,000 `values`
/// (over any sane datagram cap), then with a sane-sized one whose `values`
/// hold entries of wrong lengths (0, 5, 7, 12 and 18 bytes) and types (an
/// integer, a list), entries with port 0, the real seeder (127.0.15.52),
/// and 40 addresses where nobody listens. pollen downloads the files byte
/// for byte from the seeder, and never connects to the trap (127.0.15.54),
/// a listener named only by the 1,000-entry datagram and by the
/// wrong-length and wrong-type entries.
#[test]
fn garbage_get_peers_values_beside_a_real_seeder() {
    let tmp = TempDir::new("dht-hostile-values");
    let (seed, torrent) = seeded_torrent(tmp.path(), FILES, Some(32 * 1024));
    let hash = info_hash(&torrent);
    let seed_bind = ip(52).to_string();
    let mut seeder = Pollen::seeder(&torrent, &seed, &["--no-dht", "--bind", &seed_bind]);
    let seeder_addr = SocketAddrV4::new(ip(52), seeder.port());

    // Where only a misread garbage entry leads: nobody should connect.
    let trap = TcpListener::bind((ip(54), 0)).unwrap();
    trap.set_nonblocking(true).unwrap();
    let trap_addr = match trap.local_addr().unwrap() {
        SocketAddr::V4(a) => a,
        SocketAddr::V6(a) => panic!("{a}"),
    };

    let fake = Node::bind(ip(51), 5101);
    let fake_addr = fake.addr();
    let stop = Arc::new(AtomicBool::new(false));
    let get_peers_seen = Arc::new(AtomicUsize::new(0));
    let server = {
        let (stop, seen) = (Arc::clone(&stop), Arc::clone(&get_peers_seen));
        std::thread::spawn(move || serve_garbage(&fake, hash, seeder_addr, trap_addr, &stop, &seen))
    };

    let dest = TempDir::new("dht-hostile-values-leech");
    let magnet = format!(
        "magnet:?xt=urn:btih:{}",
        hash.iter().map(|b| format!("{b:02x}")).collect::<String>()
    );
    let bootstrap = fake_addr.to_string();
    let bind = ip(50).to_string();
    let mut leecher = Pollen::start([
        magnet.as_str(),
        "--dest",
        dest.path().to_str().unwrap(),
        "--bind",
        &bind,
        "--dht-bootstrap",
        &bootstrap,
        "-v",
    ]);
    let status = leecher.wait(DOWNLOAD_LIMIT);
    stop.store(true, Ordering::Relaxed);
    let unexpected = server.join().unwrap();
    let stderr = leecher.stderr();
    println!(
        "get_peers answered: {}",
        get_peers_seen.load(Ordering::Relaxed)
    );
    assert!(
        status.success(),
        "leecher failed ({status}); stderr:\n{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(
        get_peers_seen.load(Ordering::Relaxed) >= 1,
        "the peers came from elsewhere than our get_peers answers"
    );
    assert!(
        unexpected.is_empty(),
        "undecodable datagrams: {unexpected:?}"
    );
    assert_same_tree(&seed, dest.path());
    let trapped = trap.accept();
    assert!(
        trapped.is_err(),
        "pollen connected to {trap_addr}, named only by garbage: {trapped:?}"
    );
}

/// Our bootstrap node for case 5: answers pollen's queries until `stop`,
/// `get_peers` with the garbage described there. Returns the datagrams it
/// could not read as KRPC.
fn serve_garbage(
    node: &Node,
    info_hash: [u8; 20],
    seeder: SocketAddrV4,
    trap: SocketAddrV4,
    stop: &AtomicBool,
    get_peers_seen: &AtomicUsize,
) -> Vec<Vec<u8>> {
    let dead = |port: u16| compact_peer(SocketAddrV4::new(ip(53), port));
    let trap = compact_peer(trap);
    let mut oversize: Vec<Vec<u8>> = vec![bstr(&trap)];
    oversize.extend((1..1000u16).map(|n| bstr(&dead(20_000 + n))));
    let mut garbage: Vec<Vec<u8>> = vec![
        bstr(b""),
        bstr(&trap[..5]),
        bstr(&[trap.as_slice(), &[0]].concat()),
        bstr(&[trap.as_slice(), &trap].concat()),
        bstr(&[[0u8; 15].as_slice(), &[1, 0x1a, 0xe1]].concat()), // 18 bytes: ::1 port 6881
        bint(0x7f00_0f36),
        blist(&[bstr(&trap)]),
        bstr(&compact_peer(SocketAddrV4::new(*seeder.ip(), 0))),
        bstr(&compact_peer(SocketAddrV4::new(ip(53), 0))),
        bstr(&compact_peer(seeder)),
    ];
    garbage.extend((0..40u16).map(|n| bstr(&dead(10_000 + n))));
    let mut unreadable = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        let Some((bytes, from)) = node.recv(Duration::from_millis(100)) else {
            continue;
        };
        let query = match Krpc::parse(&bytes) {
            Ok(query @ Krpc::Query { .. }) => query,
            Ok(_) => continue,
            Err(_) => {
                unreadable.push(bytes);
                continue;
            }
        };
        let Krpc::Query { t, method, .. } = &query else {
            continue;
        };
        if method.as_slice() != b"get_peers" || query.arg("info_hash") != Some(&info_hash) {
            node.answer_plainly(&query, from);
            continue;
        }
        get_peers_seen.fetch_add(1, Ordering::Relaxed);
        let token = ("token", bstr(b"tok"));
        node.send(
            from,
            &response(t, &node.id, &[token.clone(), ("values", blist(&oversize))]),
        );
        let sane = response(t, &node.id, &[token, ("values", blist(&garbage))]);
        assert!(sane.len() < 1500, "the sane answer is {} bytes", sane.len());
        node.send(from, &sane);
    }
    unreadable
}
