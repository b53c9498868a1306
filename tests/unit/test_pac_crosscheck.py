"""The PAC helpers against a second, independent implementation: pacparser (PyPI), whose helpers
descend from Mozilla's as Chrome's JavaScript ones do, run beside ncfd's over generated inputs
(host names, patterns, addresses and masks, dates and times across the ends of days, weeks and
years, in several time zones). Answers must be equal wherever pacparser and Chrome agree; where
they do not (pacparser's ranges never wrap, its isPlainHostName sees only dots), the generated
case is checked against a model of Chrome's answer or left to the table tests of
test_pac_engine.py.

Both engines run one script that sets the clock (a global Date of its own, as a PAC may) and calls
a helper over a batch of cases, so a few engine runs check thousands of cases."""

from __future__ import annotations

import calendar
import datetime
import ipaddress
import json
import os
import time
from collections.abc import Callable, Iterator

import pacparser
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from ncfd.route.pac_engine import Engine

BATCH = 60
# Derandomized, the same cases each run; not shrunk: a failure names its case in the whole batch.
EXAMPLES = settings(
    max_examples=8, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True,
    phases=[Phase.explicit, Phase.generate],
)  # fmt: skip
# UTC+5:45, UTC-7, UTC+14, none with summer time (where a range's hours may come out of order)
ZONES = ["Asia/Kathmandu", "America/Phoenix", "Pacific/Kiritimati"]
DAYS = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"]
MONTHS = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"]

# The cases: [now in ms, [arguments]]; each answer "type:value" or "throws".
SCRIPT = """
var __RealDate = __RealDate || Date, __now = 0, __cases = %s;  // pacparser keeps one global object
Date = function () {
    if (arguments.length === 0) return new __RealDate(__now);
    return new (Function.prototype.bind.apply(__RealDate, [null].concat(Array.prototype.slice.call(arguments))))();
};
function FindProxyForURL(url, host) {
    var out = [];
    for (var i = 0; i < __cases.length; i++) {
        __now = __cases[i][0];
        try {
            var r = %s.apply(null, __cases[i][1]);
            out.push(typeof r + ":" + String(r));
        } catch (e) {
            out.push("throws");
        }
    }
    return JSON.stringify(out);
}
"""

Case = tuple[int, list[object]]


@pytest.fixture(scope="module", autouse=True)
def _pacparser() -> Iterator[None]:
    pacparser.init()
    yield
    pacparser.cleanup()


