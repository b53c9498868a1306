"""The authentication negotiation as a machine, in-process: each reply fed byte by byte through
HeaderBlock and ConnectExchange as the driver reads it, and what the machine says back: the header
on the wire of the next CONNECT, the same or a fresh connection, or the verdict the user reads."""

from __future__ import annotations

import base64
import hashlib
import re
import time
from pathlib import Path
from typing import ClassVar

import pytest

from ncfd.deadline import Deadline
from ncfd.errors import AuthFailed, ProxyError, Withheld
from ncfd.proxies import Proxy
from ncfd.request import Credentials
from ncfd.tunnel import gss
from ncfd.tunnel.auth_negotiation import (
    FRESH_CONNECTION,
    MAX_AUTH_ROUNDS,
    OPEN,
    SAME_CONNECTION,
    Login,
    Negotiation,
)
from ncfd.tunnel.http_connect import ConnectExchange, HeaderBlock, Reply
from ncfd.tunnel.proxy_auth import Challenge, Kerberos

PROXY = Proxy("proxy.example", 3128, "connect")
NAME = "HTTP proxy proxy.example:3128"
USER, PASSWORD = "alice", "s3cret pass:word"
PAC = "PAC http://wpad.example/wpad.dat"

BASIC_407 = b'HTTP/1.1 407 Auth\r\nProxy-Authenticate: Basic realm="x"\r\nContent-Length: 4\r\n\r\nnope'
OK = b"HTTP/1.1 200 Connection established\r\n\r\n"


class Talk:
    """One CONNECT's negotiation, driven as ncfd.tunnel.http_tunnel drives it, without a socket."""

    def __init__(self, negotiation: Negotiation) -> None:
        self.negotiation = negotiation
        self.requests: list[bytes] = []

    def round(self, data: bytes) -> str:
        """Send the next CONNECT, get data back (a 1xx block may come first), say what it means."""
        authorization = self.negotiation.authorization()
        headers = [("Proxy-Authorization", authorization)] if authorization else None
        exchange = ConnectExchange("example.com", 22, NAME, headers)
        self.requests.append(exchange.request)
        reply, body = _replied(exchange, data)
        step = self.negotiation.receive(reply)
        if step == SAME_CONNECTION:  # the driver reads the body before the next request: all of it, no more
            done = exchange.feed_body(None)
            for i in range(len(body)):
                assert not done
                done = exchange.feed_body(body[i : i + 1])
            assert done
        return step

    def sent(self) -> str | None:
        """The Proxy-Authorization of the last CONNECT, as on the wire."""
        found = re.search(rb"\r\nProxy-Authorization: ([^\r]*)\r\n", self.requests[-1])
        return found.group(1).decode() if found else None


def _replied(exchange: ConnectExchange, data: bytes) -> tuple[Reply, bytes]:
    """The final reply in data, its header blocks taken a byte at a time; and what follows them."""
    at = 0
    while True:
        block = HeaderBlock(NAME)
        while not block.done:
            assert block.take(data[at : at + 1]) == 1
            at += 1
        reply = exchange.feed(block.data)
        if reply is not None:
            return reply, data[at:]


def negotiation(
    user: str | None = USER,
    password: str | None = PASSWORD,
    *,
    kept_by: str | None = None,
    credentials: Credentials | None = None,
    authorized: bool = False,
    log: list[str] | None = None,
    kerberos: type[Kerberos] | None = None,
    deadline: Deadline | None = None,
    asked: list[str] | None = None,
) -> Talk:
    def source() -> str:
        if asked is not None:
            asked.append("asked")
        assert password is not None
        return password

    login = Login(user, source if password is not None else None, kept_by)
    logged = log.append if log is not None else _quiet
    machine = Negotiation(PROXY, "example.com:22", login, credentials or Credentials(), authorized, logged,
                          deadline or Deadline(10), kerberos)  # fmt: skip
    return Talk(machine)


def _quiet(message: str) -> None:
    pass


def challenge(value: str, *, close: bool = False) -> bytes:
    framing = "Connection: close" if close else "Content-Length: 0"
    return f"HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: {value}\r\n{framing}\r\n\r\n".encode()


# --- no authentication, refusals -----------------------------------------------------------------


def test_a_2xx_to_the_bare_connect_opens_the_tunnel_and_nothing_is_asked() -> None:
    asked: list[str] = []
    talk = negotiation(asked=asked)
    assert talk.round(b"HTTP/1.1 100 Continue\r\n\r\n" + OK) == OPEN
    assert talk.sent() is None and not asked


