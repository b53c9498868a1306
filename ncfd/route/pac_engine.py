"""PAC files as a protocol, no I/O: evaluate FindProxyForURL(url, host) in a sandboxed JavaScript
engine, and read the list it returns into proxy entries.

A PAC file is untrusted code from the network. It runs in QuickJS (quickjs-ng, through its C
module _quickjs alone: the package's Python wrapper starts a thread pool at import), which gives a
script the ECMAScript built-ins and nothing else: no file, network, process or module access. Its
limits are the engine's own and hold inside native code: a CPU-time limit (an interrupt handler the
engine polls while it runs, so it stops a `while(true){}` or a catastrophic regular expression),
a memory limit and a stack limit. The CPU limit counts CPU time, not wall time: the caller waits
for the evaluation no longer than its deadline either (ncfd.deadline.call_within), and a QuickJS
context is used by the one thread that made it.

With a time limit set, the engine refuses calls back into Python, and the PAC's DNS helpers
(dnsResolve, isResolvable, isInNet on a name, the Ex family) need answers: they read a table of
answers handed in, note the names they did not find, and the script runs again once those names
are resolved (by their IDNA form), until it asks nothing new. A script whose top level asks (for
DNS, its own addresses, the time) is loaded anew for each run. The helpers are the standard set
answering as Chrome's do (its C++ bindings' argument checks and IPv6 literals; Mozilla's JavaScript,
which Chrome runs, for the rest), written in JavaScript in pac_helpers.js beside this module.
"""

from __future__ import annotations

import os
import re

from ncfd.errors import PacError
from ncfd.render import host_port, printable

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    Resolver = Callable[[str], "list[str]"]

MEMORY_LIMIT = 64 << 20
STACK_LIMIT = 1 << 20
MAX_NAMES = 32  # names one evaluation may have resolved; more are answered "does not resolve"
MAX_ROUNDS = 8  # evaluations, each after resolving the names the previous one asked for
PAC_CPU_LIMIT = 10.0  # CPU seconds a PAC may take for one answer, whatever the deadline leaves
# Seconds at least between the PAC's CPU limit and the deadline, never set to the same moment (the
# engine's error and the deadline's would race). A deadline nearer than PAC_CPU_LIMIT gets the CPU
# limit set past it: the PAC's thread cannot spend more CPU time than the clock runs, so the
# deadline's message is the one given, and the CPU limit only stops the thread the deadline abandoned.
PAC_CPU_HEADROOM = 1.0


# The helpers, in JavaScript: a file of the package, read when a PAC is first evaluated.
HELPERS_FILE = os.path.join(os.path.dirname(__file__), "pac_helpers.js")


_HELPERS: list[str] = []


def _helpers() -> str:
    if not _HELPERS:
        with open(HELPERS_FILE, encoding="utf-8") as f:
            _HELPERS.append(f.read())
    return _HELPERS[0]


class Evaluation:
    """What FindProxyForURL returned, with the names resolved for it, those it asked for past
    MAX_NAMES or MAX_ROUNDS (answered "does not resolve"), and what it alert()ed."""

    __slots__ = ("alerts", "answer", "names", "rounds", "unresolved")

    def __init__(
        self, answer: str, names: dict[str, list[str]], alerts: list[str], rounds: int, unresolved: list[str]
    ) -> None:
        self.answer, self.names, self.alerts, self.rounds = answer, names, alerts, rounds
        self.unresolved = unresolved


def pac_cpu_limit(left: float) -> float:
    """The PAC's CPU seconds for a deadline left seconds away: PAC_CPU_HEADROOM from it, at least."""
    return left + PAC_CPU_HEADROOM if left < PAC_CPU_LIMIT else min(PAC_CPU_LIMIT, left - PAC_CPU_HEADROOM)


