"""The one description of the command line: -h and the man page (ncfd.1, written by
scripts/manpage) are both made from these tables, and a test checks the README against them, so
the three cannot drift. Imported only for -h."""

from __future__ import annotations

import functools

SYNOPSIS = (
    "[-46DdFhNnvz] [-I length] [-O length] [-P user] [-p port] [-q seconds] "
    "[-s source] [-T keyword] [-w timeout] [-X protocol] [-x proxy] [--check] [--proxy-auth scheme] "
    "[--proxy-auth-hosts patterns] [--proxy-auto] [--proxy-cacert file] [--proxy-cert file] [--proxy-env] "
    "[--proxy-header header] [--proxy-key file] [--proxy-netrc file] [--proxy-pac location] "
    "[--proxy-pac-optional] [--proxy-password-file file] [--proxy-service-name name] [--show-route] [--version] "
    "destination port"
)

SUMMARY = (
    "Connect to destination:port, directly or through a proxy or a chain of proxies. With -F, "
    "hand the connected socket to ssh (ProxyUseFdpass yes) and exit; otherwise relay stdin and "
    "stdout over it, like nc."
)

# (option, argument, description)
OPTIONS = (
    ("-4", "", "Use IPv4 addresses only, for the proxy (or the destination when direct)."),
    ("-6", "", "Use IPv6 addresses only, for the proxy (or the destination when direct)."),
    ("-D", "", "Set SO_DEBUG on the socket."),
    ("-d", "", "Do not read stdin."),
    ("-F", "", "Pass the connected socket to stdout (ssh's ProxyUseFdpass) and exit 0. Through an HTTPS "
               "proxy, pass one end of a socketpair that a detached process relays to the TLS session."),
    ("-h", "", "Print this help on stdout and exit 0."),
    ("-I", "length", "TCP receive buffer size."),
    ("-N", "", "Shut down the network write side after EOF on stdin."),
    ("-n", "", "Numeric addresses only: no DNS for the proxy or a direct destination."),
    ("-O", "length", "TCP send buffer size."),
    ("-P", "user", "Proxy username; turns proxy authentication on for every proxy kind."),
    ("-p", "port", "Local source port."),
    ("-q", "seconds", "After EOF on stdin, wait seconds, then quit (implies -N; negative waits for ever)."),
    ("-s", "source", "Local source address (not with a proxy)."),
    ("-T", "keyword", "IP TOS or traffic class: lowdelay, throughput, reliability, af11..af43, cs0..cs7, ef, va, "
                      "critical, inetcontrol, netcontrol, or a number."),
    ("-v", "", "Narrate each step on stderr."),
    ("-w", "timeout", "Give up when finding the route, connecting and the proxy handshakes together take "
                      "longer than timeout seconds (default 60); with several routes, each gets an equal "
                      "share of what is left. In relay mode also the idle timeout."),
    ("-X", "protocol", "Proxy protocol: connect (HTTP CONNECT), 4 (SOCKS4, destination resolved here), "
                       "4A (SOCKS4A, name sent to the proxy) or 5 (SOCKS5, the default; names sent to the proxy)."),
    ("-x", "proxy", "Proxy: host[:port] or [v6addr][:port] (default port 1080 for SOCKS, 3128 for connect), "
                    "or a URL: http://, https:// (port 443), socks4://, socks4a://, socks5:// (names resolved here), "
                    "socks5h:// (names resolved by the proxy), with an optional user@. Given more than "
                    "once (URLs), a chain: each proxy is reached through the one before."),
    ("-z", "", "Connect and negotiate, then exit (with -F the socket is still passed)."),
    ("--check", "", "Go the way -F would, then print a report on stdout instead of passing the socket: one "
                    "line per step with its time (the route's source and the PAC's answer, each route tried "
                    "and why it failed, each proxy, the authentication scheme and as whom, where the "
                    "password came from), what the far end sent first within 5 s (or -w, if shorter), and a "
                    "verdict. Run it with the failing ProxyCommand's other options. Exit 0 when the tunnel "
                    "works and the far end sent an SSH banner or nothing (a server that waits for the "
                    "client); 5 when a TLS handshake or an HTTP answer came instead (a TLS-inspecting or "
                    "filtering proxy is in the way, and ssh cannot work through it); 1 when the far end "
                    "closed the tunnel or is not an SSH server; otherwise the exit status of the failure. "
                    "Not with -F or --show-route."),
    ("--proxy-auth", "scheme", "Answer only this HTTP proxy scheme: basic, digest, ntlm or negotiate "
                               "(default: the strongest the proxy offers)."),
    ("--proxy-auth-hosts", "patterns", "Comma-separated shell-style patterns (*.corp.example), matched without "
                                       "regard to case against the name or address a PAC gives for a proxy: "
                                       "such proxies may have the password, which ncfd otherwise sends only to "
                                       "proxies you named; once given, also the only proxies of a PAC's that get "
                                       "a Kerberos ticket (see SECURITY)."),
    ("--proxy-auto", "", "Find the proxy as the desktop would: the environment (as --proxy-env), then GNOME, KDE "
                         "or macOS proxy settings, then WPAD: by DHCP (option 252, as NetworkManager received "
                         "it on the default route's device), then by DNS (http://wpad/wpad.dat, then wpad. "
                         "under each suffix of this host's domain down to its registrable domain, never under "
                         "a public suffix); only an answer that is a PAC counts; direct when nothing is found."),
    ("--proxy-cacert", "file", "Also trust the CA certificates in file for HTTPS proxies and https:// PAC servers."),
    ("--proxy-cert", "file", "Present the TLS client certificate in file (PEM) to HTTPS proxies that ask for "
                             "one (not to https:// PAC servers); its key too, unless --proxy-key names another "
                             "file. The file holding the key must be private to its owner; an encrypted key's "
                             "passphrase comes from $NCFD_PROXY_KEY_PASSPHRASE, else is asked as the proxy "
                             "password is ($SSH_ASKPASS, /dev/tty)."),
    ("--proxy-env", "", "Take the proxy from https_proxy, HTTPS_PROXY, all_proxy, ALL_PROXY (curl's order), "
                        "connecting directly to hosts that no_proxy or NO_PROXY names."),
    ("--proxy-header", "header", "Send header, \"Name: value\", with every CONNECT to an HTTP or HTTPS proxy "
                                 "(each hop of a chain, each a PAC names; never to SOCKS proxies); more than once, "
                                 "more headers. @file reads header lines from file (blank lines skipped), which "
                                 "must be private as --proxy-password-file's, so that tokens stay out of the "
                                 "process list. A User-Agent replaces ncfd's. Host, Content-Length, "
                                 "Transfer-Encoding, a control character in a value, and Proxy-Authorization when "
                                 "ncfd authenticates (-P, --proxy-netrc, user@) are usage errors. -v shows the "
                                 "value of Authorization, Cookie and names containing token, key, secret, auth, "
                                 "password, jwt, session, credential or assertion as ***; those headers go to a "
                                 "proxy a PAC names only as a password would (see SECURITY)."),
    ("--proxy-key", "file", "The key (PEM) of --proxy-cert's certificate, when it is not in the same file."),
    ("--proxy-pac", "location", "Route as the PAC file at location (an http://, https:// or file:// URL, or a "
                                "path) says: FindProxyForURL(\"https://host:port/\", \"host\") for the "
                                "destination as given, its entries tried in order. A PAC that cannot be had "
                                "is an error, never a direct connection (but see --proxy-pac-optional)."),
    ("--proxy-pac-optional", "", "With --proxy-pac: connect directly when the PAC's server is not on this "
                                 "network (its name does not resolve, or it refuses the connection) and no "
                                 "copy of the PAC is cached; a cached copy is used instead. Any other "
                                 "failure (an HTTP error, a PAC that does not run, a time-out) is still an "
                                 "error."),
    ("--proxy-password-file", "file", "Read the proxy password from the first line of file, which must "
                                      "not be readable by group or others."),
    ("--proxy-netrc", "file", "Take each proxy's user and password from file, in netrc(5) form: machine "
                              "proxy-host login user password secret. Private to its owner, as "
                              "--proxy-password-file."),
    ("--proxy-service-name", "name", "The Kerberos service a Negotiate proxy's ticket is asked for: a service "
                                     "(HTTP, the default) at the proxy's name as given, or service@host for a "
                                     "proxy whose principal has another name (a load balancer's, a name the KDC "
                                     "knows): HTTP@lb.example.com asks for HTTP/lb.example.com@REALM."),
    ("--show-route", "", "Print the route ncfd would take (its source, the PAC's answer, the routes in "
                         "order), connect nothing, exit 0."),
    ("--version", "", "Print ncfd's version, the Python's, and the optional pieces found; exit 0."),
)  # fmt: skip

