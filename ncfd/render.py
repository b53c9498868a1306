"""What messages show of text that is not ours: a proxy's or a PAC server's reply, what a PAC script
answers, alerts or throws, a library's error, a URL that may carry a password. Everything of that
kind reaches people through these functions, so that no control byte chosen by the network reaches
a terminal (ESC and CSI sequences rewrite it) and no password reaches a message. And host:port, as
messages, URLs and requests write it.
"""

from __future__ import annotations

LIMIT = 500  # characters of one such text in a message; a PAC may answer megabytes


def host_port(host: str, port: int | None = None) -> str:
    """host:port, an IPv6 literal in brackets ([::1]:22), as URLs write it; the host alone (in its
    brackets likewise) without a port."""
    shown = f"[{host}]" if ":" in host else host
    return shown if port is None else f"{shown}:{port}"


def printable(text: str, limit: int = LIMIT) -> str:
    """text for one line of a message: what is not printable (C0 and C1 controls, DEL, line and
    paragraph separators, bidirectional overrides, lone surrogates) escaped as Python writes it
    (\\x1b, \\u202e), and cut after limit characters."""
    shown = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text[:limit])
    return shown + ("..." if len(text) > limit else "")


def credentials(url: str) -> str:
    """What a URL (scheme://...) has before its last "@": its user and password, taken wider than a
    URL parser takes them, so that a password with "/", "?" or "#" in it (hunter2?@) is all of it."""
    _, sep, rest = url.partition("://")
    before, at, _ = rest.rpartition("@")
    return before if sep and at and not before.startswith("/") else ""  # file:///a@b has a path, not a user


def redacted(url: str) -> str:
    """A URL as messages show it: its password (and all that could be part of it) replaced by ***,
    printable. A path or nc's host:port is shown as it is."""
    secret = credentials(url)
    if ":" in secret:
        scheme, sep, rest = url.partition("://")
        url = f"{scheme}{sep}{secret.split(':', 1)[0]}:***@{rest[len(secret) + 1 :]}"
    return printable(url)


def library_message(message: str, url: str) -> str:
    """A library's error message about url (urllib's "Port could not be cast to integer value as
    'hunter2'"), as messages show it: the URL's user and password, and every quoted part of the
    message that is a piece of them or holds them (what a parser took for a port, a netloc),
    replaced by ***."""
    secret = credentials(url)
    if secret:
        import re

        def hide(quoted: re.Match[str]) -> str:
            inside = quoted.group()[1:-1]
            return "'***'" if inside in secret or secret in inside else quoted.group()

        message = re.sub(r"'[^']*'|\"[^\"]*\"", hide, message).replace(secret, "***")
    return printable(message)
