"""Sockets and descriptors: dialling, TLS, the relay, passing the connected socket on."""
