"""The per-user cache ($XDG_CACHE_HOME/ncfd, else ~/.cache/ncfd; the directory 0700, files 0600):
PAC files as fetched, proxies found dead, and what proxy discovery found. Nothing else touches it.

Every write goes to a temporary file in the same directory, renamed over the old one: dozens of
ncfd processes starting at once (Ansible's forks) each read a whole old file or a whole new one,
never a torn one; the last writer wins. The cache only saves time: a cache that cannot be read or
written is as good as an empty one (the callers say so under -v).

A cache someone else could have written (a shared HOME, a mistaken sudo -E: the directory or a file
owned by another user, writable by group or others, a file not a regular one) is ignored, with a
warning once per process, and not written to: its PAC copy would choose the proxy. What is read is
believed no further than ncfd would have written it: a discovery for FOUND_FOR at most, a death for
DEAD_FOR, a PAC copy's freshness as pac_fetch caps it.
"""

from __future__ import annotations

import errno
import os
import stat
import time

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ncfd.log import Log

DEAD_FOR = 300.0  # seconds a proxy found dead is tried last
MAX_DEAD = 256  # proxies the file keeps, the latest found dead: it stays small whatever PACs list
FOUND_FOR = 1800.0  # seconds a discovered PAC location is trusted without probing again
NOT_FOUND_FOR = 300.0  # seconds "discovery found nothing" is trusted
_PAC_MAGIC = "ncfd-pac-cache 1"


def directory() -> str:
    base = os.environ.get("XDG_CACHE_HOME", "")
    if not os.path.isabs(base):
        base = os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "ncfd")


class Untrusted(OSError):
    """The cache directory, or a file in it, is not this user's alone; str() says why."""

    def __init__(self, why: str) -> None:
        super().__init__(errno.EPERM, why)

    def __str__(self) -> str:
        return str(self.strerror)


_warned: set[tuple[Log, str]] = set()  # what was said about an untrusted cache, to whom: once per process


def _check(fd: int) -> None:
    """Untrusted unless fd, as opened, is this user's own, and only this user can write to it."""
    found = os.fstat(fd)
    if found.st_uid != os.geteuid():
        raise Untrusted(f"it belongs to uid {found.st_uid}, not to uid {os.geteuid()}")
    if found.st_mode & 0o022:
        raise Untrusted(f"others can write to it (mode {stat.S_IMODE(found.st_mode):04o})")


def _open_directory() -> int:
    """The cache directory, opened and checked: a descriptor to open its files relative to. (A
    symbolic link to it may be followed: what it leads to is checked.)"""
    fd = os.open(directory(), os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        _check(fd)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _read(name: str, what: str, warn: Log | None) -> str | None:
    """The file's text; None when there is none, it cannot be read, or it cannot be trusted (warn
    says why). Not through a symbolic link, not waiting on a FIFO, and checked on the descriptor
    opened, not by a name someone could swap in between."""
    try:
        folder = _open_directory()
    except Untrusted as e:
        _ignore(f"the cache {directory()}: {e}", warn)
        return None
    except OSError:
        return None
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=folder)
    except OSError as e:
        if e.errno == errno.ELOOP:
            _ignore(f"{what} in {directory()}: it is a symbolic link", warn)
        return None
    finally:
        os.close(folder)
    try:
        with os.fdopen(fd, encoding="utf-8") as f:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise Untrusted("it is not a regular file")
            _check(fd)
            return f.read()
    except Untrusted as e:
        _ignore(f"{what} in {directory()}: {e}", warn)
        return None
    except (OSError, UnicodeDecodeError):
        return None


def _ignore(why: str, warn: Log | None) -> None:
    """Say why, once per process to each listener."""
    if warn is not None and (warn, why) not in _warned:
        _warned.add((warn, why))
        warn(f"ignoring {why}")


def _write(name: str, text: str) -> None:
    """Atomically replace the file; OSError when the cache cannot be written (Untrusted when it is
    not this user's alone)."""
    import tempfile

    folder = directory()
    os.makedirs(folder, mode=0o700, exist_ok=True)
    os.close(_open_directory())  # Untrusted: not into someone else's hands either
    fd, temporary = tempfile.mkstemp(prefix=f".{name}.", dir=folder)  # mode 0600
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(temporary, os.path.join(folder, name))
    except BaseException:
        os.unlink(temporary)
        raise


