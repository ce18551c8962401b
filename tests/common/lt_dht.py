"""A libtorrent peer with its DHT on, for pollen's DHT interop tests (BEP 5).

    /usr/bin/python3 lt_dht.py seed   TORRENT    SAVE_DIR BOOTSTRAP [LIMIT_SECONDS]
    /usr/bin/python3 lt_dht.py magnet MAGNET_URI SAVE_DIR BOOTSTRAP [LIMIT_SECONDS]

BOOTSTRAP is HOST:PORT of the one DHT node to join through, or `-` for none (the
first node of a network: others join through it). The magnet link needs no tracker
and no x.pe: peers come from the DHT only.

Prints, one line each, flushed:
    listening PORT    once the session is bound: TCP and the DHT's UDP socket share
                      this port, on 127.0.0.1 only
    seeding           seed: the data checked complete (then it seeds until killed)
    metadata HEX      magnet: the metadata arrived (BEP 9) for info-hash HEX
    complete          magnet: every piece downloaded and verified; then it exits 0
Alerts (DHT, peers, errors) go to stderr, for the test's failure report.

The settings are the ones /work/shared/INTEROP.md found to work on loopback: DHT on
with its IP restrictions off (every node here is in 127.0.0.0/8), several
connections per IP, local peer discovery, UPnP, NAT-PMP and uTP off, so no packet
leaves the loopback. Both modes ask for a DHT announce (a get_peers lookup, then
announce_peer) every ANNOUNCE_EVERY seconds instead of libtorrent's default 15
minutes, so a node that joins after the start is announced to within seconds.
It exits 1 when LIMIT_SECONDS (default 300) pass first, or when a seeder finds its
data incomplete. Test code only: run with Debian's /usr/bin/python3 (package
python3-libtorrent).
"""

import sys
import time

import libtorrent as lt

# Seconds between forced DHT announces (see the module doc).
ANNOUNCE_EVERY = 2.0


def new_session(bootstrap):
    """A libtorrent session on 127.0.0.1 with its DHT joined through BOOTSTRAP."""
    return lt.session({
        "listen_interfaces": "127.0.0.1:0",
        "outgoing_interfaces": "127.0.0.1",
        "enable_dht": True,
        "dht_bootstrap_nodes": "" if bootstrap == "-" else bootstrap,
        "dht_restrict_routing_ips": False,
        "dht_restrict_search_ips": False,
        "dht_prefer_verified_node_ids": False,
        "dht_ignore_dark_internet": False,
        "enable_lsd": False,
        "enable_upnp": False,
        "enable_natpmp": False,
        "enable_outgoing_utp": False,
        "enable_incoming_utp": False,
        # Every peer of a loopback test has an address in 127.0.0.0/8.
        "allow_multiple_connections_per_ip": True,
        "alert_mask": lt.alert.category_t.error_notification
        | lt.alert.category_t.dht_notification
        | lt.alert.category_t.peer_notification
        | lt.alert.category_t.connect_notification
        | lt.alert.category_t.status_notification,
    })


def drain(ses):
    """Copies the pending alerts to stderr."""
    for alert in ses.pop_alerts():
        print("alert", type(alert).__name__, alert.message(), file=sys.stderr, flush=True)


def run(mode, source, save, bootstrap, deadline):
    ses = new_session(bootstrap)
    if mode == "seed":
        params = {"ti": lt.torrent_info(source), "save_path": save}
    else:
        params = lt.parse_magnet_uri(source)
        params.save_path = save
    handle = ses.add_torrent(params)
    print("listening", ses.listen_port(), flush=True)
    done = (lt.torrent_status.seeding, lt.torrent_status.finished)
    busy = (lt.torrent_status.checking_files, lt.torrent_status.checking_resume_data)
    told_seeding = told_metadata = False
    next_announce = 0.0
    while time.monotonic() < deadline:
        drain(ses)
        now = time.monotonic()
        if now >= next_announce:
            handle.force_dht_announce()
            next_announce = now + ANNOUNCE_EVERY
        status = handle.status()
        if mode == "seed" and not told_seeding:
            if status.state in done:
                print("seeding", flush=True)
                told_seeding = True
            elif status.state not in busy:
                sys.exit("seed data incomplete: %d pieces" % status.num_pieces)
        if mode == "magnet":
            if status.has_metadata and not told_metadata:
                print("metadata", str(handle.torrent_file().info_hashes().v1), flush=True)
                told_metadata = True
            if status.state in done:
                print("complete", flush=True)
                ses.remove_torrent(handle)
                drain(ses)
                return
        time.sleep(0.05)
    sys.exit("time limit reached in state %s" % handle.status().state)


def main():
    args = sys.argv[1:]
    if len(args) not in (4, 5) or args[0] not in ("seed", "magnet"):
        sys.exit(__doc__)
    limit = float(args[4]) if len(args) == 5 else 300.0
    run(args[0], args[1], args[2], args[3], time.monotonic() + limit)


main()
