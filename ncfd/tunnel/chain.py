"""One route's proxies, hop by hop: connect to the first, have it open a tunnel to the second,
handshake with that one through it, and so on to the destination. Each hop's handshake is its
protocol's: HTTP CONNECT (ncfd.tunnel.http_tunnel) or SOCKS (ncfd.tunnel.socks).
"""

from __future__ import annotations

from ncfd.net import dial
from ncfd.render import host_port

TYPE_CHECKING = False
if TYPE_CHECKING:
    import socket

    from ncfd.deadline import Deadline
    from ncfd.proxies import Proxy
    from ncfd.request import ConnectSpec, PasswordSource, Route
    from ncfd.tunnel.socks import SocksRequest


class Chain:
    """The proxies of one route, each reached through the ones before it."""

    def __init__(self, spec: ConnectSpec, route: Route, deadline: Deadline) -> None:
        self.spec, self.deadline, self.log = spec, deadline, spec.log
        self.hops = route.hops
        self.pac = route.pac
        # Where each hop is asked to go: the next hop, or the destination.
        self.targets = [(h.host, h.port) for h in self.hops[1:]] + [(spec.host, spec.port)]
        self.users = [spec.credentials.user_of(hop) for hop in self.hops]
        self.source = route.source
        # Hops a password must not go to: a PAC named them, and the user did not allow them.
        self.kept = [route.pac and not self._allowed(hop) for hop in self.hops]
        self.passwords = [None if kept else self._password(hop, user)
                          for hop, user, kept in zip(self.hops, self.users, self.kept, strict=True)]  # fmt: skip
        # Built first: a destination a protocol cannot carry fails before any proxy is bothered.
        self.socks: dict[int, SocksRequest] = {}
        for i, (hop, (host, port)) in enumerate(zip(self.hops, self.targets, strict=True)):
            # Each protocol's library is imported only when a hop speaks it: start-up time.
            if hop.protocol == "connect":
                from ncfd.tunnel.http_connect import authority

                authority(host, port)
            else:
                from ncfd.tunnel import auth_policy
                from ncfd.tunnel.socks import SocksRequest

                bound = spec.greeting_bound or route.pac
                kept = None
                if self.kept[i] and hop.protocol == "5":
                    kept = auth_policy.withheld(spec.credentials, hop, self.source, False, self.users[i])
                self.socks[i] = SocksRequest(hop, host, port, self.users[i], self.passwords[i], route.pac, bound,
                                             spec.credentials.hint, kept)  # fmt: skip

    def open(self) -> socket.socket:
        """A connection through every hop to the destination."""
        return self.tunnel_through_hop(len(self.hops) - 1)

    def _allowed(self, hop: Proxy) -> bool:
        from ncfd.tunnel import auth_policy

        allowed = auth_policy.allowed(self.spec.credentials, hop, True)
        if not allowed and self.spec.credentials.user_of(hop) is not None:
            self.log(f"{hop} is named by {self.source}, not by you: it gets no password unless "
                     f"{self.spec.credentials.hosts_option} allows it")  # fmt: skip
        return allowed

    def _password(self, hop: Proxy, user: str | None) -> PasswordSource | None:
        if user is None:
            return None
        if hop.password is not None:
            given = hop.password
            return lambda: given
        password_for = self.spec.credentials.password_for
        return None if password_for is None else password_for(hop, user, self.deadline)

    def connection_to_hop(self, i: int) -> socket.socket:
        """A connection whose far end is hop i, with TLS set up when hop i is an HTTPS proxy."""
        hop = self.hops[i]
        if i == 0:
            with self.deadline.step(f"connecting to {hop}"):
                sock = dial.connect(hop.host, hop.port, self.spec.socket, self.deadline, self.log, f"{hop.kind} proxy")
        else:
            sock = self.tunnel_through_hop(i - 1)
        if hop.tls:
            from ncfd.net.tls import start_tls

            with self.deadline.step(f"waiting for the TLS handshake with {hop}"):
                sock = start_tls(sock, hop.host, str(hop), self.spec.cacert, self.deadline, self.log,
                                 self.spec.client_cert)  # fmt: skip
        return sock

    def tunnel_through_hop(self, i: int) -> socket.socket:
        """A connection through hop i to what comes after it: the next hop, or the destination."""
        hop, (host, port) = self.hops[i], self.targets[i]
        target = host_port(host, port)
        if hop.protocol == "connect":
            from ncfd.tunnel.auth_negotiation import Login
            from ncfd.tunnel.http_tunnel import open_http_tunnel

            login = Login(self.users[i], self.passwords[i], self.source if self.kept[i] else None)
            sock = open_http_tunnel(hop, login, lambda: self.connection_to_hop(i), host, port, self.spec,
                                    self.deadline, pac=self.pac)  # fmt: skip
        else:
            sock = self.connection_to_hop(i)
            if self.users[i] is not None:
                how = "username/password" if hop.protocol == "5" and self.passwords[i] is not None else "userid"
                self.log(f"asking {hop} for the tunnel to {target} with {how} {self.users[i]}")
            try:
                sock = self.socks[i].negotiate(sock, self.deadline)
            except BaseException:
                sock.close()
                raise
        self.log(f"{hop} opened the tunnel to {target}")
        return sock
