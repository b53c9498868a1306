"""PAC evaluation in-process (ncfd.route.pac_engine, no I/O): the helper functions with the semantics browsers
give them, DNS answers handed in over re-runs, the sandbox and its limits, and the answer's
grammar."""

from __future__ import annotations

import calendar
import threading
import time
from pathlib import Path

import pytest

from ncfd.errors import PacError
from ncfd.route.pac_engine import MAX_NAMES, Engine, Entry, Evaluation, browser_url, parse_answer

MY_ADDRESSES = ["192.0.2.10", "2001:db8::10"]
DNS = {
    "intranet.corp.example": ["10.1.2.3", "2001:db8::3"],
    "v6only.example": ["2001:db8::6"],
    "proxy.corp.example": ["10.0.0.8"],
}
# 2026-12-02 (a Wednesday) 14:30:15 UTC.
NOW_MS = calendar.timegm((2026, 12, 2, 14, 30, 15)) * 1000.0


class Resolver:
    def __init__(self) -> None:
        self.asked: list[str] = []

    def __call__(self, name: str) -> list[str]:
        self.asked.append(name)
        return DNS.get(name, [])


def run(
    pac: str, host: str = "host.example", port: int = 22, now_ms: float = NOW_MS, resolver: Resolver | None = None
) -> Evaluation:
    engine = Engine(pac, "test.pac", 5.0)
    return engine.find(browser_url(host, port), host, resolver or Resolver(), MY_ADDRESSES, now_ms)


def value(expression: str, **kw: object) -> str:
    """What a JavaScript expression over the helpers gives, as a string."""
    return run(f"function FindProxyForURL(url, host) {{ return String({expression}); }}", **kw).answer  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ('isPlainHostName("www")', "true"),
        ('isPlainHostName("www.example.com")', "false"),
        ('isPlainHostName("::1")', "false"),
        ('dnsDomainIs("www.example.com", ".example.com")', "true"),
        ('dnsDomainIs("www", ".example.com")', "false"),
        ('dnsDomainIs("www.example.org", ".example.com")', "false"),
        ('localHostOrDomainIs("www.example.com", "www.example.com")', "true"),
        ('localHostOrDomainIs("www", "www.example.com")', "true"),
        ('localHostOrDomainIs("www.example.org", "www.example.com")', "false"),
        ('localHostOrDomainIs("home.example.com", "www.example.com")', "false"),
        ('dnsDomainLevels("www")', "0"),
        ('dnsDomainLevels("www.example.com")', "2"),
        ('shExpMatch("http://home.example.com/a/b", "*/a/*")', "true"),
        ('shExpMatch("http://home.example.com/c/b", "*/a/*")', "false"),
        ('shExpMatch("ab.example.com", "??.example.com")', "true"),
        ('shExpMatch("abc.example.com", "??.example.com")', "false"),
        ('shExpMatch("axexample.com", "a.example.com")', "false"),  # a dot is a dot
        ('isResolvable("intranet.corp.example")', "true"),
        ('isResolvable("nowhere.example")', "false"),
        ('isResolvable("v6only.example")', "false"),  # as in browsers: IPv4 only
        ('dnsResolve("intranet.corp.example")', "10.1.2.3"),
        ('dnsResolve("nowhere.example")', "null"),
        ('dnsResolve("10.9.8.7")', "10.9.8.7"),
        ('isInNet("intranet.corp.example", "10.0.0.0", "255.0.0.0")', "true"),
        ('isInNet("10.1.2.3", "10.1.0.0", "255.255.0.0")', "true"),
        ('isInNet("10.2.2.3", "10.1.0.0", "255.255.0.0")', "false"),
        ('isInNet("nowhere.example", "0.0.0.0", "0.0.0.0")', "false"),
        ('isInNet("10.1.2.3", "bogus", "255.0.0.0")', "false"),
        ('isInNet("255.255.255.255", "255.255.255.0", "255.255.255.0")', "true"),
        ("myIpAddress()", "192.0.2.10"),
        ('isResolvableEx("v6only.example")', "true"),
        ('isResolvableEx("nowhere.example")', "false"),
        ('dnsResolveEx("intranet.corp.example")', "10.1.2.3;2001:db8::3"),
        ('dnsResolveEx("nowhere.example")', ""),
        ("myIpAddressEx()", "192.0.2.10;2001:db8::10"),
        ('isInNetEx("2001:db8::3", "2001:db8::/32")', "true"),
        ('isInNetEx("2001:db9::3", "2001:db8::/32")', "false"),
        ('isInNetEx("10.1.2.3", "10.0.0.0/8")', "true"),
        ('isInNetEx("10.1.2.3", "10.0.0.0/33")', "false"),
        ('isInNetEx(dnsResolveEx("intranet.corp.example"), "2001:db8::/48")', "false"),  # one address, as Chrome
        ('isInNetEx("::ffff:10.1.2.3", "::ffff:10.0.0.0/104")', "true"),
        ('sortIpAddressList("10.0.0.2;2001:db8::1;10.0.0.1;::1")', "::1;2001:db8::1;10.0.0.1;10.0.0.2"),
        ('sortIpAddressList("not an address")', "false"),
        ("getClientVersion()", "1.0"),
    ],
)
def test_helper(expression: str, expected: str) -> None:
    assert value(expression) == expected


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ('weekdayRange("WED")', "true"),
        ('weekdayRange("MON", "FRI")', "true"),
        ('weekdayRange("THU", "TUE")', "false"),  # wraps over the weekend, not Wednesday
        ('weekdayRange("SAT", "WED", "GMT")', "true"),
        ('weekdayRange("BOGUS")', "false"),
        ('dateRange("DEC")', "true"),
        ("dateRange(2)", "true"),
        ("dateRange(2026)", "true"),
        ("dateRange(1, 15)", "true"),
        ("dateRange(3, 31)", "false"),
        ('dateRange("NOV", "JAN")', "true"),  # wraps over the year's end
        ('dateRange("JAN", "NOV")', "false"),
        ('dateRange(1, "DEC", 31, "DEC")', "true"),
        ('dateRange("OCT", 2026, "MAR", 2027)', "true"),
        ('dateRange(3, "DEC", 2026, 1, "JAN", 2027)', "false"),
        ('dateRange(2, "DEC", 2026, 2, "DEC", 2026, "GMT")', "true"),
        ('timeRange(14, "GMT")', "true"),
        ('timeRange(9, 17, "GMT")', "true"),
        ('timeRange(14, 14, "GMT")', "true"),  # both hours included, as Chrome and Firefox
        ('timeRange(14, 30, 14, 31, "GMT")', "true"),
        ('timeRange(14, 31, 15, 0, "GMT")', "false"),
        ('timeRange(22, 0, 15, 0, "GMT")', "true"),  # wraps past midnight
        ('timeRange(14, 30, 16, 14, 30, 20, "GMT")', "false"),
        ('timeRange(14, 30, 10, 14, 30, 20, "GMT")', "true"),
    ],
)
def test_time_helpers(expression: str, expected: str) -> None:
    assert value(expression) == expected


