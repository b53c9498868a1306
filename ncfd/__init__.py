"""ncfd: reach a TCP service through an HTTP or SOCKS proxy and hand the socket to ssh."""

__version__ = "0.2.0"