PASSWORD = (
    "A proxy that asks for Negotiate gets the user's Kerberos ticket (kinit, or KRB5_CLIENT_KTNAME), "
    "through the system's GSSAPI library, for HTTP@ the proxy's name as given (or --proxy-service-name); no "
    "-P is needed and the credentials are never delegated. For a user (-P, user@ in a proxy URL, or a netrc "
    "entry's login), the proxy password comes from the proxy's own entry in --proxy-netrc, then "
    "$NCFD_PROXY_PASSWORD, then --proxy-password-file, then the $SSH_ASKPASS program (with no terminal and a "
    "display, or with SSH_ASKPASS_REQUIRE=force), then a prompt on /dev/tty; never from stdin. It is asked "
    "once. Passwords go only to proxies you named (see SECURITY)."
)

SECURITY = (
    "A password (Basic, Digest, NTLM, SOCKS5) goes only to a proxy you named: with -x, in the environment "
    "(--proxy-env, and --proxy-auto's first step), in the desktop's manual proxy settings (GNOME, KDE, "
    "macOS), as a --proxy-netrc entry for its host, or by a pattern of --proxy-auth-hosts. A proxy that a "
    "PAC names (--proxy-pac, or one --proxy-auto found, by the desktop's settings or by WPAD) gets none: "
    "WPAD's PAC comes from an unauthenticated DNS or DHCP answer, and a password sent to an attacker's proxy "
    "is handed over (Basic is the password itself; NTLM can be relayed). Such a proxy asking for a password "
    "ends its route with exit status 6 and a message naming the --proxy-auth-hosts that would allow it; the "
    "PAC's later entries are still tried, and the run ends with that message only when none of them works. "
    "A Kerberos ticket goes to any proxy that asks, as browsers send it: it is a service ticket for that "
    "proxy's own principal, of no use elsewhere, and ncfd never delegates credentials; but once "
    "--proxy-auth-hosts is given, a proxy a PAC names gets one only when the list allows it. A ticket for the "
    "service@host of --proxy-service-name is that host's, whoever asks: a proxy a PAC names gets it only when "
    "the list allows it. A --proxy-header whose value -v hides (Authorization, a token) goes to a proxy a PAC "
    "names only as a password would; the others go to every HTTP proxy. A TLS client certificate "
    "(--proxy-cert) goes to every HTTPS proxy that asks for one, never to a PAC server."
)

