"""ncfd: reach a TCP service through HTTP, SOCKS, PAC-chosen or Kerberos proxies, and hand the socket
to ssh (the ncfd command) or to Python code (ncfd.connect)."""

__version__ = "0.2.0"

from ncfd.api import connect, connect_async
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
    "connect",
    "connect_async",
]