@pytest.mark.parametrize("status", [b"403 Forbidden", b"401 Unauthorized", b"502 Bad Gateway"])
def test_a_first_refusal_that_is_not_a_407_is_the_verdict(status: bytes) -> None:
    talk = negotiation()
    with pytest.raises(ProxyError, match=f'^{NAME} refused CONNECT example.com:22: "HTTP/1.1 {status.decode()}"$'):
        talk.round(b"HTTP/1.1 " + status + b"\r\nContent-Length: 0\r\n\r\n")


def test_a_407_without_a_user_says_how_to_give_one() -> None:
    talk = negotiation(user=None, password=None)
    with pytest.raises(AuthFailed, match=r": it wants authentication \(-P user\)$"):
        talk.round(BASIC_407)


def test_a_407_with_a_user_and_no_password_names_the_user() -> None:
    talk = negotiation(password=None)
    with pytest.raises(AuthFailed, match=r"refused CONNECT example.com:22: \"HTTP/1.1 407 Auth\": it wants a password, "
                                         r"and none was given for alice$"):  # fmt: skip
        talk.round(BASIC_407)


def test_the_callers_own_proxy_authorization_is_the_only_one_and_a_407_to_it_ends_it() -> None:
    asked: list[str] = []
    talk = negotiation(authorized=True, asked=asked)
    with pytest.raises(AuthFailed) as refused:
        talk.round(BASIC_407)
    assert str(refused.value) == (
        f'{NAME} refused CONNECT example.com:22: "HTTP/1.1 407 Auth": it did not take the Proxy-Authorization '
        "header given"
    )
    assert talk.sent() is None and not asked


# --- Basic, Digest --------------------------------------------------------------------------------


def test_basic_is_answered_once_on_the_same_connection() -> None:
    log: list[str] = []
    asked: list[str] = []
    talk = negotiation(log=log, asked=asked)
    assert talk.round(BASIC_407) == SAME_CONNECTION
    assert talk.negotiation.scheme == "basic"
    assert talk.round(OK) == OPEN
    assert talk.sent() == "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    assert log == [f"answering {NAME}'s basic challenge as alice"]
    assert asked == ["asked"]


def test_a_second_407_to_basic_is_the_rejection_and_the_password_is_not_sent_again() -> None:
    asked: list[str] = []
    talk = negotiation(asked=asked)
    assert talk.round(BASIC_407) == SAME_CONNECTION
    with pytest.raises(AuthFailed) as rejected:
        talk.round(BASIC_407)
    assert str(rejected.value) == f"proxy authentication failed for alice at {NAME}"
    assert asked == ["asked"] and len(talk.requests) == 2


def test_a_401_after_the_credentials_is_the_rejection_as_tinyproxy_says_it() -> None:
    talk = negotiation()
    assert talk.round(BASIC_407) == SAME_CONNECTION
    with pytest.raises(AuthFailed, match=f"^proxy authentication failed for alice at {NAME}$"):
        talk.round(b"HTTP/1.0 401 Unauthorized\r\n\r\n")


def test_a_proxy_closing_after_its_407_gets_the_credentials_on_a_fresh_connection() -> None:
    talk = negotiation()
    assert talk.round(b'HTTP/1.0 407 Auth\r\nProxy-Authenticate: Basic realm="x"\r\n\r\n') == FRESH_CONNECTION
    assert talk.round(OK) == OPEN
    assert (talk.sent() or "").startswith("Basic ")


def test_digest_answers_the_challenge_on_the_wire_per_rfc_7616() -> None:
    talk = negotiation()
    nonce = "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v"
    digest = f'Digest realm="http-auth@example.org", qop="auth", algorithm=SHA-256, nonce="{nonce}", opaque="FQhe"'
    assert talk.round(challenge(digest)) == SAME_CONNECTION
    assert talk.round(OK) == OPEN
    answer = talk.sent()
    assert answer is not None and answer.startswith("Digest ")
    fields = dict(re.findall(r'(\w+)="?([^",]*)"?', answer[len("Digest ") :]))
    assert fields["username"] == USER and fields["uri"] == "example.com:22" and fields["opaque"] == "FQhe"

    def h(text: str) -> str:
        return hashlib.sha256(text.encode()).hexdigest()

    ha1, ha2 = h(f"{USER}:http-auth@example.org:{PASSWORD}"), h("CONNECT:example.com:22")
    assert fields["response"] == h(f"{ha1}:{nonce}:00000001:{fields['cnonce']}:auth:{ha2}")


def test_a_stale_digest_nonce_is_answered_again_until_the_rounds_run_out() -> None:
    asked: list[str] = []
    talk = negotiation(asked=asked)
    for i in range(MAX_AUTH_ROUNDS):
        assert talk.round(challenge(f'Digest realm="r", nonce="n{i}", stale=true')) == SAME_CONNECTION
    with pytest.raises(AuthFailed, match=f"^proxy authentication failed for alice at {NAME}$"):
        talk.negotiation.authorization()
    assert len(talk.requests) == MAX_AUTH_ROUNDS and asked == ["asked"] * MAX_AUTH_ROUNDS  # each answer's HA1


