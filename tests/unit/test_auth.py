"""Proxy authentication: each scheme against the real proxy that demands it, the password sources,
wrong passwords, and secrets kept out of every message."""

from __future__ import annotations

import contextlib
import time

import pytest

from ncfd.tunnel.proxy_auth import Digest, NoUser, choose_scheme, parse_challenges
from tests.support.auth import LONG_PASSWORD, USER, socks5_with_password
from tests.support.fakeservers import FakeServer

# --- scripted servers for what no package provides -----------------------------------------


def test_pysocks_alone_still_gets_long_rfc1929_lengths_wrong() -> None:
    """Why fix_rfc1929 exists: if this fails, PySocks was fixed and the mend can go."""
    import socks

    with FakeServer(socks5_with_password) as p:
        client = socks.socksocket()
        client.set_proxy(socks.SOCKS5, "127.0.0.1", p.port, username=USER, password=LONG_PASSWORD)
        client.settimeout(1)
        # The server reads a garbled length; how PySocks then fails does not matter.
        with contextlib.suppress(socks.ProxyError, OSError):
            client.connect(("h", 22))
        client.close()
        wrong = b"\x01\x05alice\xc3\x88"  # 200 as two UTF-8 bytes
        deadline = time.monotonic() + 10
        while not p.sessions or len(p.sessions[0].received) < 4 + len(wrong):
            assert time.monotonic() < deadline, "the request never arrived"
            time.sleep(0.01)
        assert p.sessions[0].received[4:].startswith(wrong)


# --- the pure parts -------------------------------------------------------------------------


def test_digest_rfc7616_examples() -> None:
    """RFC 7616 §3.9.1: Mufasa / Circle of Life, MD5 and SHA-256."""
    params = {
        "realm": "http-auth@example.org",
        "qop": "auth, auth-int",
        "opaque": "FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS",
        "nonce": "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v",
    }
    cnonce = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ"
    digest = Digest("Mufasa", lambda: "Circle of Life", "GET", "/dir/index.html")
    md5 = digest.authorization({**params, "algorithm": "MD5"}, cnonce)
    assert 'response="8ca523f5e9506fed4657c9700eebdbec"' in md5
    sha = digest.authorization({**params, "algorithm": "SHA-256"}, cnonce)
    assert 'response="753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"' in sha
    assert "qop=auth, nc=00000001" in sha and 'opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"' in sha


def test_challenge_parsing_and_choice() -> None:
    offered = parse_challenges(['Digest realm="x", nonce="a,b", qop="auth", Basic realm="y"', "NTLM", "Bearer"])
    assert [c.scheme for c in offered] == ["digest", "basic", "ntlm", "bearer"]
    assert offered[0].params == {"realm": "x", "nonce": "a,b", "qop": "auth"}
    assert parse_challenges(["NTLM TlRMTVNTUAACAAAA=="])[0].token == "TlRMTVNTUAACAAAA=="
    assert choose_scheme(offered[:2], None, "p", user=True) == "digest"
    assert choose_scheme(offered[:2], "basic", "p", user=True) == "basic"
    with pytest.raises(Exception, match="does not offer ntlm authentication"):
        choose_scheme(offered[:2], "ntlm", "p", user=True)
    with pytest.raises(Exception, match="cannot answer: bearer"):
        choose_scheme(offered[3:], None, "p", user=True)
    negotiate = parse_challenges(["Negotiate", "Basic realm=x"])
    assert choose_scheme(negotiate, None, "p", user=False) == "negotiate"  # a ticket needs no user
    with pytest.raises(NoUser):
        choose_scheme(offered[:3], None, "p", user=False)
