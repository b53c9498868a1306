"""Open the connection ssh will get: directly, or through the proxy with its handshake done.

The returned socket is positioned exactly after the proxy's reply: whatever the target has sent
already (sshd's banner) is still in the kernel's receive queue.
"""

from __future__ import annotations

import socket

from ncfd import dial
from ncfd.errors import ProxyError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ncfd.deadline import Deadline
    from ncfd.http_connect import ConnectExchange
    from ncfd.log import Log
    from ncfd.options import Options


def open_tunnel(opts: Options, deadline: Deadline, log: Log) -> socket.socket:
    proxy = opts.proxy
    target = f"{dial.show_host(opts.host)}:{opts.port}"
    if proxy is None:
        deadline.phase = f"connecting to {target}"
        return dial.connect(opts.host, opts.port, opts, log, "host")
    # Build the request first: a destination the protocol cannot carry fails before the proxy is bothered.
    if proxy.protocol == "connect":
        from ncfd.http_connect import ConnectExchange

        exchange = ConnectExchange(opts.host, opts.port, str(proxy))
    else:
        from ncfd.socks_proxy import SocksRequest

        request = SocksRequest(proxy, opts.host, opts.port)
    deadline.phase = f"connecting to {proxy}"
    sock = dial.connect(proxy.host, proxy.port, opts, log, f"{proxy.kind} proxy")
    deadline.phase = f"waiting for {proxy} to open the tunnel to {target}"
    try:
        if proxy.protocol == "connect":
            http_connect(sock, exchange, log)
        else:
            sock = request.negotiate(sock)
    except BaseException:
        sock.close()
        raise
    log(f"{proxy} opened the tunnel to {target}")
    return sock


def http_connect(sock: socket.socket, exchange: ConnectExchange, log: Log) -> None:
    proxy = exchange.proxy_name
    log(f"sending CONNECT {exchange.target}")
    try:
        sock.sendall(exchange.request)
        while True:
            reply = exchange.feed(read_header_block(sock, proxy))
            if reply is None:
                continue
            log(f'{proxy} answered "{reply.line}"')
            if 200 <= reply.status < 300:
                return
            hint = ": it wants authentication (-P user)" if reply.status == 407 else ""
            raise ProxyError(f'{proxy} refused CONNECT {exchange.target}: "{reply.line}"{hint}')
    except OSError as e:
        raise ProxyError(f"{proxy} handshake failed: {e.strerror or e}") from None


def read_header_block(sock: socket.socket, proxy_name: str) -> bytes:
    """Consume exactly one header block: peek, let HeaderBlock say how much is ours, receive that."""
    from ncfd.http_connect import HeaderBlock

    block = HeaderBlock(proxy_name)
    while not block.done:
        peeked = sock.recv(4096, socket.MSG_PEEK)
        if not peeked:
            raise block.closed_error()
        _recv_exact(sock, block.take(peeked))
    return block.data


def _recv_exact(sock: socket.socket, size: int) -> bytes:
    # The bytes were peeked, so they are there; a loop only guards against a short recv.
    chunks = []
    while size:
        chunk = sock.recv(size)
        if not chunk:
            raise ProxyError("connection closed while reading peeked bytes")
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)
