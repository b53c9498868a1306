"""Entry point: parse the nc-style command line, open the tunnel, then pass the socket or relay.

This is the one place where errors become messages and exit codes, and where the process exits.
"""

from __future__ import annotations

import os
import signal
import sys

from ncfd.errors import EXIT_INTERNAL, NcfdError
from ncfd.log import quiet, stderr_line, verbose

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ncfd.deadline import Deadline
    from ncfd.log import Log
    from ncfd.options import Options
    from ncfd.proxies import Proxy
    from ncfd.request import PasswordSource, Request


def main(argv: list[str] | None = None) -> int:
    # ssh may start us with SIGINT ignored or caught; dying by the signal is the prompt, quiet end.
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    try:
        return _run(sys.argv[1:] if argv is None else argv)
    except NcfdError as e:
        stderr_line(f"ncfd: {e}")
        return e.exit_code
    except Exception as e:  # a bug of ours: one line, no traceback, and how to report it
        stderr_line(
            f"ncfd: internal error ({type(e).__name__}: {e}); please report it with the command line"
            " (minus secrets) and the output of -v"
        )
        return EXIT_INTERNAL


def _run(argv: list[str]) -> int:
    from ncfd.options import parse_args

    opts = parse_args(argv)
    if opts.help or opts.version:
        from ncfd.manual import help_text, version_text

        sys.stdout.write((help_text() if opts.help else version_text()) + "\n")
        return 0
    log = verbose if opts.verbose else quiet
    for warning in opts.warnings:
        _warn(warning)
    if opts.check:
        from ncfd.deadline import Deadline
        from ncfd.diagnose import Recorder, run, stdout_line

        record = Recorder(stdout_line)
        report = run(_request(opts, record), Deadline(opts.deadline), record)
        return int(report["exit_code"])

    out = None
    if opts.fdpass:
        from ncfd.net.fdpass import claim_stdout

        out = claim_stdout()

    from ncfd import connection
    from ncfd.deadline import Deadline

    deadline = Deadline(opts.deadline)
    request = _request(opts, log)
    plan = connection.plan(request, deadline, log, _warn)
    if opts.show_route:
        sys.stdout.write(connection.show(request, plan) + "\n")
        return 0
    sock = connection.open(request, plan, deadline, log)

    if out is not None and hasattr(sock, "pending"):  # a TLS session cannot be passed as a descriptor
        from ncfd.net.bridge import in_child

        sock = in_child(sock, out)  # type: ignore[arg-type]
        log("TLS to the proxy: a detached process relays between it and the socket handed on")
    if opts.verbose:
        # nc's line, which scripts grep for.
        stderr_line(
            f"Connection to {opts.host} {opts.port} port [tcp/{_service(opts.port, opts.socket.numeric)}] succeeded!"
        )
    if out is not None:
        from ncfd.net.fdpass import pass_fd

        pass_fd(out, sock)
        log("passed the connected socket to stdout")
        # Exit at once: ssh waits for us in waitpid. os._exit skips interpreter teardown.
        os._exit(0)
    if opts.zero_io:
        sock.close()
        return 0
    from ncfd.net.relay import relay

    try:
        relay(
            sock,
            read_stdin=not opts.no_stdin,
            half_close=opts.half_close,
            quit_after=opts.quit_after,
            idle_timeout=opts.timeout or None,
        )
    except OSError as e:
        from ncfd.net.fdpass import given_as_to_fdpass

        if given_as_to_fdpass():
            raise NcfdError(
                f"relay to {opts.host} port {opts.port} failed: the other end closed stdin and stdout (one unix"
                " socket, as ssh gives with ProxyUseFdpass yes, waiting for a socket, not bytes): add -F to the"
                " ProxyCommand"
            ) from None
        raise NcfdError(f"relay to {opts.host} port {opts.port} failed: {e.strerror or e}") from None
    return 0


def _request(opts: Options, log: Log) -> Request:
    """What the command line asks the core for, with where its passwords come from, narrated to log."""
    request = opts.request
    assert request is not None  # parse_args made it: neither -h nor --version was given

    def password_for(proxy: Proxy, user: str, deadline: Deadline) -> PasswordSource:
        from ncfd.password import Password  # only when a proxy has a user: start-up time

        return Password(user, proxy, opts.password_file, deadline, opts.netrc, log)

    def netrc_user(proxy: Proxy) -> str | None:
        from ncfd.password import netrc_entry

        assert opts.netrc is not None
        return netrc_entry(opts.netrc, proxy.host, log)[0]

    def in_netrc(proxy: Proxy) -> bool:
        from ncfd.password import netrc_entry

        assert opts.netrc is not None
        return netrc_entry(opts.netrc, proxy.host, log) != (None, None)

    request.credentials.password_for = password_for
    if opts.netrc:
        request.credentials.user_for, request.credentials.in_netrc = netrc_user, in_netrc
    return request


def _warn(message: str) -> None:
    stderr_line(f"ncfd: warning: {message}")


def _service(port: int, numeric: bool) -> str:
    if numeric:
        return "*"
    import socket

    try:
        return socket.getservbyport(port, "tcp")
    except OSError:
        return "*"
