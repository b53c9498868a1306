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
are resolved (by their IDNA form), until it asks nothing new. A script whose top level asks (for
DNS, its own addresses, the time) is loaded anew for each run. The helpers are the standard set
answering as Chrome's do (its C++ bindings' argument checks and IPv6 literals; Mozilla's JavaScript,
which Chrome runs, for the rest), written here in JavaScript.
"""

from __future__ import annotations

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


HELPERS = r"""
"use strict";
var __ncfd_dns = {}, __ncfd_asked = [], __ncfd_alerts = [], __ncfd_my_ips = "", __ncfd_now = 0;
var __ncfd_loading = false, __ncfd_load_used = false;

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

function __ncfd_env() {
    // The script's top level asked for what only a run knows (DNS, own addresses, the time): each
    // run loads the script anew, with the answers in.
    if (__ncfd_loading) __ncfd_load_used = true;
}

// The clock is the global Date, read when a helper is called (a script may replace it); its "now"
// is the one the run was given.
var __ncfd_Date = Date;
Date = new Proxy(__ncfd_Date, {
    construct: function (target, args, newTarget) {
        if (args.length === 0) { __ncfd_env(); args = [__ncfd_now]; }
        return Reflect.construct(target, args, newTarget);
    },
    apply: function () { __ncfd_env(); return new __ncfd_Date(__ncfd_now).toString(); }
});
__ncfd_Date.now = function () { __ncfd_env(); return __ncfd_now; };

function __ncfd_isIPv4(s) {
    // Netscape's dotted quad, as the JavaScript helpers (isInNet) take it.
    var m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(s);
    return m !== null && m[1] < 256 && m[2] < 256 && m[3] < 256 && m[4] < 256;
}

function __ncfd_v4bytes(s, quad) {
    // An IPv4 literal as Chrome's URL parser reads it: one to four parts, each decimal, octal (0..)
    // or hex (0x..), the last filling the bytes left, a trailing dot allowed (quad: exactly four
    // parts, no trailing dot, as inside IPv6). Its four bytes, or null.
    var parts = s.split(".");
    if (!quad && parts.length > 1 && parts[parts.length - 1] === "") parts.pop();
    if (parts.length > 4 || (quad && parts.length !== 4)) return null;
    var value = 0;
    for (var i = 0; i < parts.length; i++) {
        var p = parts[i], n;
        if (/^0[xX][0-9a-fA-F]*$/.test(p)) n = p.length === 2 ? 0 : parseInt(p.substring(2), 16);
        else if (/^0[0-7]+$/.test(p)) n = parseInt(p, 8);
        else if (/^(0|[1-9][0-9]*)$/.test(p)) n = Number(p);
        else return null;
        var last = i === parts.length - 1, room = last ? Math.pow(256, 5 - parts.length) : 256;
        if (!(n < room)) return null;
        value = last ? value * room + n : value * 256 + n;
    }
    return [value >>> 24, (value >>> 16) & 255, (value >>> 8) & 255, value & 255];
}

