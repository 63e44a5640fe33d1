"""HTTP into a sandbox that has no network: a relay through unix sockets (standard library only).

A live server of a student's (`flask run`, gunicorn) runs in their sandbox, whose network is a
loopback of its own: the tests, outside, cannot reach its port. So the sandbox's command becomes

    python -I relay.py inside SOCKDIR PORT [REVERSE_PORT ...] -- <the server's command>

Inside, the relay starts the server, waits until it listens on 127.0.0.1:PORT, then listens on
the unix socket SOCKDIR/in.sock. Outside, the grading pytest process (``Outside``) listens on
127.0.0.1:PORT — the port the tests were told — as soon as in.sock exists, so a test that waits
for the port waits for the real server. Each connection starts with one line, the client's
address (127.0.0.2 …), so that the server sees the address a test sent from (the rate-limit
tests). REVERSE_PORT is a port of the grader's machine the server needs (a Redis the tests
started): inside, the relay listens on 127.0.0.1:REVERSE_PORT and passes each connection out
through SOCKDIR/out-REVERSE_PORT.sock, where ``Outside`` connects it to the real port.

SOCKDIR is a folder in that student's writable folder: only the grader and that student's
sandboxes can reach it. Nothing else crosses: bytes of TCP streams, to and from fixed ports.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time

HEADER_MAX = 64  # bytes of the first line: an IPv4 address


MAX_RESPONSE = 16 * 1024**2  # bytes a student's server may send on one connection to the tests


def pump(a: socket.socket, b: socket.socket, limit: int | None = None) -> None:
    """Copy a -> b until a closes (or ``limit`` bytes have passed: then both are cut), then half-close b."""
    sent = 0
    try:
        while True:
            data = a.recv(65536)
            if not data:
                break
            sent += len(data)
            if limit is not None and sent > limit:
                for s in (a, b):
                    try:
                        s.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass
                break
            b.sendall(data)
    except OSError:
        pass
    finally:
        try:
            b.shutdown(socket.SHUT_WR)
        except OSError:
            pass


def splice(a: socket.socket, b: socket.socket, limit_back: int | None = None) -> None:
    """a <-> b; what comes back from b is capped at ``limit_back`` bytes."""
    t = threading.Thread(target=pump, args=(b, a, limit_back), daemon=True)
    try:
        t.start()
    except RuntimeError:  # no thread to spare: refuse this connection
        for s in (a, b):
            s.close()
        return
    pump(a, b)
    t.join(30)
    for s in (a, b):
        try:
            s.close()
        except OSError:
            pass


def _read_header(conn: socket.socket) -> str:
    data = b""
    while not data.endswith(b"\n") and len(data) < HEADER_MAX:
        chunk = conn.recv(1)
        if not chunk:
            break
        data += chunk
    text = data.decode("ascii", "replace").strip()
    parts = text.split(".")
    ok = len(parts) == 4 and parts[0] == "127" and all(p.isdigit() and int(p) < 256 for p in parts)
    return text if ok else "127.0.0.1"


def _serve_unix(path: str, handle) -> socket.socket:
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    tmp = path + ".tmp"
    server.bind(tmp)
    server.listen(64)
    os.rename(tmp, path)  # appears only once it accepts

    def loop():
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            _start(handle, conn)

    threading.Thread(target=loop, daemon=True).start()
    return server


def _start(handle, *args) -> None:
    """A thread per connection; when the sandbox's limits allow no more, that connection is refused."""
    try:
        threading.Thread(target=handle, args=args, daemon=True).start()
    except RuntimeError:
        args[0].close()


def _serve_tcp(port: int, handle) -> socket.socket:
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", port))
    server.listen(64)

    def loop():
        while True:
            try:
                conn, peer = server.accept()
            except OSError:
                return
            _start(handle, conn, peer)

    threading.Thread(target=loop, daemon=True).start()
    return server


def inside(argv: list[str]) -> int:
    # Small stacks: two threads per connection must fit the sandbox's address-space limit.
    threading.stack_size(256 * 1024)
    sockdir, port = argv[0], int(argv[1])
    split = argv.index("--")
    reverse = [int(p) for p in argv[2:split]]
    command = argv[split + 1:]
    for rport in reverse:  # the server's way out to a port the tests started (e.g. Redis)
        def out(conn, peer, rport=rport):
            try:
                up = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                up.connect(os.path.join(sockdir, f"out-{rport}.sock"))
            except OSError:
                conn.close()
                return
            splice(conn, up)

        try:
            _serve_tcp(rport, out)
        except OSError:
            pass
    server = subprocess.Popen(command)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and server.poll() is None:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.05)
    if server.poll() is None:
        def handle(conn):
            source = _read_header(conn)
            try:
                down = socket.socket()
                down.bind((source, 0))
                down.connect(("127.0.0.1", port))
            except OSError:
                conn.close()
                return
            splice(conn, down)

        _serve_unix(os.path.join(sockdir, "in.sock"), handle)
    return server.wait()


class Outside:
    """The grader's end, in the grading pytest process: 127.0.0.1:port -> in.sock, out-N.sock -> 127.0.0.1:N."""

    def __init__(self, sockdir: str, port: int, reverse: list[int], process):
        self.sockdir, self.port, self.process = sockdir, port, process
        self.servers: list[socket.socket] = []
        for rport in reverse:
            def handle(conn, rport=rport):
                try:
                    up = socket.create_connection(("127.0.0.1", rport), timeout=5)
                    up.settimeout(None)
                except OSError:
                    conn.close()
                    return
                splice(conn, up)

            self.servers.append(_serve_unix(os.path.join(sockdir, f"out-{rport}.sock"), handle))
        threading.Thread(target=self._watch, daemon=True).start()

    def _watch(self) -> None:
        inner = os.path.join(self.sockdir, "in.sock")
        while self.process.poll() is None and not os.path.exists(inner):
            time.sleep(0.02)
        if self.process.poll() is None:

            def handle(conn, peer):
                try:
                    down = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                    down.connect(inner)
                    down.sendall(f"{peer[0]}\n".encode("ascii"))
                except OSError:
                    conn.close()
                    return
                splice(conn, down, limit_back=MAX_RESPONSE)

            try:
                self.servers.append(_serve_tcp(self.port, handle))
            except OSError:
                pass
        while self.process.poll() is None:
            time.sleep(0.1)
        for server in self.servers:
            for stop in (lambda: server.shutdown(socket.SHUT_RDWR), server.close):  # shutdown wakes accept()
                try:
                    stop()
                except OSError:
                    pass


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "inside":
        sys.exit(inside(sys.argv[2:]))
    sys.exit("usage: relay.py inside SOCKDIR PORT [REVERSE_PORT ...] -- COMMAND")