@pytest.fixture(params=ZONES)
def zone(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The process's time zone, which both engines read."""
    monkeypatch.setenv("TZ", request.param)
    time.tzset()
    yield request.param
    monkeypatch.undo()
    time.tzset()


def both(helper: str, cases: list[Case]) -> tuple[list[str], list[str]]:
    """What ncfd's helper and pacparser's answer for each case."""
    script = SCRIPT % (json.dumps(cases), helper)
    ours = Engine(script, "crosscheck.pac", 20.0).find("https://h/", "h", lambda name: [], ["192.0.2.1"], 0.0)
    pacparser.parse_pac_string(script)
    theirs = pacparser.find_proxy("https://h/", "h")
    return json.loads(ours.answer), json.loads(theirs)


def check(helper: str, cases: list[Case]) -> None:
    ours, theirs = both(helper, cases)
    for case, mine, other in zip(cases, ours, theirs, strict=True):
        assert mine == other, f"{helper}{tuple(case[1])} at {case[0]}: ncfd {mine}, pacparser {other}"


# --- strings ------------------------------------------------------------------------------------

text = st.text(alphabet="ab.-*?", max_size=8)
host_name = st.text(alphabet="abcxyz019.-_", max_size=12)
pattern = st.text(alphabet="ab.*?+()[]^$|\\", max_size=6)  # regular-expression characters too
value = st.one_of(text, st.integers(-2, 2), st.none())  # helpers given what a script may pass


def batch(strategy: st.SearchStrategy[list[object]]) -> st.SearchStrategy[list[Case]]:
    return st.lists(strategy.map(lambda args: (0, args)), min_size=BATCH, max_size=BATCH)


@EXAMPLES
@given(batch(st.lists(st.one_of(text, host_name), min_size=2, max_size=2)))
def test_dns_domain_is(cases: list[Case]) -> None:
    check("dnsDomainIs", cases)


@EXAMPLES
@given(batch(st.lists(st.one_of(text, host_name), min_size=2, max_size=2)))
def test_local_host_or_domain_is(cases: list[Case]) -> None:
    check("localHostOrDomainIs", cases)


@EXAMPLES
@given(batch(st.lists(st.one_of(host_name, value), min_size=1, max_size=2)))
def test_dns_domain_levels_and_odd_arguments(cases: list[Case]) -> None:
    check("dnsDomainLevels", cases)
    check("dnsDomainIs", [(now, [*args, ".a"]) for now, args in cases])


@EXAMPLES
@given(batch(st.lists(st.one_of(text, pattern), min_size=2, max_size=2)))
def test_sh_exp_match(cases: list[Case]) -> None:
    check("shExpMatch", cases)


@EXAMPLES
@given(batch(st.builds(lambda first, rest: [first + rest], st.sampled_from("abgkwz"), host_name)))
def test_is_plain_host_name(cases: list[Case]) -> None:
    """Names that start with a letter: neither engine takes them for an address, and pacparser's
    test (a dot) is Chrome's. Colons and numbers: test_pac_engine.py's table."""
    check("isPlainHostName", cases)


# --- addresses ----------------------------------------------------------------------------------

quad = st.integers(0, 2**32 - 1).map(lambda n: str(ipaddress.IPv4Address(n)))
near = st.tuples(st.integers(0, 2**32 - 1), st.integers(0, 32)).map(
    lambda p: str(ipaddress.IPv4Address(p[0] & (2**32 - 2 ** (32 - p[1]))))
)  # addresses with many zero bits, so that they match each other often
mask = st.integers(0, 32).map(lambda bits: str(ipaddress.IPv4Address(2**32 - 2 ** (32 - bits))))
any_mask = st.one_of(mask, quad)  # masks with holes as well: both engines just AND


@EXAMPLES
@given(batch(st.builds(lambda *a: list(a), st.one_of(quad, near), st.one_of(quad, near), any_mask)))
def test_is_in_net(cases: list[Case]) -> None:
    check("isInNet", cases)


def _prefix(family: Callable[[int], object], width: int, n: int, bits: int) -> str:
    return f"{family((n >> (width - bits)) << (width - bits) if bits else 0)}/{bits}"


# IPv6 addresses with runs of zero words (written compressed), not "::" itself (which pacparser
# reads wrong) nor IPv4-mapped ones (no dotted tail).
words = st.lists(st.one_of(st.just(0), st.integers(0, 0xFFFF)), min_size=8, max_size=8)
v6 = words.map(lambda w: sum(x << (16 * (7 - i)) for i, x in enumerate(w))).filter(lambda n: n and n >> 32 != 0xFFFF)


@st.composite
def in_net_ex(draw: st.DrawFn) -> list[object]:
    """An address and a prefix of its family: often its own, so that it matches."""
    family, width, numbers = draw(st.sampled_from([(ipaddress.IPv4Address, 32, st.integers(1, 2**32 - 1)),
                                                   (ipaddress.IPv6Address, 128, v6)]))  # fmt: skip
    ip, other = draw(numbers), draw(numbers)
    bits = draw(st.integers(1, width))  # pacparser reads an IPv4 "/0" wrong
    return [str(family(ip)), _prefix(family, width, draw(st.sampled_from([ip, other])), bits)]


@EXAMPLES
@given(batch(in_net_ex()))
def test_is_in_net_ex(cases: list[Case]) -> None:
    """One address of the prefix's family. pacparser reads "::" and an IPv4 "/0" wrong; those,
    Chrome's IPv4-mapped matching and its argument checks: test_pac_engine.py."""
    check("isInNetEx", cases)


# --- dates and times ----------------------------------------------------------------------------


def _ms(year: int, month: int, day: int) -> int:
    return calendar.timegm((year, month, day, 0, 0, 0)) * 1000


@st.composite
def moments(draw: st.DrawFn) -> int:
    """A time in ms near the end of a day, a week, a month or a year, somewhere on earth (the
    offset: its midnight in another zone), or anywhere in 2025..2027."""
    day = draw(st.sampled_from([_ms(2026, 1, 1), _ms(2027, 1, 1), _ms(2026, 3, 1), _ms(2026, 12, 2)]))
    week = draw(st.integers(-60, 60)) * 7 * 86400_000 + _ms(2026, 11, 29)  # a Sunday
    edge = draw(st.sampled_from([day, week, draw(st.integers(0, 1100)) * 86400_000 + _ms(2025, 1, 1)]))
    offset = draw(st.integers(-14 * 4, 14 * 4)) * 900_000 + draw(st.sampled_from([-1000, -1, 0, 1, 59_000, 60_000]))
    anywhere = draw(st.integers(_ms(2025, 1, 1), _ms(2028, 1, 1)))
    return draw(st.sampled_from([edge + offset, anywhere]))


gmt: st.SearchStrategy[list[object]] = st.sampled_from([[], [], ["GMT"]])


def _ordered(values: list[int], width: int) -> list[int]:
    """values (two groups of width) with the first group not after the second: a range that does
    not wrap, where pacparser's answer is Chrome's."""
    first, second = values[:width], values[width:]
    return values if first <= second else second + first


@EXAMPLES
@given(st.data())
def test_weekday_range(zone: str, data: st.DataObject) -> None:
    day = st.sampled_from([*DAYS, "wed", "Sun", "BOGUS"])
    cases = data.draw(batch(st.builds(lambda a, g: a + g, st.lists(day, min_size=1, max_size=3), gmt)))
    cases = [(data.draw(moments()), args) for _, args in cases]
    ours, theirs = both("weekdayRange", cases)
    for (now, args), mine, other in zip(cases, ours, theirs, strict=True):
        names = [a for a in args if a != "GMT"]
        wd1 = DAYS.index(names[0]) if names[0] in DAYS else -1
        wd2 = (DAYS.index(names[1]) if names[1] in DAYS else -1) if len(names) == 2 else wd1
        if -1 < wd2 < wd1:  # over the week's end: pacparser never wraps; Chrome's rule, from Python's clock
            moment = datetime.datetime.fromtimestamp(now / 1000, datetime.timezone.utc if "GMT" in args else None)
            today = (moment.weekday() + 1) % 7
            other = f"boolean:{str(wd2 >= today or today >= wd1).lower()}"
        assert mine == other, f"weekdayRange{tuple(args)} at {now} in {zone}: ncfd {mine}, expected {other}"


@EXAMPLES
@given(st.data())
def test_time_range(zone: str, data: st.DataObject) -> None:
    hour, minute = st.integers(0, 23), st.integers(0, 59)
    form = st.one_of(
        st.lists(st.one_of(st.integers(-1, 25), st.sampled_from(["9", "x"])), min_size=1, max_size=2),  # never wraps
        st.tuples(hour, minute, hour, minute).map(lambda t: _ordered(list(t), 2)),
        st.tuples(hour, minute, minute, hour, minute, minute).map(lambda t: _ordered(list(t), 3)),
        st.lists(hour, min_size=3, max_size=3),  # a count that throws
    )
    forms = data.draw(st.lists(form, min_size=BATCH, max_size=BATCH))
    cases: list[Case] = [(data.draw(moments()), [*args, *data.draw(gmt)]) for args in forms]
    check("timeRange", cases)


@st.composite
def date_ranges(draw: st.DrawFn) -> list[object]:
    """dateRange's forms, ranges in order and with days every month has (a day past a month's
    end moves the range's start or end to the next month; see test_pac_engine.py)."""
    year = st.integers(2024, 2028)
    month, day = st.integers(0, 11), st.integers(1, 28)
    single = st.one_of(day, year, month.map(lambda m: MONTHS[m]), st.sampled_from(["dec", "Jan", "x", "31", "2026"]))
    kind = draw(st.sampled_from(["single", "d", "m", "y", "dm", "my", "dmy"]))
    if kind == "single":
        return [draw(single)]
    fields = {"d": day, "m": month, "y": year}
    order = {"d": 2, "m": 1, "y": 0}  # compared year, month, day
    start = [draw(fields[k]) for k in kind]
    end = [draw(fields[k]) for k in kind]
    by_time = sorted(range(len(kind)), key=lambda i: order[kind[i]])
    if [start[i] for i in by_time] > [end[i] for i in by_time]:
        start, end = end, start
    return [MONTHS[v] if k == "m" else v for k, v in zip(kind * 2, start + end, strict=True)]


@EXAMPLES
@given(st.data())
def test_date_range(zone: str, data: st.DataObject) -> None:
    ranges = data.draw(st.lists(date_ranges(), min_size=BATCH, max_size=BATCH))
    check("dateRange", [(data.draw(moments()), args + data.draw(gmt)) for args in ranges])


def test_the_zones_are_what_the_engines_read(zone: str) -> None:
    """The zone fixture does change both engines' local time (or the tests above prove less)."""
    offset = {"Asia/Kathmandu": 345, "America/Phoenix": -420, "Pacific/Kiritimati": 840}[zone]
    ours, theirs = both("(function () { return new Date().getTimezoneOffset(); })", [(_ms(2026, 12, 2), [])])
    assert ours == theirs == [f"number:{-offset}"]
    assert os.environ["TZ"] == zone