PAC = (
    "ncfd calls FindProxyForURLEx when the PAC defines it, else FindProxyForURL, with the URL a browser "
    "passes for a tunnel to the destination, https://host:port/ (https://host/ for port 443), and the "
    "host as given on the command line. Entries: DIRECT; PROXY or HTTP host:port (HTTP CONNECT, port 80 "
    "by default); HTTPS host:port (TLS to the proxy, port 443); SOCKS or SOCKS4 host:port (SOCKS4, the "
    "destination resolved here, port 1080); SOCKS5 host:port (names sent to the proxy). Other entries are "
    "skipped (see -v). The helper functions answer as Chrome's do, from the script's top level too (var "
    "myip = myIpAddress();). Where Firefox differs, ncfd follows Chrome: dnsResolve and isResolvable see "
    "IPv4 addresses only; isPlainHostName is false for an IP literal (::1, 2130706433), true for any other "
    "name without a dot (foo:112), and throws a TypeError for a non-string; dnsResolve() is null; the "
    "Microsoft functions are there, isInNetEx taking one address, an IPv4 address and its IPv4-mapped IPv6 "
    "form being one. A non-ASCII name is looked up by its IDNA form (IDNA 2003: ß as ss). timeRange(h1, "
    "h2) includes both hours and never passes midnight; the other ranges wrap past midnight, the week's or "
    "the year's end when their end comes first; names are upper case (MON, JAN); the time is the global "
    "Date's. The script runs in a sandboxed JavaScript engine (QuickJS) with no file, network or "
    "process access, at most 10 s of CPU time, 64 MiB of memory and the rest of the -w deadline. A PAC fetched "
    "over HTTP is cached per user in $XDG_CACHE_HOME/ncfd (as Cache-Control says, else 10 minutes, "
    "revalidated with ETag and Last-Modified; a stale copy is used with a warning when the server cannot be "
    "reached). An entry whose proxy is dead (unresolvable, refused, closing or resetting the connection "
    "before answering, failing TLS, silent) is passed over for the next, as browsers do, and tried last for 5 "
    "minutes; a proxy's answer (a refusal, an authentication failure) ends the run. Only an answer's first 32 "
    "entries are tried."
)

