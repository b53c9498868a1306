"""HTTP proxy authentication for one CONNECT, as a machine without I/O: fed each reply of the proxy,
it says what comes next. The whole policy is here; the driver (ncfd.tunnel.http_tunnel) only sends
and reads.

The driver asks authorization() for the Proxy-Authorization value of each CONNECT (None for the
first), feeds receive() the proxy's reply, and acts on its answer: OPEN (the tunnel is up),
SAME_CONNECTION (read the refusal's body, then send the next CONNECT on the same connection) or
FRESH_CONNECTION (the proxy closes this one: the next CONNECT goes on a new one). A verdict is
raised as the NcfdError the user reads: a refusal; credentials wanted but not given, kept from a
PAC's proxy (ncfd.tunnel.auth_policy), or rejected; a connection-bound scheme (NTLM) whose
connection the proxy closed; a Kerberos failure.

The policy: answer the strongest scheme offered that ncfd can (ncfd.tunnel.proxy_auth), or the one
forced (--proxy-auth); Negotiate with the user's Kerberos ticket, or with NTLM inside it when there
is a password and no GSSAPI or no ticket, as browsers fall back; a 401 after credentials is a
rejection, as tinyproxy says it; a second challenge that the authenticator has nothing new for is a
rejection, reported once, never a loop, and MAX_AUTH_ROUNDS refusals end it whatever the scheme;
the caller's own Proxy-Authorization header is the only one sent, and a 407 to it is the end.

No socket here. What may wait is a Kerberos call (the KDC, DNS; the library takes no timeout), run
in a helper thread bounded by the deadline (ncfd.deadline.call_within), and the password source, which
may ask a person with the deadline paused (ncfd.password).
"""

from __future__ import annotations

from ncfd.deadline import call_within, format_seconds
from ncfd.errors import AuthFailed, ProxyError, TimedOut
from ncfd.log import enabled

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import TypeVar

    from ncfd.deadline import Deadline
    from ncfd.log import Log
    from ncfd.proxies import Proxy
    from ncfd.request import Credentials, PasswordSource
    from ncfd.tunnel.gss import KerberosError
    from ncfd.tunnel.http_connect import Reply
    from ncfd.tunnel.proxy_auth import Authenticator, Challenge, Kerberos

    T = TypeVar("T")

# What receive() answers, when it raises no verdict.
OPEN = "open"
SAME_CONNECTION = "same connection"
FRESH_CONNECTION = "fresh connection"

MAX_AUTH_ROUNDS = 5


class Login:
    """Who ncfd is to one proxy."""

    __slots__ = ("kept_by", "password", "user")

    def __init__(self, user: str | None, password: PasswordSource | None, kept_by: str | None = None) -> None:
        self.user = user  # None: none given
        self.password = password  # where the password comes from; None: none, or kept back
        # What named the proxy ("PAC http://..."), when the user did not allow it credentials
        # (ncfd.tunnel.auth_policy): it gets no password, nor a ticket auth_policy keeps.
        self.kept_by = kept_by