class Engine:
    """One PAC file loaded into its own QuickJS context, for the thread that made it."""

    def __init__(self, text: str, name: str, cpu_seconds: float) -> None:
        try:
            import _quickjs
        except ImportError:
            raise PacError(
                f"cannot evaluate PAC {name}: the JavaScript engine is missing (pip install quickjs-ng)"
            ) from None
        self.name = name
        if "\x00" in text:  # the engine takes C strings: it would read the text only up to there
            raise PacError(f"PAC {name} contains a NUL character (at offset {text.index(chr(0))}): not a PAC file, or "
                           "UTF-16 without a byte-order mark")  # fmt: skip
        self.errors = (_quickjs.JSException,)
        self.new_context, self.text, self.cpu_seconds = _quickjs.Context, text, cpu_seconds
        self._start("loading ncfd's PAC functions")
        # A first load, to report a script that cannot load at all, and to learn whether its top
        # level asks for DNS answers, own addresses or the time: then each run loads it anew with
        # them (its error here may be one that the answers take away).
        import time

        self.context.set("__ncfd_now", time.time() * 1000)
        try:
            self._load()
        except PacError:
            if not self._used_env():
                raise
        self.reload = self._used_env()

    def _start(self, doing: str) -> None:
        self.context = self.new_context()
        self.context.set_memory_limit(MEMORY_LIMIT)
        self.context.set_max_stack_size(STACK_LIMIT)
        self._eval(_helpers(), doing)

    def _load(self) -> None:
        self.context.eval("__ncfd_loading = true")
        self._eval(self.text, "loading it")
        self._eval("__ncfd_loading = false", "loading it")

    def _used_env(self) -> bool:
        try:
            return self._eval("__ncfd_load_used === true", "loading it") is True
        except PacError:
            return False

    def _asked(self) -> str:
        try:
            asked = self._eval("__ncfd_asked.join(',')", "loading it")
        except PacError:
            return ""
        return asked if isinstance(asked, str) else ""

    def _eval(self, code: str, doing: str) -> object:
        import time

        started = time.process_time()
        self.context.set_time_limit(max(self.cpu_seconds, 0.001))
        try:
            return self.context.eval(code)
        except self.errors as e:
            raise PacError(f"PAC {self.name}: {_describe(e, doing)}") from None
        except (TypeError, ValueError) as e:  # a value the binding cannot convert: a BigInt, a lone surrogate
            raise PacError(f"PAC {self.name}: left a value ncfd cannot read while {doing} ({e})") from None
        finally:
            self.cpu_seconds -= time.process_time() - started

    def defines_find(self) -> bool:
        """Whether the script defines FindProxyForURL or FindProxyForURLEx: what makes it a PAC."""
        code = 'typeof FindProxyForURLEx === "function" || typeof FindProxyForURL === "function"'
        return self._eval(code, "looking for FindProxyForURL") is True

    def find(self, url: str, host: str, resolve: Resolver, my_addresses: list[str], now_ms: float) -> Evaluation:
        """FindProxyForURLEx (where defined) or FindProxyForURL, with DNS answers from resolve()
        (a name's addresses, none when it does not resolve)."""
        names: dict[str, list[str]] = {}
        given = {"__ncfd_url": url, "__ncfd_host": host, "__ncfd_my_ips": ";".join(my_addresses), "__ncfd_now": now_ms}
        for rounds in range(1, MAX_ROUNDS + 1):
            if self.reload:
                self._start("loading it")
            for key, value in given.items():
                self.context.set(key, value)
            self.context.set("__ncfd_dns_text", "\n".join(f"{n}={';'.join(a)}" for n, a in names.items()))
            failed = None
            if self.reload:
                self._eval("__ncfd_load(__ncfd_dns_text)", "running FindProxyForURL")
                try:
                    self._load()
                except PacError as e:
                    failed = e
            if failed is None:
                load = "" if self.reload else "__ncfd_load(__ncfd_dns_text); "
                out = self._eval(load + "__ncfd_run()", "running FindProxyForURL")
                parts = out.split("\n", 3) if isinstance(out, str) else []
                if len(parts) != 4:
                    raise PacError(
                        f"PAC {self.name}: its answer cannot be read: it redefines what ncfd's PAC functions use (a "
                        "built-in such as Array.prototype.join, or the functions themselves)"
                    )
                kind, asked, alerts, answer = parts
                if kind == "none":
                    raise PacError(f"PAC {self.name} defines no FindProxyForURL function")
            elif self.cpu_seconds > 0:  # the names its top level asked for before it failed may be what it lacked
                asked = self._asked()
            else:
                raise failed
            wanted = [n for n in asked.split(",") if n and n not in names]
            new = wanted[: max(0, MAX_NAMES - len(names))]
            if not new or rounds == MAX_ROUNDS:
                break
            for name in new:
                names[name] = _resolve(resolve, name)
        if failed is not None:
            raise failed
        if kind != "string":
            raise PacError(f"PAC {self.name}: FindProxyForURL returned {kind}, not a string")
        return Evaluation(answer, names, alerts.split("\x01") if alerts else [], rounds, wanted)


