"""Choosing the route, before any tunnel opens: from -x, the environment (--proxy-env), a PAC file
(--proxy-pac) or what proxy discovery finds (--proxy-auto). The result is a Plan: the routes for
ncfd.tunnel.failover to try in order within the one deadline, and what chose them, for -v and --show-route.

Discovery (ncfd.route.discovery) only finds where the route comes from; the PACs it names are
fetched and evaluated here, and WPAD's candidates probed by ncfd.route.wpad, for this module.

A PAC that was found is obeyed as browsers obey it: with no DIRECT in its answer there is no direct
connection, and a PAC that cannot be had is an error. Only --proxy-auto that finds nothing at all
connects directly, and --proxy-pac-optional when the PAC's server is not there (its name does not
resolve, or it refuses) and no copy of the PAC is cached.
"""

from __future__ import annotations

import socket
import time

from ncfd.errors import PacError
from ncfd.request import Route

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ncfd.deadline import Deadline
    from ncfd.log import Log
    from ncfd.proxies import Proxy
    from ncfd.request import Request
    from ncfd.route.pac_engine import Entry
    from ncfd.route.pac_fetch import Pac

# Entries of a PAC's answer that are tried: browsers' lists are a handful, and each route must get a
# share of the deadline worth having.
MAX_ROUTES = 32
MAX_SKIPPED_SHOWN = 10  # parts of a PAC answer named as skipped; a junk answer has millions
# Addresses a UDP "connect" routes towards, to learn our own address as browsers do: no packet
# leaves (Chromium uses the same two).
_ROUTE_PROBES = ((socket.AF_INET, "8.8.8.8"), (socket.AF_INET6, "2001:4860:4860::8888"))


class Plan:
    """The routes to try in order, and how they were chosen."""

    __slots__ = ("answer", "dead", "notes", "routes", "source", "verdicts")

    def __init__(self, routes: list[Route], source: str, answer: str | None = None) -> None:
        self.routes = routes
        self.source = source  # "-x", "PAC http://...", "WPAD http://wpad/wpad.dat", ...
        self.answer = answer  # what the PAC returned, if a PAC chose
        self.notes: list[str] = []  # what --show-route shows besides: entries skipped, dead proxies
        self.dead: set[str] = set()  # routes found dead lately, as the cache had them
        self.verdicts: dict[str, bool] = {}  # routes the tunnel tried: alive or not

    def note_verdict(self, route: Route, alive: bool) -> None:
        """The tunnel's verdict on a route it tried among several, for save()."""
        self.verdicts[str(route)] = alive

    def save(self) -> None:
        """The verdicts into the cache, in one write once the tunnel is done (one write per route
        made a long list quadratic): the dead are tried last by the next runs for a while."""
        dead = [key for key, alive in self.verdicts.items() if not alive]
        revived = [key for key, alive in self.verdicts.items() if alive and key in self.dead]
        if not dead and not revived:
            return
        from ncfd.route import cache  # only then: start-up time

        try:  # noqa: SIM105 (contextlib would cost start-up time)
            cache.note_proxies(dead, revived)
        except OSError:
            pass  # an unwritable cache only costs the next run the wait


def choose(request: Request, deadline: Deadline, log: Log, warn: Log) -> Plan:
    """The plan for the request's destination from its one route source: proxies (-x), env
    (--proxy-env: these variables), pac (--proxy-pac: a URL or a path), auto (--proxy-auto); none
    of them: direct."""
    host, port = request.host, request.port
    if request.proxies:
        return Plan([Route(request.proxies)], "-x")
    if request.env is not None:
        from ncfd.route.environment import proxy_from_environment

        found = proxy_from_environment(host, request.env)
        return Plan([Route(found)], "the environment" if found else "the environment: direct")
    if request.pac is not None:
        from ncfd.render import redacted
        from ncfd.route import pac_fetch

        try:
            pac = pac_fetch.load(request.pac, deadline, request.cacert, log, warn)
        except pac_fetch.Unreachable as e:
            if not request.pac_optional:
                raise
            log(f"--proxy-pac-optional: {e}; connecting directly")
            return Plan([Route([])], f"PAC {redacted(request.pac)} cannot be reached, --proxy-pac-optional: direct")
        return from_pac(pac, f"PAC {redacted(request.pac)}", host, port, deadline, log)
    if request.auto:
        return _discovered(request, deadline, log, warn)
    return Plan([Route([])], "direct")


def _discovered(request: Request, deadline: Deadline, log: Log, warn: Log) -> Plan:
    """--proxy-auto: the plan from the first thing discovery finds that gives one; direct when
    nothing does. What a source names is obeyed (a PAC that cannot be had is an error); WPAD's
    candidates are probed, and one that gives no PAC lets discovery go on."""
    from ncfd.render import redacted
    from ncfd.route import discovery

    host, port = request.host, request.port
    for found in discovery.discover(host, deadline, log, warn):
        if isinstance(found, discovery.Proxies):
            return Plan([Route(found.hops)], found.source)
        if isinstance(found, discovery.PacLocation):
            from ncfd.route import pac_fetch

            named = pac_fetch.load(found.location, deadline, request.cacert, log, warn)
            return from_pac(named, f"PAC {redacted(found.location)} from {found.source}", host, port, deadline, log)
        from ncfd.route import wpad

        pac = wpad.probe(found, deadline, request.cacert, log, warn)
        if pac is not None:
            return from_pac(pac, f"WPAD {pac.location}", host, port, deadline, log)
    log("--proxy-auto: no proxy found; connecting directly")
    return Plan([Route([])], "nothing found (environment, desktop settings, WPAD): direct")


