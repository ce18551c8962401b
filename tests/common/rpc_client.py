"""Drives `pollen daemon` through the Python `transmission-rpc` package, for
tests/daemon_remote.rs (python_transmission_rpc_drives_the_daemon).

    rpc_client.py HOST PORT TORRENT_FILE MAGNET DEADLINE_SECONDS

Adds TORRENT_FILE (its bytes) and MAGNET, waits until both are at 100 %,
stops and starts the first, reads the session and its statistics, removes
the second with its data, and prints one line `RESULT {json}` for the test
to check (the test compares the files on disk). Exits non-zero, with the
reason on stderr, when something fails or DEADLINE_SECONDS pass.
"""

import json
import sys
import time

import transmission_rpc

# Seconds between two polls of the daemon.
POLL = 0.2


def main():
    host, port, torrent_file, magnet, limit = sys.argv[1:6]
    deadline = time.monotonic() + float(limit)
    client = transmission_rpc.Client(host=host, port=int(port), timeout=10)

    def wait(what, cond):
        while True:
            value = cond()
            if value:
                return value
            if time.monotonic() > deadline:
                sys.exit(f"rpc_client.py: {what}: not within {limit} s")
            time.sleep(POLL)

    with open(torrent_file, "rb") as f:
        a = client.add_torrent(f)
    b = client.add_torrent(magnet)

    def both_done():
        torrents = {t.id: t for t in client.get_torrents()}
        ta, tb = torrents.get(a.id), torrents.get(b.id)
        if ta and tb and ta.percent_done == 1.0 and tb.percent_done == 1.0:
            return ta, tb
        return None

    ta, tb = wait("both at 100%", both_done)

    client.stop_torrent(a.id)
    stopped = wait(
        "the first stopped",
        lambda: (t := client.get_torrent(a.id)).status == "stopped" and t,
    )
    client.start_torrent(a.id)
    started = wait(
        "the first seeding again",
        lambda: (t := client.get_torrent(a.id)).status in ("seeding", "seed pending") and t,
    )

    session = client.get_session()
    stats = client.session_stats()

    client.remove_torrent(b.id, delete_data=True)
    remaining = wait(
        "the second removed",
        lambda: (left := client.get_torrents()) and len(left) == 1 and left,
    )

    result = {
        "a": {
            "id": ta.id,
            "name": ta.name,
            "hash": ta.hash_string,
            "stopped_status": str(stopped.status.value),
            "started_status": str(started.status.value),
        },
        "b": {"id": tb.id, "name": tb.name, "hash": tb.hash_string},
        "session": {
            "version": session.version,
            "rpc_version": session.rpc_version,
            "download_dir": session.download_dir,
        },
        "stats": {"torrent_count": stats.torrent_count},
        "remaining": [t.name for t in remaining],
    }
    print("RESULT " + json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
