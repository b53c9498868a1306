"""ncfd: reach a TCP service through HTTP, SOCKS, PAC-chosen or Kerberos proxies, and hand the socket
to ssh (the ncfd command) or to Python code (ncfd.connect)."""

from ncfd.errors import (
    AuthFailed,
    ConnectFailed,
    FdPassError,
    NcfdError,
    PacError,
    ProxyError,
    ResolveError,
    TimedOut,
    UsageError,
)
from ncfd.version import __version__

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ncfd.api import check, connect, connect_async


def __getattr__(name: str) -> object:
    # The API is imported when a program first asks for it: the command line never does, and every
    # module it imports is start-up time.
    if name in ("check", "connect", "connect_async"):
        from ncfd import api

        return getattr(api, name)
    raise AttributeError(f"module 'ncfd' has no attribute {name!r}")


__all__ = [
    "AuthFailed",
    "ConnectFailed",
    "FdPassError",
    "NcfdError",
    "PacError",
    "ProxyError",
    "ResolveError",
    "TimedOut",
    "UsageError",
    "__version__",
    "check",
    "connect",
    "connect_async",
]
