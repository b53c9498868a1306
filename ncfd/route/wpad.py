"""WPAD's candidates (found by ncfd.route.discovery) probed as browsers probe them: each one's PAC
fetched within PROBE_LIMIT, and taken only when it is a PAC, a script that defines FindProxyForURL:
a captive portal's login page answering wpad.dat is nothing found there. An answer from the network
is not authenticated, by DHCP or by DNS, and discovery that finds nothing must cost little: what
DNS's names gave, a PAC's URL or nothing, is remembered for this network (ncfd.route.cache).
"""

from __future__ import annotations

from ncfd.errors import NcfdError
from ncfd.route.discovery import PROBE_LIMIT, DhcpWpad

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ncfd.deadline import Deadline
    from ncfd.log import Log
    from ncfd.route.discovery import DnsWpad
    from ncfd.route.pac_fetch import Pac


def probe(found: DhcpWpad | DnsWpad, deadline: Deadline, cacert: str | None, log: Log, warn: Log) -> Pac | None:
    """The PAC that WPAD's candidates lead to, the first that gives one; None when none does."""
    if isinstance(found, DhcpWpad):
        return _by_dhcp(found, deadline, cacert, log, warn)
    return _by_dns(found, deadline, cacert, log, warn)


def _by_dhcp(found: DhcpWpad, deadline: Deadline, cacert: str | None, log: Log, warn: Log) -> Pac | None:
    from ncfd.deadline import Deadline
    from ncfd.render import printable, redacted
    from ncfd.route import pac_fetch

    url, device = redacted(found.url), printable(found.device)
    probe = Deadline(min(deadline.remaining(), PROBE_LIMIT), deadline)
    try:
        # Not from the cache without asking: DHCP servers name private addresses that other
        # networks use too, so a copy fetched elsewhere proves nothing here.
        pac = pac_fetch.load(found.url, probe, cacert, log, warn, trust_cache=False)
        instead = _not_a_pac(pac, probe)
    except NcfdError as e:
        log(f"--proxy-auto: WPAD {url} (DHCP, {device}): {e}")
        return None
    if instead is not None:
        log(f"--proxy-auto: WPAD {url} (DHCP, {device}) answered {instead}: not a PAC, asking DNS")
        return None
    log(f"--proxy-auto: WPAD found {url} by DHCP on {device}")
    return pac


def _by_dns(found: DnsWpad, deadline: Deadline, cacert: str | None, log: Log, warn: Log) -> Pac | None:
    from ncfd.deadline import Deadline
    from ncfd.route import pac_fetch

    for url in found.urls:
        probe = Deadline(min(deadline.remaining(), PROBE_LIMIT), deadline)
        try:
            # A copy cached elsewhere (the office's wpad, seen from home) proves nothing here: only
            # what WPAD found on this network may be taken from the cache.
            pac = pac_fetch.load(url, probe, cacert, log, warn, trust_cache=url == found.known)
            instead = _not_a_pac(pac, probe)
        except NcfdError as e:
            log(f"--proxy-auto: WPAD {url}: {e}")
            continue
        if instead is not None:
            log(f"--proxy-auto: WPAD {url} answered {instead}: not a PAC, nothing found there")
            continue
        log(f"--proxy-auto: WPAD found {url}")
        _remember(found.network, url, log)
        return pac
    _remember(found.network, None, log)
    return None


def _not_a_pac(pac: Pac, deadline: Deadline) -> str | None:
    """What came back instead of a PAC, or None when it is one: a script that loads and defines
    FindProxyForURL (or FindProxyForURLEx). Browsers ask this of what WPAD finds, and go on when it
    is not: a captive portal answers every URL with its login page."""
    try:
        import _quickjs  # noqa: F401
    except ImportError:
        # Without the engine every answer would look like no PAC, and discovery would go direct past
        # a real one: it is taken as found, and the route choice says what is missing.
        return None
    from ncfd.deadline import call_within
    from ncfd.errors import PacError
    from ncfd.route.pac_engine import PAC_CPU_LIMIT, Engine

    if not pac.text.strip():
        return "an empty body"

    def defines() -> bool:
        return Engine(pac.text, pac.location, min(deadline.remaining(), PAC_CPU_LIMIT)).defines_find()

    try:
        if call_within(deadline, defines, f"loading the PAC {pac.location}", stack=8 << 20):
            return None
        failed = ""
    except PacError as e:  # "PAC <location>: cannot be loaded: SyntaxError: ..."
        failed = str(e).removeprefix(f"PAC {pac.location}: ")
    if pac.text.lstrip().startswith("<"):
        return "an HTML page"
    return f"a script that {failed}" if failed else "a script that defines no FindProxyForURL"


def _remember(network: str, found: str | None, log: Log) -> None:
    from ncfd.route import cache

    try:
        cache.remember_discovery(network, found)
    except OSError as e:
        log(f"cannot remember what WPAD found in {cache.directory()}: {e.strerror}")
