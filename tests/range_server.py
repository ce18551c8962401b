"""A tiny HTTP/1.1 file server with Range support, for pollen's web seed
tests (Python 3.11's http.server ignores Range).

Usage: python3 range_server.py DIR
Binds 127.0.0.1 on a free port and prints "port N" on its first line.
Serves GET with keep-alive; "Range: bytes=a-b" (one range) gets 206 with
Content-Range, no Range gets 200, a missing file 404, a bad range 416.
Two prefixes test redirects: /redirect/PATH answers 302 to /PATH, and
/loop/PATH answers 302 to itself for ever.
"""
import os
import re
import sys
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ROOT = os.path.realpath(sys.argv[1])


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # As nginx does on keep-alive connections: without it, a reply's last
    # partial segment waits for the client's delayed ACK (40 ms a request).
    disable_nagle_algorithm = True

    def log_message(self, fmt, *args):
        sys.stderr.write("range_server: " + (fmt % args) + "\n")

    def send_empty(self, code):
        self.send_response(code)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def redirect(self, location):
        self.send_response(302)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_GET(self):
        raw = urllib.parse.urlsplit(self.path).path
        if raw.startswith("/redirect/"):
            return self.redirect(raw[len("/redirect"):])
        if raw.startswith("/loop/"):
            return self.redirect(raw)
        path = urllib.parse.unquote(raw)
        full = os.path.realpath(os.path.join(ROOT, path.lstrip("/")))
        if not full.startswith(ROOT + os.sep) or not os.path.isfile(full):
            return self.send_empty(404)
        size = os.path.getsize(full)
        first, last, code = 0, size - 1, 200
        header = self.headers.get("Range")
        if header:
            m = re.fullmatch(r"bytes=(\d+)-(\d*)", header.strip())
            if not m or int(m.group(1)) >= size:
                return self.send_empty(416)
            first = int(m.group(1))
            last = min(int(m.group(2)) if m.group(2) else size - 1, size - 1)
            if last < first:
                return self.send_empty(416)
            code = 206
        self.send_response(code)
        if code == 206:
            self.send_header("Content-Range", f"bytes {first}-{last}/{size}")
        self.send_header("Content-Length", str(last - first + 1))
        self.end_headers()
        with open(full, "rb") as f:
            f.seek(first)
            left = last - first + 1
            while left > 0:
                chunk = f.read(min(left, 1 << 16))
                if not chunk:
                    break
                self.wfile.write(chunk)
                left -= len(chunk)


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
server.daemon_threads = True
print(f"port {server.server_address[1]}", flush=True)
server.serve_forever()
