"""Fixtures for the real servers in peers.py.

Servers are session-scoped: each starts in well under a second, but squid
takes 1-2 s to stop, and the tests only need a server that is up.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import re
from collections.abc import Callable, Generator, Iterator
from typing import Any, NoReturn

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


@pytest.fixture
def banner_target() -> Iterator[peers.Target]:
    with peers.banner_target() as target:
        yield target


@pytest.fixture(scope="session")
def sshd() -> Iterator[peers.Sshd]:
    require("sshd", "ssh", "ssh-keygen")
    with peers.sshd() as server:
        yield server


@pytest.fixture(scope="session")
def ssh_socks(sshd: peers.Sshd) -> Iterator[peers.Proxy]:
    with peers.ssh_socks(sshd) as proxy:
        yield proxy


@pytest.fixture(scope="session")
def squid() -> Iterator[peers.Proxy]:
    require("squid")
    with peers.squid() as proxy:
        yield proxy


@pytest.fixture(scope="session")
def squid_auth() -> Iterator[ProxyFactory]:
    require("squid", "openssl", peers.NCSA_AUTH)
    with _per_credentials(peers.squid) as make:
        yield make


@pytest.fixture(scope="session")
def tinyproxy() -> Iterator[peers.Proxy]:
    require("tinyproxy")
    with peers.tinyproxy() as proxy:
        yield proxy


@pytest.fixture(scope="session")
def tinyproxy_auth() -> Iterator[ProxyFactory]:
    require("tinyproxy")
    with _per_credentials(peers.tinyproxy) as make:
        yield make


@pytest.fixture(scope="session")
def https_proxy(tinyproxy: peers.Proxy) -> Iterator[peers.TlsProxy]:
    require("stunnel", "openssl")
    with peers.stunnel(tinyproxy) as proxy:
        yield proxy


@pytest.fixture(scope="session", params=["TLSv1.3", "TLSv1.2"])
def https_proxy_client_cert(tinyproxy: peers.Proxy, request: pytest.FixtureRequest) -> Iterator[peers.TlsProxy]:
    """An HTTPS proxy requiring a client certificate, in TLS 1.3 (where it says so after the
    handshake) and 1.2 (in it)."""
    require("stunnel", "openssl")
    with peers.stunnel(tinyproxy, client_certificates=True, tls_max=request.param) as proxy:
        yield proxy


@pytest.fixture(scope="session")
def dante() -> Iterator[peers.Proxy]:
    require("danted")
    with peers.dante() as proxy:
        yield proxy


@pytest.fixture(scope="session")
def microsocks() -> Iterator[peers.Proxy]:
    require("microsocks")
    with peers.microsocks() as proxy:
        yield proxy


@pytest.fixture(scope="session")
def microsocks_auth() -> Iterator[ProxyFactory]:
    require("microsocks")
    with _per_credentials(peers.microsocks) as make:
        yield make


@pytest.fixture(scope="session")
def web() -> Iterator[peers.WebServer]:
    require("nginx")
    with peers.nginx() as server:
        yield server


@pytest.fixture(scope="session")
def kdc() -> Iterator[peers.Kdc]:
    require("krb5kdc", "kdb5_util", "kadmin.local", "kinit")
    peers.require_names(peers.PROXY_NAME, peers.PROXY_ALIAS)
    with peers.kdc() as server:
        yield server


@pytest.fixture(scope="session")
def squid_kerberos(kdc: peers.Kdc) -> Iterator[peers.Proxy]:
    require("squid", "curl", f"{peers.SQUID_HELPERS}/negotiate_kerberos_auth")
    with peers.squid_negotiate(kdc) as proxy:
        yield proxy


@pytest.fixture(scope="session")
def squid_kerberos_elsewhere(kdc: peers.Kdc) -> Iterator[peers.Proxy]:
    """squid reached as PROXY_NAME whose principals are another service there (proxy/PROXY_NAME) and
    HTTP at a load balancer's name (HTTP/LB_NAME), not HTTP/PROXY_NAME."""
    require("squid", "curl", f"{peers.SQUID_HELPERS}/negotiate_kerberos_auth")
    with peers.squid_negotiate(kdc, principals=(f"proxy/{peers.PROXY_NAME}", f"HTTP/{peers.LB_NAME}")) as proxy:
        yield proxy