def from_pac(pac: Pac, source: str, host: str, port: int, deadline: Deadline, log: Log) -> Plan:
    """Ask the PAC for host:port (in a helper thread bounded by the deadline: the engine's own
    limits count CPU time) and read its answer into routes, the proxies found dead lately last."""
    from ncfd.deadline import call_within
    from ncfd.render import printable, redacted
    from ncfd.route.pac_engine import (
        MAX_NAMES,
        MAX_ROUNDS,
        Engine,
        Evaluation,
        browser_url,
        pac_cpu_limit,
        parse_answer,
    )

    url = browser_url(host, port)
    # What the script says (its answer, alerts, errors) is the network's choice: printable() only.
    name = redacted(pac.location)

    def ask() -> Evaluation:
        engine = Engine(pac.text, name, pac_cpu_limit(deadline.remaining()))
        return engine.find(url, host, resolve, my_addresses(), time.time() * 1000)

    def resolve(looked_up: str) -> list[str]:
        # Once the caller has given up, no more lookups for nobody: this thread ends at its next
        # name, and the engine with it.
        deadline.remaining()
        return _addresses(looked_up)

    what = f"evaluating PAC {name} (a slow DNS answer or an endless loop?)"
    # QuickJS's stack limit must be below the thread's own: 8 MiB, as glibc's default.
    found = call_within(deadline, ask, what, stack=8 << 20)
    answer, shown = found.answer, printable(found.answer)
    for alert in found.alerts:
        log(f"PAC {name} alert: {printable(alert)}")
    log(f'PAC {name} ({pac.how}): FindProxyForURL("{url}", "{host}") = "{shown}"'
        + (f" after {found.rounds} runs for DNS answers" if found.rounds > 1 else ""))  # fmt: skip
    plan = Plan([], source, answer)
    if found.unresolved:  # past a limit, the script is told "does not resolve": it may route otherwise
        limit = (f"asked for more than {MAX_NAMES} names to resolve" if len(found.names) >= MAX_NAMES
                 else f"still asked for new names to resolve after {MAX_ROUNDS} runs")  # fmt: skip
        names = ", ".join(found.unresolved)
        unresolved = printable(f'{limit}; {len(found.unresolved)} not looked up, answered "does not resolve": {names}')
        plan.notes.append(f"the PAC {unresolved}")
        log(f"PAC {name} {unresolved}")
    entries, skipped = parse_answer(answer)
    for part in skipped[:MAX_SKIPPED_SHOWN]:
        plan.notes.append(f"skipped '{printable(part)}': not a PAC entry ncfd knows")
        log(f"PAC {name}: skipping '{printable(part)}': not an entry ncfd knows")
    if len(skipped) > MAX_SKIPPED_SHOWN:
        plan.notes.append(f"skipped {len(skipped) - MAX_SKIPPED_SHOWN} more parts that are not PAC entries")
        log(f"PAC {name}: skipping {len(skipped) - MAX_SKIPPED_SHOWN} more parts that are not entries")
    if not entries:
        raise PacError(f'PAC {name} answered "{shown}" for {host}: no entry ncfd can use')
    if len(entries) > MAX_ROUTES:
        plan.notes.append(f"the PAC gave {len(entries)} entries: only the first {MAX_ROUTES} are tried")
        log(f"PAC {name}: {plan.notes[-1]}")
        entries = entries[:MAX_ROUTES]
    plan.routes = _last_the_dead([Route(_hops(entry), pac=True, source=source) for entry in entries], plan, log)
    return plan


def _hops(entry: Entry) -> list[Proxy]:
    from ncfd.proxies import Proxy
    from ncfd.route.pac_engine import KEYWORDS

    if entry.keyword == "direct":
        return []
    protocol, tls, _ = KEYWORDS[entry.keyword]
    # SOCKS4 resolves the destination here, as browsers do; SOCKS5 sends the name.
    return [Proxy(entry.host, entry.port, protocol, tls=tls, remote_dns=protocol != "4")]


def _last_the_dead(routes: list[Route], plan: Plan, log: Log) -> list[Route]:
    if len(routes) < 2:
        return routes
    from ncfd.route import cache

    dead = cache.dead_proxies(log)
    plan.dead = {str(r) for r in routes if str(r) in dead}
    ordered = [r for r in routes if str(r) not in dead] + [r for r in routes if str(r) in dead]
    for route in routes:
        if str(route) in dead:
            note = f"{route} was found dead {time.time() - dead[str(route)]:.0f} s ago: trying it last"
            plan.notes.append(note)
            log(note)
    return ordered


def _addresses(name: str) -> list[str]:
    """name's addresses for the PAC's DNS functions, none when it does not resolve; runs in the
    PAC's helper thread, which the deadline bounds as a whole."""
    try:
        found = socket.getaddrinfo(name, None, socket.AF_UNSPEC, socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        return []
    return list(dict.fromkeys(str(info[4][0]) for info in found))


def my_addresses() -> list[str]:
    """This host's addresses as browsers find them for myIpAddress(): those of the interfaces that
    route to the internet (a UDP connect sends nothing), else the host name's, else loopback."""
    found = []
    for family, probe in _ROUTE_PROBES:
        try:
            with socket.socket(family, socket.SOCK_DGRAM) as udp:
                udp.connect((probe, 53))
                found.append(str(udp.getsockname()[0]))
        except OSError:
            continue
    return found or _addresses(socket.gethostname()) or ["127.0.0.1"]


def show(plan: Plan, host: str, port: int) -> str:
    """What --show-route prints."""
    lines = [f"destination: {host} port {port}", f"source: {plan.source}"]
    if plan.answer is not None:
        from ncfd.render import printable

        lines.append(f"PAC answer: {printable(plan.answer)}")
    lines += [f"note: {note}" for note in plan.notes]
    lines += [f"route {i}: {route}" for i, route in enumerate(plan.routes, 1)]
    return "\n".join(lines)
