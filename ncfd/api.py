"""ncfd for Python programs: the connected socket paramiko, asyncssh, Fabric and Ansible take as
sock=, built by the same core as the command line (ncfd.connection), with the same proxies,
PAC files, discovery, authentication and deadlines.

The deadline is carried by each blocking step (socket timeouts, poll, helper threads for
getaddrinfo and Kerberos), never a signal: connect() works from any thread, and from many at once.
Nothing here installs a signal handler or asks anyone for a password: a password is given, as a
string or a callable asked only when a proxy wants one. -v's narration goes to the "ncfd" logger
at DEBUG (when it is enabled for DEBUG as the call starts), warnings (a stale PAC copy) at WARNING.
check() is the command line's --check: that narration and the far end's first bytes, as a dict.
"""

from __future__ import annotations

import socket

TYPE_CHECKING = False
if TYPE_CHECKING:
    import asyncio
    from collections.abc import Callable, Iterable, Mapping, Sequence
    from typing import Any

    from ncfd.deadline import Deadline
    from ncfd.proxies import Proxy
    from ncfd.request import ClientCert, Request


def connect(
    host: str,
    port: int,
    *,
    proxy: str | Sequence[str] | None = None,
    protocol: str | None = None,
    pac: str | None = None,
    auto: bool = False,
    timeout: float = 60.0,
    user: str | None = None,
    password: str | Callable[[], str] | None = None,
    cacert: str | None = None,
    family: int = 0,
    pac_optional: bool = False,
    headers: Mapping[str, str] | Iterable[tuple[str, str]] | None = None,
    service_name: str | None = None,
    cert: str | None = None,
    key: str | None = None,
    key_passphrase: str | Callable[[], str] | None = None,
    auth_hosts: str | Sequence[str] | None = None,
) -> socket.socket:
    """A connected, blocking TCP socket to host:port, positioned exactly after the last proxy's
    reply: nothing the server sent first (an SSH banner) has been read from it.

    proxy: one proxy, as a URL (http://, https://, socks4://, socks4a://, socks5://, socks5h://,
    with an optional user@) or host:port with protocol ("connect", "4", "4A" or "5"; "5" when not
    given, as nc); or a sequence of URLs, a chain. pac: a PAC file's URL or path (--proxy-pac);
    pac_optional: direct when its server's name does not resolve or it refuses the connection and
    no copy is cached (--proxy-pac-optional). auto: find the proxy as the desktop would
    (--proxy-auto). None of them: direct. timeout: the seconds for all of it (routes, connecting,
    every handshake). user, password: for proxies that ask (user also for those without a user@ of
    their own); Kerberos needs neither. cacert: CA certificates also trusted for HTTPS proxies and
    PAC servers. family: socket.AF_INET or AF_INET6 to use only that family. headers: extra headers
    for every CONNECT to an HTTP or HTTPS proxy, (name, value) pairs or a mapping (--proxy-header);
    never sent to SOCKS proxies. service_name: the Kerberos service a Negotiate proxy's ticket is
    asked for, "HTTP" (the default) at the proxy's name, or a "service@host" of its own
    (--proxy-service-name). cert, key: a TLS client certificate for HTTPS proxies that ask for one
    (not PAC servers), PEM files, key None when the certificate's file holds it too; the key's file
    must be private to its owner; key_passphrase, for an encrypted key, is used (a callable
    called) only when it is. auth_hosts: shell-style patterns (a sequence, or one comma-separated
    string) of the names of proxies that a PAC names and that may still have the password, and,
    once given, the only such proxies that get a Kerberos ticket (--proxy-auth-hosts); a PAC's
    other proxies get neither.

    Through an HTTPS proxy the TLS session cannot be a plain socket: the socket returned is one end
    of a socketpair, and a daemon thread relays between its other end and the TLS session until
    either side closes.

    Raises ncfd.NcfdError's kinds: UsageError, ResolveError, ConnectFailed, ProxyError, AuthFailed,
    TimedOut, PacError; str() is the message the command line prints, .exit_code its exit code.
    """
    from ncfd.deadline import Deadline

    request = _request(host, port, proxy, protocol, pac, auto, timeout, user, password, cacert, family, pac_optional,
                       headers, service_name, cert, key, key_passphrase, auth_hosts)  # fmt: skip
    return _open(request, Deadline(timeout))