EXIT_STATUS = (
    (0, "success: the socket was passed, the relay ended, or --check found the tunnel working"),
    (1, "other failure"),
    (2, "usage"),
    (3, "name resolution"),
    (4, "connection refused or unreachable"),
    (5, "the proxy refused the tunnel or broke the protocol (--check: a proxy answered in the server's place)"),
    (6, "proxy authentication"),
    (7, "timeout"),
    (8, "cannot pass the descriptor"),
    (9, "the PAC file could not be fetched, run, or gave no usable answer"),
    (70, "internal error"),
)


def version_text() -> str:
    """--version: ncfd's, the Python's, and the pieces that only some paths need, found or not."""
    import importlib.metadata
    import platform

    from ncfd.version import __version__

    def found(distribution: str, use: str) -> str:
        try:
            return f"{distribution} {importlib.metadata.version(distribution)} ({use})"
        except importlib.metadata.PackageNotFoundError:
            return f"{distribution} missing ({use} will not work: pip install {distribution})"

    from ncfd.connection import kerberos_support

    kerberos = kerberos_support()
    pieces = [found("h11", "HTTP proxies"), found("PySocks", "SOCKS proxies"), found("quickjs-ng", "PAC files"),
              found("pyspnego", "NTLM")]  # fmt: skip
    return "\n".join([
        f"ncfd {__version__}",
        f"Python {platform.python_version()} ({platform.python_implementation()}) on {platform.system()}",
        ", ".join(pieces),
        f"Kerberos: {kerberos}",
    ])  # fmt: skip


def synopsis_groups() -> list[str]:
    """The synopsis in pieces that must not be split across lines: "[-I length]", "destination"."""
    import re

    return re.findall(r"\[[^]]*\]|\S+", SYNOPSIS)


def help_text() -> str:
    import textwrap

    lines = ["usage: ncfd"]
    for group in synopsis_groups():
        if len(lines[-1]) + 1 + len(group) > 79:
            lines.append(" " * 11)
        lines[-1] += " " + group
    wrap = functools.partial(textwrap.wrap, break_on_hyphens=False)
    lines += ["", *wrap(SUMMARY, 79), ""]
    for option, argument, description in OPTIONS:
        head = f"  {option} {argument}".rstrip()
        body = wrap(description, 79 - 24)
        if len(head) < 22:
            lines.append(f"{head:<24}{body[0]}")
            body = body[1:]
        else:
            lines.append(head)
        lines += [" " * 24 + line for line in body]
    lines += ["", *wrap(PASSWORD, 79), "", "Exit status:"]
    lines += [f"  {code:>3}  {meaning}" for code, meaning in EXIT_STATUS]
    return "\n".join(lines)


