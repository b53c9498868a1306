"""nc-compatible command line: getopt-style parsing into an Options object (the text of -h is in
ncfd/manual.py).

Hand-written rather than getopt/argparse: both pull in gettext and friends, and start-up time is a
feature of a ProxyCommand.
"""

from __future__ import annotations

import os
import socket

from ncfd.errors import UsageError
from ncfd.proxies import Proxy, number, parse_port, parse_protocol
from ncfd.request import Credentials, Request, SocketOptions, Words

DEFAULT_TIMEOUT = 60.0
# The command line's names for the request's options, in its messages.
WORDS = Words(proxy="-x", env="--proxy-env", pac="--proxy-pac", auto="--proxy-auto",
              pac_optional="--proxy-pac-optional", cert="--proxy-cert", key="--proxy-key",
              chain="a proxy chain (-x given more than once)",
              users="-P, --proxy-netrc or a user@ in a proxy URL")  # fmt: skip

# Options that take a value, and nc options ncfd knows but does not do.
_WITH_VALUE = set("IOPpqsTwXx")
_FLAGS = set("46DdFhNnvz")
_UNSUPPORTED = {
    "l": "listening (-l) is not supported: ncfd only connects",
    "k": "listening (-k) is not supported: ncfd only connects",
    "u": "UDP (-u) is not supported: ncfd only connects over TCP",
    "U": "unix sockets (-U) are not supported: ncfd only connects over TCP",
}
_UNSUPPORTED_WITH_VALUE = set("iMmVW")
_UNSUPPORTED_FLAGS = set("bCrStZ")

# IP_TOS values, as nc's map_tos() has them.
TOS_KEYWORDS = {
    "af11": 0x28, "af12": 0x30, "af13": 0x38,
    "af21": 0x48, "af22": 0x50, "af23": 0x58,
    "af31": 0x68, "af32": 0x70, "af33": 0x78,
    "af41": 0x88, "af42": 0x90, "af43": 0x98,
    "critical": 0xA0, "cs0": 0x00, "cs1": 0x20, "cs2": 0x40, "cs3": 0x60,
    "cs4": 0x80, "cs5": 0xA0, "cs6": 0xC0, "cs7": 0xE0, "ef": 0xB8,
    "inetcontrol": 0xC0, "lowdelay": 0x10, "netcontrol": 0xE0,
    "reliability": 0x04, "throughput": 0x08, "va": 0xB0,
}  # fmt: skip

LONG_OPTIONS = (
    "proxy-auth",
    "proxy-auth-hosts",
    "proxy-cert",
    "proxy-header",
    "proxy-key",
    "proxy-password-file",
    "proxy-netrc",
    "proxy-cacert",
    "proxy-pac",
    "proxy-service-name",
)
LONG_FLAGS = ("check", "proxy-env", "proxy-auto", "proxy-pac-optional", "show-route", "version")
AUTH_SCHEMES = ("basic", "digest", "ntlm", "negotiate")


class Options:
    """Parsed command line. Plain attributes: dataclasses would cost start-up time."""

    def __init__(self) -> None:
        self.socket = SocketOptions()  # -4 -6 -D -I -O -n -p -s -T
        self.no_stdin = False
        self.fdpass = False
        self.help = False
        self.version = False
        self.half_close = False
        self.proxy_user: str | None = None
        self.proxy_auth: str | None = None
        self.password_file: str | None = None
        self.netrc: str | None = None
        self.proxy_cacert: str | None = None
        # Sent with every CONNECT (ncfd.proxy_headers), and the Kerberos service of Negotiate proxies.
        self.proxy_headers: list[tuple[str, str]] = []
        self.service_name: str | None = None
        # A TLS client certificate for HTTPS proxies, and its key when not in the same file.
        self.proxy_cert: str | None = None
        self.proxy_key: str | None = None
        # The names of proxies a PAC named that may have credentials (ncfd.tunnel.auth_policy).
        self.auth_hosts: str | None = None
        # Said on stderr before anything else is done.
        self.warnings: list[str] = []
        self.quit_after: float | None = None
        self.verbose = False
        self.timeout: float | None = None
        self.zero_io = False
        # One proxy, or a chain of them, hop by hop.
        self.proxies: list[Proxy] = []
        # The other ways to choose the route (ncfd.route.choice), instead of -x.
        self.proxy_env = False
        self.proxy_pac: str | None = None
        self.proxy_pac_optional = False
        self.proxy_auto = False
        self.show_route = False
        self.check = False  # --check: a report on stdout (ncfd.diagnose) instead of a hand-off
        self.host = ""
        self.port = 0
        # What the command line asks the core for; where its passwords come from is told to it
        # once the log they narrate to is known (ncfd.cli).
        self.request: Request | None = None

    @property
    def deadline(self) -> float:
        """Seconds allowed for connecting plus the proxy handshake: -w, or a default so nothing hangs."""
        return self.timeout if self.timeout else DEFAULT_TIMEOUT


