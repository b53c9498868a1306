"""--check and ncfd.check(): what a user runs when ssh through the proxy fails. The whole way as -F
goes it (the same route choice, tunnel and authentication, within the same deadline), each step
with its time, then what the far end sends first, and a verdict.

The steps are -v's narration: a Recorder is the log the core already talks to, so the report says
what -F does, not a second account of it. The one thing added is the probe after the tunnel is up:
the only place ncfd reads past the last proxy's reply, since here no socket is handed on. An SSH
server speaks first; a TLS record or an HTTP answer there means a proxy that inspects TLS or
filters pages is in the way, which ssh cannot pass.

Imported only for --check and ncfd.check(): the hand-off pays nothing for it.
"""

from __future__ import annotations

import os
import time

from ncfd.errors import NcfdError, UsageError
from ncfd.render import printable

TYPE_CHECKING = False
if TYPE_CHECKING:
    import socket
    from collections.abc import Callable
    from typing import Any

    from ncfd.deadline import Deadline
    from ncfd.request import Request
    from ncfd.route.choice import Plan

FIRST_BYTES_WAIT = 5.0  # seconds the far end gets to speak first (at most -w); sshd speaks at once
FIRST_BYTES_MAX = 4096  # bytes read to tell what the far end is
LINE_LIMIT = 1000  # characters of one step; a route list or a refusal is longer than render's 500

# What each kind of first bytes means: (ok for ssh, exit status, what it tells).
VERDICTS = {
    "ssh": (True, 0, "the tunnel works and the far end is an SSH server: ssh through this route should work"),
    "none": (True, 0, "the tunnel works; the far end sent nothing within {wait}s: a server that waits for the "
                      "client to speak first, or a proxy holding the tunnel without connecting it (an SSH "
                      "server speaks first: if this is one, suspect the proxy)"),
    "tls": (False, 5, "a TLS handshake came through the tunnel instead of the server's first words: a "
                      "TLS-inspecting proxy is in the way, and ssh cannot work through it (ask for an exception "
                      "for this destination, or take another route)"),
    "html": (False, 5, "an HTTP answer came through the tunnel instead of the server's first words: a filtering "
                       "proxy answers in the server's place (a block or login page), and ssh cannot work "
                       "through it"),
    "closed": (False, 1, "the far end closed the tunnel without a word: the server (or a proxy) dropped the "
                         "connection, and ssh would fail with \"Connection closed by remote host\""),
    "other": (False, 1, "the tunnel works, but the far end is not an SSH server"),
}  # fmt: skip


class Recorder:
    """A log (ncfd.log.Log) that keeps each line with its time since the check began, and hands it
    to echo as it comes (the command line prints it then, so a step that hangs shows where)."""

    def __init__(self, echo: Callable[[str], None] | None = None) -> None:
        self.start = time.monotonic()
        self.steps: list[dict[str, Any]] = []
        self.echo = echo

    def __call__(self, message: str) -> None:
        # Lines carry what proxies and PAC files said: printable() again costs nothing and is sure.
        step: dict[str, Any] = {"time": round(time.monotonic() - self.start, 3),
                                   "what": printable(message.rstrip("\n"), LINE_LIMIT)}  # fmt: skip
        self.steps.append(step)
        if self.echo is not None:
            self.echo(shown_step(step))

    def warn(self, message: str) -> None:
        self(f"warning: {message}")


def shown_step(step: dict[str, Any]) -> str:
    return f"{step['time']:7.3f}s  {step['what']}"


def stdout_line(text: str) -> None:
    """One line of the report, out at once (unbuffered: the next step may take its time)."""
    try:  # noqa: SIM105 (contextlib costs start-up time)
        os.write(1, (text + "\n").encode(errors="backslashreplace"))
    except OSError:
        pass  # nobody reads the report any more (| head): the exit status still tells


def run(request: Request, deadline: Deadline, record: Recorder) -> dict[str, Any]:
    """The report on reaching request's destination as -F would. Raises UsageError only: every
    other failure is the report's verdict."""
    from ncfd import connection
    from ncfd.deadline import format_seconds

    host, port = request.host, request.port
    report: dict[str, Any] = {"host": host, "port": port, "ok": False, "exit_code": 1, "route": None,
                                 "first_bytes": None, "error": None, "verdict": "", "steps": record.steps}  # fmt: skip
    record(f"checking {host} port {port} as -F would, within {format_seconds(deadline.seconds)}s")
    try:
        plan = connection.plan(request, deadline, record, record.warn)
        record(route_line(plan))
        report["route"] = {"source": plan.source, "answer": plan.answer, "routes": [str(r) for r in plan.routes]}
        sock = connection.open(request, plan, deadline, record)
    except UsageError:
        raise
    except NcfdError as e:
        report.update(error=str(e), exit_code=e.exit_code, verdict=f"no tunnel (exit {e.exit_code}): {e}")
        record(f"verdict: {report['verdict']}")
        return report
    wait = min(FIRST_BYTES_WAIT, deadline.seconds)
    record(f"tunnel up; reading what the far end sends first (up to {format_seconds(wait)}s)")
    try:
        data, closed = read_first(sock, wait)
    finally:
        sock.close()
    kind = (classify(data, final=True) or "other") if data else ("closed" if closed else "none")
    text = first_bytes_text(kind, data)
    record(f"the far end sent {text}" if data else f"the far end {'closed the tunnel' if closed else 'sent nothing'}")
    ok, code, meaning = VERDICTS[kind]
    meaning = meaning.format(wait=format_seconds(wait))
    report.update(ok=ok, exit_code=code, first_bytes={"kind": kind, "text": text},
                  verdict=f"{'ok' if ok else f'FAILED (exit {code})'}: {meaning}")  # fmt: skip
    record(f"verdict: {report['verdict']}")
    return report


