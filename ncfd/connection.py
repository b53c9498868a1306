"""The one core under both faces (ncfd.cli, ncfd.api): choose the routes to a destination
(ncfd.routes), then open a connection by the first that works (ncfd.tunnel), all within one
deadline.

What is asked is a Request: the destination, where the route comes from (proxies, the environment,
a PAC, discovery, or nothing: direct), credentials, socket options and the CA file for HTTPS.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    import socket
    from collections.abc import Mapping

    from ncfd.deadline import Deadline
    from ncfd.log import Log
    from ncfd.proxies import Proxy
    from ncfd.routes import Plan
    from ncfd.spec import Credentials, SocketOptions


class Request:
    """A connection to open, as a face asks for it; exactly one route source at most."""

    __slots__ = ("auto", "cacert", "credentials", "env", "host", "pac", "port", "proxies", "socket_options")

    def __init__(
        self,
        host: str,
        port: int,
        *,
        proxies: list[Proxy] | None = None,
        env: Mapping[str, str] | None = None,
        pac: str | None = None,
        auto: bool = False,
        credentials: Credentials,
        socket_options: SocketOptions,
        cacert: str | None = None,
    ) -> None:
        self.host, self.port = host, port
        self.proxies, self.env, self.pac, self.auto = proxies or [], env, pac, auto
        self.credentials, self.socket_options, self.cacert = credentials, socket_options, cacert


def plan(request: Request, deadline: Deadline, log: Log, warn: Log) -> Plan:
    from ncfd.routes import choose

    return choose(request.host, request.port, proxies=request.proxies, env=request.env, pac=request.pac,
                  auto=request.auto, cacert=request.cacert, deadline=deadline, log=log, warn=warn)  # fmt: skip


def open_connection(
    request: Request, deadline: Deadline, log: Log, warn: Log, chosen: Plan | None = None
) -> socket.socket:
    """The connected socket, positioned just after the last proxy's reply; through an HTTPS proxy,
    the TLS session itself (an ssl.SSLSocket), which each face hands on its own way."""
    from ncfd.spec import ConnectSpec
    from ncfd.tunnel import open_tunnel

    chosen = chosen or plan(request, deadline, log, warn)
    spec = ConnectSpec(request.host, request.port, chosen.routes, credentials=request.credentials,
                       socket_options=request.socket_options, cacert=request.cacert, log=log,
                       on_route=chosen.remember)  # fmt: skip
    return open_tunnel(spec, deadline)