# --- PAC files ----------------------------------------------------------------------------------


class PacCopy:
    """A PAC file as last fetched, with what HTTP said about keeping and revalidating it."""

    __slots__ = ("etag", "fetched", "fresh_until", "last_modified", "text", "url")

    def __init__(
        self, url: str, text: str, fetched: float, fresh_until: float, etag: str = "", last_modified: str = ""
    ) -> None:
        self.url, self.text, self.fetched, self.fresh_until = url, text, fetched, fresh_until
        self.etag, self.last_modified = etag, last_modified

    def fresh(self) -> bool:
        return self.fetched <= time.time() < self.fresh_until


def _pac_name(url: str) -> str:
    """A file name for url's copy: its readable part, and a checksum to tell apart URLs that read the
    same (the file names its URL, so a collision only costs a fetch). Not hashlib: its import alone
    takes longer than the rest of a warm-cache PAC lookup."""
    import binascii

    readable = "".join(c if c.isalnum() or c in "-." else "_" for c in url.partition("://")[2])[:80]
    return f"pac-{readable}-{binascii.crc32(url.encode()):08x}"


def load_pac(url: str, warn: Log) -> PacCopy | None:
    data = _read(_pac_name(url), f"the cached copy of PAC {url}", warn)
    if data is None:
        return None
    head, sep, text = data.partition("\n\n")
    fields = dict(line.partition(" ")[::2] for line in head.split("\n")[1:])
    if not sep or not head.startswith(_PAC_MAGIC + "\n") or fields.get("url") != url:
        return None  # another format, or a hash collision
    try:
        fetched, fresh_until = float(fields["fetched"]), float(fields["fresh-until"])
    except (KeyError, ValueError):
        return None
    return PacCopy(url, text, fetched, fresh_until, fields.get("etag", ""), fields.get("last-modified", ""))


def store_pac(copy: PacCopy) -> None:
    head = [_PAC_MAGIC, f"url {copy.url}", f"fetched {copy.fetched!r}", f"fresh-until {copy.fresh_until!r}",
            f"etag {copy.etag}", f"last-modified {copy.last_modified}"]  # fmt: skip
    _write(_pac_name(copy.url), "\n".join(head) + "\n\n" + copy.text)


# --- proxies found dead ---------------------------------------------------------------------------


def dead_proxies(warn: Log | None = None) -> dict[str, float]:
    """When each proxy (by key, "HTTP proxy a:8080") was last found dead, within DEAD_FOR."""
    found: dict[str, float] = {}
    now = time.time()
    for line in (_read("dead-proxies", "the memory of dead proxies", warn) or "").splitlines():
        when, _, key = line.partition(" ")
        try:
            if now - DEAD_FOR < float(when) <= now:
                found[key] = max(found.get(key, 0.0), float(when))
        except ValueError:
            continue
    return found


def note_proxies(dead: list[str], alive: list[str]) -> None:
    """Proxies found dead now, and proxies found alive again, in one write."""
    found = dead_proxies()
    for key in alive:
        found.pop(key, None)
    now = time.time()
    for key in dead:
        found[key] = now
    kept = sorted(found.items(), key=lambda item: item[1])[-MAX_DEAD:]
    _write("dead-proxies", "".join(f"{when!r} {key}\n" for key, when in kept))


# --- what discovery found ---------------------------------------------------------------------


def discovered(network: str, warn: Log) -> str | None:
    """What WPAD found on this network ("none", or the PAC URL), while it is trusted."""
    now = time.time()
    for line in (_read("discovery", "the memory of proxy discovery", warn) or "").splitlines():
        parts = line.split(" ", 2)
        if len(parts) == 3 and parts[0] == network:
            try:
                # No longer than remember_discovery would have said, whoever wrote it.
                if now < float(parts[1]) <= now + FOUND_FOR:
                    return parts[2]
            except ValueError:
                return None
    return None


def remember_discovery(network: str, found: str | None) -> None:
    until = time.time() + (FOUND_FOR if found else NOT_FOUND_FOR)
    memory = _read("discovery", "the memory of proxy discovery", None) or ""
    kept = [line for line in memory.splitlines() if not line.startswith(network + " ")]
    _write("discovery", "".join(f"{line}\n" for line in [*kept[-20:], f"{network} {until!r} {found or 'none'}"]))