function __ncfd_v6bytes(s) {
    // An IPv6 literal as Chrome reads one (no brackets, no zone; an IPv4 tail of four parts): its
    // sixteen bytes, or null.
    var tail = [], m = /^(.*:)([^:]*\.[^:]*)$/.exec(s);
    if (m !== null) {
        var v4 = __ncfd_v4bytes(m[2], true);
        if (v4 === null) return null;
        tail = [v4[0] * 256 + v4[1], v4[2] * 256 + v4[3]];
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
    var all = head.slice();
    while (halves.length === 2 && all.length < 8 - rest.length - tail.length) all.push(0);
    all = all.concat(rest, tail);
    var bytes = [];
    for (var i = 0; i < 8; i++) bytes.push(all[i] >> 8, all[i] & 255);
    return bytes;
}

function __ncfd_address(s) {
    // Chrome's IP literal (a colon makes it IPv6): 4 or 16 bytes, or null.
    return s.indexOf(":") >= 0 ? __ncfd_v6bytes(s) : __ncfd_v4bytes(s, false);
}

function __ncfd_ascii(s) { return /^[\x00-\x7f]*$/.test(s); }

function __ncfd_lookup(host) {
    // All addresses of host, a string (a literal is its own), or null when it does not resolve.
    // Names are asked for as they are; ncfd converts them to their IDNA form before the lookup.
    if (__ncfd_isIPv4(host) || (host.indexOf(":") >= 0 && __ncfd_v6bytes(host) !== null)) return [host];
    __ncfd_env();
    host = host.toLowerCase();
    if (Object.prototype.hasOwnProperty.call(__ncfd_dns, host)) {
        return __ncfd_dns[host] === "" ? null : __ncfd_dns[host].split(";");
    }
    if (/^[a-z0-9_.\-\u0080-\uffff]{1,253}$/.test(host) && host.isWellFormed() && __ncfd_asked.indexOf(host) < 0) {
        __ncfd_asked.push(host);
    }
    return null;
}

// Chrome's bindings: a host name argument that is not a string gets null (undefined from
// dnsResolveEx), extra arguments are ignored.

function isPlainHostName(host) {
    if (typeof host !== "string") throw new TypeError("Requires 1 string parameter");
    return host.indexOf(".") < 0 && __ncfd_address(host) === null;
}

function dnsResolve(host) {
    if (typeof host !== "string") return null;
    var found = __ncfd_lookup(host);
    if (found !== null) for (var i = 0; i < found.length; i++) if (__ncfd_isIPv4(found[i])) return found[i];
    return null;
}

function dnsResolveEx(host) {
    if (typeof host !== "string") return undefined;
    var found = __ncfd_lookup(host);
    return found === null ? "" : found.join(";");
}

function myIpAddress() {
    __ncfd_env();
    return __ncfd_my_ips.split(";").filter(__ncfd_isIPv4)[0] || "127.0.0.1";
}

function myIpAddressEx() { __ncfd_env(); return __ncfd_my_ips; }

function isInNetEx(ip, prefix) {
    // One address inside "net/bits"; an IPv4 address and its IPv4-mapped IPv6 form are one.
    if (typeof ip !== "string" || typeof prefix !== "string") return null;
    if (!__ncfd_ascii(ip) || !__ncfd_ascii(prefix)) return false;
    var address = __ncfd_address(ip), parts = prefix.split("/");
    if (address === null || parts.length !== 2) return false;
    var net = __ncfd_address(parts[0].trim()), bitsText = parts[1].trim();
    if (net === null || !/^[0-9]+$/.test(bitsText) || Number(bitsText) > net.length * 8) return false;
    var bits = Number(bitsText), mapped = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 255, 255];
    if (address.length === 4 && net.length === 16) address = mapped.concat(address);
    else if (address.length === 16 && net.length === 4) { net = mapped.concat(net); bits += 96; }
    for (var i = 0; bits > 0; i++, bits -= 8) {
        var mask = bits >= 8 ? 255 : (0xff00 >> bits) & 255;
        if ((address[i] & mask) !== (net[i] & mask)) return false;
    }
    return true;
}

function sortIpAddressList(list) {
    // IPv6 before IPv4, each in numeric order, the order kept among equals (as Chrome); spaces and
    // tabs dropped, empty items skipped; false when there is none or one is not an address.
    if (typeof list !== "string" || !__ncfd_ascii(list)) return null;
    var items = list.replace(/[ \t]/g, "").split(";").filter(function (s) { return s !== ""; });
    var keyed = [];
    for (var i = 0; i < items.length; i++) {
        var bytes = __ncfd_address(items[i]);
        if (bytes === null) return false;
        keyed.push([bytes, items[i]]);
    }
    if (keyed.length === 0) return false;
    keyed.sort(function (x, y) {
        if (x[0].length !== y[0].length) return y[0].length - x[0].length;
        for (var i = 0; i < x[0].length; i++) if (x[0][i] !== y[0][i]) return x[0][i] - y[0][i];
        return 0;
    });
    return keyed.map(function (k) { return k[1]; }).join(";");
}

// The rest is JavaScript in Chrome (Mozilla's helpers): the same answers for any argument,
// properties read and comparisons made as they make them.

function dnsDomainIs(host, domain) {
    return host.length >= domain.length && host.substring(host.length - domain.length) == domain;
}

function localHostOrDomainIs(host, hostdom) {
    return host == hostdom || hostdom.lastIndexOf(host + ".", 0) == 0;
}

function dnsDomainLevels(host) { return host.split(".").length - 1; }

function shExpMatch(str, shexp) {
    // Only ".", "*" and "?" are translated: other regular-expression characters stay what they are.
    var pattern = shexp.replace(/\./g, "\\.").replace(/\*/g, ".*").replace(/\?/g, ".");
    return new RegExp("^" + pattern + "$").test(str);
}

function isResolvable(host) { return dnsResolve(host) != null; }

function isResolvableEx(host) { return dnsResolveEx(host) != ""; }

function isInNet(host, pattern, mask) {
    if (!__ncfd_isIPv4(pattern) || !__ncfd_isIPv4(mask)) return false;
    var ip = __ncfd_isIPv4(host) ? host : dnsResolve(host);
    if (ip == null) return false;
    var number = function (s) {
        var b = s.split(".");
        return ((b[0] & 255) << 24) | ((b[1] & 255) << 16) | ((b[2] & 255) << 8) | (b[3] & 255);
    };
    return (number(ip) & number(mask)) == (number(pattern) & number(mask));
}

