"""A libtorrent peer on 127.0.0.1 for pollen's interop tests and swarm bench.

    /usr/bin/python3 lt_peer.py seed  TORRENT SAVE_DIR [LIMIT_SECONDS]
    /usr/bin/python3 lt_peer.py leech TORRENT SAVE_DIR [LIMIT_SECONDS]
    /usr/bin/python3 lt_peer.py magnet MAGNET_URI SAVE_DIR HOST:PORT [LIMIT_SECONDS]
    /usr/bin/python3 lt_peer.py crowd N TORRENT SAVE_DIR HOST:PORT [LIMIT_SECONDS]

Prints, one line each, flushed:
    listening PORT    once the session is bound (TCP, 127.0.0.1 only)
    seeding           seed: the data checked complete (then it seeds until killed)
    complete          leech: every piece downloaded and verified (then it leaves the
                      swarm, telling its trackers `stopped`, and exits 0)
    metadata HEX      magnet: the metadata arrived (BEP 9); HEX is the info-hash of
                      the torrent it makes up. Then `complete` as for leech.
The magnet mode knows only the link and dials HOST:PORT itself (connect_peer), so
it needs no tracker.
The crowd mode runs N leeching sessions in one process (SAVE_DIR/0, /1...), each
dialing HOST:PORT (no tracker); it prints `crowd N` once all are added and
`complete K` as session K finishes, and leeches until LIMIT_SECONDS or killed:
more leechers than a seeder's upload slots, so the seeder chokes some.
It exits 1 when LIMIT_SECONDS (default 300) pass first, or when a seeder finds its
data incomplete. The peer announces to the torrent's trackers; DHT, local peer
discovery, UPnP, NAT-PMP and uTP are off, so no packet leaves the loopback.
Test code only: run with Debian's /usr/bin/python3 (package python3-libtorrent).
"""

import sys
import time

import libtorrent as lt


def leave(ses, handle, limit=5.0):
    """Removes the torrent so that libtorrent announces `stopped`, and waits (at most
    LIMIT seconds) until the tracker has answered it. Exiting with the torrent still
    added sends no `stopped`, and a tracker would list this peer as a seeder for
    minutes; exiting right after "sending announce" can cut a UDP announce short
    (it needs a connect round trip first) on a busy machine."""
    ses.remove_torrent(handle)
    deadline = time.monotonic() + limit
    sent = False
    while time.monotonic() < deadline:
        for alert in ses.pop_alerts():
            print("alert", alert.message(), file=sys.stderr, flush=True)
            if isinstance(alert, lt.tracker_announce_alert) and alert.event == lt.event_t.stopped:
                sent = True
            elif sent and isinstance(alert, (lt.tracker_reply_alert, lt.tracker_error_alert)):
                return
        time.sleep(0.02)


def new_session():
    """A libtorrent session on 127.0.0.1 only (see the module doc)."""
    return lt.session({
        "listen_interfaces": "127.0.0.1:0",
        "outgoing_interfaces": "127.0.0.1",
        "enable_dht": False,
        "enable_lsd": False,
        "enable_upnp": False,
        "enable_natpmp": False,
        "enable_outgoing_utp": False,
        "enable_incoming_utp": False,
        # Every peer of a loopback test shares the address 127.0.0.1.
        "allow_multiple_connections_per_ip": True,
        "alert_mask": lt.alert.category_t.error_notification
        | lt.alert.category_t.tracker_notification,
    })


def crowd(count, torrent, save, peer, deadline):
    """COUNT leeching sessions of TORRENT, each dialing PEER (HOST:PORT)."""
    host, port = peer.rsplit(":", 1)
    ti = lt.torrent_info(torrent)
    sessions = []
    for n in range(count):
        ses = new_session()
        handle = ses.add_torrent({"ti": ti, "save_path": "%s/%d" % (save, n)})
        handle.connect_peer((host, int(port)))
        sessions.append((ses, handle))
    print("crowd", count, flush=True)
    done = set()
    while time.monotonic() < deadline:
        for n, (ses, handle) in enumerate(sessions):
            for alert in ses.pop_alerts():
                print("alert", n, alert.message(), file=sys.stderr, flush=True)
            status = handle.status()
            if n not in done and status.state in (lt.torrent_status.seeding, lt.torrent_status.finished):
                done.add(n)
                print("complete", n, flush=True)
            elif status.num_peers == 0:
                handle.connect_peer((host, int(port)))
        time.sleep(0.2)
    sys.exit("crowd time limit reached")


def main():
    args = sys.argv[1:]
    if args[:1] == ["crowd"] and len(args) in (5, 6):
        limit = float(args[5]) if len(args) == 6 else 300.0
        crowd(int(args[1]), args[2], args[3], args[4], time.monotonic() + limit)
        return
    peer = None
    if args[:1] == ["magnet"] and len(args) in (4, 5):
        peer = args.pop(3)
    if len(args) not in (3, 4) or args[0] not in ("seed", "leech", "magnet"):
        sys.exit(__doc__)
    mode, torrent, save = args[0], args[1], args[2]
    limit = float(args[3]) if len(args) == 4 else 300.0
    deadline = time.monotonic() + limit

    ses = new_session()
    if mode == "magnet":
        magnet_leech(ses, torrent, save, peer, deadline)
        return
    ti = lt.torrent_info(torrent)
    handle = ses.add_torrent({"ti": ti, "save_path": save})
    print("listening", ses.listen_port(), flush=True)

    done = (lt.torrent_status.seeding, lt.torrent_status.finished)
    busy = (lt.torrent_status.checking_files, lt.torrent_status.checking_resume_data)
    while time.monotonic() < deadline:
        status = handle.status()
        for alert in ses.pop_alerts():
            print("alert", alert.message(), file=sys.stderr, flush=True)
        if status.state in done:
            if mode == "leech":
                print("complete", flush=True)
                leave(ses, handle)
                return
            print("seeding", flush=True)
            break
        if mode == "seed" and status.state not in busy:
            sys.exit("seed data incomplete: %d of %d pieces" % (status.num_pieces, ti.num_pieces()))
        time.sleep(0.02)
    else:
        sys.exit("time limit of %.0f s reached in state %s" % (limit, handle.status().state))

    while time.monotonic() < deadline:
        for alert in ses.pop_alerts():
            print("alert", alert.message(), file=sys.stderr, flush=True)
        time.sleep(0.2)
    sys.exit("seeder time limit reached")


def magnet_leech(ses, uri, save, peer, deadline):
    """Downloads from a magnet link alone, dialing PEER (HOST:PORT) directly."""
    params = lt.parse_magnet_uri(uri)
    params.save_path = save
    handle = ses.add_torrent(params)
    print("listening", ses.listen_port(), flush=True)
    host, port = peer.rsplit(":", 1)
    handle.connect_peer((host, int(port)))
    told = False
    redial = time.monotonic() + 5.0
    done = (lt.torrent_status.seeding, lt.torrent_status.finished)
    while time.monotonic() < deadline:
        status = handle.status()
        for alert in ses.pop_alerts():
            print("alert", alert.message(), file=sys.stderr, flush=True)
        if status.has_metadata and not told:
            print("metadata", str(handle.torrent_file().info_hashes().v1), flush=True)
            told = True
        if status.state in done:
            print("complete", flush=True)
            ses.remove_torrent(handle)
            return
        if status.num_peers == 0 and time.monotonic() > redial:
            handle.connect_peer((host, int(port)))
            redial = time.monotonic() + 5.0
        time.sleep(0.02)
    sys.exit("time limit reached in state %s" % handle.status().state)


main()
