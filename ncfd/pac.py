"""PAC files as a protocol, no I/O: evaluate FindProxyForURL(url, host) in a sandboxed JavaScript
engine, and read the list it returns into proxy entries.

A PAC file is untrusted code from the network. It runs in QuickJS (quickjs-ng, through its C
module _quickjs alone: the package's Python wrapper starts a thread pool at import), which gives a
script the ECMAScript built-ins and nothing else: no file, network, process or module access. Its
limits are the engine's own and hold inside native code: a CPU-time limit (an interrupt handler the
engine polls while it runs, so it stops a `while(true){}` or a catastrophic regular expression),
a memory limit and a stack limit. The CPU limit counts CPU time, not wall time: the caller waits
for the evaluation no longer than its deadline either (ncfd.deadline.bounded), and a QuickJS
context is used by the one thread that made it.

With a time limit set, the engine refuses calls back into Python, and the PAC's DNS helpers
(dnsResolve, isResolvable, isInNet on a name, the Ex family) need answers: they read a table of
answers handed in, note the names they did not find, and the script runs again once those names
are resolved, until it asks nothing new. The helpers are the standard set with the semantics
Mozilla and Chromium give them, written in JavaScript as those browsers do.
"""

from __future__ import annotations

import re

from ncfd.errors import PacError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    Resolver = Callable[[str], "list[str]"]

MEMORY_LIMIT = 64 << 20
STACK_LIMIT = 1 << 20
MAX_NAMES = 32  # names one evaluation may have resolved; more are answered "does not resolve"
MAX_ROUNDS = 8  # evaluations, each after resolving the names the previous one asked for