ENVIRONMENT = (
    ("NCFD_PROXY_PASSWORD", "The proxy password, for a proxy that --proxy-netrc has no password for."),
    ("NCFD_PROXY_KEY_PASSPHRASE", "The passphrase of an encrypted --proxy-cert key, read only when the key is "
                                  "encrypted."),
    ("SSH_ASKPASS, SSH_ASKPASS_REQUIRE, DISPLAY, WAYLAND_DISPLAY",
     "Whether and how to ask for the proxy password (or a key's passphrase) with a program, as ssh(1) does."),
    ("https_proxy, HTTPS_PROXY, all_proxy, ALL_PROXY", "The proxy, with --proxy-env (first one set wins)."),
    ("no_proxy, NO_PROXY", "With --proxy-env: comma-separated hosts reached directly: *, names (and every name "
                           "under them), addresses, CIDR ranges."),
    ("XDG_CACHE_HOME", "The cache of PAC files, proxies found dead and WPAD's findings is in its ncfd directory "
                       "(default ~/.cache/ncfd); ignored, with a warning, when it or a file in it belongs to "
                       "another user or others can write to it."),
    ("LOCALDOMAIN", "With --proxy-auto: the domain whose wpad. names WPAD tries (else resolv.conf's)."),
    ("KRB5CCNAME, KRB5_CONFIG, KRB5_CLIENT_KTNAME", "Kerberos' own: the credential cache, the configuration, "
                                                    "a client keytab to get a ticket from."),
)  # fmt: skip

EXAMPLES = (
    ("Through a corporate HTTP proxy, in ~/.ssh/config:",
     "Host *.example.com\n    ProxyCommand ncfd -F -X connect -x proxy.example.com:3128 %h %p\n    ProxyUseFdpass yes"),
    ("Through a proxy that wants a user and password: the password from a file private to its owner (or "
     "$NCFD_PROXY_PASSWORD, or asked once):",
     "Host *.example.com\n    ProxyCommand ncfd -F -P alice --proxy-password-file ~/.ssh/proxy-password "
     "-X connect -x proxy.example.com:3128 %h %p\n    ProxyUseFdpass yes"),
    ("Through Tor, names resolved by Tor:",
     "Host *.onion\n    ProxyCommand ncfd -F -w 120 -x socks5h://127.0.0.1:9050 %h %p\n    ProxyUseFdpass yes"),
    ("Whatever proxy the environment names, direct for the hosts no_proxy lists:",
     "Host *\n    ProxyCommand ncfd -F --proxy-env %h %p\n    ProxyUseFdpass yes"),
    ("On a corporate network, the proxy found as the desktop finds it (PAC, WPAD):",
     "Host *\n    ProxyCommand ncfd -F --proxy-auto %h %p\n    ProxyUseFdpass yes"),
    ("When ssh through the proxy fails, the failing ProxyCommand's options with --check instead of -F, and %h "
     "%p written out: each step with its time, what the far end sent first, and a verdict:",
     "ncfd --check -X connect -x proxy.example.com:3128 example.com 22"),
    ("A route tried from the shell, as ssh would take it, the server's first line printed; stdin kept open, "
     "since its end of file half-closes the connection and an HTTP proxy then ends the tunnel, before a slow "
     "server has said a word (</dev/null prints nothing):",
     "sleep 5 | ncfd-fdrecv ncfd -F -X connect -x proxy.example.com:3128 example.com 22"),
)  # fmt: skip