def _resolve(resolve: Resolver, name: str) -> list[str]:
    """A name's addresses, looked up by its IDNA form as browsers do (Bücher.ch as
    xn--bcher-kva.ch); a name that has none does not resolve."""
    if not name.isascii():
        try:
            name = name.encode("idna").decode("ascii")
        except UnicodeError:
            return []
    return resolve(name)


def _describe(e: BaseException, doing: str) -> str:
    """The engine's error as one line: "SyntaxError: expecting ';' (line 3)", "ran out of memory".
    What the script threw is its own choice of text: printable() only."""
    text = str(e)
    first = text.split("\n", 1)[0].strip()
    where = re.search(r"<input>:(\d+)", text)
    line = f" (line {where.group(1)})" if where and doing == "loading it" else ""
    if first == "InternalError: interrupted":
        return f"still running after its CPU time limit while {doing} (an endless loop?)"
    if first == "InternalError" or "out of memory" in first:
        return f"used more than {MEMORY_LIMIT >> 20} MiB of memory while {doing}"
    if "Maximum call stack size exceeded" in first:
        return f"recursed too deeply while {doing}"
    if first.startswith("SyntaxError"):
        return f"cannot be loaded: {printable(first)}{line}"
    return f"threw '{printable(first)}' while {doing}{line}"


# --- the answer's grammar -----------------------------------------------------------------------

# Entry keyword: (protocol as ncfd.proxies has them, TLS to the proxy, default port). Browsers'
# defaults: PROXY and HTTP 80, HTTPS 443, SOCKS 1080; SOCKS means SOCKS4 to them.
KEYWORDS = {
    "proxy": ("connect", False, 80),
    "http": ("connect", False, 80),
    "https": ("connect", True, 443),
    "socks": ("4", False, 1080),
    "socks4": ("4", False, 1080),
    "socks5": ("5", False, 1080),
}


class Entry:
    """One entry of a PAC answer: DIRECT (keyword "direct", no host) or a proxy."""

    __slots__ = ("host", "keyword", "port")

    def __init__(self, keyword: str, host: str = "", port: int = 0) -> None:
        self.keyword, self.host, self.port = keyword, host, port

    def __str__(self) -> str:
        if self.keyword == "direct":
            return "DIRECT"
        return f"{self.keyword.upper()} {host_port(self.host, self.port)}"

    __repr__ = __str__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Entry) and (self.keyword, self.host, self.port) == (
            other.keyword,
            other.host,
            other.port,
        )

    def __hash__(self) -> int:
        return hash((self.keyword, self.host, self.port))


def parse_answer(answer: str) -> tuple[list[Entry], list[str]]:
    """The entries of "PROXY a:8080; SOCKS5 b; DIRECT" in order, and the parts that are not entries
    (skipped, as browsers skip them). Keywords in any case; ";" with any spacing."""
    entries: list[Entry] = []
    skipped: list[str] = []
    for part in answer.split(";"):
        words = part.split()
        if not words:
            continue
        keyword = words[0].lower()
        if keyword == "direct" and len(words) == 1:
            entries.append(Entry("direct"))
            continue
        if keyword not in KEYWORDS or len(words) != 2:
            skipped.append(part.strip())
            continue
        address = _host_port(words[1], KEYWORDS[keyword][2])
        if address is None:
            skipped.append(part.strip())
            continue
        entries.append(Entry(keyword, *address))
    return entries, skipped


_HOST = re.compile(r"^[A-Za-z0-9_](?:[A-Za-z0-9_.-]{0,251}[A-Za-z0-9_.])?$")
_IPV6 = re.compile(r"^[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*(?:%[A-Za-z0-9_.-]{1,64})?$")  # a zone (%eth0) allowed


def _host_port(text: str, default_port: int) -> tuple[str, int] | None:
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep or not _IPV6.match(host) or (rest and not rest.startswith(":")):
            return None
        port_text = rest[1:] if rest else ""
    else:
        host, _, port_text = text.partition(":")
        if not _HOST.match(host):
            return None
    if not port_text:
        return host, default_port
    if not (port_text.isascii() and port_text.isdigit()) or not 0 < int(port_text) < 65536:
        return None
    return host, int(port_text)


def browser_url(host: str, port: int) -> str:
    """The URL a browser hands FindProxyForURL for a tunnel to host:port: https://host:port/ (the
    port left out when it is 443), path and query stripped as Chrome does for https."""
    return f"https://{host_port(host, None if port == 443 else port)}/"
