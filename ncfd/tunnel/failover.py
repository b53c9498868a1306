"""Open the connection ssh will get by the first of the routes that works: directly, or through
the proxies of a route hop by hop (ncfd.tunnel.chain), all within the one deadline.

The returned socket is positioned exactly after the last proxy's reply: whatever the target has
sent already (sshd's banner) is still in the kernel's receive queue.
"""

from __future__ import annotations

from ncfd.deadline import format_seconds
from ncfd.errors import ConnectFailed, DeadProxy, ResolveError, TimedOut, Withheld
from ncfd.net import dial
from ncfd.render import host_port
from ncfd.tunnel.chain import Chain

TYPE_CHECKING = False
if TYPE_CHECKING:
    import socket

    from ncfd.deadline import Deadline
    from ncfd.request import ConnectSpec, Route

    Passed = TimedOut | ResolveError | ConnectFailed | DeadProxy | Withheld


SHOWN_FAILURES = 3  # routes a "no route worked" message names; -v names each


def open_tunnel(spec: ConnectSpec, deadline: Deadline) -> socket.socket:
    """A connection by the first of spec's routes that works, tried in order within the deadline.

    With several routes (a PAC's list), each gets an equal share of what is left. A route is
    skipped when its proxy does not resolve, refuses or fails the connection, dies before answering
    (closes, resets, fails TLS, ignores a SOCKS5 greeting) or does not answer within its share;
    spec.route_verdict hears of each such verdict. A proxy's answer (a refusal, an authentication
    failure) ends the run as it is: that proxy is alive, and the next would be asked for the same
    thing. But for a proxy asking for credentials that ncfd keeps from it (ncfd.tunnel.auth_policy): the
    next route may need none, and the run ends with that refusal only when no later route works.
    When every route fails, the error names the first few and why."""
    if len(spec.routes) == 1:
        return open_route(spec, spec.routes[0], deadline)
    failures: list[tuple[Route, Passed]] = []
    for i, route in enumerate(spec.routes):
        left = len(spec.routes) - i
        try:
            share = deadline.share(left)
        except TimedOut as e:
            if not failures:
                raise
            withheld = _withheld(failures)
            if withheld is not None:
                raise withheld from None
            tried = f"{i} of {len(spec.routes)} routes failed, {left} not tried"
            raise TimedOut(f"{e}: {tried}: {_named(failures)}") from None
        spec.log(f"route {i + 1} of {len(spec.routes)}: {route} (within {format_seconds(share.seconds)} s)")
        try:
            sock = open_route(spec, route, share)
        except (TimedOut, ResolveError, ConnectFailed, DeadProxy, Withheld) as e:
            if deadline.cancelled:  # cancel() shut the socket down: no verdict on the route
                raise deadline.expired("connecting") from None
            spec.log(f"{route} failed: {e}; {'trying the next route' if left > 1 else 'no route left'}")
            failures.append((route, e))
            # A proxy that asked for credentials is alive: not remembered as dead.
            if spec.route_verdict is not None and route.hops and not isinstance(e, Withheld):
                spec.route_verdict(route, False)
            continue
        if spec.route_verdict is not None and route.hops:
            spec.route_verdict(route, True)
        return sock
    withheld = _withheld(failures)
    if withheld is not None:
        raise withheld
    raise type(failures[-1][1])(f"no route to {host_port(spec.host, spec.port)} worked: {_named(failures)}")


def _withheld(failures: list[tuple[Route, Passed]]) -> Withheld | None:
    """The first refusal for want of credentials ncfd kept back, when no route worked: the one
    failure the user can cure (with what it names), said alone."""
    return next((e for _, e in failures if isinstance(e, Withheld)), None)


def _named(failures: list[tuple[Route, Passed]]) -> str:
    named = "; ".join(f"{route}: {e}" for route, e in failures[:SHOWN_FAILURES])
    more = len(failures) - SHOWN_FAILURES
    return named + (f"; and {more} more (-v names each)" if more > 0 else "")


def open_route(spec: ConnectSpec, route: Route, deadline: Deadline) -> socket.socket:
    """A connection by route: to the destination itself, or through the route's proxies."""
    if not route.hops:
        with deadline.step(f"connecting to {host_port(spec.host, spec.port)}"):
            return dial.connect(spec.host, spec.port, spec.socket, deadline, spec.log, "host")
    return Chain(spec, route, deadline).open()
