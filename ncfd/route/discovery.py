"""--proxy-auto: find the proxy as the desktop would. A short list of sources tried in order, each a
small function that answers with proxies, a PAC location, or nothing:

1. the environment (https_proxy, all_proxy, no_proxy: what --proxy-env reads);
2. the desktop's settings, where present: GNOME (gsettings, org.gnome.system.proxy), KDE
   (kioslaverc), macOS (scutil --proxy); manual proxies, a PAC URL, or "discover";
3. WPAD by DHCP: the URL the DHCP server gave in option 252, where NetworkManager received it,
   on the device of the default route (nmcli);
4. WPAD by DNS: http://wpad/wpad.dat, the bare name resolved through the resolver's search list
   (as Chrome and libproxy do), then wpad.<suffix> for each suffix of this host's domain down to
   its registrable domain (WinHTTP's devolution; never wpad. under a public suffix), the one
   found on this network lately first; or none, when lately nothing was (ncfd.route.cache);
5. nothing found: direct, the one case where ncfd connects directly on its own.

Discovery only finds: it fetches no PAC and runs none. ncfd.route.choice fetches what a source
names, and probes WPAD's candidates (ncfd.route.wpad), asking for each only when the one before
gave nothing: discover() is a generator, and DNS's candidates, with what the cache remembers, are
worked out once DHCP's has been probed.
"""

from __future__ import annotations

import os
import socket
import sys

from ncfd.request import Route

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from typing import TypeAlias

    from ncfd.deadline import Deadline
    from ncfd.log import Log
    from ncfd.proxies import Proxy

    # A source's answer: proxies (none: direct), a PAC location, WPAD (to probe), or nothing.
    Finding: TypeAlias = "list[Proxy] | PacLocation | Wpad | None"
    # What discover() yields, for the route choice to act on.
    Found: TypeAlias = "Proxies | PacLocation | DhcpWpad | DnsWpad"

# Seconds for a settings program to answer, and for one WPAD candidate: its name, then its wpad.dat.
PROBE_LIMIT = 2.0
WPAD_PATH = "/wpad.dat"


class Proxies:
    """A source named the proxies (none: direct)."""

    __slots__ = ("hops", "source")

    def __init__(self, hops: list[Proxy], source: str) -> None:
        self.hops, self.source = hops, source


class PacLocation:
    """A source named a PAC file; source names it once discover() says which."""

    __slots__ = ("location", "source")

    def __init__(self, location: str, source: str = "") -> None:
        self.location, self.source = location, source


class Wpad:
    """A source says: discover (GNOME's auto mode without a URL, KDE's ProxyType 3, macOS's
    auto-discovery)."""


class DhcpWpad:
    """WPAD's candidate by DHCP: the URL option 252 gave on the default route's device."""

    __slots__ = ("device", "url")

    def __init__(self, url: str, device: str) -> None:
        self.url, self.device = url, device


class DnsWpad:
    """WPAD's candidates by DNS, in the order to probe them; known: the one found on this network
    lately (first, if it is still a candidate), network: this network's tag, for remembering what
    the probes find."""

    __slots__ = ("known", "network", "urls")

    def __init__(self, urls: list[str], network: str, known: str | None) -> None:
        self.urls, self.network, self.known = urls, network, known