def _getopt(argv: list[str]) -> tuple[list[tuple[str, str]], list[str]]:
    """GNU-style getopt: bundled flags (-Fv), attached values (-w3), options after operands, "--"."""
    opts: list[tuple[str, str]] = []
    operands: list[str] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        i += 1
        if arg == "--":
            operands.extend(argv[i:])
            break
        if not arg.startswith("-") or arg == "-":
            operands.append(arg)
            continue
        if arg.startswith("--"):
            name, eq, value = arg[2:].partition("=")
            if name in LONG_FLAGS:
                if eq:
                    raise UsageError(f"option '--{name}' takes no value: write --{name} alone")
                opts.append((name, ""))
                continue
            if name not in LONG_OPTIONS:
                raise UsageError(f"unrecognized option '--{name}'{_suggestion(name)}")
            if not eq:
                if i == len(argv):
                    raise UsageError(f"option '--{name}' requires an argument")
                value = argv[i]
                i += 1
            opts.append((name, value))
            continue
        j = 1
        while j < len(arg):
            letter = arg[j]
            j += 1
            if letter in _WITH_VALUE or letter in _UNSUPPORTED_WITH_VALUE:
                if j < len(arg):
                    value = arg[j:]
                elif i < len(argv):
                    value = argv[i]
                    i += 1
                else:
                    version = " (nc's routing table, not supported; the version is --version)" if letter == "V" else ""
                    raise UsageError(f"option requires an argument -- '{letter}'{version}")
                opts.append((letter, value))
                break
            if letter in _FLAGS or letter in _UNSUPPORTED or letter in _UNSUPPORTED_FLAGS:
                opts.append((letter, ""))
                continue
            raise UsageError(f"invalid option -- '{letter}' (ncfd -h lists the options)")
    return opts, operands


def _suggestion(name: str) -> str:
    if name == "proxy":  # curl's spelling
        return " (the proxy is -x: -x host:port, or -x URL as curl's --proxy takes it)"
    import difflib

    close = difflib.get_close_matches(name, LONG_OPTIONS + LONG_FLAGS, n=1)
    return f" (did you mean --{close[0]}?)" if close else " (ncfd -h lists the options)"


