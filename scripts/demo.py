"""ncfd end to end on loopback, with nothing to set up: a target that talks first (as sshd does), an
HTTP CONNECT proxy and a SOCKS5 proxy, each glueing its reply and the target's banner into one TCP
segment (the case that loses data in tools that over-read), and ncfd -F run the way ssh runs a
ProxyCommand with ProxyUseFdpass yes."""

from __future__ import annotations

import os
import select
import shutil
import socket
import struct
import sys
import threading
from pathlib import Path

# The checkout's root after site-packages: tests.support from here, ncfd still the one installed.
sys.path.append(str(Path(__file__).resolve().parent.parent))
from tests.support.fdharness import run_fdpass

BANNER = b"SSH-2.0-ncfd-demo target\r\n"


def serve(handler, name: str) -> int:  # type: ignore[no-untyped-def]
    listener = socket.create_server(("127.0.0.1", 0))

    def loop() -> None:
        while True:
            conn, _ = listener.accept()
            threading.Thread(target=handler, args=(conn,), daemon=True).start()

    threading.Thread(target=loop, daemon=True, name=name).start()
    return int(listener.getsockname()[1])


def target(conn: socket.socket) -> None:
    conn.sendall(BANNER)
    while data := conn.recv(65536):
        conn.sendall(data)


def pump(a: socket.socket, b: socket.socket) -> None:
    while True:
        readable, _, _ = select.select([a, b], [], [])
        for src in readable:
            data = src.recv(65536)
            if not data:
                return
            (b if src is a else a).sendall(data)


def splice_reply(reply: bytes, upstream: socket.socket, client: socket.socket) -> None:
    """Send the proxy's reply together with whatever the target said first, in one send()."""
    upstream.settimeout(1)
    try:
        early = upstream.recv(65536)
    except TimeoutError:
        early = b""
    upstream.settimeout(None)
    client.sendall(reply + early)
    pump(client, upstream)


def http_proxy(conn: socket.socket) -> None:
    request = b""
    while not request.endswith(b"\r\n\r\n"):
        request += conn.recv(1)
    host, _, port = request.split(b" ")[1].decode().rpartition(":")
    upstream = socket.create_connection((host.strip("[]"), int(port)))
    splice_reply(b"HTTP/1.1 200 Connection established\r\nProxy-agent: ncfd-demo\r\n\r\n", upstream, conn)


def socks5_proxy(conn: socket.socket) -> None:
    _, nmethods = conn.recv(2)
    conn.recv(nmethods)
    conn.sendall(b"\x05\x00")
    _, _, _, atyp = conn.recv(4)
    if atyp == 1:
        host = socket.inet_ntoa(conn.recv(4))
    elif atyp == 4:
        host = socket.inet_ntop(socket.AF_INET6, conn.recv(16))
    else:
        host = conn.recv(conn.recv(1)[0]).decode()
    (port,) = struct.unpack(">H", conn.recv(2))
    upstream = socket.create_connection((host, port))
    splice_reply(b"\x05\x00\x00\x01\x7f\x00\x00\x01\x00\x00", upstream, conn)


def ncfd_command() -> list[str]:
    found = shutil.which("ncfd", path=os.path.dirname(sys.executable)) or shutil.which("ncfd")
    return [found] if found else [sys.executable, "-m", "ncfd"]


def main() -> int:
    target_port = serve(target, "target")
    proxies = {"connect": serve(http_proxy, "http"), "5": serve(socks5_proxy, "socks5")}
    print("ncfd demo: everything runs on 127.0.0.1 and stops when the demo ends")
    print(f"  target        127.0.0.1:{target_port}  sends {BANNER!r} at once, then echoes")
    print(f"  HTTP proxy    127.0.0.1:{proxies['connect']}  CONNECT; reply and banner in one segment")
    print(f"  SOCKS5 proxy  127.0.0.1:{proxies['5']}  reply and banner in one segment")
    cases = [
        ["-X", "connect", "-x", f"127.0.0.1:{proxies['connect']}"],
        ["-X", "5", "-x", f"127.0.0.1:{proxies['5']}"],
        [],
    ]
    failures = 0
    for proxy_args in cases:
        argv = [*ncfd_command(), "-F", *proxy_args, "127.0.0.1", str(target_port)]
        print(f"\n$ ncfd -F {' '.join([*proxy_args, '127.0.0.1', str(target_port)])}")
        r = run_fdpass(argv)  # ssh's side: a socketpair on stdin and stdout, recvmsg, waitpid
        code, elapsed, sock, err = r.returncode, r.elapsed, r.sock, r.stderr
        if sock is None:
            failures += 1
            print(f"  FAILED: exit {code}, no descriptor passed: {err.strip()}")
            continue
        peer = sock.getpeername()
        sock.settimeout(5)
        banner = sock.recv(len(BANNER))
        sock.sendall(b"ping\n")
        echo = sock.recv(5)
        sock.close()
        ok = code == 0 and banner == BANNER and echo == b"ping\n"
        failures += not ok
        print(f"  ncfd exited {code} after {elapsed * 1000:.0f} ms, having passed a TCP socket to {peer[0]}:{peer[1]}")
        print(f"  first bytes read from it: {banner!r} ({'intact' if banner == BANNER else 'LOST'})")
        print(f"  round trip over it: {'ok' if echo == b'ping' + bytes([10]) else 'FAILED'}")
    print(f"\n{len(cases) - failures} of {len(cases)} hand-offs worked." if failures else "\nAll hand-offs worked.")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