@pytest.fixture(scope="session")
def squid_negotiate_ntlm(kdc: peers.Kdc) -> Iterator[peers.Proxy]:
    require("squid", "curl", f"{peers.SQUID_HELPERS}/negotiate_wrapper_auth", f"{peers.SQUID_HELPERS}/ntlm_fake_auth")
    with peers.squid_negotiate(kdc, ntlm=True) as proxy:
        yield proxy


# --- levels: `peers` marks the tests that start a real server or tool -----------------------------
# CI runs the whole suite on one Python and `-m "not peers"` (in-process, and ncfd as a process against
# the scripted servers of fakeservers.py) on the others. A test gets the marker from a fixture that
# starts a peer, a parameter naming one (for getfixturevalue), or a call to a launcher or require() in
# its source or that of the test module's functions and fixtures it uses. Over-marking only costs
# coverage on the other versions; a test the marker misses fails (pytest_runtest_protocol below).

PEER_FIXTURES = frozenset(
    {
        "sshd", "ssh_socks", "squid", "squid_auth", "tinyproxy", "tinyproxy_auth", "https_proxy", "dante",
        "https_proxy_client_cert",
        "microsocks", "microsocks_auth", "web", "kdc", "squid_kerberos", "squid_negotiate_ntlm",
        "squid_kerberos_elsewhere",
    }
)  # fmt: skip
_PEER_CALL = re.compile(
    r"\b(?:require|require_names|peers\.(?:sshd|squid\w*|tinyproxy|dante|microsocks|stunnel|nginx|kdc))\("
    rf"|getfixturevalue\([\"'](?:{'|'.join(PEER_FIXTURES)})[\"']\)"
)


def _module_sources(module: Any, roots: list[Any]) -> Iterator[str]:
    """The source of roots and of the functions of module they name, transitively."""
    todo, seen = [inspect.unwrap(root) for root in roots], set()
    while todo:
        function = todo.pop()
        if not inspect.isfunction(function) or function.__module__ != module.__name__ or function in seen:
            continue
        seen.add(function)
        yield inspect.getsource(function)
        codes = [function.__code__]
        while codes:
            code = codes.pop()
            codes += [const for const in code.co_consts if inspect.iscode(const)]
            todo += [inspect.unwrap(vars(module)[name]) for name in code.co_names if name in vars(module)]


def _flat(value: object) -> Iterator[object]:
    if isinstance(value, (tuple, list)):
        for part in value:
            yield from _flat(part)
    else:
        yield value


@functools.cache
def _calls_peers(module: Any, function: Any, fixtures: frozenset[str]) -> bool:
    roots = [function, *(vars(module)[name] for name in fixtures if name in vars(module))]
    return any(_PEER_CALL.search(source) for source in _module_sources(module, roots))


def _starts_peers(item: pytest.Item) -> bool:
    fixtures = frozenset(getattr(item, "fixturenames", ()))
    callspec = getattr(item, "callspec", None)
    params = _flat(list(callspec.params.values())) if callspec is not None else ()
    if PEER_FIXTURES & {*fixtures, *(value for value in params if isinstance(value, str))}:
        return True
    module, function = getattr(item, "module", None), getattr(item, "function", None)
    return module is not None and _calls_peers(module, function, fixtures)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if _starts_peers(item):
            item.add_marker(pytest.mark.peers)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item) -> Generator[None, object, object]:
    """A test not marked `peers` that looks for a peer's binary fails: the marker stays true."""
    if item.get_closest_marker("peers") is not None:
        return (yield)

    def refuse(name: str) -> NoReturn:
        pytest.fail(f"needs {name} but is not marked peers (see PEER_FIXTURES in tests/conftest.py)")

    found, peers.which = peers.which, refuse
    try:
        return (yield)
    finally:
        peers.which = found
