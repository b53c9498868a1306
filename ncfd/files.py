"""Files the user names (a password file, a netrc, a header file, a TLS client key or certificate, a
CA file), opened without blocking: a FIFO or a device named as one would block its reader, here or
in OpenSSL, past any deadline. Each must be a regular file; a secret's must also be private to its
owner, as ssh insists for keys. Each check is made here, so that it says the same wherever it is.
"""

from __future__ import annotations

import os
import stat

from ncfd.errors import UsageError


def check_regular(path: str, what: str, shown: str | None = None) -> None:
    """path must be a regular file that opens for reading: else a UsageError naming what, and the
    path as the user wrote it (shown: before ~ was expanded)."""
    os.close(_open(path, what, path if shown is None else shown)[0])


def read_private(path: str, what: str, limit: int = -1) -> bytes:
    """The file at path (up to limit bytes), which must be private to its owner, as ssh insists for
    keys: opened once, not through a symbolic link, its mode checked on the descriptor read."""
    fd, mode = _open(path, what, path, os.O_NOFOLLOW)
    with os.fdopen(fd, "rb") as f:
        if stat.S_IMODE(mode) & 0o077:
            raise UsageError(f"{what} {path} is readable by others: chmod 600 it (as ssh requires of keys)")
        try:
            return f.read(limit)
        except OSError as e:
            raise UsageError(f"cannot read {what} {path}: {e.strerror}") from None


def _open(path: str, what: str, shown: str, flags: int = 0) -> tuple[int, int]:
    """A descriptor of the regular file path, opened for reading without blocking (opening a FIFO
    would wait for a writer, before any deadline exists), and its mode."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | flags)
    except OSError as e:
        raise UsageError(f"cannot read {what} {shown}: {e.strerror}") from None
    try:
        mode = os.fstat(fd).st_mode
    except OSError as e:
        os.close(fd)
        raise UsageError(f"cannot read {what} {shown}: {e.strerror}") from None
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise UsageError(f"{what} {shown} is not a regular file")
    return fd, mode