class Negotiation:
    """The authentication of one CONNECT through proxy to target (host:port as the request line
    has it), reply by reply. authorized: the caller's headers hold a Proxy-Authorization. kerberos
    makes the authenticator for a Kerberos service (proxy_auth.Kerberos, through the system's
    GSSAPI; a test's fake)."""

    def __init__(
        self,
        proxy: Proxy,
        target: str,
        login: Login,
        credentials: Credentials,
        authorized: bool,
        log: Log,
        deadline: Deadline,
        kerberos: Callable[[str], Kerberos] | None = None,
    ) -> None:
        self.proxy, self.name, self.target = proxy, str(proxy), target
        self.login, self.credentials, self.authorized = login, credentials, authorized
        self.log, self.deadline, self.kerberos = log, deadline, kerberos
        self.auth: Authenticator | None = None  # the answerer of the scheme chosen, once the proxy asks
        self.ticket: Kerberos | None = None  # auth, when it answers with the user's Kerberos ticket
        self.answer: str | None = None  # the next Proxy-Authorization value
        self.refusals = 0

    @property
    def scheme(self) -> str | None:
        """The scheme of the credentials the next CONNECT carries, for -v."""
        return self.auth.scheme if self.auth is not None else None

    def authorization(self) -> str | None:
        """The Proxy-Authorization value for the next CONNECT: None for the first, then the answer
        to the last challenge. After MAX_AUTH_ROUNDS refusals, the rejection is raised instead."""
        if self.refusals == MAX_AUTH_ROUNDS:
            raise self._rejected()
        return self.answer

    def receive(self, reply: Reply) -> str:
        """What the reply to the last CONNECT means: OPEN, SAME_CONNECTION or FRESH_CONNECTION (the
        next authorization() is for it), or a verdict, raised."""
        if 200 <= reply.status < 300:
            note = self.auth.finish(_challenges(reply)) if self.auth is not None else None
            if note:
                self.log(note)
            return OPEN
        self.refusals += 1
        if self.auth is None:
            self.auth = self._choose(reply)
        elif reply.status not in (407, 401):  # tinyproxy answers wrong credentials with 401
            raise ProxyError(self._refusal(reply))
        self.answer = self._respond(self.auth, _challenges(reply))
        if self.answer is None:
            raise self._rejected()
        if reply.reusable:
            return SAME_CONNECTION
        if self.auth.connection_bound():
            raise ProxyError(f"{self.name} closed the connection in the middle of {self.auth.scheme} authentication")
        return FRESH_CONNECTION

    def _refusal(self, reply: Reply) -> str:
        return f'{self.name} refused CONNECT {self.target}: "{reply.line}"'

    def _choose(self, reply: Reply) -> Authenticator:
        """The authenticator for the proxy's first refusal, which must be a 407."""
        refusal = self._refusal(reply)
        if reply.status != 407:
            raise ProxyError(refusal)
        if self.authorized:
            raise AuthFailed(f"{refusal}: it did not take the Proxy-Authorization header given")
        from ncfd.tunnel import auth_policy
        from ncfd.tunnel.proxy_auth import STRENGTH, NoUser, authenticator, choose_scheme

        challenges = _challenges(reply)
        forced, kept_by, user = self.credentials.scheme, self.login.kept_by, self.login.user
        # A password allowed means a ticket allowed: auth_policy's list is the same for both.
        kerberos = kept_by is None or auth_policy.allowed(self.credentials, self.proxy, True, kerberos=True)
        try:
            scheme = choose_scheme(challenges, forced, self.name, self.login.password is not None, kerberos)
        except NoUser:
            if kept_by is not None:
                wants_password = forced != "negotiate" and any(c.scheme in STRENGTH[1:] for c in challenges)
                raise auth_policy.withheld(self.credentials, self.proxy, kept_by, not wants_password, user) from None
            if user is not None:  # and no password: the API's user= alone
                raise AuthFailed(f"{refusal}: it wants a password, and none was given for {user}") from None
            raise AuthFailed(f"{refusal}: it wants authentication ({self.credentials.hint})") from None
        if scheme == "negotiate":
            return self._kerberos()
        self.log(f"answering {self.name}'s {scheme} challenge as {user}")
        return authenticator(scheme, user, self.login.password, self.target, self.proxy.host)

    def _kerberos(self) -> Authenticator:
        """Negotiate with the user's Kerberos ticket, or, with no GSSAPI on this system and a
        password at hand, NTLM inside Negotiate."""
        from ncfd.tunnel import gss
        from ncfd.tunnel.proxy_auth import Kerberos

        make = self.kerberos or Kerberos
        service = Kerberos.service_for(self.proxy.host, self.credentials.service_name)
        try:
            # Naming the proxy's principal may ask DNS (krb5.conf's dns_canonicalize_hostname).
            ticket = call_within(self.deadline, lambda: make(service), f"naming the Kerberos principal {service}")
        except gss.Unavailable:
            if self.login.password is None:
                raise
            return self._ntlm_instead("this system has no GSSAPI library")
        if enabled(self.log):  # only for -v: asking who we are may fetch a ticket (a client keytab)
            who = self._from_kdc(
                lambda: f"{ticket.whoami() or 'no ticket yet'}, credential cache {ticket.credential_cache()}",
                ticket.service,
            )
            self.log(f"answering {self.name}'s negotiate challenge with Kerberos for {ticket.service}: {who}")
        self.ticket = ticket
        return ticket

    def _ntlm_instead(self, why: str) -> Authenticator:
        from ncfd.tunnel.proxy_auth import authenticator

        user, password = self.login.user, self.login.password
        assert user is not None and password is not None
        self.log(f"{why}: answering {self.name}'s negotiate challenge with NTLM as {user}")
        self.ticket = None
        return authenticator("ntlm-in-negotiate", user, password, self.target, self.proxy.host)

    def _respond(self, auth: Authenticator, challenges: list[Challenge]) -> str | None:
        """auth's answer to the challenges; Kerberos', which may wait for the KDC, bounded. No
        ticket at all and a password: NTLM inside Negotiate from now on, as browsers fall back."""
        ticket = self.ticket
        if ticket is None:
            return auth.respond(challenges)
        from ncfd.tunnel import gss

        try:
            return self._from_kdc(lambda: ticket.respond(challenges), ticket.service)
        except gss.KerberosError as e:
            if e.kind == "no-ticket" and self.login.password is not None:
                self.auth = self._ntlm_instead("no Kerberos ticket")
                return self.auth.respond(challenges)
            raise AuthFailed(kerberos_message(e, self.name, ticket.service, self.credentials.service_hint)) from None

    def _from_kdc(self, call: Callable[[], T], service: str) -> T:
        """call(), which may wait for the KDC, in a helper thread bounded by the deadline (the
        GSSAPI library takes no timeout)."""
        try:
            return call_within(self.deadline, call, f"waiting for the Kerberos KDC ({service})")
        except TimedOut:
            raise AuthFailed(
                f"no answer from the Kerberos KDC within {format_seconds(self.deadline.seconds)}s, getting a "
                f"ticket for {service} (for {self.name})"
            ) from None

    def _rejected(self) -> AuthFailed:
        ticket = self.ticket
        if ticket is not None:
            try:
                who = call_within(self.deadline, ticket.whoami, "asking Kerberos for the user's name") or "the user"
            except TimedOut:  # the rejection is the news, not who was rejected
                who = "the user"
            return AuthFailed(f"{self.name} rejected the Kerberos ticket of {who} for {ticket.service}")
        return AuthFailed(f"proxy authentication failed for {self.login.user} at {self.name}")


def _challenges(reply: Reply) -> list[Challenge]:
    from ncfd.tunnel.proxy_auth import parse_challenges

    return parse_challenges(reply.values(b"proxy-authenticate"))


def kerberos_message(e: KerberosError, proxy: str, service: str, service_hint: str) -> str:
    """What a failed Kerberos step means to the user, and what to do."""
    if e.kind == "no-ticket":
        return (f"{proxy} wants Kerberos (Negotiate) and there is no Kerberos ticket: run kinit (the proxy's "
                f"principal is {service}), or give -P user for NTLM")  # fmt: skip
    if e.kind == "expired":
        return f"the Kerberos ticket has expired ({e.detail}): run kinit (for {service} at {proxy})"
    if e.kind == "unknown-service":
        return (f"the Kerberos KDC does not know {proxy}'s principal {service} ({e.detail}): name the proxy as "
                "it is registered, let krb5.conf canonicalize names (dns_canonicalize_hostname), or give the "
                f"principal's service@host ({service_hint})")  # fmt: skip
    if e.kind == "kdc-unreachable":
        return f"cannot reach the Kerberos KDC for a ticket for {service} (for {proxy}): {e.detail}"
    return f"Kerberos authentication at {proxy} failed: {e.detail}"
