#!/usr/bin/env python3
"""A fault-injecting HTTP proxy in front of a registry, for seed's tests.

usage: faultproxy.py UPSTREAM_PORT STATE_DIR

Listens on 127.0.0.1 (a free port, written to STATE_DIR/port) and forwards every request to
127.0.0.1:UPSTREAM_PORT, except as STATE_DIR/mode says (re-read on every request):
  pass            forward everything
  500:N           answer the first N requests with 500, then forward
  429:SECS        answer the first request with 429 and Retry-After: SECS, then forward
  slow:BPS        forward, sending response bodies at about BPS bytes per second
  redirect        answer blob GETs with 307 to http://localhost:<port2>/..., a second listener
                  that records the headers it gets in STATE_DIR/redirected and serves the blob
                  by fetching it from upstream with the Authorization header in STATE_DIR/upstream-auth
Every request line and whether it carried Authorization is appended to STATE_DIR/log.
"""
import http.client, http.server, os, socketserver, sys, threading

upstream = int(sys.argv[1])
state = sys.argv[2]
counter = {"n": 0}
lock = threading.Lock()

def mode():
    try:
        return open(os.path.join(state, "mode")).read().strip()
    except FileNotFoundError:
        return "pass"

def log(line):
    with lock:
        with open(os.path.join(state, "log"), "a") as f:
            f.write(line + "\n")

def forward(handler, path, headers, method):
    conn = http.client.HTTPConnection("127.0.0.1", upstream, timeout=60)
    conn.request(method, path, headers=headers)
    r = conn.getresponse()
    body = r.read()
    handler.send_response(r.status)
    for k, v in r.getheaders():
        if k.lower() in ("transfer-encoding", "connection", "content-length"):
            continue
        if k.lower() == "www-authenticate" or k.lower() == "location":
            v = v.replace("127.0.0.1:%d" % upstream, "127.0.0.1:%d" % handler.server.server_address[1])
        handler.send_header(k, v)
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    if method == "HEAD":
        return
    m = mode()
    if m.startswith("slow:"):
        import time
        rate = int(m[5:])
        step = max(1, rate // 20)
        for i in range(0, len(body), step):
            handler.wfile.write(body[i:i + step]); handler.wfile.flush()
            time.sleep(step / rate)
    else:
        handler.wfile.write(body)

class Proxy(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a): pass

    def handle_any(self, method):
        auth = self.headers.get("Authorization")
        log("%s %s auth=%s" % (method, self.path, "yes" if auth else "no"))
        m = mode()
        with lock:
            counter["n"] += 1
            n = counter["n"]
        if m.startswith("500:") and n <= int(m[4:]):
            body = b'{"errors":[{"code":"UNKNOWN","message":"injected failure"}]}'
            self.send_response(500); self.send_header("Content-Length", str(len(body))); self.end_headers(); self.wfile.write(body); return
        if m.startswith("429:") and n == 1:
            self.send_response(429); self.send_header("Retry-After", m[4:]); self.send_header("Content-Length", "0"); self.end_headers(); return
        if m == "redirect" and method == "GET" and "/blobs/sha256:" in self.path:
            port2 = int(open(os.path.join(state, "port2")).read())
            self.send_response(307); self.send_header("Location", "http://localhost:%d%s" % (port2, self.path))
            self.send_header("Content-Length", "0"); self.end_headers(); return
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
        forward(self, self.path, headers, method)

    def do_GET(self): self.handle_any("GET")
    def do_HEAD(self): self.handle_any("HEAD")

class Redirected(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a): pass
    def do_GET(self):
        with lock:
            with open(os.path.join(state, "redirected"), "a") as f:
                f.write("%s auth=%s\n" % (self.path, self.headers.get("Authorization") or "none"))
        headers = {}
        try:
            headers["Authorization"] = open(os.path.join(state, "upstream-auth")).read().strip()
        except FileNotFoundError:
            pass
        forward(self, self.path, headers, "GET")

class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True

main = Server(("127.0.0.1", 0), Proxy)
second = Server(("127.0.0.1", 0), Redirected)
open(os.path.join(state, "port2.tmp"), "w").write(str(second.server_address[1]))
os.rename(os.path.join(state, "port2.tmp"), os.path.join(state, "port2"))
threading.Thread(target=second.serve_forever, daemon=True).start()
open(os.path.join(state, "port.tmp"), "w").write(str(main.server_address[1]))
os.rename(os.path.join(state, "port.tmp"), os.path.join(state, "port"))
main.serve_forever()
