"""Which proxies get credentials.

A password (Basic, Digest, NTLM, SOCKS5) goes only to a proxy the user named: -x, the environment,
the desktop's manual proxy settings, a --proxy-netrc entry for its host, or a name that
--proxy-auth-hosts (the API's auth_hosts=) allows. A PAC's entries, given or found, are not the
user's word: WPAD's PAC comes from an unauthenticated DNS or DHCP answer, and a password sent to an
attacker's proxy is handed over (Basic is the password itself; NTLM can be relayed). A Kerberos
ticket is for one service and is never delegated, of no use anywhere else: it goes to any proxy,
unless --proxy-auth-hosts is given, which then limits it as it limits passwords. But a ticket for a
service@host of --proxy-service-name is the named proxy's own, whatever proxy asks: a PAC's proxy
could relay it there, so it is kept as a password is.
"""

from __future__ import annotations

from ncfd.errors import Withheld

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ncfd.proxies import Proxy
    from ncfd.request import Credentials


def allowed(credentials: Credentials, proxy: Proxy, by_pac: bool, kerberos: bool = False) -> bool:
    """Whether proxy may have a password (or, with kerberos, a Kerberos ticket)."""
    if not by_pac:
        return True
    if kerberos and credentials.auth_hosts is None and "@" not in (credentials.service_name or ""):
        return True
    if listed(credentials.auth_hosts or (), proxy.host):
        return True
    return credentials.in_netrc is not None and credentials.in_netrc(proxy)


def listed(patterns: tuple[str, ...], host: str) -> bool:
    """host (a name or an address, as the PAC wrote it) matches one of the shell-style patterns,
    case aside."""
    if not patterns:
        return False
    from fnmatch import fnmatchcase

    return any(fnmatchcase(host.lower(), pattern.lower()) for pattern in patterns)


def withheld(credentials: Credentials, proxy: Proxy, source: str, kerberos: bool, user: str | None) -> Withheld:
    """The error for proxy, which source named, asking for what it may not have."""
    option = credentials.hosts_option
    allow = (
        f"allow it with {option}[{proxy.host!r}]" if option.endswith("=") else f"allow it with {option} {proxy.host}"
    )
    if kerberos and credentials.auth_hosts is None:  # a ticket for the service@host the user named
        return Withheld(
            f"{proxy} (named by {source}) asks for a Kerberos ticket; one for {credentials.service_name}"
            f" could be passed on to that host, and ncfd sends it only to proxies you named: {allow}"
        )
    if kerberos:
        return Withheld(f"{proxy} (named by {source}) asks for a Kerberos ticket; with {option}"
                        f" given, ncfd sends tickets only to proxies you named or it allows: {allow}")  # fmt: skip
    more = f" (and give {credentials.hint})" if user is None else ""
    return Withheld(f"{proxy} (named by {source}) asks for a password; ncfd sends passwords only to proxies you "
                    f"named: {allow}{more}")  # fmt: skip
