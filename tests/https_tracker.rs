//! An HTTPS announce to a local TLS tracker whose certificate is signed by
//! a test CA: refused without `--tracker-ca`, accepted with it, and the
//! download completes through it. The CA and the server are made here with
//! `openssl` and Python's `ssl` module (without them the test is reported
//! as ignored, with the reason; `common::harness`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::harness::{self, program, trial, Need};
use common::process::{assert_same_tree, wait_for, Pollen};
use common::{write_tree, TempDir};
use pollen::create::{create_torrent, CreateOptions};

fn main() {
    harness::run(vec![trial!(
        https_announce_with_a_private_ca,
        [
            Need::Feature {
                name: "https",
                enabled: cfg!(feature = "https")
            },
            program("openssl", "openssl"),
            program("python3", "python3"),
        ]
    )]);
}

/// A one-file HTTPS tracker: answers every announce with the compact
/// address given on the command line.
const TLS_TRACKER: &str = r#"
import http.server, ssl, sys, struct
cert, key, peer_port, port_file = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        peers = bytes([127, 0, 0, 1]) + struct.pack(">H", peer_port)
        body = b"d8:intervali60e5:peers6:" + peers + b"e"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
server = http.server.HTTPServer(("127.0.0.1", 0), H)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
server.socket = ctx.wrap_socket(server.socket, server_side=True)
open(port_file, "w").write(str(server.server_address[1]))
server.serve_forever()
"#;

struct Kill(Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn openssl(dir: &std::path::Path, args: &[&str]) {
    let status = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "openssl {args:?}");
}

/// A CA and a server certificate for 127.0.0.1 signed by it.
fn make_certs(dir: &std::path::Path) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "2",
            "-subj",
            "/CN=pollen test CA",
        ],
    );
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=127.0.0.1",
        ],
    );
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
    )
    .unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.pem",
            "-days",
            "2",
            "-extfile",
            "ext.cnf",
        ],
    );
}

fn https_announce_with_a_private_ca() {
    let tmp = TempDir::new("https");
    make_certs(tmp.path());
    let seed = tmp.path().join("seed");
    write_tree(&seed, &[("h/data.bin", 700_000, 31)]);
    // The seeder first (no tracker), so the TLS tracker can point at it.
    let probe_torrent = tmp.path().join("probe.torrent");
    let plain = CreateOptions {
        piece_len: Some(32 * 1024),
        ..CreateOptions::default()
    };
    std::fs::write(
        &probe_torrent,
        create_torrent(&seed.join("h"), &plain).unwrap(),
    )
    .unwrap();
    let mut seeder = Pollen::start([
        probe_torrent.as_os_str(),
        "-d".as_ref(),
        seed.as_os_str(),
        "--seed".as_ref(),
        "--no-tracker".as_ref(),
        "-q".as_ref(),
    ]);
    let seed_port = seeder.port().to_string();
    let port_file = tmp.path().join("port");
    let server = Command::new("python3")
        .args(["-c", TLS_TRACKER])
        .arg(tmp.path().join("server.pem"))
        .arg(tmp.path().join("server.key"))
        .arg(&seed_port)
        .arg(&port_file)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _server = Kill(server);
    assert!(wait_for(Duration::from_secs(20), || {
        std::fs::read_to_string(&port_file).is_ok_and(|p| !p.is_empty())
    }));
    let url = format!(
        "https://127.0.0.1:{}/announce",
        std::fs::read_to_string(&port_file).unwrap()
    );
    let https = CreateOptions {
        trackers: vec![url],
        ..plain
    };
    let torrent = tmp.path().join("https.torrent");
    std::fs::write(&torrent, create_torrent(&seed.join("h"), &https).unwrap()).unwrap();

    // Without the CA the certificate is not trusted: the announce fails.
    let untrusted = tmp.path().join("untrusted");
    let mut refused = Pollen::start([
        torrent.as_os_str(),
        "-d".as_ref(),
        untrusted.as_os_str(),
        "-v".as_ref(),
    ]);
    assert!(
        wait_for(Duration::from_secs(30), || refused
            .stderr()
            .contains("tracker https://")),
        "{}",
        refused.stderr()
    );
    assert!(
        !refused.stderr().contains("Started:"),
        "{}",
        refused.stderr()
    );
    refused.kill();

    // With --tracker-ca it is: the leecher finds the seeder through it.
    let dest = tmp.path().join("leech");
    let ca = tmp.path().join("ca.pem");
    let mut leecher = Pollen::start([
        torrent.as_os_str(),
        "-d".as_ref(),
        dest.as_os_str(),
        "--tracker-ca".as_ref(),
        ca.as_os_str(),
        "-v".as_ref(),
    ]);
    assert!(
        leecher.wait(Duration::from_secs(60)).success(),
        "{}",
        leecher.stderr()
    );
    assert!(
        leecher.stderr().contains("Started: 1 peers"),
        "{}",
        leecher.stderr()
    );
    assert_same_tree(&seed, &dest);
    seeder.kill();
}