def test_time_helpers_read_local_time_without_gmt(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    try:
        assert value("timeRange(14)") == "true"
        assert value('weekdayRange("WED")') == "true"
    finally:
        monkeypatch.undo()
        time.tzset()


def test_what_is_passed_and_ex_preferred() -> None:
    pac = """
        function FindProxyForURL(url, host) { return "PROXY old:1"; }
        function FindProxyForURLEx(url, host) { return "PROXY " + host + ":1; " + url; }
    """
    assert run(pac, "example.com", 2222).answer == "PROXY example.com:1; https://example.com:2222/"
    assert browser_url("example.com", 443) == "https://example.com/"
    assert browser_url("2001:db8::1", 22) == "https://[2001:db8::1]:22/"


def test_dns_answers_come_by_rerunning_and_each_name_is_asked_once() -> None:
    pac = """
        function FindProxyForURL(url, host) {
            if (isInNet(dnsResolve(host), "10.0.0.0", "255.0.0.0") && isResolvable("proxy.corp.example"))
                return "PROXY proxy.corp.example:8080";
            return "DIRECT";
        }
    """
    resolver = Resolver()
    found = run(pac, "intranet.corp.example", resolver=resolver)
    assert found.answer == "PROXY proxy.corp.example:8080"
    assert resolver.asked == ["intranet.corp.example", "proxy.corp.example"]
    assert found.rounds == 3  # each answer lets the script get one condition further


def test_the_top_level_may_call_the_helpers_as_in_browsers() -> None:
    """Corporate PACs compute their own address and resolve names before FindProxyForURL: the
    script's top level gets the same answers, by loading it anew each run."""
    pac = """
        var myip = myIpAddress();
        var proxy = dnsResolve("proxy.corp.example").split(".");  // null on a first, unanswered load
        var inside = isInNet(myip, "192.0.2.0", "255.255.255.0");
        function FindProxyForURL(url, host) {
            return (inside ? "PROXY " + proxy.join(".") + ":8080; " : "") + dnsResolveEx(host);
        }
    """
    resolver = Resolver()
    found = run(pac, "intranet.corp.example", resolver=resolver)
    assert found.answer == "PROXY 10.0.0.8:8080; 10.1.2.3;2001:db8::3"
    assert resolver.asked == ["proxy.corp.example", "intranet.corp.example"]
    late = 'var late = timeRange(14, "GMT"); function FindProxyForURL(u, h) { return String(late); }'
    assert run(late).answer == "true"
    assert run(late, now_ms=NOW_MS + 3600_000).answer == "false"  # the run's own time, not the first load's
    with pytest.raises(PacError, match="threw 'TypeError: cannot read property 'split' of null' while loading it"):
        run('var a = dnsResolve("nowhere.example").split("."); function FindProxyForURL(u, h) { return "DIRECT"; }')


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ('timeRange(13, 14, "GMT")', "true"),  # 14:30 is in 13..14: the end hour included
        ('timeRange(14, 13, "GMT")', "false"),  # an hour range never wraps past midnight
        ('dateRange(2, "DEC", "GMT")', "true"),  # day1, month2: 2 December to the end of the year
        ('dateRange(2, "DEC", 2026, "GMT")', "true"),  # 2 January 2026 to 31 December 2026
        ('dateRange(3, "DEC", "GMT")', "false"),
        ('dateRange(3, "NOV", 2026, "GMT")', "false"),  # 3 January to "31 November" (1 December)
        ('weekdayRange("wed")', "false"),  # names are upper case
        ('weekdayRange("WED", "gmt")', "false"),  # "gmt" is no GMT but a day that is none
        ('weekdayRange("SAT", "MON")', "false"),  # over the week's end
        ('timeRange(14, 1, 2, 3, "GMT")', "true"),  # 14:01:15 .. 02:03:59, over midnight
        ('dateRange("DEC", 2026, "JAN", 2026, "GMT")', "true"),  # months in the wrong order wrap
        # Wrapping, where pacparser (an older Mozilla) answers false:
        ('dateRange("DEC", "jan", "GMT")', "true"),  # "jan" is month -1: December last year, before the start
        ('timeRange(15, 0, 14, 30, "GMT")', "true"),  # 15:00 .. 14:30:59 over midnight holds 14:30:15
        ('timeRange(15, 0, 14, 0, "GMT")', "false"),
        ('weekdayRange("THU", "WED", "GMT")', "true"),
    ],
)
def test_date_and_time_as_chrome(expression: str, expected: str) -> None:
    assert value(expression) == expected


