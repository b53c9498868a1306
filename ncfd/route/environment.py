"""--proxy-env: the proxy from the environment, as curl reads it, so that one ProxyCommand line can
serve every host in ~/.ssh/config.

https_proxy, HTTPS_PROXY, all_proxy, ALL_PROXY, in that order (curl's, lowercase first); a value
without a scheme is an http:// proxy. no_proxy / NO_PROXY lists hosts reached directly: `*`,
names (matching the name and every name under it; a leading dot is ignored), IP addresses and CIDR
ranges. Names are compared as given, never resolved, as curl does.
"""

from __future__ import annotations

import ipaddress

from ncfd.errors import UsageError
from ncfd.proxies import Proxy, parse_proxy_url

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

PROXY_VARIABLES = ("https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY")
NO_PROXY_VARIABLES = ("no_proxy", "NO_PROXY")


def proxy_from_environment(host: str, environ: Mapping[str, str]) -> list[Proxy]:
    """The proxy to use for host: none when no variable is set or no_proxy excludes host."""
    name, value = next(((n, environ[n]) for n in PROXY_VARIABLES if environ.get(n)), ("", ""))
    if not value:
        return []
    no_proxy = next((environ[n] for n in NO_PROXY_VARIABLES if n in environ), "")
    if excluded(host, no_proxy):
        return []
    try:
        return [parse_proxy_url(value if "://" in value else f"http://{value}")]
    except UsageError as e:
        raise UsageError(f"${name}: {e}") from None


def excluded(host: str, no_proxy: str) -> bool:
    host = host.strip("[]").rstrip(".").lower()
    address = _address(host)
    for entry in (e.strip().lower() for e in no_proxy.split(",")):
        if not entry:
            continue
        if entry == "*":
            return True
        if address is not None:
            try:
                if address in ipaddress.ip_network(entry.strip("[]"), strict=False):
                    return True
            except ValueError:
                pass
            continue
        suffix = entry.lstrip(".").rstrip(".")
        if host == suffix or host.endswith("." + suffix):
            return True
    return False


def _address(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return None