function getClientVersion() { return "1.0"; }

function alert(message) {
    if (__ncfd_alerts.length < 20) __ncfd_alerts.push(String(message).replace(/[\r\n\u0001]/g, " ").slice(0, 200));
}

var __ncfd_days = {SUN: 0, MON: 1, TUE: 2, WED: 3, THU: 4, FRI: 5, SAT: 6};
var __ncfd_months = {JAN: 0, FEB: 1, MAR: 2, APR: 3, MAY: 4, JUN: 5, JUL: 6, AUG: 7, SEP: 8, OCT: 9, NOV: 10, DEC: 11};

function __ncfd_named(table, name) { return name in table ? table[name] : -1; }

function __ncfd_gmt(args) {
    // How many arguments count, a last "GMT" (exactly that) not among them.
    return args.length > 0 && args[args.length - 1] == "GMT" ? args.length - 1 : args.length;
}

function __ncfd_between(now, from, to) {
    // Inclusive; a range whose start comes after its end wraps around.
    return from <= to ? from <= now && now <= to : to >= now || now >= from;
}

function __ncfd_as_utc(date) {
    // date moved so that its local fields read what its UTC fields did, one field at a time.
    date.setFullYear(date.getUTCFullYear());
    date.setMonth(date.getUTCMonth());
    date.setDate(date.getUTCDate());
    date.setHours(date.getUTCHours());
    date.setMinutes(date.getUTCMinutes());
    date.setSeconds(date.getUTCSeconds());
    return date;
}

function weekdayRange() {
    var now = new Date(), count = __ncfd_gmt(arguments);
    if (arguments.length < 1) return false;
    var day = count < arguments.length ? now.getUTCDay() : now.getDay();
    var from = __ncfd_named(__ncfd_days, arguments[0]);
    var to = count == 2 ? __ncfd_named(__ncfd_days, arguments[1]) : from;
    return from != -1 && to != -1 && __ncfd_between(day, from, to);
}

function dateRange() {
    // One value alone is compared with its field of today; otherwise the first half of the
    // arguments sets the fields of 1 January this year, the second half those of 31 December
    // 23:59:59, a day alone taking this month (month names, days < 32, years).
    var now = new Date(), count = __ncfd_gmt(arguments), gmt = count < arguments.length;
    if (arguments.length < 1) return false;
    if (count == 1) {
        var only = parseInt(arguments[0]);
        if (isNaN(only)) return (gmt ? now.getUTCMonth() : now.getMonth()) == __ncfd_named(__ncfd_months, arguments[0]);
        if (only < 32) return (gmt ? now.getUTCDate() : now.getDate()) == only;
        return (gmt ? now.getUTCFullYear() : now.getFullYear()) == only;
    }
    var half = count >> 1, days = false, args = arguments;
    var ends = [new Date(now.getFullYear(), 0, 1, 0, 0, 0), new Date(now.getFullYear(), 11, 31, 23, 59, 59)];
    var set = function (end, i) {
        var n = parseInt(args[i]);
        if (isNaN(n)) end.setMonth(__ncfd_named(__ncfd_months, args[i]));
        else if (n < 32) end.setDate(n);
        else end.setFullYear(n);
        return n;
    };
    for (var i = 0; i < half; i++) if (set(ends[0], i) < 32) days = count <= 2;
    for (var i = half; i < count; i++) set(ends[1], i);
    if (days) {
        ends[0].setMonth(now.getMonth());
        ends[1].setMonth(now.getMonth());
    }
    return __ncfd_between(gmt ? __ncfd_as_utc(now) : now, ends[0], ends[1]);
}

function timeRange() {
    // hour; hour1, hour2 (both inclusive, never past midnight); hour1, min1, hour2, min2 (to the
    // end of min2) and with seconds: today's clock set to them, a range ending first wrapping.
    var now = new Date(), count = __ncfd_gmt(arguments), gmt = count < arguments.length;
    if (arguments.length < 1) return false;
    var hour = gmt ? now.getUTCHours() : now.getHours();
    if (count == 1) return hour == arguments[0];
    if (count == 2) return arguments[0] <= hour && hour <= arguments[1];
    if (count != 4 && count != 6) throw "timeRange: bad number of arguments";
    var from = new Date(), to = new Date(), mid = count >> 1;
    if (count == 6) {
        from.setSeconds(arguments[2]);
        to.setSeconds(arguments[5]);
    }
    from.setHours(arguments[0]);
    from.setMinutes(arguments[1]);
    to.setHours(arguments[mid]);
    to.setMinutes(arguments[mid + 1]);
    if (count == 4) to.setSeconds(59);
    return __ncfd_between(gmt ? __ncfd_as_utc(now) : now, from, to);
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
        self._eval(HELPERS, doing)

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