def test_time_comes_from_the_global_date_at_call_time() -> None:
    pac = """
        var RealDate = Date;
        Date = function () { return arguments.length ? new RealDate(arguments[0]) : new RealDate(2027, 0, 1, 3); };
        function FindProxyForURL(url, host) { return [timeRange(3), dateRange("JAN"), weekdayRange("FRI")].join(); }
    """
    assert run(pac).answer == "true,true,true"


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ('isPlainHostName("::1")', "false"),  # an IPv6 literal
        ('isPlainHostName("2001:db8::1")', "false"),
        ('isPlainHostName("foo:112")', "true"),  # a colon that is no literal
        ('isPlainHostName("[::1]")', "true"),
        ('isPlainHostName("fe80::1%eth0")', "true"),
        ('isPlainHostName("2130706433")', "false"),  # an IPv4 literal, as a URL reads one
        ('isPlainHostName("0x7f")', "false"),
        ('isPlainHostName("www", "extra")', "true"),
        ('isInNetEx("10.1.2.3", "::ffff:10.0.0.0/104")', "true"),  # IPv4 and its mapped form are one
        ('isInNetEx("::ffff:10.1.2.3", "10.0.0.0/8")', "true"),
        ('isInNetEx("::ffff:10.1.2.3", "11.0.0.0/8")', "false"),
        ('isInNetEx("10.1.2.3", " 10.0.0.0 / 8 ")', "true"),
        ('isInNetEx("10.1.2.3", "10.0.0.0/8/8")', "false"),
        ('isInNetEx("10.1.2.3", "0.0.0.0/0")', "true"),  # pacparser: false
        ('isInNetEx("::", "::/128")', "true"),  # pacparser: false
        ("isInNetEx()", "null"),
        ('isInNetEx("10.1.2.3")', "null"),
        ('isInNetEx(167837955, "10.0.0.0/8")', "null"),
        ("sortIpAddressList()", "null"),
        ("sortIpAddressList(42)", "null"),
        ('sortIpAddressList(" ; ")', "false"),
        ('sortIpAddressList("10.0.0.2; 10.0.0.1;;::ffff:1.2.3.4")', "::ffff:1.2.3.4;10.0.0.1;10.0.0.2"),
        ("dnsResolve()", "null"),
        ("dnsResolve(42)", "null"),
        ("dnsResolveEx(42)", "undefined"),
        ("isResolvable(null)", "false"),
        ('dnsResolve("intranet.corp.example", "extra")', "10.1.2.3"),
    ],
)
def test_ipv6_aware_helpers_and_arguments_as_chrome(expression: str, expected: str) -> None:
    assert value(expression) == expected


