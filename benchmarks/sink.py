# The peers' benchmark sink, kept in the repository so the benchmarks depend on
# nothing outside it. PORT may be 0 (the OS picks a free port, so parallel runs
# never collide) and the ready line names the port bound.
"""A loopback HTTP sink that accepts any POST, counts JSON events, answers 200.

Usage: python sink.py PORT  (prints 'ready PORT' when listening; PORT 0 picks one). GET /count -> total events seen.
Understands Segment (batch), PostHog (batch), Bento (events) payload shapes, gzip bodies.
"""

import gzip
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

TOTAL = 0
REQS = 0
LOCK = threading.Lock()


class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def _reply(self, code, body=b'{"results":1}'):
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path.startswith("/count"):
            self._reply(200, json.dumps({"events": TOTAL, "requests": REQS}).encode())
        else:
            self._reply(200, b"{}")

    def do_POST(self):
        global TOTAL, REQS
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(n)
        if self.headers.get("Content-Encoding") == "gzip" or raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
        try:
            doc = json.loads(raw or b"{}")
        except Exception:
            doc = {}
        k = 0
        if isinstance(doc, dict):
            for key in ("batch", "events", "subscribers", "emails"):
                if isinstance(doc.get(key), list):
                    k = len(doc[key])
                    break
            else:
                k = 1
        with LOCK:
            TOTAL += k
            REQS += 1
        self._reply(200, json.dumps({"results": k}).encode())


if __name__ == "__main__":
    srv = ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H)
    print(f"ready {srv.server_address[1]}", flush=True)
    srv.serve_forever()
