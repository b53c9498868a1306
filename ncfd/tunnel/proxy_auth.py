"""HTTP proxy authentication as a protocol: parse Proxy-Authenticate challenges, pick the
strongest scheme we can answer, and compute Proxy-Authorization values (Basic, Digest per RFC 7616,
NTLM through pyspnego; Negotiate with the user's Kerberos ticket through the system's GSSAPI
(ncfd.tunnel.gss), else NTLM inside SPNEGO through pyspnego when there is a password).

An Authenticator answers one challenge at a time and says None when it has nothing left to try:
that is a wrong password, reported once, never a loop. No I/O here but Kerberos' own: getting a
service ticket may ask the KDC, so the caller (ncfd.tunnel.auth_negotiation) bounds those calls.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re

from ncfd.errors import AuthFailed, ProxyError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ncfd.request import PasswordSource

# Strongest first. Negotiate needs a Kerberos ticket or a password; the others a password.
STRENGTH = ["negotiate", "ntlm", "digest", "basic"]

_TOKEN = r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
_PARAM = re.compile(rf'\s*({_TOKEN})\s*=\s*("(?:[^"\\]|\\.)*"|{_TOKEN})\s*(?:,|$)')
_SCHEME = re.compile(rf"\s*,?\s*({_TOKEN})(?:\s+|$|(?=,))")
_TOKEN68 = re.compile(r"\s*([A-Za-z0-9\-._~+/]+=*)\s*(?:,|$)")


class Challenge:
    __slots__ = ("params", "scheme", "token")

    def __init__(self, scheme: str, params: dict[str, str], token: str | None) -> None:
        self.scheme = scheme
        self.params = params
        self.token = token


def parse_challenges(values: list[str]) -> list[Challenge]:
    """RFC 9110 §11.6.1: each header holds one or more challenges, a scheme followed by a token68
    or by comma-separated auth-params; a challenge ends where the next scheme name begins."""
    challenges: list[Challenge] = []
    for value in values:
        pos = 0
        while pos < len(value):
            scheme = _SCHEME.match(value, pos)
            if scheme is None:
                break
            pos = scheme.end()
            params: dict[str, str] = {}
            token = None
            while pos < len(value):
                param = _PARAM.match(value, pos)
                if param is None:
                    break
                raw = param.group(2)
                params[param.group(1).lower()] = re.sub(r"\\(.)", r"\1", raw[1:-1]) if raw.startswith('"') else raw
                pos = param.end()
            if not params:
                token68 = _TOKEN68.match(value, pos)
                if token68 is not None and token68.group(1):
                    token = token68.group(1)
                    pos = token68.end()
            challenges.append(Challenge(scheme.group(1).lower(), params, token))
    return challenges


class NoUser(AuthFailed):
    """The proxy offers only schemes that need a user (-P), and none was given."""


def choose_scheme(
    offered: list[Challenge], forced: str | None, proxy_name: str, user: bool, kerberos: bool = True
) -> str:
    """The scheme to answer: forced, or the strongest offered that we can answer (Negotiate with a
    ticket needs no user, when a ticket may go to this proxy; the others need one)."""
    names = [c.scheme for c in offered]
    if forced is not None:
        if forced not in names:
            shown = ", ".join(sorted(set(names))) or "none"
            raise AuthFailed(f"{proxy_name} does not offer {forced} authentication (it offers: {shown})")
        if not user and not (forced == "negotiate" and kerberos):
            raise NoUser(f"{proxy_name} wants a user for {forced}")
        return forced
    for scheme in STRENGTH:
        if scheme in names and (user or (scheme == "negotiate" and kerberos)):
            return scheme
    if any(scheme in STRENGTH for scheme in names):
        raise NoUser(f"{proxy_name} wants a user")
    shown = ", ".join(sorted(set(names))) or "none"
    raise AuthFailed(f"{proxy_name} asks for authentication ncfd cannot answer: {shown}")


class Authenticator:
    """Answers successive challenges of one scheme on one connection."""

    scheme = ""

    def finish(self, challenges: list[Challenge]) -> str | None:
        """The proxy said yes: check its last word, if the scheme has one; a note for -v, if any."""
        return None

    def connection_bound(self) -> bool:
        """Whether the next credentials only count on the connection that got the last challenge."""
        return False

    def respond(self, challenges: list[Challenge]) -> str | None:
        raise NotImplementedError


class Basic(Authenticator):
    scheme = "basic"

    def __init__(self, user: str, password: PasswordSource) -> None:
        self.user, self.password, self.sent = user, password, False

    def respond(self, challenges: list[Challenge]) -> str | None:
        if self.sent:
            return None
        self.sent = True
        return "Basic " + base64.b64encode(f"{self.user}:{self.password()}".encode()).decode()


_DIGEST_HASHES = {"md5": "md5", "md5-sess": "md5", "sha-256": "sha256", "sha-256-sess": "sha256"}


class Digest(Authenticator):
    """RFC 7616 with qop=auth (or RFC 2069 style when the proxy offers no qop)."""

    scheme = "digest"

    def __init__(self, user: str, password: PasswordSource, method: str, uri: str) -> None:
        self.user, self.password, self.method, self.uri = user, password, method, uri
        self.answered_nonces: set[str] = set()

    def respond(self, challenges: list[Challenge]) -> str | None:
        usable = [
            c for c in challenges if c.scheme == "digest" and c.params.get("algorithm", "MD5").lower() in _DIGEST_HASHES
        ]
        if not usable:
            return None
        # Prefer SHA-256 when the proxy offers both.
        challenge = max(usable, key=lambda c: c.params.get("algorithm", "MD5").lower().startswith("sha-256"))
        nonce = challenge.params.get("nonce", "")
        # A second 407 is a wrong password, unless the proxy says our nonce went stale.
        if self.answered_nonces and challenge.params.get("stale", "").lower() != "true":
            return None
        if nonce in self.answered_nonces:
            return None
        self.answered_nonces.add(nonce)
        return self.authorization(challenge.params, os.urandom(8).hex())

    def authorization(self, params: dict[str, str], cnonce: str) -> str:
        algorithm = params.get("algorithm", "MD5")
        digest = _DIGEST_HASHES[algorithm.lower()]

        def h(text: str) -> str:
            return hashlib.new(digest, text.encode()).hexdigest()

        realm, nonce = params.get("realm", ""), params.get("nonce", "")
        ha1 = h(f"{self.user}:{realm}:{self.password()}")
        if algorithm.lower().endswith("-sess"):
            ha1 = h(f"{ha1}:{nonce}:{cnonce}")
        ha2 = h(f"{self.method}:{self.uri}")
        qops = [q.strip().lower() for q in params.get("qop", "").split(",") if q.strip()]
        fields = [f'username="{_quote(self.user)}"', f'realm="{_quote(realm)}"', f'nonce="{_quote(nonce)}"',
                  f'uri="{_quote(self.uri)}"', f"algorithm={algorithm}"]  # fmt: skip
        if qops:
            if "auth" not in qops:
                raise ProxyError(f"digest qop {params.get('qop')!r} is not supported (only auth)")
            nc = "00000001"
            response = h(f"{ha1}:{nonce}:{nc}:{cnonce}:auth:{ha2}")
            fields += [f'response="{response}"', "qop=auth", f"nc={nc}", f'cnonce="{cnonce}"']
        else:
            fields.append(f'response="{h(f"{ha1}:{nonce}:{ha2}")}"')
        if "opaque" in params:
            fields.append(f'opaque="{_quote(params["opaque"])}"')
        return "Digest " + ", ".join(fields)


def _quote(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


class Ntlm(Authenticator):
    """NTLM with a password, through pyspnego, on one kept-alive connection: under its own name, or
    under Negotiate's when there is no Kerberos ticket, as raw NTLM tokens (what Windows clients
    send, and what squid's negotiate_wrapper and SPNEGO acceptors take). pyspnego, and the
    cryptography it brings, is imported only here: it takes a while."""

    def __init__(self, scheme: str, user: str, password: PasswordSource, proxy_host: str) -> None:
        try:
            import spnego
        except ImportError:
            raise AuthFailed("NTLM authentication needs pyspnego, which is missing: pip install pyspnego") from None
        self.scheme = scheme
        self.proxy_host = proxy_host
        self.context = spnego.client(user, password(), hostname=proxy_host, service="HTTP", protocol="ntlm")
        self.legs = 0

    def connection_bound(self) -> bool:
        # NTLM authenticates the connection, not the request: the answer to the proxy's challenge
        # (our second leg) is worthless on any other connection.
        return self.legs > 1

    def respond(self, challenges: list[Challenge]) -> str | None:
        import spnego.exceptions

        token = next((c.token for c in challenges if c.scheme == self.scheme), None)
        # First leg: no token from the proxy yet. Later legs need one; a bare challenge again means
        # the proxy rejected what we sent.
        if self.context.complete or (self.legs and not token):
            return None
        data = _decoded(token, f"the NTLM challenge of {self.proxy_host}") if token else None
        try:
            out = self.context.step(data)
        except spnego.exceptions.SpnegoError as e:
            raise AuthFailed(f"NTLM authentication failed: {_one_line(str(e))}") from None
        except Exception as e:  # pyspnego's parser lets a malformed challenge out as struct.error, KeyError, ...
            malformed = f"{self.proxy_host} sent a malformed challenge ({e!r})"
            raise AuthFailed(f"NTLM authentication failed: {malformed}") from None
        self.legs += 1
        if out is None:
            return None
        name = "NTLM" if self.scheme == "ntlm" else "Negotiate"
        return f"{name} {base64.b64encode(out).decode()}"


class Kerberos(Authenticator):
    """Negotiate with the user's Kerberos ticket (or client keytab): SPNEGO through the system's
    GSSAPI (ncfd.tunnel.gss), for a host-based service, HTTP@<the proxy's name as given> unless told
    otherwise; legs on one connection. Its first leg fails with KerberosError("no-ticket") when
    there is no ticket, before anything is sent. Making one, respond() and whoami() may wait (on
    DNS, the KDC): the caller bounds them."""

    scheme = "negotiate"

    def __init__(self, service: str) -> None:
        from ncfd.tunnel import gss

        self.service = service
        name, _, host = service.partition("@")
        self.initiator = gss.Initiator(name, host)
        self.legs = 0

    @staticmethod
    def service_for(proxy_host: str, service_name: str | None) -> str:
        """service@host for a proxy: service_name when it names a host (a load balancer's, a name
        the KDC knows), else that service (HTTP by default) at the proxy's name as given."""
        if service_name is not None and "@" in service_name:
            return service_name
        return f"{service_name or 'HTTP'}@{proxy_host}"

    def connection_bound(self) -> bool:
        # The first token (the ticket) stands on its own, on any connection; what answers the
        # proxy's token belongs to the connection it came on.
        return self.legs > 1

    def respond(self, challenges: list[Challenge]) -> str | None:
        token = next((c.token for c in challenges if c.scheme == "negotiate"), None)
        if self.legs and (not token or self.initiator.complete):
            return None  # a bare challenge again: the proxy rejected our ticket
        out = self.initiator.step(_decoded(token, f"the Negotiate token of {self.service}") if token else None)
        self.legs += 1
        return f"Negotiate {base64.b64encode(out).decode()}" if out else None

    @staticmethod
    def whoami() -> str | None:
        """The principal whose ticket is used (alice@CORP.EXAMPLE), None when there is none; asking
        may fetch one (a client keytab)."""
        from ncfd.tunnel import gss

        return gss.whoami()

    @staticmethod
    def credential_cache() -> str:
        """The credential cache the ticket is taken from, for -v."""
        from ncfd.tunnel import gss

        return gss.credential_cache()

    def finish(self, challenges: list[Challenge]) -> str | None:
        """Mutual authentication: the proxy's final token, when it sends one, must verify."""
        from ncfd.tunnel import gss

        token = next((c.token for c in challenges if c.scheme == "negotiate"), None)
        if token is None:
            return "the proxy sent no final Kerberos token: mutual authentication is not confirmed"
        try:
            self.initiator.step(base64.b64decode(token))
        except (gss.KerberosError, ValueError) as e:
            raise AuthFailed(
                f"the proxy's final Kerberos token does not verify ({e}): not the proxy it claims to be"
            ) from None
        if not self.initiator.complete:
            raise AuthFailed("the proxy's final Kerberos token leaves the exchange unfinished: not trusted")
        return "the proxy's final Kerberos token verified (mutual authentication)"


def _decoded(token: str, what: str) -> bytes:
    """A challenge's token68, which these schemes fill with base64."""
    try:
        return base64.b64decode(token)
    except ValueError:
        shown = token if len(token) <= 40 else token[:40] + "..."
        raise AuthFailed(f"{what} is not base64: {shown}") from None


def _one_line(text: str) -> str:
    return " ".join(text.split())


def authenticator(
    scheme: str, user: str | None, password: PasswordSource | None, target: str, proxy_host: str
) -> Authenticator:
    """The answerer for scheme; "ntlm-in-negotiate" is Negotiate answered with NTLM (a password)."""
    if scheme == "negotiate":
        return Kerberos(Kerberos.service_for(proxy_host, None))
    assert user is not None and password is not None
    if scheme == "basic":
        return Basic(user, password)
    if scheme == "digest":
        return Digest(user, password, "CONNECT", target)
    return Ntlm("negotiate" if scheme == "ntlm-in-negotiate" else "ntlm", user, password, proxy_host)
