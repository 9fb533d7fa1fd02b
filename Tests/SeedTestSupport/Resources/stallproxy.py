"""A TCP proxy that can stall uploads, for tests of what a sender does when a receiver stops
reading. Usage: stallproxy.py UPSTREAM_PORT STATE_DIR

It listens on 127.0.0.1 (port written to STATE_DIR/port) and forwards every connection to
127.0.0.1:UPSTREAM_PORT. While STATE_DIR/stall exists, a connection that has forwarded more
than 1 MiB from its client stops reading from that client (the client's writes back up) and
touches STATE_DIR/stalled. When either side closes or resets, both sockets are closed abortively.
"""
import os, socket, struct, sys, threading, time

upstream = int(sys.argv[1])
state = sys.argv[2]
LIMIT = 1 << 20

def close_hard(s):
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    try:
        s.close()
    except OSError:
        pass

def pump(src, dst, upload, done):
    sent = 0
    try:
        while not done.is_set():
            if upload and sent > LIMIT and os.path.exists(os.path.join(state, "stall")):
                open(os.path.join(state, "stalled"), "w").close()
                try:
                    # Still notice the client going away (a reset, or its end of the stream).
                    if src.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b"":
                        raise ConnectionResetError("client closed")
                except BlockingIOError:
                    pass
                time.sleep(0.05)
                continue
            data = src.recv(65536)
            if not data:
                break
            dst.sendall(data)
            sent += len(data)
        try:
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        if not upload:
            done.set()
    except OSError:
        done.set()
        close_hard(src)
        close_hard(dst)

def handle(client):
    up = socket.create_connection(("127.0.0.1", upstream))
    done = threading.Event()
    a = threading.Thread(target=pump, args=(client, up, True, done), daemon=True)
    b = threading.Thread(target=pump, args=(up, client, False, done), daemon=True)
    a.start(); b.start()
    a.join(); b.join()
    close_hard(client)
    close_hard(up)

server = socket.socket()
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind(("127.0.0.1", 0))
server.listen(64)
with open(os.path.join(state, "port.tmp"), "w") as f:
    f.write(str(server.getsockname()[1]))
os.rename(os.path.join(state, "port.tmp"), os.path.join(state, "port"))
while True:
    c, _ = server.accept()
    threading.Thread(target=handle, args=(c,), daemon=True).start()