def _roff(text: str) -> str:
    text = text.replace("\\", "\\e").replace("-", "\\-")
    return "\n".join(("\\&" + line if line.startswith((".", "'")) else line) for line in text.split("\n"))


def man_page() -> str:
    """ncfd.1 in man(7) markup; scripts/manpage writes it and a test checks the file is current."""
    from ncfd.version import __version__

    out = [f'.TH NCFD 1 "" "ncfd {__version__}" "User Commands"', ".SH NAME",
           "ncfd \\- reach a TCP service through HTTP or SOCKS proxies and pass the socket to ssh",
           ".SH SYNOPSIS", ".B ncfd", *(_roff(group) for group in synopsis_groups()),
           ".SH DESCRIPTION", _roff(SUMMARY), ".PP",
           _roff("With ProxyUseFdpass yes, ssh(1) runs the ProxyCommand on one end of a unix socketpair and "
                 "waits for it to send back a connected socket (sendmsg, SCM_RIGHTS, one byte). ncfd connects, "
                 "does the proxy handshakes, reads not a byte past the last proxy's reply, passes the socket "
                 "and exits: no process lingers and no byte is copied twice. It takes nc(1)'s options, with "
                 "the same meaning."),
           ".SH OPTIONS"]  # fmt: skip
    for option, argument, description in OPTIONS:
        out += [".TP", f"\\fB{_roff(option)}\\fR" + (f" \\fI{argument}\\fR" if argument else ""), _roff(description)]
    out += [
        ".SH PROXY AUTHENTICATION",
        _roff(PASSWORD),
        ".SH PAC FILES",
        _roff(PAC),
        ".SH SECURITY",
        _roff(SECURITY),
        ".SH ENVIRONMENT",
    ]
    for names, description in ENVIRONMENT:
        out += [".TP", f"\\fB{_roff(names)}\\fR", _roff(description)]
    out += [".SH EXIT STATUS"]
    for code, meaning in EXIT_STATUS:
        out += [".TP", f"\\fB{code}\\fR", _roff(meaning[0].upper() + meaning[1:] + ".")]
    out += [".SH EXAMPLES"]
    for text, config in EXAMPLES:
        out += [".PP", _roff(text), ".PP", ".nf", ".RS 4", _roff(config), ".RE", ".fi"]
    out += [".SH SEE ALSO", "ssh(1), ssh_config(5), nc(1), ncfd\\-fdrecv(1)"]
    return "\n".join(out) + "\n"


def fdrecv_man_page() -> str:
    """ncfd-fdrecv.1, made from its -h text (ncfd.fdrecv.HELP): its paragraphs, reflowed, and its
    indented blocks (options, exit statuses, examples) as they are."""
    from ncfd.fdrecv import HELP, PROG, USAGE
    from ncfd.version import __version__

    out = [f'.TH NCFD\\-FDRECV 1 "" "ncfd {__version__}" "User Commands"', ".SH NAME",
           f"{_roff(PROG)} \\- receive a socket from a dialer as ssh does (ProxyUseFdpass), then relay it or exec a "
           "program on it", ".SH SYNOPSIS", ".B " + _roff(PROG), _roff(USAGE.split(PROG, 1)[1].strip()),
           ".SH DESCRIPTION"]  # fmt: skip
    headings = {"options (all before DIALER):": "OPTIONS", "exit status:": "EXIT STATUS", "examples:": "EXAMPLES"}
    for paragraph in HELP.split("\n\n")[1:]:
        lines = paragraph.split("\n")
        if lines[0] in headings:
            out.append(f".SH {headings[lines[0]]}")
            lines = lines[1:]
        if all(line.startswith("  ") for line in lines):
            out += [".PP", ".nf", _roff("\n".join(line[2:] for line in lines)), ".fi"]
        else:
            out += [".PP", _roff(" ".join(lines))]
    out += [".SH SEE ALSO", "ncfd(1), ssh(1), ssh_config(5)"]
    return "\n".join(out) + "\n"
