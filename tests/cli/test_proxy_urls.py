"""Proxy URLs (curl's conventions) and --proxy-env with no_proxy: parsing, and what goes on the wire."""

from __future__ import annotations

import os

import pytest

import ncfd
from tests.support.fakeservers import FAKE_TARGET_BANNER, FakeServer, Session, socks5_proxy
from tests.support.fdharness import NCFD, run_fdpass, run_ncfd


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("http://alice:hunter2?@proxy:3128", "http://alice:***@proxy:3128"),  # urlsplit: port "hunter2"
        ("http://alice:hun#ter2@proxy:3128", "http://alice:***@proxy:3128"),  # port "hun"
        ("http://alice:hunter/2@proxy:3128", "http://alice:***@proxy:3128"),
    ],
)
def test_a_password_with_a_url_delimiter_in_it_is_never_shown(url: str, shown: str) -> None:
    """From -x, $https_proxy and the API, the same one line, with no piece of the password in it."""
    reason = f"invalid proxy URL {shown}: write a / ? or # in the user or password as %2F %3F %23"
    r = run_ncfd(["-x", url, "h", "22"])
    assert (r.returncode, r.stdout, r.stderr) == (2, b"", f"ncfd: {reason}\n".encode())
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    r = run_ncfd(["--proxy-env", "h", "22"], env={**env, "https_proxy": url})
    assert (r.returncode, r.stdout, r.stderr) == (2, b"", f"ncfd: $https_proxy: {reason}\n".encode())
    with pytest.raises(ncfd.UsageError) as e:
        ncfd.connect("h", 22, proxy=url)
    assert str(e.value) == reason


def test_a_library_message_about_a_url_with_a_password_quotes_none_of_it() -> None:
    # A fullwidth # normalizes to one: urllib refuses the netloc, quoting it.
    r = run_ncfd(["-x", "http://alice:s3\uff03cret@proxy", "h", "22"])
    assert r.stderr == (
        b"ncfd: invalid proxy URL http://alice:***@proxy: netloc '***' contains invalid characters under NFKC"
        b" normalization\n"
    )
    r = run_ncfd(["-x", "http://alice:s3cret@proxy:31x8", "h", "22"])  # what is not the password is quoted
    assert r.stderr == (
        b"ncfd: invalid proxy URL http://alice:***@proxy:31x8: Port could not be cast to integer value as '31x8'\n"
    )
    r = run_ncfd(["-x", "alice:s3cret@proxy:1080", "h", "22"])  # nc's form: "s3cret@proxy" was the port
    assert r.stderr == (
        b'ncfd: a proxy written host:port has no user: "...@proxy:1080" (put the user in a proxy URL,'
        b" socks5h://user@host, or give -P user)\n"
    )


# --- the environment ------------------------------------------------------------------------


def test_proxy_env_goes_direct_for_excluded_hosts_and_through_the_proxy_otherwise() -> None:
    def target(s: Session) -> None:
        s.send(FAKE_TARGET_BANNER)
        s.echo()

    with FakeServer(target) as t, FakeServer(socks5_proxy()) as p:
        env = {**os.environ, "ALL_PROXY": f"socks5h://127.0.0.1:{p.port}", "NO_PROXY": "127.0.0.0/8"}
        r = run_fdpass([*NCFD, "-F", "--proxy-env", "127.0.0.1", str(t.port)], env=env)
        assert r.returncode == 0 and r.sock is not None
        assert r.sock.getpeername() == ("127.0.0.1", t.port)  # direct
        r.close()
        r = run_fdpass([*NCFD, "-F", "--proxy-env", "example.com", "22"], env=env)
        assert r.returncode == 0 and r.sock is not None
        assert r.sock.getpeername() == ("127.0.0.1", p.port)  # through the proxy
        assert r.read_exactly(len(FAKE_TARGET_BANNER)) == FAKE_TARGET_BANNER
        r.close()
        assert b"\x03\x0bexample.com" in p.sessions[0].received


def test_socks5_url_resolves_here_socks5h_at_the_proxy() -> None:
    with FakeServer(socks5_proxy()) as p:
        for scheme, wire in [("socks5", b"\x05\x01\x00\x01\x7f\x00\x00\x01\x00\x16"),
                             ("socks5h", b"\x05\x01\x00\x03\x09localhost\x00\x16")]:  # fmt: skip
            r = run_fdpass([*NCFD, "-F", "-x", f"{scheme}://127.0.0.1:{p.port}", "localhost", "22"])
            assert r.returncode == 0, r.stderr
            r.close()
            assert p.sessions[-1].received == b"\x05\x01\x00" + wire


def test_url_password_warning_on_stderr_without_the_password() -> None:
    r = run_ncfd(["-z", "-x", "socks5h://u:hunter2@127.0.0.1:1", "h", "22"])
    assert r.returncode == 4
    lines = r.stderr.decode().splitlines()
    assert lines[0].startswith("ncfd: warning: the password for SOCKS5 proxy 127.0.0.1:1 in its URL is visible")
    assert "hunter2" not in r.stderr.decode()