def discover(host: str, deadline: Deadline, log: Log, warn: Log) -> Iterator[Found]:
    """What the sources find for host, in order: the proxies or the PAC location the first source
    with an answer names; else WPAD's candidates, DHCP's, then DNS's; nothing at all when nothing
    is found. Each is found when the one before has been taken up and given nothing."""
    sources: list[tuple[str, Callable[[str], Finding]]] = [
        ("the environment", _environment),
        ("GNOME's proxy settings (gsettings)", lambda host: _gnome(host, deadline)),
        ("KDE's proxy settings (kioslaverc)", _kde),
    ]
    if sys.platform == "darwin":  # elsewhere no scutil is macOS's, and -v has no macOS to speak of
        sources.append(("macOS's proxy settings (scutil --proxy)", lambda host: _macos(host, deadline)))
    for name, source in sources:
        found = source(host)
        if found is None:
            log(f"--proxy-auto: nothing in {name}")
            continue
        if isinstance(found, Wpad):
            log(f"--proxy-auto: {name} say to discover the proxy")
            break
        if isinstance(found, PacLocation):
            from ncfd.render import redacted

            log(f"--proxy-auto: {name} name the PAC {redacted(found.location)}")
            yield PacLocation(found.location, name)
            return
        log(f"--proxy-auto: using {name}: {Route(found)}")
        yield Proxies(found, name)
        return
    dhcp = _dhcp_wpad(deadline, log)
    if dhcp is not None:
        yield dhcp
    dns = _dns_wpad(log, warn)
    if dns is not None:
        yield dns


# --- the environment ----------------------------------------------------------------------------


def _environment(host: str) -> Finding:
    from ncfd.route.environment import PROXY_VARIABLES, proxy_from_environment

    if not any(os.environ.get(name) for name in PROXY_VARIABLES):
        return None
    return proxy_from_environment(host, os.environ)


# --- GNOME --------------------------------------------------------------------------------------


def _settings(argv: list[str], deadline: Deadline, what: str) -> str | None:
    """What the desktop's settings program prints; None when it is not there, fails (GNOME's: no
    such schema, not a GNOME desktop), or has not answered within PROBE_LIMIT (a session bus that
    hangs). Within the deadline too: TimedOut, saying what, when the deadline ends first."""
    import subprocess

    left = deadline.remaining()
    try:
        out = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=min(PROBE_LIMIT, left),
                             check=False)  # fmt: skip
    except OSError:
        return None
    except subprocess.TimeoutExpired:
        if left > PROBE_LIMIT:
            return None
        raise deadline.expired(what) from None
    return out.stdout.decode(errors="replace") if out.returncode == 0 else None


def _gnome(host: str, deadline: Deadline) -> Finding:
    import shutil

    gsettings = shutil.which("gsettings")
    if gsettings is None:
        return None
    listing = _settings([gsettings, "list-recursively", "org.gnome.system.proxy"], deadline,
                        "reading the GNOME proxy settings (gsettings)")  # fmt: skip
    return None if listing is None else gnome_settings(listing, host)


def gnome_settings(listing: str, host: str) -> Finding:
    """What `gsettings list-recursively org.gnome.system.proxy` says for host."""
    from ncfd.proxies import Proxy

    keys: dict[str, object] = {}
    for line in listing.splitlines():
        schema, _, rest = line.partition(" ")
        key, _, value = rest.partition(" ")
        keys[f"{schema.removeprefix('org.gnome.system.proxy').lstrip('.')}/{key}"] = _gvariant(value)
    mode = keys.get("/mode")
    if mode == "auto":
        url = keys.get("/autoconfig-url")
        return PacLocation(url) if isinstance(url, str) and url else Wpad()
    if mode != "manual":
        return None  # "none", GNOME's default: nothing set, so discovery goes on

    def proxy(kind: str, protocol: str) -> list[Proxy]:
        name, number = keys.get(f"{kind}/host"), keys.get(f"{kind}/port")
        if not isinstance(name, str) or not name or not isinstance(number, int) or not 0 < number < 65536:
            return []
        return [Proxy(name, number, protocol)]

    ignored = keys.get("/ignore-hosts")
    if isinstance(ignored, list) and _ignored(host, [str(i) for i in ignored]):
        return []
    # A tunnel goes to the secure (CONNECT) proxy, or the HTTP one when it serves all, else SOCKS.
    return (proxy("https", "connect") or (proxy("http", "connect") if keys.get("/use-same-proxy") is True else [])
            or proxy("socks", "5"))  # fmt: skip


