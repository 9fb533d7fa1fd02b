#!/usr/bin/env python3
"""receiver.py PORT DIR [HOST]: the baseline for scripts/bench/sync.sh. Accepts one HTTP PUT per
connection (Content-Length or chunked), hashes the body with SHA-256 while writing it to a file
in DIR, fsyncs, and answers 200 with the digest: what any receiver that verifies must do at
least."""
import hashlib, os, socket, sys

port, d = int(sys.argv[1]), sys.argv[2]
host = sys.argv[3] if len(sys.argv) > 3 else "127.0.0.1"
srv = socket.socket(); srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind((host, port)); srv.listen(8)
while True:
    c, _ = srv.accept()
    f = c.makefile("rb", buffering=1 << 20)
    head = {}
    line = f.readline()
    while True:
        l = f.readline().decode().strip()
        if not l: break
        k, v = l.split(":", 1); head[k.strip().lower()] = v.strip()
    if head.get("expect", "").lower() == "100-continue":
        c.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
    h = hashlib.sha256()
    path = os.path.join(d, "upload")
    with open(path, "wb") as out:
        def take(n):
            while n > 0:
                b = f.read(min(n, 1 << 20))
                if not b: raise EOFError
                h.update(b); out.write(b); n -= len(b)
        if "content-length" in head:
            take(int(head["content-length"]))
        else:
            while True:
                size = int(f.readline().split(b";")[0], 16)
                if size == 0:
                    f.readline(); break
                take(size); f.readline()
        out.flush(); os.fsync(out.fileno())
    body = h.hexdigest().encode()
    c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(body), body))
    c.close(); os.remove(path)
