"""Extra headers for every CONNECT to an HTTP or HTTPS proxy (--proxy-header, the API's headers=):
"Name: value" lines, given one by one or read from a private file (curl's @file), checked so that
none can break the request or smuggle another into it, and shown under -v with the values of
secret-looking names hidden. Imported only when headers are given.

A header's value is never put in a message: a line from the file may be nothing but a token.
"""

from __future__ import annotations

import re

from ncfd.errors import UsageError
from ncfd.render import printable

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

Header = tuple[str, str]

# RFC 9110 field-name: a token.
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
# A value may hold anything but controls (HTAB aside): CR, LF and NUL would end the line or the string.
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_CONTROL_NAMES = {"\r": "a carriage return (CR)", "\n": "a line feed (LF)", "\x00": "a NUL"}
# What the request itself decides: the authority it asks for, and its framing (a CONNECT has no body).
_RESERVED = {
    "host": "ncfd sends the destination as Host",
    "content-length": "a CONNECT request has no body",
    "transfer-encoding": "a CONNECT request has no body",
}
# Whose values -v shows as ***.
_SECRET_NAMES = ("authorization", "proxy-authorization", "cookie")
_SECRET_PARTS = ("token", "key", "secret", "auth", "password", "jwt", "session", "credential", "assertion")
# A header file is a few lines; a bound keeps a wrong path (a log, a device) from being read whole.
MAX_FILE = 64 * 1024


def from_option(value: str) -> list[Header]:
    """One --proxy-header: "Name: value", or "@file" for a file of such lines (blank lines skipped),
    private to its owner as --proxy-password-file must be."""
    if not value.startswith("@"):
        return [parse_line(value, "--proxy-header")]
    import os

    from ncfd.files import read_private

    path = os.path.expanduser(value[1:])
    what = "--proxy-header file"
    data = read_private(path, what, MAX_FILE + 1)
    if len(data) > MAX_FILE:
        raise UsageError(f"{what} {value[1:]} is longer than {MAX_FILE} bytes: it holds header lines")
    try:
        text = data.decode()
    except UnicodeDecodeError:
        raise UsageError(f"{what} {value[1:]} is not UTF-8 text") from None
    lines = text.split("\n")
    return [parse_line(line.removesuffix("\r"), f"{what} {value[1:]} line {number}")
            for number, line in enumerate(lines, 1) if line.strip()]  # fmt: skip


def parse_line(line: str, where: str) -> Header:
    name, colon, value = line.partition(":")
    if not colon:
        raise UsageError(f"{where}: a header without a colon: write Name: value")
    return check(name, value.strip(" \t"), where)


def from_pairs(headers: Mapping[str, str] | Iterable[tuple[str, str]], where: str = "headers=") -> list[Header]:
    """The API's headers=: a mapping, or (name, value) pairs, each checked as --proxy-header's."""
    if isinstance(headers, (str, bytes)) or not hasattr(headers, "__iter__"):
        raise UsageError(f"{where} takes (name, value) pairs or a mapping, not {type(headers).__name__}")
    items = headers.items() if hasattr(headers, "items") else headers
    checked = []
    for item in items:
        if not (isinstance(item, tuple) and len(item) == 2 and all(isinstance(part, str) for part in item)):
            raise UsageError(f"{where} takes (name, value) pairs of strings, not {type(item).__name__}")
        checked.append(check(item[0], item[1].strip(" \t"), where))
    return checked


def check(name: str, value: str, where: str) -> Header:
    """(name, value) when it makes one well-formed header line that ncfd may send; a usage error
    naming the header otherwise."""
    if not name:
        raise UsageError(f"{where}: a header without a name before its colon: write Name: value")
    if not _TOKEN.fullmatch(name):
        raise UsageError(
            f"{where}: header name {printable(name, 80)!r} is not an HTTP token (no spaces, no separators)"
        )
    bad = _CONTROL.search(value)
    if bad is not None:
        what = _CONTROL_NAMES.get(bad.group(), f"a control character ({bad.group()!r})")
        raise UsageError(f"{where}: the value of header {name} has {what}, which would break the request")
    try:
        value.encode()
    except UnicodeEncodeError:
        raise UsageError(f"{where}: the value of header {name} is not valid text (sent as UTF-8)") from None
    reason = _RESERVED.get(name.lower())
    if reason is not None:
        raise UsageError(f"{where}: header {name} would break the request: {reason}")
    return name, value


def check_authorization(headers: list[Header], authenticating: bool, how: str) -> None:
    """A Proxy-Authorization of the caller's and ncfd's own authentication would be two."""
    if authenticating and any(name.lower() == "proxy-authorization" for name, _ in headers):
        raise UsageError(
            f"header Proxy-Authorization would break the request: ncfd authenticates to the proxy ({how});"
            " give one or the other"
        )


def secret(name: str) -> bool:
    lowered = name.lower()
    return lowered in _SECRET_NAMES or any(part in lowered for part in _SECRET_PARTS)


def masked(headers: list[Header]) -> str:
    """The headers as -v shows them: Name: value; a secret-looking name's value as ***."""
    return "; ".join(f"{name}: {'***' if secret(name) else printable(value, 200)}" for name, value in headers)