# --- NTLM -----------------------------------------------------------------------------------------


@pytest.fixture
def ntlm_users(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    users = tmp_path / "ntlm_users"
    users.write_text(f"CORP:{USER}:{PASSWORD.replace(':', '')}\n")  # the file format splits on colons
    monkeypatch.setenv("NTLM_USER_FILE", str(users))


def test_ntlm_takes_three_legs_on_one_connection(ntlm_users: None) -> None:
    import spnego

    server = spnego.server(hostname="proxy.example", service="HTTP", protocol="ntlm")
    talk = negotiation(f"CORP\\{USER}", PASSWORD.replace(":", ""))
    assert talk.round(challenge("NTLM")) == SAME_CONNECTION
    negotiate = talk.negotiation.authorization()
    assert negotiate is not None and negotiate.startswith("NTLM ")
    token = server.step(base64.b64decode(negotiate[5:]))
    assert token is not None
    assert talk.round(challenge("NTLM " + base64.b64encode(token).decode())) == SAME_CONNECTION
    authenticate = talk.negotiation.authorization()
    assert authenticate is not None and authenticate.startswith("NTLM ")
    server.step(base64.b64decode(authenticate[5:]))
    assert server.complete
    assert talk.round(OK) == OPEN and len(talk.requests) == 3


def test_a_proxy_closing_in_the_middle_of_ntlm_is_the_verdict(ntlm_users: None) -> None:
    import spnego

    server = spnego.server(hostname="proxy.example", service="HTTP", protocol="ntlm")
    talk = negotiation(f"CORP\\{USER}", PASSWORD.replace(":", ""))
    # The first leg stands on its own: a fresh connection will do.
    assert talk.round(challenge("NTLM", close=True)) == FRESH_CONNECTION
    answer = talk.negotiation.authorization()
    assert answer is not None
    token = server.step(base64.b64decode(answer[5:]))
    assert token is not None
    with pytest.raises(ProxyError) as closed:
        talk.round(challenge("NTLM " + base64.b64encode(token).decode(), close=True))
    assert str(closed.value) == f"{NAME} closed the connection in the middle of ntlm authentication"


# --- Negotiate ------------------------------------------------------------------------------------

TICKET = base64.b64encode(b"a ticket for the proxy").decode()
MUTUAL = base64.b64encode(b"the proxy's own token").decode()


class FakeTicket(Kerberos):
    """The user's Kerberos ticket, without a KDC: the first leg sends it; a bare challenge again is
    a rejection; the proxy's final token is checked."""

    made: ClassVar[list[str]] = []

    def __init__(self, service: str) -> None:
        self.service, self.legs = service, 0
        FakeTicket.made.append(service)

    def respond(self, challenges: list[Challenge]) -> str | None:
        if self.legs:
            return None
        self.legs += 1
        return f"Negotiate {TICKET}"

    def finish(self, challenges: list[Challenge]) -> str | None:
        token = next((c.token for c in challenges if c.scheme == "negotiate"), None)
        return "verified" if token == MUTUAL else "not confirmed"

    @staticmethod
    def whoami() -> str | None:
        return "alice@CORP.EXAMPLE"

    @staticmethod
    def credential_cache() -> str:
        return "FILE:/tmp/krb5cc_test"


class NoTicket(FakeTicket):
    def respond(self, challenges: list[Challenge]) -> str | None:
        raise gss.KerberosError("no-ticket", "No Kerberos credentials available")


class NoGssapi(FakeTicket):
    def __init__(self, service: str) -> None:
        raise gss.Unavailable("no GSSAPI library")


class SilentKdc(FakeTicket):
    def respond(self, challenges: list[Challenge]) -> str | None:
        time.sleep(3)
        return super().respond(challenges)


def test_negotiate_is_answered_with_the_users_ticket_and_no_password() -> None:
    log: list[str] = []
    asked: list[str] = []
    talk = negotiation(log=log, asked=asked, kerberos=FakeTicket)
    assert talk.round(challenge("Negotiate")) == SAME_CONNECTION
    assert talk.round(b"HTTP/1.1 200 OK\r\nProxy-Authenticate: Negotiate " + MUTUAL.encode() + b"\r\n\r\n") == OPEN
    assert talk.sent() == f"Negotiate {TICKET}"
    assert log == [
        f"answering {NAME}'s negotiate challenge with Kerberos for HTTP@proxy.example: alice@CORP.EXAMPLE, "
        "credential cache FILE:/tmp/krb5cc_test",
        "verified",
    ]
    assert not asked


def test_the_kerberos_service_name_is_the_one_given() -> None:
    FakeTicket.made.clear()
    talk = negotiation(kerberos=FakeTicket, credentials=Credentials(service_name="HTTP@lb.example"))
    talk.round(challenge("Negotiate"))
    assert FakeTicket.made == ["HTTP@lb.example"]


def test_a_rejected_ticket_names_whose_it_was() -> None:
    talk = negotiation(kerberos=FakeTicket)
    assert talk.round(challenge("Negotiate", close=True)) == FRESH_CONNECTION  # the ticket stands on its own
    with pytest.raises(AuthFailed) as rejected:
        talk.round(challenge("Negotiate"))
    assert str(rejected.value) == f"{NAME} rejected the Kerberos ticket of alice@CORP.EXAMPLE for HTTP@proxy.example"


def test_no_ticket_and_no_password_says_to_run_kinit() -> None:
    talk = negotiation(password=None, kerberos=NoTicket)
    with pytest.raises(AuthFailed) as failed:
        talk.round(challenge("Negotiate"))
    assert str(failed.value) == (
        f"{NAME} wants Kerberos (Negotiate) and there is no Kerberos ticket: run kinit (the proxy's principal is "
        "HTTP@proxy.example), or give -P user for NTLM"
    )


@pytest.mark.parametrize(("kerberos", "why"), [(NoTicket, "no Kerberos ticket"),
                                               (NoGssapi, "this system has no GSSAPI library")])  # fmt: skip
def test_without_a_ticket_a_password_answers_negotiate_with_ntlm(
    kerberos: type[Kerberos], why: str, ntlm_users: None
) -> None:
    import spnego

    server = spnego.server(hostname="proxy.example", service="HTTP", protocol="negotiate")
    log: list[str] = []
    talk = negotiation(f"CORP\\{USER}", PASSWORD.replace(":", ""), log=log, kerberos=kerberos)
    assert talk.round(challenge("Negotiate")) == SAME_CONNECTION
    assert talk.negotiation.scheme == "negotiate"
    answer = talk.negotiation.authorization()
    assert answer is not None and base64.b64decode(answer[len("Negotiate ") :]).startswith(b"NTLMSSP\x00\x01")
    token = server.step(base64.b64decode(answer[len("Negotiate ") :]))
    assert token is not None
    assert talk.round(challenge("Negotiate " + base64.b64encode(token).decode())) == SAME_CONNECTION
    answer = talk.negotiation.authorization()
    assert answer is not None
    server.step(base64.b64decode(answer[len("Negotiate ") :]))
    assert server.complete
    assert talk.round(OK) == OPEN
    assert f"{why}: answering {NAME}'s negotiate challenge with NTLM as CORP\\alice" in log


def test_no_gssapi_and_no_password_says_so() -> None:
    talk = negotiation(password=None, kerberos=NoGssapi)
    with pytest.raises(gss.Unavailable):
        talk.round(challenge("Negotiate"))


def test_a_kdc_that_does_not_answer_is_bounded_by_the_deadline() -> None:
    talk = negotiation(kerberos=SilentKdc, deadline=Deadline(0.3))
    start = time.monotonic()
    with pytest.raises(AuthFailed) as failed:
        talk.round(challenge("Negotiate"))
    assert time.monotonic() - start < 2
    assert str(failed.value) == (
        f"no answer from the Kerberos KDC within 0.3s, getting a ticket for HTTP@proxy.example (for {NAME})"
    )


# --- a PAC's proxy the user did not allow ---------------------------------------------------------


def test_a_pacs_proxy_gets_no_password_and_the_verdict_says_how_to_allow_it() -> None:
    talk = negotiation(password=None, kept_by=PAC)
    with pytest.raises(Withheld) as withheld:
        talk.round(BASIC_407)
    assert str(withheld.value) == (
        f"{NAME} (named by {PAC}) asks for a password; ncfd sends passwords only to proxies you named: allow it "
        "with --proxy-auth-hosts proxy.example"
    )


def test_a_pacs_proxy_gets_the_users_ticket_unless_auth_hosts_limit_it() -> None:
    talk = negotiation(password=None, kept_by=PAC, kerberos=FakeTicket)
    assert talk.round(challenge("Negotiate")) == SAME_CONNECTION
    assert talk.negotiation.authorization() == f"Negotiate {TICKET}"
    limited = negotiation(password=None, kept_by=PAC, kerberos=FakeTicket,
                          credentials=Credentials(auth_hosts=("other.example",)))  # fmt: skip
    with pytest.raises(Withheld, match="asks for a Kerberos ticket; with --proxy-auth-hosts given"):
        limited.round(challenge("Negotiate"))
