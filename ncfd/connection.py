"""The one core under both faces (ncfd.cli, ncfd.api): choose the routes to a destination
(ncfd.route.choice), then open a connection by the first that works (ncfd.tunnel.failover), all within one
deadline. The faces call these and nothing of ncfd.route or ncfd.tunnel.

What is asked is a Request (ncfd.request): the destination, where the route comes from (proxies, the
environment, a PAC, discovery, or nothing: direct), credentials, socket options and the CA file.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    import socket

    from ncfd.deadline import Deadline
    from ncfd.log import Log
    from ncfd.request import Request
    from ncfd.route.choice import Plan


def plan(request: Request, deadline: Deadline, log: Log, warn: Log) -> Plan:
    """The routes to try in order for the request, and what chose them."""
    from ncfd.route.choice import choose

    return choose(request, deadline, log, warn)


def show(request: Request, chosen: Plan) -> str:
    """What --show-route prints of the plan."""
    from ncfd.route import choice

    return choice.show(chosen, request.host, request.port)


def open(request: Request, chosen: Plan, deadline: Deadline, log: Log) -> socket.socket:
    """The connected socket, by the first of the plan's routes that works, positioned just after
    the last proxy's reply; through an HTTPS proxy, the TLS session itself (an ssl.SSLSocket), which
    each face hands on its own way."""
    from ncfd.request import ConnectSpec
    from ncfd.tunnel.failover import open_tunnel

    spec = ConnectSpec(request.host, request.port, chosen.routes, credentials=request.credentials,
                       socket_options=request.socket_options, cacert=request.cacert,
                       client_cert=request.client_cert, log=log, route_verdict=chosen.note_verdict,
                       greeting_bound=request.greeting_bound, headers=request.headers)  # fmt: skip
    try:
        return open_tunnel(spec, deadline)
    finally:
        chosen.save()


def kerberos_support() -> str:
    """What --version says of Kerberos: the system's GSSAPI library, or that there is none."""
    from ncfd.tunnel import gss

    try:
        return f"the system's GSSAPI, {gss.library()._name}"
    except gss.Unavailable:
        return "no GSSAPI library here (install MIT Kerberos' libgssapi-krb5-2, or Heimdal's)"