def _gvariant(text: str) -> object:
    """The GVariant text forms gsettings prints for these keys: 'string', 8080, true, ['a', 'b'],
    @as []."""
    text = text.strip().removeprefix("@as ").removeprefix("uint32 ")
    if text in ("true", "false"):
        return text == "true"
    if text.lstrip("-").isdigit():
        return int(text)
    if text.startswith("["):
        import re

        return [_unquote(item) for item in re.findall(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"", text)]
    if text[:1] in ("'", '"'):
        return _unquote(text)
    return text


def _unquote(text: str) -> str:
    import re

    return re.sub(r"\\(.)", r"\1", text[1:-1])


def _ignored(host: str, patterns: list[str]) -> bool:
    """GNOME's ignore-hosts and KDE's NoProxyFor: names (with a leading *. or .), addresses and
    CIDR ranges, read as no_proxy is."""
    from ncfd.route.environment import excluded

    return excluded(host, ",".join(p.strip().removeprefix("*") for p in patterns))


# --- KDE ----------------------------------------------------------------------------------------


def _kde(host: str) -> Finding:
    base = os.environ.get("XDG_CONFIG_HOME", "")
    if not os.path.isabs(base):
        base = os.path.join(os.path.expanduser("~"), ".config")
    try:
        with open(os.path.join(base, "kioslaverc"), encoding="utf-8", errors="replace") as f:
            return kde_settings(f.read(), host, os.environ)
    except OSError:
        return None


def kde_settings(text: str, host: str, environ: os._Environ[str] | dict[str, str]) -> Finding:
    """What kioslaverc's [Proxy Settings] say for host: ProxyType 1 manual, 2 a PAC URL, 3 WPAD,
    4 the environment (the keys name the variables)."""
    from ncfd.proxies import Proxy

    settings: dict[str, str] = {}
    section = ""
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("["):
            section = line
        elif section == "[Proxy Settings]" and "=" in line:
            key, _, value = line.partition("=")
            settings[key.split("[", 1)[0].strip()] = value.strip()
    kind = settings.get("ProxyType", "0")
    if kind == "2" and settings.get("Proxy Config Script"):
        return PacLocation(settings["Proxy Config Script"])
    if kind == "3":
        return Wpad()
    if kind not in ("1", "4"):
        return None
    if kind == "4":  # the settings name environment variables
        settings = {k: environ.get(v, "") if k.endswith("Proxy") else v for k, v in settings.items()}
    if settings.get("ReversedException", "false") == "false" and _ignored(
        host, [p for p in settings.get("NoProxyFor", "").split(",") if p]
    ):
        return []
    for key, protocol in (("httpsProxy", "connect"), ("socksProxy", "5")):
        value = settings.get(key, "").strip()
        if not value:
            continue
        # KDE writes "http://proxy 8080" (a space before the port) or "http://proxy:8080", an IPv6
        # address in brackets.
        address, _, spaced = value.rpartition(" ") if " " in value else (value, "", "")
        address = address.split("://", 1)[-1].rstrip("/")
        if address.startswith("["):
            name, sep, rest = address[1:].partition("]")
            number = rest[1:]
            if not sep or rest[:1] not in ("", ":"):
                name = ""  # not an address
        elif address.count(":") == 1:
            name, _, number = address.partition(":")
        else:  # a name, or an IPv6 address without brackets (and so without a port of its own)
            name, number = address, ""
        port = spaced or number
        if name and port.isdigit() and 0 < int(port) < 65536:
            return [Proxy(name, int(port), protocol)]
    return None


# --- macOS --------------------------------------------------------------------------------------


def _macos(host: str, deadline: Deadline) -> Finding:
    import shutil

    scutil = shutil.which("scutil")
    if scutil is None:
        return None
    text = _settings([scutil, "--proxy"], deadline, "reading the macOS proxy settings (scutil --proxy)")
    return None if text is None else macos_settings(text, host)


