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

from ncfd.request import Words

TYPE_CHECKING = False
if TYPE_CHECKING:
    import asyncio
    from collections.abc import Callable, Iterable, Mapping, Sequence
    from typing import Any

    from ncfd.deadline import Deadline
    from ncfd.request import Request

# The API's names for the request's options, in its messages.
WORDS = Words(proxy="proxy", env=None, pac="pac", auto="auto", pac_optional="pac_optional", cert="cert", key="key",
              chain="a proxy chain", users="user=, password= or a user@ in a proxy URL")  # fmt: skip


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
    request = _request(**locals())  # first: locals() holds the arguments alone
    from ncfd.deadline import Deadline

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
    request = _request(**locals())  # first: locals() holds the arguments alone
    from ncfd.deadline import Deadline
    from ncfd.diagnose import Recorder, run

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
    *,
    proxy: str | Sequence[str] | None,
    protocol: str | None,
    pac: str | None,
    auto: bool,
    timeout: float,
    user: str | None,
    password: str | Callable[[], str] | None,
    cacert: str | None,
    family: int,
    pac_optional: bool,
    headers: Mapping[str, str] | Iterable[tuple[str, str]] | None,
    service_name: str | None,
    cert: str | None,
    key: str | None,
    key_passphrase: str | Callable[[], str] | None,
    auth_hosts: str | Sequence[str] | None,
) -> Request:
    """The arguments of connect(), check() and connect_async() (the same), checked, as a Request
    for the core: what only the API takes is checked here, the rest by the Request."""
    from ncfd.errors import UsageError
    from ncfd.proxies import parse_protocol
    from ncfd.request import Credentials, Request, SocketOptions

    if not timeout > 0:
        raise UsageError(f"timeout must be a positive number of seconds, not {timeout!r}")
    if family not in (0, socket.AF_INET, socket.AF_INET6):
        raise UsageError(f"family must be 0, socket.AF_INET or socket.AF_INET6, not {family!r}")
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
    chosen = None if protocol is None else parse_protocol(protocol)
    options = SocketOptions()
    options.family = socket.AddressFamily(family)
    hops = [proxy] if isinstance(proxy, str) else list(proxy or ())
    extra: list[tuple[str, str]] = []
    if headers is not None:
        from ncfd.proxy_headers import from_pairs

        extra = from_pairs(headers)
    credentials = Credentials(user, _password_for(password) if password is not None else None,
                              hint="user= and password=", service_name=service_name, service_hint="service_name=",
                              auth_hosts=auth_hosts, hosts_option="auth_hosts=",
                              given=user is not None or password is not None)  # fmt: skip
    # protocol= is for one proxy: a chain's URLs say each hop's.
    return Request(host, port, words=WORDS, proxies=hops, protocol=chosen if len(hops) == 1 else None, pac=pac,
                   auto=auto, pac_optional=pac_optional, credentials=credentials, socket_options=options,
                   cacert=cacert, cert=cert, key=key, passphrase=_passphrase(key or cert, key_passphrase),
                   headers=extra)  # fmt: skip


def _strings(value: object) -> bool:
    """A string, or a list or tuple of them."""
    return isinstance(value, str) or (isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value))


def _passphrase(key: str | None, passphrase: str | Callable[[], str] | None) -> Callable[[Deadline], str]:
    """The source of the passphrase of the TLS client key in the file key: the caller's, a callable
    called at most once."""
    from ncfd.errors import AuthFailed

    kept: list[str] = []

    def source(deadline: Deadline) -> str:
        if passphrase is None:
            raise AuthFailed(f"the TLS client key {key} is encrypted: give its passphrase as key_passphrase=")
        if not kept:
            kept.append(passphrase if isinstance(passphrase, str) else str(passphrase()))
        return kept[0]

    return source


def _open(request: Request, deadline: Deadline) -> socket.socket:
    from ncfd import connection
    from ncfd.errors import NcfdError

    log, warn = _logger()
    try:
        sock = connection.open(request, connection.plan(request, deadline, log, warn), deadline, log)
    except MemoryError:
        raise NcfdError(f"out of memory connecting to {request.host} port {request.port}") from None
    if hasattr(sock, "pending"):  # a TLS session (an HTTPS proxy)
        from ncfd.net.bridge import in_thread

        sock = in_thread(sock)  # type: ignore[arg-type]
    sock.settimeout(None)
    return sock


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
