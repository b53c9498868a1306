"""The per-user cache ($XDG_CACHE_HOME/ncfd, else ~/.cache/ncfd; the directory 0700, files 0600):
PAC files as fetched, proxies found dead, and what proxy discovery found. Nothing else touches it.

Every write goes to a temporary file in the same directory, renamed over the old one: dozens of
ncfd processes starting at once (Ansible's forks) each read a whole old file or a whole new one,
never a torn one; the last writer wins. The cache only saves time: a cache that cannot be read or
written is as good as an empty one (the callers say so under -v).
"""

from __future__ import annotations

import os
import time

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


def _read(name: str) -> str | None:
    try:
        with open(os.path.join(directory(), name), encoding="utf-8") as f:
            return f.read()
    except (OSError, UnicodeDecodeError):
        return None


def _write(name: str, text: str) -> None:
    """Atomically replace the file; OSError when the cache cannot be written."""
    import tempfile

    folder = directory()
    os.makedirs(folder, mode=0o700, exist_ok=True)
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


def load_pac(url: str) -> PacCopy | None:
    data = _read(_pac_name(url))
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


def dead_proxies() -> dict[str, float]:
    """When each proxy (by key, "HTTP proxy a:8080") was last found dead, within DEAD_FOR."""
    found: dict[str, float] = {}
    now = time.time()
    for line in (_read("dead-proxies") or "").splitlines():
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


def discovered(network: str) -> str | None:
    """What WPAD found on this network ("none", or the PAC URL), while it is trusted."""
    now = time.time()
    for line in (_read("discovery") or "").splitlines():
        parts = line.split(" ", 2)
        if len(parts) == 3 and parts[0] == network:
            try:
                if now < float(parts[1]):
                    return parts[2]
            except ValueError:
                return None
    return None


def remember_discovery(network: str, found: str | None) -> None:
    until = time.time() + (FOUND_FOR if found else NOT_FOUND_FOR)
    kept = [line for line in (_read("discovery") or "").splitlines() if not line.startswith(network + " ")]
    _write("discovery", "".join(f"{line}\n" for line in [*kept[-20:], f"{network} {until!r} {found or 'none'}"]))