def macos_settings(text: str, host: str) -> Finding:
    """What `scutil --proxy` prints, for host."""
    from ncfd.proxies import Proxy

    keys: dict[str, str] = {}
    exceptions: list[str] = []
    in_exceptions = False
    for line in text.splitlines():
        key, sep, value = (part.strip() for part in line.partition(" : "))
        if in_exceptions:
            if line.strip() == "}":
                in_exceptions = False
            elif sep:
                exceptions.append(value)
            continue
        if key == "ExceptionsList":
            in_exceptions = True
        elif sep:
            keys[key] = value
    if keys.get("ProxyAutoConfigEnable") == "1" and keys.get("ProxyAutoConfigURLString"):
        return PacLocation(keys["ProxyAutoConfigURLString"])
    if _ignored(host, exceptions):
        return [] if keys.get("HTTPSEnable") == "1" or keys.get("SOCKSEnable") == "1" else None
    for kind, protocol in (("HTTPS", "connect"), ("SOCKS", "5")):
        name, port = keys.get(f"{kind}Proxy", ""), keys.get(f"{kind}Port", "")
        if keys.get(f"{kind}Enable") == "1" and name and port.isdigit():
            return [Proxy(name, int(port), protocol)]
    if keys.get("ProxyAutoDiscoveryEnable") == "1":
        return Wpad()
    return None


# --- WPAD by DHCP -------------------------------------------------------------------------------

DHCP_WPAD = "the WPAD option NetworkManager received by DHCP (nmcli)"


def _dhcp_wpad(deadline: Deadline, log: Log) -> DhcpWpad | None:
    """The PAC URL that DHCP's option 252 names on the device of the default route. None, and a -v
    line, when there is no nmcli or NetworkManager, no such option, or no http:// or https:// URL."""
    import shutil

    from ncfd.render import printable, redacted

    nmcli, listing = shutil.which("nmcli"), None
    if nmcli is not None:  # else no NetworkManager here; not running: nmcli fails at once
        argv = [nmcli, "--terse", "--fields", "GENERAL.DEVICE,DHCP4", "device", "show"]
        listing = _settings(argv, deadline, f"reading {DHCP_WPAD}")
    found = {} if listing is None else nmcli_wpad(listing)
    routed = [device for device in default_route_devices() if device in found]
    if not routed:
        # A network the default route does not lead to names no proxy for where we go.
        unused = "".join(f" ({printable(device)}'s: not the default route's device)" for device in found)
        log(f"--proxy-auto: nothing in {DHCP_WPAD}{unused}")
        return None
    device, url = routed[0], found[routed[0]]
    # Never a file:// URL or a path the network would have us read; nothing a message could not show.
    if not url.lower().startswith(("http://", "https://")) or not (url.isascii() and url.isprintable()) or " " in url:
        log(f"--proxy-auto: {DHCP_WPAD} on {printable(device)} is not an http:// or https:// URL: {redacted(url)}")
        return None
    log(f"--proxy-auto: {DHCP_WPAD} on {printable(device)} names the PAC {redacted(url)}")
    return DhcpWpad(url, device)


def nmcli_wpad(listing: str) -> dict[str, str]:
    """Each device's WPAD URL in what `nmcli --terse --fields GENERAL.DEVICE,DHCP4 device show`
    prints: "GENERAL.DEVICE:eth0", then "DHCP4.OPTION[28]:wpad = http://..." (no escaping: that is
    for tabular output)."""
    found: dict[str, str] = {}
    device = ""
    for line in listing.splitlines():
        field, _, value = line.partition(":")
        if field == "GENERAL.DEVICE":
            device = value
        elif field.startswith("DHCP4.OPTION[") and device:
            name, sep, url = value.partition(" = ")
            if sep and name == "wpad" and url.strip():
                found[device] = url.strip()
    return found


