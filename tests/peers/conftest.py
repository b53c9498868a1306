"""Fixtures for the real servers in tests/support/peers.py.

Servers are session-scoped: each starts in well under a second, but squid
takes 1-2 s to stop, and the tests only need a server that is up.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import pytest

from tests.support import peers
from tests.support.peers import ProxyFactory, require


@contextlib.contextmanager
def _per_credentials(
    launch: Callable[..., contextlib.AbstractContextManager[peers.Proxy]],
) -> Iterator[ProxyFactory]:
    """A factory starting one server per (user, password, options), reused after."""
    started: dict[tuple[object, ...], peers.Proxy] = {}
    with contextlib.ExitStack() as stack:

        def make(user: str, password: str, **options: object) -> peers.Proxy:
            key = (user, password, *sorted(options.items()))
            if key not in started:
                started[key] = stack.enter_context(launch(user=user, password=password, **options))
            started[key].check_alive()
            return started[key]

        yield make


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_call(item: pytest.Item) -> None:
    """Before each test, its servers (session-scoped, started by an earlier test) are still up: one
    that died fails the test naming itself, not with "Connection refused" on a port number."""
    for value in getattr(item, "funcargs", {}).values():
        if isinstance(value, peers.Peer):
            value.check_alive()


@pytest.fixture(scope="session")
def sshd() -> Iterator[peers.Sshd]:
    require("ssh")  # its users log in with it
    with peers.sshd() as server:
        yield server


@pytest.fixture(scope="session")
def ssh_socks(sshd: peers.Sshd) -> Iterator[peers.Proxy]:
    with peers.ssh_socks(sshd) as proxy:
        yield proxy


@pytest.fixture(scope="session")
def squid() -> Iterator[peers.Proxy]:
    with peers.squid() as proxy:
        yield proxy


@pytest.fixture(scope="session")
def squid_auth() -> Iterator[ProxyFactory]:
    with _per_credentials(peers.squid) as make:
        yield make


@pytest.fixture(scope="session")
def tinyproxy() -> Iterator[peers.Proxy]:
    with peers.tinyproxy() as proxy:
        yield proxy


@pytest.fixture(scope="session")
def tinyproxy_auth() -> Iterator[ProxyFactory]:
    with _per_credentials(peers.tinyproxy) as make:
        yield make


@pytest.fixture(scope="session")
def https_proxy(tinyproxy: peers.Proxy) -> Iterator[peers.TlsProxy]:
    with peers.stunnel(tinyproxy) as proxy:
        yield proxy


@pytest.fixture(scope="session", params=["TLSv1.3", "TLSv1.2"])
def https_proxy_client_cert(tinyproxy: peers.Proxy, request: pytest.FixtureRequest) -> Iterator[peers.TlsProxy]:
    """An HTTPS proxy requiring a client certificate, in TLS 1.3 (where it says so after the
    handshake) and 1.2 (in it)."""
    with peers.stunnel(tinyproxy, client_certificates=True, tls_max=request.param) as proxy:
        yield proxy


@pytest.fixture(scope="session")
def dante() -> Iterator[peers.Proxy]:
    with peers.dante() as proxy:
        yield proxy


@pytest.fixture(scope="session")
def microsocks() -> Iterator[peers.Proxy]:
    with peers.microsocks() as proxy:
        yield proxy


@pytest.fixture(scope="session")
def microsocks_auth() -> Iterator[ProxyFactory]:
    with _per_credentials(peers.microsocks) as make:
        yield make


@pytest.fixture(scope="session")
def web() -> Iterator[peers.WebServer]:
    with peers.nginx() as server:
        yield server


@pytest.fixture(scope="session")
def kdc() -> Iterator[peers.Kdc]:
    peers.require_names(peers.PROXY_NAME, peers.PROXY_ALIAS)
    with peers.kdc() as server:
        yield server


@pytest.fixture(scope="session")
def squid_kerberos(kdc: peers.Kdc) -> Iterator[peers.Proxy]:
    with peers.squid_negotiate(kdc) as proxy:
        yield proxy


@pytest.fixture(scope="session")
def squid_kerberos_elsewhere(kdc: peers.Kdc) -> Iterator[peers.Proxy]:
    """squid reached as PROXY_NAME whose principals are another service there (proxy/PROXY_NAME) and
    HTTP at a load balancer's name (HTTP/LB_NAME), not HTTP/PROXY_NAME."""
    with peers.squid_negotiate(kdc, principals=(f"proxy/{peers.PROXY_NAME}", f"HTTP/{peers.LB_NAME}")) as proxy:
        yield proxy


@pytest.fixture(scope="session")
def squid_negotiate_ntlm(kdc: peers.Kdc) -> Iterator[peers.Proxy]:
    with peers.squid_negotiate(kdc, ntlm=True) as proxy:
        yield proxy