@pytest.mark.parametrize("argument", ["", "42", "null", "undefined"])
def test_is_plain_host_name_wants_a_string(argument: str) -> None:
    with pytest.raises(PacError, match="threw 'TypeError: Requires 1 string parameter' while running"):
        run(f"function FindProxyForURL(u, h) {{ return String(isPlainHostName({argument})); }}")


def test_a_non_ascii_name_is_looked_up_by_its_idna_form(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(DNS, "xn--bcher-kva.ch", ["10.7.7.7", "2001:db8::7"])
    resolver = Resolver()
    found = value(
        '[dnsResolve("Bücher.ch"), isResolvable("bücher.ch"), isInNet("Bücher.ch", "10.7.0.0", "255.255.0.0"),'
        ' dnsResolveEx("BÜCHER.ch"), isResolvableEx("Bücher.ch"), dnsResolve("' + "ü" * 64 + '.ch")].join()',
        resolver=resolver,
    )
    assert found == "10.7.7.7,true,true,10.7.7.7;2001:db8::7,true,"
    assert resolver.asked == ["xn--bcher-kva.ch"]  # once, in any case; a label too long for IDNA: not asked


def test_a_pac_that_asks_for_endless_names_gets_a_bounded_number_answered() -> None:
    pac = """
        function FindProxyForURL(url, host) {
            for (var i = 0; i < 10000; i++) isResolvable("n" + i + ".example");
            return "DIRECT";
        }
    """
    resolver = Resolver()
    assert run(pac, resolver=resolver).answer == "DIRECT"
    assert len(resolver.asked) == MAX_NAMES


def test_alert_is_kept_for_v() -> None:
    pac = 'function FindProxyForURL(url, host) { alert("checking " + host); alert("line\\nbreak"); return "DIRECT"; }'
    assert run(pac, "h.example").alerts == ["checking h.example", "line break"]


@pytest.mark.parametrize(
    "probe",
    [
        "typeof require", "typeof std", "typeof os", "typeof process", "typeof fetch", "typeof XMLHttpRequest",
        "typeof scriptArgs", "typeof print", "typeof console", "typeof Deno", "typeof setTimeout",
    ],
)  # fmt: skip
def test_the_sandbox_offers_no_host_objects(probe: str) -> None:
    assert value(probe) == "undefined"


@pytest.mark.parametrize("module", ["std", "os", "qjs:std", "qjs:os", "./secrets.js"])
def test_the_sandbox_loads_no_modules(module: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A static import is not JavaScript a script may hold. A dynamic one makes a promise, whose
    callbacks ncfd never runs (FindProxyForURL answers synchronously); run, they see the import
    refused: the engine has no module loader, not even for a file that is there."""
    (tmp_path / "secrets.js").write_text('export var secret = "read from disk";')
    monkeypatch.chdir(tmp_path)
    with pytest.raises(PacError, match="cannot be loaded: SyntaxError"):
        run(f"import * as m from '{module}'; function FindProxyForURL(u, h) {{ return 'DIRECT'; }}")
    pac = f"""
        var loaded = "pending";
        import("{module}").then(function (m) {{ loaded = "loaded " + m.secret; }},
                                function (e) {{ loaded = "refused: " + e; }});
        function FindProxyForURL(url, host) {{ return loaded; }}
    """
    engine = Engine(pac, "test.pac", 5.0)
    url = browser_url("host.example", 22)
    assert engine.find(url, "host.example", Resolver(), MY_ADDRESSES, NOW_MS).answer == "pending"
    for _ in range(100):  # the import's jobs: a handful
        if not engine.context.execute_pending_job():
            break
    answer = engine.find(url, "host.example", Resolver(), MY_ADDRESSES, NOW_MS).answer
    assert answer.startswith("refused: ReferenceError: could not load module"), answer


@pytest.mark.parametrize(
    ("pac", "message"),
    [
        ("while (true) {}", "still running after its CPU time limit while loading it (an endless loop?)"),
        ("function FindProxyForURL(u, h) { for (;;) {} }", "still running after its CPU time limit while running"),
        ("function FindProxyForURL(u, h) { return /^(a+)+$/.test('a'.repeat(40) + 'b') ? 'DIRECT' : 'x'; }",
         "still running after its CPU time limit"),
        ("var a = []; while (true) a.push('x'.repeat(4096) + a.length);", "used more than 64 MiB of memory"),
        ("function f() { return f(); } f();", "recursed too deeply while loading it"),
        ("function FindProxyForURL(u, h) { throw new Error('boom'); }",
         "threw 'Error: boom' while running FindProxyForURL"),
        ("function FindProxyForURL(u, h) {\n  return 'DIRECT'\n", "cannot be loaded: SyntaxError"),
        ("var nothing = 1;", "defines no FindProxyForURL function"),
        ("var me = myIpAddress(); while (true) {}", "still running after its CPU time limit while loading it"),
        ('var a = dnsResolve("n" + Math.random() + ".example").length;',  # a new name each load, in vain
         "threw 'TypeError: cannot read property 'length' of null' while loading it"),
        ("function FindProxyForURL(u, h) { return 42; }", "FindProxyForURL returned number, not a string"),
        ("function FindProxyForURL(u, h) { return null; }", "FindProxyForURL returned null, not a string"),
    ],
)  # fmt: skip
def test_a_bad_pac_is_one_clear_error(pac: str, message: str) -> None:
    engine_seconds = 1.0
    outcome: list[object] = []

    def evaluate() -> None:  # in a thread: a limit that does not hold fails the test, not hangs it
        try:
            engine = Engine(pac, "bad.pac", engine_seconds)
            outcome.append(engine.find("https://h:22/", "h", Resolver(), MY_ADDRESSES, NOW_MS))
        except BaseException as e:
            outcome.append(e)

    start = time.monotonic()
    thread = threading.Thread(target=evaluate, daemon=True)
    previous = threading.stack_size(8 << 20)  # as ncfd.route.choice gives the PAC: QuickJS's limit must come first
    try:
        thread.start()
    finally:
        threading.stack_size(previous)
    thread.join(30)
    assert not thread.is_alive(), "the PAC still running after 30s"
    assert time.monotonic() - start < 30  # CPU seconds: a busy machine stretches them, never without bound
    assert isinstance(outcome[0], PacError), outcome
    assert message in str(outcome[0])
    assert str(outcome[0]).startswith("PAC bad.pac")
    assert "\n" not in str(outcome[0])


def test_answer_grammar() -> None:
    entries, skipped = parse_answer(
        "PROXY a.example:8080;proxy   b.example ; Direct;SOCKS s.example; socks5 [2001:db8::1]:1081;"
        " HTTPS h.example; HTTP p.example:3128; SOCKS4 t:1; QUIC q:443; PROXY bad:99999; PROXY; ;;"
    )
    assert entries == [
        Entry("proxy", "a.example", 8080), Entry("proxy", "b.example", 80), Entry("direct"),
        Entry("socks", "s.example", 1080), Entry("socks5", "2001:db8::1", 1081), Entry("https", "h.example", 443),
        Entry("http", "p.example", 3128), Entry("socks4", "t", 1),
    ]  # fmt: skip
    assert skipped == ["QUIC q:443", "PROXY bad:99999", "PROXY"]
    assert [str(e) for e in entries[:3]] == ["PROXY a.example:8080", "PROXY b.example:80", "DIRECT"]