def check(
    host: str,
    port: int,
    *,
    proxy: str | Sequence[str] | None = None,
    protocol: str | None = None,
    pac: str | None = None,
    auto: bool = False,
    timeout: float = 60.0,
    user: str | None = None,
    password: str | Callable[[], str] | None = None,
    cacert: str | None = None,
    family: int = 0,
    pac_optional: bool = False,
    headers: Mapping[str, str] | Iterable[tuple[str, str]] | None = None,
    service_name: str | None = None,
    cert: str | None = None,
    key: str | None = None,
    key_passphrase: str | Callable[[], str] | None = None,
    auth_hosts: str | Sequence[str] | None = None,
) -> dict[str, Any]:
    """The command line's --check: the way to host:port as connect() goes it, then what the far end
    sends first, as a dict: "steps" (each {"time": seconds since the start, "what": the line}),
    "ok" (the tunnel works and the far end is an SSH server, or silent), "exit_code" (what the
    command line exits with), "verdict", "error" (the failure's message, or None), "route"
    ({"source", "answer" (a PAC's), "routes"}, or None when none was chosen), "first_bytes"
    ({"kind": "ssh", "tls", "html", "other", "closed" or "none", "text"}, or None without a
    tunnel). The connection is closed at the end. Raises UsageError only: every other failure is
    the report's."""
    from ncfd.deadline import Deadline
    from ncfd.diagnose import Recorder, run

    request = _request(host, port, proxy, protocol, pac, auto, timeout, user, password, cacert, family, pac_optional,
                       headers, service_name, cert, key, key_passphrase, auth_hosts)  # fmt: skip
    return run(request, Deadline(timeout), Recorder())


async def connect_async(host: str, port: int, **kwargs: object) -> socket.socket:
    """connect() for asyncio programs (asyncssh: sock=...): the same arguments, the same socket.
    It runs in a thread of its own, so that the event loop goes on and its default executor stays
    free; the timeout counts from this call. Cancelling the task cancels the attempt: its waits end
    at once and what it opened is closed (a name lookup under way, which nothing interrupts, ends
    by itself in its helper thread)."""
    import asyncio
    import inspect  # asyncio has imported it already
    import threading

    from ncfd.deadline import Deadline, start_thread

    given = inspect.signature(connect).bind(host, port, **kwargs)
    given.apply_defaults()
    request = _request(**given.arguments)
    deadline = Deadline(given.arguments["timeout"])
    loop = asyncio.get_running_loop()
    future: asyncio.Future[socket.socket] = loop.create_future()

    def run() -> None:
        outcome: socket.socket | BaseException
        try:
            outcome = _open(request, deadline)
        except BaseException as e:  # for the task to raise
            outcome = e
        try:
            loop.call_soon_threadsafe(_settle, future, outcome)
        except RuntimeError:  # the loop is closed: nobody is waiting
            if isinstance(outcome, socket.socket):
                outcome.close()

    thread = threading.Thread(target=run, name="ncfd connect_async", daemon=True)
    start_thread(thread.start, f"connecting to {host} port {port}")
    try:
        return await future
    except asyncio.CancelledError:
        deadline.cancel()
        if future.done() and not future.cancelled() and future.exception() is None:
            future.result().close()  # it came in the same moment as the cancellation
        raise


def _settle(future: asyncio.Future[socket.socket], outcome: socket.socket | BaseException) -> None:
    """In the event loop: hand connect_async's outcome to its task, or close the socket that
    nobody awaits any more."""
    if future.cancelled():
        if isinstance(outcome, socket.socket):
            outcome.close()
    elif isinstance(outcome, BaseException):
        future.set_exception(outcome)
    else:
        future.set_result(outcome)


def _request(
    host: str,
    port: int,
    proxy: str | Sequence[str] | None,
    protocol: str | None,
    pac: str | None,
    auto: bool,
    timeout: float,
    user: str | None,
    password: str | Callable[[], str] | None,
    cacert: str | None,
    family: int,
    pac_optional: bool = False,
    headers: Mapping[str, str] | Iterable[tuple[str, str]] | None = None,
    service_name: str | None = None,
    cert: str | None = None,
    key: str | None = None,
    key_passphrase: str | Callable[[], str] | None = None,
    auth_hosts: str | Sequence[str] | None = None,
) -> Request:
    """connect()'s arguments, checked, as a Request for the core."""
    from ncfd.errors import UsageError
    from ncfd.request import Credentials, Request, SocketOptions, check_service_name

    sources = [name for name, given in (("proxy", proxy), ("pac", pac), ("auto", auto)) if given]
    if len(sources) > 1:
        raise UsageError(f"{' and '.join(sources)} exclude each other: each chooses the route")
    if pac_optional and pac is None:
        raise UsageError("pac_optional goes with pac")
    if not timeout > 0:
        raise UsageError(f"timeout must be a positive number of seconds, not {timeout!r}")
    if family not in (0, socket.AF_INET, socket.AF_INET6):
        raise UsageError(f"family must be 0, socket.AF_INET or socket.AF_INET6, not {family!r}")
    if key is not None and cert is None:
        raise UsageError("key goes with cert (the certificate the key is for)")
    for name, given in (("pac", pac), ("cacert", cacert), ("cert", cert), ("key", key), ("service_name", service_name),
                        ("user", user)):  # fmt: skip
        if given is not None and not isinstance(given, str):
            raise UsageError(f"{name} must be a string, not {type(given).__name__}")
    for name, source in (("password", password), ("key_passphrase", key_passphrase)):
        if source is not None and not (isinstance(source, str) or callable(source)):
            raise UsageError(f"{name} must be a string or a callable returning one, not {type(source).__name__}")
    for name, names in (("proxy", proxy), ("auth_hosts", auth_hosts)):
        if names is not None and not _strings(names):  # not shown: a proxy URL may hold a password
            raise UsageError(f"{name} must be a string or a list of strings")
    options = SocketOptions()
    options.family = socket.AddressFamily(family)
    proxies = _proxies(proxy, protocol)
    extra: list[tuple[str, str]] = []
    if headers is not None:
        from ncfd.proxy_headers import check_authorization, from_pairs

        extra = from_pairs(headers)
        authenticating = user is not None or password is not None or any(p.user for p in proxies
                                                                          if p.protocol == "connect")  # fmt: skip
        check_authorization(extra, authenticating, "user=, password= or a user@ in a proxy URL")
    if service_name is not None:
        service_name = check_service_name(service_name, "service_name=")
    return Request(
        host, port, proxies=proxies, pac=pac, auto=auto, socket_options=options, cacert=cacert,
        credentials=Credentials(user, _password_for(password) if password is not None else None,
                                hint="user= and password=", service_name=service_name, service_hint="service_name=",
                                auth_hosts=_patterns(auth_hosts), hosts_option="auth_hosts="),
        client_cert=_client_cert(cert, key, key_passphrase), pac_optional=pac_optional, headers=extra,
    )  # fmt: skip