def default_route_devices() -> list[str]:
    """The devices of IPv4 default routes, the one the kernel uses (lowest metric) first."""
    routes: list[tuple[int, str]] = []
    try:
        with open("/proc/net/route", encoding="ascii", errors="replace") as f:
            for line in f.read(1 << 20).splitlines()[1:]:
                fields = line.split()
                # Iface Destination Gateway Flags RefCnt Use Metric Mask ...; flag 1: up
                if len(fields) > 7 and fields[1] == fields[7] == "00000000" and int(fields[3], 16) & 1:
                    routes.append((int(fields[6]), fields[0]))
    except (OSError, ValueError):
        return []
    return [device for _, device in sorted(routes)]


# --- WPAD ---------------------------------------------------------------------------------------


def wpad_candidates() -> list[str]:
    """http://wpad/wpad.dat, then wpad.<suffix> for each suffix of this host's domain down to its
    registrable domain, as the Public Suffix List has it: for a.b.example.co.uk, wpad.a.b.example.co.uk,
    wpad.b.example.co.uk, wpad.example.co.uk, never wpad.co.uk, a name anyone may register and then
    configure the proxy of every such host (the WPAD name collision, US-CERT TA16-144A). The list's
    private entries count as public suffixes too: the names under dyndns.org or github.io are handed
    to unrelated customers, the same collision. A domain that is a public suffix itself, or a single
    label, gives the bare name only."""
    domain = own_domain().strip(".").lower()
    names = ["wpad"]
    registrable = _registrable(domain) if domain else None
    if registrable is not None:
        labels = domain.split(".")
        names += [f"wpad.{'.'.join(labels[i:])}" for i in range(len(labels) - registrable.count("."))]
    return [f"http://{name}{WPAD_PATH}" for name in names]


def _registrable(domain: str) -> str | None:
    """domain's registrable part (one label under its public suffix, ICANN's or private), None when
    it has none. The list comes with the package: nothing is fetched."""
    from publicsuffixlist import PublicSuffixList

    # An unknown top-level name (corp.internal, lan) is a suffix of its own, as the list's "*" says;
    # private entries are kept (only_icann=False).
    return PublicSuffixList(accept_unknown=True, only_icann=False).privatesuffix(domain)


def own_domain() -> str:
    """This host's DNS domain: LOCALDOMAIN (the resolver's per-process search list), else
    resolv.conf's domain or first search entry, else what the host name carries after its first label."""
    local = os.environ.get("LOCALDOMAIN", "").split()
    if local:
        return local[0]
    try:
        with open("/etc/resolv.conf", encoding="utf-8", errors="replace") as f:
            for line in f:
                words = line.split()
                if len(words) > 1 and words[0] in ("domain", "search"):
                    return words[1]
    except OSError:
        pass
    return socket.gethostname().partition(".")[2]


def network_tag() -> str:
    """Names the network we are on, for remembering what discovery found here: the resolver's
    configuration and the host's names, which change when the machine moves."""
    import binascii

    try:
        with open("/etc/resolv.conf", "rb") as f:
            resolver = f.read(65536)
    except OSError:
        resolver = b""
    seen = [resolver, os.environ.get("LOCALDOMAIN", "").encode(), socket.gethostname().encode()]
    return format(binascii.crc32(b"\0".join(seen)), "08x")


def _dns_wpad(log: Log, warn: Log) -> DnsWpad | None:
    """WPAD's names to ask, what was found on this network lately first; None, and a -v line, when
    lately nothing was."""
    from ncfd.route import cache

    network = network_tag()
    known = cache.discovered(network, warn)
    if known == "none":
        log("--proxy-auto: WPAD found nothing on this network lately (remembered); not probing again")
        return None
    candidates = wpad_candidates()
    if known in candidates:
        candidates.remove(known)
        candidates.insert(0, known)
    return DnsWpad(candidates, network, known)