def parse_args(argv: list[str]) -> Options:
    pairs, operands = _getopt(argv)
    o = Options()
    protocol: str | None = None
    proxy_values: list[str] = []
    for letter, value in pairs:
        if letter in _UNSUPPORTED:
            raise UsageError(_UNSUPPORTED[letter])
        if letter in _UNSUPPORTED_WITH_VALUE or letter in _UNSUPPORTED_FLAGS:
            version = " (the version is --version)" if letter == "V" else ""
            raise UsageError(f"option -{letter} is not supported by ncfd{version}")
        if letter == "4":
            o.socket.family = socket.AF_INET
        elif letter == "6":
            o.socket.family = socket.AF_INET6
        elif letter == "D":
            o.socket.so_debug = True
        elif letter == "d":
            o.no_stdin = True
        elif letter == "F":
            o.fdpass = True
        elif letter == "h":
            o.help = True
        elif letter == "I":
            o.socket.rcvbuf = int(number(value, "TCP receive window", 1, 65536 << 14))
        elif letter == "O":
            o.socket.sndbuf = int(number(value, "TCP send window", 1, 65536 << 14))
        elif letter == "N":
            o.half_close = True
        elif letter == "n":
            o.socket.numeric = True
        elif letter == "P":
            o.proxy_user = value
        elif letter == "p":
            o.socket.source_port = parse_port(value, "source port")
        elif letter == "q":
            o.quit_after = number(value, "quit timer", float("-inf"), 2**31, integer=False)
        elif letter == "s":
            o.socket.source_addr = value
        elif letter == "T":
            o.socket.tos = _parse_tos(value)
        elif letter == "v":
            o.verbose = True
        elif letter == "w":
            o.timeout = number(value, "timeout", 0, 2**31 / 1000, integer=False)
        elif letter == "X":
            protocol = parse_protocol(value, _PROTOCOL_HINTS)
        elif letter == "x":
            proxy_values.append(value)
        elif letter == "z":
            o.zero_io = True
        elif letter == "proxy-auth":
            if value.lower() not in AUTH_SCHEMES:
                raise UsageError(f"unsupported proxy authentication scheme {value!r} (use {', '.join(AUTH_SCHEMES)})")
            o.proxy_auth = value.lower()
        elif letter == "proxy-auth-hosts":
            o.auth_hosts = value
        elif letter == "proxy-cert":
            o.proxy_cert = _readable(value, "--proxy-cert file")
        elif letter == "proxy-key":
            o.proxy_key = _readable(value, "--proxy-key file")
        elif letter == "proxy-password-file":
            o.password_file = _readable(value, "proxy password file")
        elif letter == "proxy-netrc":
            o.netrc = _readable(value, "--proxy-netrc file")
        elif letter == "proxy-env":
            o.proxy_env = True
        elif letter == "proxy-pac":
            o.proxy_pac = value
        elif letter == "proxy-pac-optional":
            o.proxy_pac_optional = True
        elif letter == "proxy-auto":
            o.proxy_auto = True
        elif letter == "show-route":
            o.show_route = True
        elif letter == "proxy-header":
            from ncfd.proxy_headers import from_option

            o.proxy_headers += from_option(value)
        elif letter == "proxy-service-name":
            o.service_name = value
        elif letter == "check":
            o.check = True
        elif letter == "proxy-cacert":
            o.proxy_cacert = _readable(value, "--proxy-cacert file")
        elif letter == "version":
            o.version = True
    if o.help or o.version:
        return o
    if o.quit_after is not None and o.quit_after < 0:
        o.quit_after = None  # Debian nc: a negative -q waits forever, which is the default
    elif o.quit_after is not None:
        o.half_close = True
    if len(operands) == 1:
        raise UsageError("missing port number")
    if len(operands) != 2:
        raise UsageError("a destination and one port are required (usage: ncfd [options] destination port; ncfd -h)")
    o.host = operands[0]
    if not o.host:
        raise UsageError("empty destination")
    o.port = parse_port(operands[1])
    passphrase = None
    if o.proxy_cert is not None:
        from ncfd.password import key_passphrase  # only with a certificate: start-up time

        passphrase = key_passphrase(o.proxy_key or o.proxy_cert)
    credentials = Credentials(o.proxy_user, scheme=o.proxy_auth, service_name=o.service_name, auth_hosts=o.auth_hosts,
                              given=o.proxy_user is not None or o.netrc is not None)  # fmt: skip
    o.request = Request(o.host, o.port, words=WORDS, proxies=proxy_values, protocol=protocol,
                        env=os.environ if o.proxy_env else None, pac=o.proxy_pac, auto=o.proxy_auto,
                        pac_optional=o.proxy_pac_optional, credentials=credentials, socket_options=o.socket,
                        cacert=o.proxy_cacert, cert=o.proxy_cert, key=o.proxy_key, passphrase=passphrase,
                        greeting_bound=not o.timeout, headers=o.proxy_headers)  # fmt: skip
    o.proxies = o.request.proxies
    if o.show_route and o.fdpass:
        raise UsageError("--show-route prints the route and connects nothing: not with -F")
    if o.check and (o.fdpass or o.show_route):
        other = "-F" if o.fdpass else "--show-route"
        raise UsageError(f"--check goes the way -F would and prints a report on stdout: not with {other} (give"
                         " --check the ProxyCommand's other options)")  # fmt: skip
    for proxy in o.proxies:
        if proxy.password is not None:
            o.warnings.append(
                f"the password for {proxy} in its URL is visible to every user in the process list; "
                "use NCFD_PROXY_PASSWORD or --proxy-password-file"
            )
    return o


# What people write for -X, meaning something it has another word for.
_PROTOCOL_HINTS = {
    "http": "an HTTP proxy is -X connect",
    "https": "an HTTPS proxy is -x https://host:port",
    "socks": "SOCKS5 is -X 5",
    "socks5": "SOCKS5 is -X 5",
    "socks5h": "-X 5 sends names to the proxy, as socks5h:// does",
    "5h": "-X 5 sends names to the proxy, as socks5h:// does",
    "socks4": "SOCKS4 is -X 4",
    "socks4a": "SOCKS4A is -X 4A",
}


def _readable(path: str, what: str) -> str:
    """A file named on the command line must be there to be read: a usage error, at once. A regular
    file: a FIFO would block its reader (here, or OpenSSL) past any deadline."""
    from ncfd.files import check_regular

    expanded = os.path.expanduser(path)
    check_regular(expanded, what, path)
    return expanded


def _parse_tos(value: str) -> int:
    valid = "use lowdelay, throughput, reliability, af11..af43, cs0..cs7, ef, va, critical, inetcontrol, netcontrol"
    valid += " or a number, 0 to 255"
    if value.lower() in TOS_KEYWORDS:
        return TOS_KEYWORDS[value.lower()]
    try:
        number = int(value, 0)
    except ValueError:
        raise UsageError(f"illegal tos value {value} ({valid})") from None
    if not 0 <= number <= 255:
        raise UsageError(f"illegal tos value {value} ({valid})")
    return number
