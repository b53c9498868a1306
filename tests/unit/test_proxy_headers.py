"""--proxy-header and the API's headers=: the exact bytes on the wire (a scripted proxy), a real squid
that lets a CONNECT through only with a token header and a browser's User-Agent (the real ssh
logging in through it, alone, behind a chain's hops, named by a PAC, behind TLS), what -v shows, and
each header that would break the request refused by name, its value never shown."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.proxy_headers import AGENT, TOKEN, header_file


@pytest.fixture
def headers(tmp_path: Path) -> Path:
    return header_file(tmp_path, f"X-Token: {TOKEN}\nUser-Agent: {AGENT}\n")


# --- the API ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({"X-Token": "a\x00b"}, "headers=: the value of header X-Token has a NUL, which would break the request"),
        ([("X-Token", "a\r\nX-Evil: 1")],
         "headers=: the value of header X-Token has a carriage return (CR), which would break the request"),
        ({"HOST": "elsewhere"}, "headers=: header HOST would break the request: ncfd sends the destination as Host"),
        ({"X-Token:": "v"}, "headers=: header name 'X-Token:' is not an HTTP token (no spaces, no separators)"),
        ("X-Token: v", "headers= takes (name, value) pairs or a mapping, not str"),
        (123, "headers= takes (name, value) pairs or a mapping, not int"),
        ({"X-Trace": "caf\udce9"}, "headers=: the value of header X-Trace is not valid text (sent as UTF-8)"),
        ([("X-Token", 1)], "headers= takes (name, value) pairs of strings, not tuple"),
    ],
)  # fmt: skip
def test_the_api_refuses_what_would_break_the_request(headers: object, message: str) -> None:
    import ncfd

    with pytest.raises(ncfd.UsageError) as raised:
        ncfd.connect("127.0.0.1", 9, proxy="http://127.0.0.1:9", headers=headers)  # type: ignore[arg-type]
    assert str(raised.value) == message


def test_the_api_refuses_a_proxy_authorization_beside_its_own() -> None:
    import ncfd

    with pytest.raises(ncfd.UsageError, match=r"^header Proxy-Authorization would break the request: ncfd "):
        ncfd.connect("h", 22, proxy="http://p:3128", user="u", headers={"Proxy-Authorization": "Bearer x"})