HELPERS = r"""
"use strict";
var __ncfd_dns = {}, __ncfd_asked = [], __ncfd_alerts = [];

function __ncfd_load(text) {
    __ncfd_dns = {};
    __ncfd_asked = [];
    __ncfd_alerts = [];
    var lines = text ? text.split("\n") : [];
    for (var i = 0; i < lines.length; i++) {
        var eq = lines[i].indexOf("=");
        __ncfd_dns[lines[i].substring(0, eq)] = lines[i].substring(eq + 1);
    }
}

function __ncfd_isIPv4(s) {
    var m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(s);
    return m !== null && m[1] < 256 && m[2] < 256 && m[3] < 256 && m[4] < 256;
}

function __ncfd_v6words(s) {
    // The eight 16-bit words of an IPv6 address (brackets, a zone and an IPv4 tail allowed), or null.
    if (typeof s !== "string" || s.indexOf(":") < 0) return null;
    s = s.replace(/^\[|\]$/g, "").replace(/%.*$/, "");
    var tail = [], m = /^(.*:)(\d+\.\d+\.\d+\.\d+)$/.exec(s);
    if (m !== null) {
        if (!__ncfd_isIPv4(m[2])) return null;
        var b = m[2].split(".").map(Number);
        tail = [b[0] * 256 + b[1], b[2] * 256 + b[3]];
        s = m[1].slice(-2) === "::" ? m[1] : m[1].slice(0, -1);
    }
    var halves = s.split("::");
    if (halves.length > 2) return null;
    var words = function (part) {
        if (part === "") return [];
        var out = part.split(":");
        for (var i = 0; i < out.length; i++) {
            if (!/^[0-9a-fA-F]{1,4}$/.test(out[i])) return null;
            out[i] = parseInt(out[i], 16);
        }
        return out;
    };
    var head = words(halves[0]), rest = halves.length === 2 ? words(halves[1]) : [];
    if (head === null || rest === null) return null;
    var count = head.length + rest.length + tail.length;
    if (halves.length === 1 ? count !== 8 : count > 7) return null;
    var zeros = [];
    while (zeros.length < 8 - count) zeros.push(0);
    return head.concat(halves.length === 2 ? zeros : [], rest, tail);
}

function __ncfd_lookup(host) {
    // All addresses of host (a literal is its own), or null when it does not resolve. A missing
    // value (dnsResolve's null, before its answer is in) is not a name to ask about.
    if (host === null || host === undefined) return null;
    host = String(host);
    if (__ncfd_isIPv4(host) || __ncfd_v6words(host) !== null) return [host];
    host = host.toLowerCase();
    if (Object.prototype.hasOwnProperty.call(__ncfd_dns, host)) {
        return __ncfd_dns[host] === "" ? null : __ncfd_dns[host].split(";");
    }
    if (/^[a-z0-9_.-]{1,253}$/.test(host) && __ncfd_asked.indexOf(host) < 0) __ncfd_asked.push(host);
    return null;
}

function __ncfd_v4(addresses) {
    if (addresses === null) return null;
    for (var i = 0; i < addresses.length; i++) if (__ncfd_isIPv4(addresses[i])) return addresses[i];
    return null;
}

function __ncfd_v4num(ip) {
    var b = ip.split(".");
    return ((b[0] << 24) | (b[1] << 16) | (b[2] << 8) | +b[3]) >>> 0;
}

function isPlainHostName(host) { return String(host).search(/\.|:/) === -1; }

function dnsDomainIs(host, domain) {
    host = String(host); domain = String(domain);
    return host.length >= domain.length && host.substring(host.length - domain.length) === domain;
}

function localHostOrDomainIs(host, hostdom) {
    host = String(host); hostdom = String(hostdom);
    return host === hostdom || hostdom.lastIndexOf(host + ".", 0) === 0;
}

function dnsDomainLevels(host) { return String(host).split(".").length - 1; }

function shExpMatch(str, shexp) {
    var pattern = String(shexp).replace(/\./g, "\\.").replace(/\*/g, ".*").replace(/\?/g, ".");
    return new RegExp("^" + pattern + "$").test(String(str));
}

function dnsResolve(host) { return __ncfd_v4(__ncfd_lookup(host)); }

function isResolvable(host) { return dnsResolve(host) !== null; }

function isInNet(host, pattern, mask) {
    if (!__ncfd_isIPv4(pattern) || !__ncfd_isIPv4(mask)) return false;
    var ip = __ncfd_isIPv4(host) ? host : dnsResolve(host);
    if (ip === null) return false;
    var m = __ncfd_v4num(mask);
    return ((__ncfd_v4num(ip) & m) >>> 0) === ((__ncfd_v4num(pattern) & m) >>> 0);
}

function myIpAddress() { return __ncfd_my_ips.split(";").filter(__ncfd_isIPv4)[0] || "127.0.0.1"; }

function dnsResolveEx(host) {
    var addresses = __ncfd_lookup(host);
    return addresses === null ? "" : addresses.join(";");
}

function isResolvableEx(host) { return __ncfd_lookup(host) !== null; }

function myIpAddressEx() { return __ncfd_my_ips; }

function __ncfd_inPrefix(ip, prefix) {
    var slash = prefix.indexOf("/");
    if (slash < 0) return false;
    var net = prefix.substring(0, slash), bits = +prefix.substring(slash + 1);
    var a, b, width;
    if (__ncfd_isIPv4(ip) && __ncfd_isIPv4(net)) {
        a = ip.split("."); b = net.split("."); width = 8;
    } else {
        a = __ncfd_v6words(ip); b = __ncfd_v6words(net); width = 16;
        if (a === null || b === null) return false;
    }
    if (!(bits >= 0 && bits <= a.length * width) || /\D/.test(prefix.substring(slash + 1))) return false;
    for (var i = 0; i < a.length && bits > 0; i++, bits -= width) {
        var keep = bits >= width ? width : bits, shift = width - keep;
        if ((+a[i] >> shift) !== (+b[i] >> shift)) return false;
    }
    return true;
}

function isInNetEx(ip, prefix) {
    // An address, or a dnsResolveEx() list: true when one of them is inside prefix ("net/bits").
    var addresses = String(ip).split(";");
    for (var i = 0; i < addresses.length; i++) {
        if (!__ncfd_isIPv4(addresses[i]) && __ncfd_v6words(addresses[i]) === null) return false;
        if (__ncfd_inPrefix(addresses[i], String(prefix))) return true;
    }
    return false;
}

function sortIpAddressList(list) {
    // IPv6 before IPv4, each in numeric order (as Chromium); false for anything not an address.
    if (typeof list !== "string" || list === "") return false;
    var keyed = [], items = list.split(";");
    for (var i = 0; i < items.length; i++) {
        var ip = items[i].replace(/^\s+|\s+$/g, ""), words = __ncfd_v6words(ip), key;
        if (words !== null) key = "0" + words.map(function (w) { return ("000" + w.toString(16)).slice(-4); }).join("");
        else if (__ncfd_isIPv4(ip)) key = "1" + ("0000000" + __ncfd_v4num(ip).toString(16)).slice(-8);
        else return false;
        keyed.push([key, ip]);
    }
    keyed.sort(function (x, y) { return x[0] < y[0] ? -1 : x[0] > y[0] ? 1 : 0; });
    return keyed.map(function (k) { return k[1]; }).join(";");
}

function getClientVersion() { return "1.0"; }

function alert(message) {
    if (__ncfd_alerts.length < 20) __ncfd_alerts.push(String(message).replace(/[\r\n\u0001]/g, " ").slice(0, 200));
}

var __ncfd_days = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];
var __ncfd_months = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"];

function __ncfd_args(args) {
    // The arguments without a trailing "GMT", and whether it was there.
    var list = Array.prototype.slice.call(args), gmt = list.length > 0 && list[list.length - 1] === "GMT";
    if (gmt) list.pop();
    return [list, gmt];
}

function __ncfd_clock(gmt) {
    // Now as local (or UTC) fields: [year, month, day, hours, minutes, seconds, weekday].
    var d = new Date(__ncfd_now);
    return gmt ? [d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate(), d.getUTCHours(), d.getUTCMinutes(),
                  d.getUTCSeconds(), d.getUTCDay()]
               : [d.getFullYear(), d.getMonth(), d.getDate(), d.getHours(), d.getMinutes(), d.getSeconds(),
                  d.getDay()];
}

function __ncfd_within(now, from, to) {
    // Inclusive range over comparable arrays; a range whose end comes first wraps around.
    var le = function (a, b) {
        for (var i = 0; i < a.length; i++) if (a[i] !== b[i]) return a[i] < b[i];
        return true;
    };
    return le(from, to) ? le(from, now) && le(now, to) : le(from, now) || le(now, to);
}

function weekdayRange() {
    var a = __ncfd_args(arguments), list = a[0];
    if (list.length < 1 || list.length > 2) return false;
    var wd1 = __ncfd_days.indexOf(String(list[0]).toUpperCase());
    var wd2 = list.length === 2 ? __ncfd_days.indexOf(String(list[1]).toUpperCase()) : wd1;
    if (wd1 < 0 || wd2 < 0) return false;
    return __ncfd_within([__ncfd_clock(a[1])[6]], [wd1], [wd2]);
}

function dateRange() {
    // Netscape's forms: day, month or year alone; pairs of them; day+month, month+year and
    // day+month+year ranges. Days are 1..31, years have four digits, months are names.
    var a = __ncfd_args(arguments), list = a[0], c = __ncfd_clock(a[1]);
    var kind = function (v) {
        if (__ncfd_months.indexOf(String(v).toUpperCase()) >= 0) return "m";
        return +v > 31 ? "y" : +v >= 1 ? "d" : "?";
    };
    var value = function (v, k) { return k === "m" ? __ncfd_months.indexOf(String(v).toUpperCase()) : +v; };
    if (list.length < 1 || list.length > 6 || list.length === 5) return false;
    var kinds = list.map(kind);
    if (kinds.indexOf("?") >= 0) return false;
    var half = list.length === 1 ? 1 : list.length / 2;
    if (list.length === 3) return false;
    if (list.length > 1 && kinds.slice(0, half).join() !== kinds.slice(half).join()) return false;
    var order = kinds.slice(0, half).join("");
    var field = { y: 0, m: 1, d: 2 }, now = [];
    for (var i = 0; i < order.length; i++) now.push(c[field[order[i]]]);
    var from = list.slice(0, half).map(function (v, i) { return value(v, kinds[i]); });
    var to = list.length === 1 ? from : list.slice(half).map(function (v, i) { return value(v, kinds[half + i]); });
    // Compare year, month, day in that order, whatever order they were written in.
    var sorted = order.split("").map(function (k, i) { return [field[k], i]; });
    sorted.sort(function (x, y) { return x[0] - y[0]; });
    var pick = function (arr) { return sorted.map(function (s) { return arr[s[1]]; }); };
    return __ncfd_within(pick(now), pick(from), pick(to));
}

function timeRange() {
    // hour; hour1, hour2 (hour1 <= hour < hour2, as Mozilla); hour1, min1, hour2, min2; and with
    // seconds. A range whose end comes before its start wraps past midnight.
    var a = __ncfd_args(arguments), list = a[0].map(Number), c = __ncfd_clock(a[1]);
    for (var i = 0; i < list.length; i++) if (isNaN(list[i])) return false;
    switch (list.length) {
        case 1: return c[3] === list[0];
        case 2: return list[0] <= c[3] && c[3] < list[1];
        case 4: return __ncfd_within([c[3], c[4]], list.slice(0, 2), list.slice(2));
        case 6: return __ncfd_within([c[3], c[4], c[5]], list.slice(0, 3), list.slice(3));
        default: return false;
    }
}

function __ncfd_run() {
    var find = typeof FindProxyForURLEx === "function" ? FindProxyForURLEx
             : typeof FindProxyForURL === "function" ? FindProxyForURL : null;
    if (find === null) return "none\n\n\n";
    var answer = find(__ncfd_url, __ncfd_host);
    var kind = answer === null ? "null" : typeof answer;
    // join() makes a flat string: the binding cannot hand back a string the engine holds as a rope.
    // It cannot hand back a lone surrogate either, and it would cut the string at a NUL.
    return [kind, "\n", __ncfd_asked.join(","), "\n", __ncfd_alerts.join("\u0001"), "\n",
            kind === "string" ? answer : ""].join("").toWellFormed().replace(/\u0000/g, "\ufffd");
}
"""


