"""A Negotiate (Kerberos) proxy for what squid does not show: MIT's own acceptor,
gss_accept_sec_context through ctypes with the proxy's keytab, reporting the flags the client's
token carried (delegation above all) and sending its final token on the 200 (mutual
authentication), or a tampered one, or a rejection."""

from __future__ import annotations

import base64
import ctypes
import threading
from dataclasses import dataclass, field

from ncfd.tunnel.gss import GSS_C_DELEG_FLAG, Buffer, Oid, library
from tests.support.fakeservers import FAKE_TARGET_BANNER, Handler, Session

_lock = threading.Lock()  # KRB5_KTNAME and KRB5_CONFIG are process-wide: one exchange at a time


@dataclass
class Accepted:
    """What the acceptor saw of one client's token."""

    flags: int = 0
    delegated: bool = False
    client: str = ""
    tokens: list[bytes] = field(default_factory=list)


def _accept(token: bytes) -> tuple[int, bytes, int, bool, str]:
    """major status, output token, ret_flags, whether a credential was delegated, client name."""
    lib = library()
    u32p, vpp, buf = ctypes.POINTER(ctypes.c_uint32), ctypes.POINTER(ctypes.c_void_p), ctypes.POINTER(Buffer)
    lib.gss_accept_sec_context.argtypes = (u32p, vpp, ctypes.c_void_p, buf, ctypes.c_void_p, vpp,
                                           ctypes.POINTER(ctypes.POINTER(Oid)), buf, u32p, u32p, vpp)  # fmt: skip
    lib.gss_accept_sec_context.restype = ctypes.c_uint32
    minor, flags, lifetime = ctypes.c_uint32(), ctypes.c_uint32(), ctypes.c_uint32()
    context, name, delegated = ctypes.c_void_p(), ctypes.c_void_p(), ctypes.c_void_p()
    data = ctypes.create_string_buffer(token, len(token))
    incoming = Buffer(len(token), ctypes.cast(data, ctypes.c_void_p))
    out = Buffer()
    major = lib.gss_accept_sec_context(
        ctypes.byref(minor), ctypes.byref(context), None, ctypes.byref(incoming), None, ctypes.byref(name), None,
        ctypes.byref(out), ctypes.byref(flags), ctypes.byref(lifetime), ctypes.byref(delegated),
    )  # fmt: skip
    produced = ctypes.string_at(out.value, out.length) if out.length else b""
    client = ""
    if name:
        shown = Buffer()
        lib.gss_display_name(ctypes.byref(minor), name, ctypes.byref(shown), None)
        client = ctypes.string_at(shown.value, shown.length).decode()
    return major, produced, flags.value, bool(delegated), client


def negotiate_proxy(seen: Accepted, final: str = "token", close_after_407: bool = False) -> Handler:
    """A handler for FakeServer: CONNECT with Negotiate, Kerberos checked by MIT's acceptor.
    final: "token" (the acceptor's final token on the 200), "none", "tampered", or "reject";
    close_after_407: the challenge comes as HTTP/1.0 and the connection closes after it."""

    def handle(s: Session) -> None:
        while True:
            request = s.recv_until(b"\r\n\r\n").decode()
            auth = [line.split(" ", 2)[2] for line in request.split("\r\n") if line.startswith("Proxy-Authorization:")]
            if not auth and close_after_407:
                s.send(b"HTTP/1.0 407 Auth\r\nProxy-Authenticate: Negotiate\r\n\r\n")
                return
            if not auth or final == "reject":
                s.send(b"HTTP/1.1 407 Auth\r\nProxy-Authenticate: Negotiate\r\nContent-Length: 0\r\n\r\n")
                continue
            token = base64.b64decode(auth[0])
            seen.tokens.append(token)
            with _lock:
                major, out, seen.flags, seen.delegated, seen.client = _accept(token)
            if major != 0:
                s.send(b"HTTP/1.1 403 Kerberos failed\r\nContent-Length: 0\r\n\r\n")
                return
            if final == "tampered":
                out = out[:-1] + bytes([out[-1] ^ 1])
            header = f"Proxy-Authenticate: Negotiate {base64.b64encode(out).decode()}\r\n" if final != "none" else ""
            s.send(f"HTTP/1.1 200 Connection established\r\n{header}\r\n".encode() + FAKE_TARGET_BANNER)
            return s.echo()

    return handle


__all__ = ["GSS_C_DELEG_FLAG", "Accepted", "negotiate_proxy"]