def route_line(plan: Plan) -> str:
    """Where the route came from and what it is, in one line."""
    if plan.source == "direct":
        return "route: direct (no -x, --proxy-env, --proxy-pac or --proxy-auto)"
    if plan.source.endswith("direct"):  # the environment's no_proxy, --proxy-pac-optional, WPAD found nothing
        return f"route: {plan.source}"
    routes = [f"{i}. {r}" if len(plan.routes) > 1 else str(r) for i, r in enumerate(plan.routes, 1)]
    answered = f', which answered "{printable(plan.answer)}"' if plan.answer is not None else ""
    return f"route: from {plan.source}{answered}: {', '.join(routes)}"


def read_first(sock: socket.socket, wait: float) -> tuple[bytes, bool]:
    """What the far end sends within wait seconds, until classify() can tell what it is, and
    whether the connection ended (closed or reset) meanwhile."""
    end = time.monotonic() + wait
    data = b""
    while classify(data, final=False) is None:
        left = end - time.monotonic()
        if left <= 0:
            return data, False
        sock.settimeout(left)
        try:
            chunk = sock.recv(FIRST_BYTES_MAX - len(data))
        except TimeoutError:
            return data, False
        except OSError:  # a reset, or a TLS session (an HTTPS proxy) broken off
            return data, True
        if not chunk:
            return data, True
        data += chunk
    return data, False


def classify(data: bytes, final: bool) -> str | None:
    """What the first bytes are: "ssh" (a line starting SSH-; RFC 4253 allows other lines before
    it), "tls" (a TLS record: handshake or alert, version 3.x), "html" (an HTTP reply or an HTML
    page), "other"; None while more bytes could tell (final: none will come). Empty data is the
    caller's to name."""
    if not data:
        return None
    if data[0] in (0x15, 0x16):  # a TLS alert or handshake record, if version 3.x follows
        if len(data) < 2 and not final:
            return None
        if data[1:2] == b"\x03":
            return "tls"
    if data.startswith(b"HTTP/"):  # whatever its page says, even a line starting SSH-
        return "html"
    lines = data.split(b"\n")
    if any(line.startswith(b"SSH-") for line in (lines if final else lines[:-1])):
        return "ssh"
    lowered = data.lower()
    if b"<html" in lowered or b"<!doctype html" in lowered:
        return "html"
    if final or len(data) >= FIRST_BYTES_MAX or not data.isascii():
        return "other"
    return None  # text: its SSH- line may follow


def first_bytes_text(kind: str, data: bytes) -> str:
    """The first bytes as one line of the report: the SSH line, the record's bytes in hex, the
    first line of an HTTP answer (and the page's title), or the start of what else came."""
    if kind == "ssh":
        line = next(line for line in data.split(b"\n") if line.startswith(b"SSH-"))
        return f'an SSH banner: "{_text(line)}"'
    if kind == "tls":
        what = "handshake" if data[0] == 0x16 else "alert"
        return f"a TLS {what} record ({data[:16].hex(' ')}{' ...' if len(data) > 16 else ''})"
    if kind == "html":
        first = _text(data.split(b"\n", 1)[0])
        title = _title(data)
        return f'an HTTP answer: "{first}"' + (f', page title "{title}"' if title else "")
    if not data:
        return "nothing"
    if data.isascii():
        shown = _text(data.split(b"\n", 1)[0])
        return f'"{shown}"' + (" ..." if b"\n" in data.rstrip(b"\r\n") else "")
    return f"{data[:32].hex(' ')}{' ...' if len(data) > 32 else ''} (binary)"


def _text(line: bytes) -> str:
    return printable(line.rstrip(b"\r").decode("utf-8", "backslashreplace"), 200)


def _title(data: bytes) -> str:
    lowered = data.lower()
    start = lowered.find(b"<title")
    if start < 0:
        return ""
    start = lowered.find(b">", start) + 1
    end = lowered.find(b"</title", start)
    if start <= 0 or end < 0:
        return ""
    return printable(" ".join(data[start:end].decode("utf-8", "backslashreplace").split()), 200)