class Evaluation:
    """What FindProxyForURL returned, with the names resolved for it, those it asked for past
    MAX_NAMES or MAX_ROUNDS (answered "does not resolve"), and what it alert()ed."""

    __slots__ = ("alerts", "answer", "names", "rounds", "unresolved")

    def __init__(
        self, answer: str, names: dict[str, list[str]], alerts: list[str], rounds: int, unresolved: list[str]
    ) -> None:
        self.answer, self.names, self.alerts, self.rounds = answer, names, alerts, rounds
        self.unresolved = unresolved


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
        self.context = _quickjs.Context()
        self.context.set_memory_limit(MEMORY_LIMIT)
        self.context.set_max_stack_size(STACK_LIMIT)
        self.cpu_seconds = cpu_seconds
        self._eval(HELPERS, "ncfd's PAC functions")
        self._eval(text, "loading it")

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
        self.context.set("__ncfd_url", url)
        self.context.set("__ncfd_host", host)
        self.context.set("__ncfd_my_ips", ";".join(my_addresses))
        self.context.set("__ncfd_now", now_ms)
        for rounds in range(1, MAX_ROUNDS + 1):
            self.context.set("__ncfd_dns_text", "\n".join(f"{n}={';'.join(a)}" for n, a in names.items()))
            out = self._eval("__ncfd_load(__ncfd_dns_text); __ncfd_run()", "running FindProxyForURL")
            parts = out.split("\n", 3) if isinstance(out, str) else []
            if len(parts) != 4:
                raise PacError(
                    f"PAC {self.name}: its answer cannot be read: it redefines what ncfd's PAC functions use (a "
                    "built-in such as Array.prototype.join, or the functions themselves)"
                )
            kind, asked, alerts, answer = parts
            if kind == "none":
                raise PacError(f"PAC {self.name} defines no FindProxyForURL function")
            wanted = [n for n in asked.split(",") if n and n not in names]
            new = wanted[: max(0, MAX_NAMES - len(names))]
            if not new or rounds == MAX_ROUNDS:
                break
            for name in new:
                names[name] = resolve(name)
        if kind != "string":
            raise PacError(f"PAC {self.name}: FindProxyForURL returned {kind}, not a string")
        return Evaluation(answer, names, alerts.split("\x01") if alerts else [], rounds, wanted)


def _describe(e: BaseException, doing: str) -> str:
    """The engine's error as one line: "SyntaxError: expecting ';' (line 3)", "ran out of memory".
    What the script threw is its own choice of text: printable() only."""
    from ncfd.render import printable

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
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.keyword.upper()} {host}:{self.port}"

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
    shown = f"[{host}]" if ":" in host else host
    return f"https://{shown}/" if port == 443 else f"https://{shown}:{port}/"