def _strings(value: object) -> bool:
    """A string, or a list or tuple of them."""
    return isinstance(value, str) or (isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value))


def _patterns(auth_hosts: str | Sequence[str] | None) -> tuple[str, ...] | None:
    if auth_hosts is None:
        return None
    from ncfd.tunnel.auth_policy import parse_patterns

    return parse_patterns(auth_hosts if isinstance(auth_hosts, str) else ",".join(auth_hosts))


def _client_cert(cert: str | None, key: str | None, passphrase: str | Callable[[], str] | None) -> ClientCert | None:
    """The certificate, with the caller's passphrase, a callable called at most once."""
    if cert is None:
        return None
    from ncfd.errors import AuthFailed
    from ncfd.request import ClientCert

    kept: list[str] = []

    def source(deadline: Deadline) -> str:
        if passphrase is None:
            raise AuthFailed(f"the TLS client key {key or cert} is encrypted: give its passphrase as key_passphrase=")
        if not kept:
            kept.append(passphrase if isinstance(passphrase, str) else str(passphrase()))
        return kept[0]

    return ClientCert(cert, key, source)


def _open(request: Request, deadline: Deadline) -> socket.socket:
    from ncfd import connection
    from ncfd.errors import NcfdError

    log, warn = _logger()
    try:
        sock = connection.open_connection(request, deadline, log, warn)
    except MemoryError:
        raise NcfdError(f"out of memory connecting to {request.host} port {request.port}") from None
    if hasattr(sock, "pending"):  # a TLS session (an HTTPS proxy)
        from ncfd.net.bridge import in_thread

        sock = in_thread(sock)  # type: ignore[arg-type]
    sock.settimeout(None)
    return sock


def _proxies(proxy: str | Sequence[str] | None, protocol: str | None) -> list[Proxy]:
    from ncfd.errors import UsageError
    from ncfd.proxies import PROTOCOLS, check_chain, parse_proxy, parse_proxy_url

    if protocol is not None and protocol.lower() not in PROTOCOLS:
        raise UsageError(f"unsupported proxy protocol {protocol!r} (use connect, 4, 4A or 5)")
    chosen = PROTOCOLS[protocol.lower()] if protocol is not None else None
    if proxy is None:
        return []
    if isinstance(proxy, str):
        return [parse_proxy(proxy, chosen)]
    hops = list(proxy)
    if len(hops) == 1:
        return [parse_proxy(hops[0], chosen)]
    if not all(isinstance(h, str) and "://" in h for h in hops):
        raise UsageError("a proxy chain is written as proxy URLs: socks5h://, http://, ...")
    chain = [parse_proxy_url(h) for h in hops]
    check_chain(chain)
    return chain


def _password_for(password: str | Callable[[], str]) -> Callable[..., Callable[[], str]]:
    """The caller's password for every proxy that asks; a callable is called at most once."""
    kept: list[str] = []

    def source() -> str:
        if not kept:
            kept.append(password if isinstance(password, str) else str(password()))
        return kept[0]

    return lambda proxy, user, deadline: source


def _logger() -> tuple[Callable[[str], None], Callable[[str], None]]:
    import logging

    from ncfd.log import quiet

    logger = logging.getLogger("ncfd")
    # quiet when nobody listens at DEBUG: what only -v would say is then not worked out.
    return logger.debug if logger.isEnabledFor(logging.DEBUG) else quiet, logger.warning
