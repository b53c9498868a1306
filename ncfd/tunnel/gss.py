"""Kerberos for Negotiate proxies: the initiator's side of SPNEGO through the system's GSSAPI library
(MIT's libgssapi_krb5.so.2, or Heimdal's libgssapi.so.3), with the user's ticket or client keytab.

A minimal binding with ctypes, written by hand: python-gssapi has no Linux wheels (it compiles
against libkrb5-dev: a compiler and a minute), pyspnego reaches Kerberos only through it, and the
corporate laptops that need single sign-on rarely have a compiler; the system library is on nearly
every Linux desktop and loads in milliseconds. Only the few calls an initiator needs are bound:
import a host-based name, init a security context, display a status, release what was made, and,
for -v, the default credential's name and the credential cache's.

The user's credentials are never delegated: neither GSS_C_DELEG_FLAG nor GSS_C_DELEG_POLICY_FLAG is
asked for, whatever krb5.conf says, since a proxy is not a service that needs the user's TGT.
Calls that may ask the KDC are made in a helper thread by the caller, bounded by the deadline.
"""

from __future__ import annotations

import ctypes

from ncfd.errors import AuthFailed

GSS_C_MUTUAL_FLAG = 2
GSS_C_REPLAY_FLAG = 4
GSS_C_DELEG_FLAG = 1
GSS_C_DELEG_POLICY_FLAG = 0x8000
REQUESTED = GSS_C_MUTUAL_FLAG | GSS_C_REPLAY_FLAG

GSS_S_COMPLETE = 0
GSS_S_CONTINUE_NEEDED = 1
GSS_C_GSS_CODE, GSS_C_MECH_CODE = 1, 2
_MAJOR_MASK = 0xFFFF0000
GSS_S_NO_CRED = 7 << 16
GSS_S_CREDENTIALS_EXPIRED = 11 << 16

# Kerberos error codes (the krb5 com_err table, protocol errors first; the same in MIT and Heimdal)
# and MIT's own for an empty or missing credential cache.
_KRB5 = -1765328384
KRB5KDC_ERR_S_PRINCIPAL_UNKNOWN = (_KRB5 + 7) & 0xFFFFFFFF
KRB5KDC_ERR_C_PRINCIPAL_UNKNOWN = (_KRB5 + 6) & 0xFFFFFFFF
KRB5KRB_AP_ERR_TKT_EXPIRED = (_KRB5 + 32) & 0xFFFFFFFF
KRB5_KDC_UNREACH = (_KRB5 + 156) & 0xFFFFFFFF
KRB5_FCC_NOFILE = (_KRB5 + 195) & 0xFFFFFFFF
KRB5_CC_NOTFOUND = (_KRB5 + 141) & 0xFFFFFFFF
KG_EMPTY_CCACHE = 39756044
_NO_TICKET = (KRB5_FCC_NOFILE, KRB5_CC_NOTFOUND, KG_EMPTY_CCACHE)

# OIDs, DER contents octets: GSS_C_NT_HOSTBASED_SERVICE 1.2.840.113554.1.2.1.4, SPNEGO 1.3.6.1.5.5.2,
# Kerberos 5 1.2.840.113554.1.2.2.
_HOSTBASED = b"\x2a\x86\x48\x86\xf7\x12\x01\x02\x01\x04"
_SPNEGO = b"\x2b\x06\x01\x05\x05\x02"
_KRB5_MECH = b"\x2a\x86\x48\x86\xf7\x12\x01\x02\x02"
# By soname: ctypes.util.find_library would run ldconfig, which takes longer than the rest.
LIBRARIES = ("libgssapi_krb5.so.2", "libgssapi.so.3", "/System/Library/Frameworks/GSS.framework/GSS")


class Buffer(ctypes.Structure):
    _fields_ = (("length", ctypes.c_size_t), ("value", ctypes.c_void_p))


class Oid(ctypes.Structure):
    _fields_ = (("length", ctypes.c_uint32), ("elements", ctypes.c_void_p))


def _oid(der: bytes) -> tuple[Oid, ctypes.Array[ctypes.c_char]]:
    data = ctypes.create_string_buffer(der, len(der))
    return Oid(len(der), ctypes.cast(data, ctypes.c_void_p)), data


class Unavailable(AuthFailed):
    """No GSSAPI library here."""


_lib: ctypes.CDLL | None = None


def library() -> ctypes.CDLL:
    """The system's GSSAPI library, loaded and typed once."""
    global _lib
    if _lib is not None:
        return _lib
    for path in LIBRARIES:
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        u32p, vpp, buf = ctypes.POINTER(ctypes.c_uint32), ctypes.POINTER(ctypes.c_void_p), ctypes.POINTER(Buffer)
        oid = ctypes.POINTER(Oid)
        signatures = {
            "gss_import_name": (u32p, buf, oid, vpp),
            "gss_init_sec_context": (u32p, ctypes.c_void_p, vpp, ctypes.c_void_p, oid, ctypes.c_uint32,
                                     ctypes.c_uint32, ctypes.c_void_p, buf, ctypes.POINTER(oid), buf, u32p, u32p),
            "gss_display_status": (u32p, ctypes.c_uint32, ctypes.c_int, oid, u32p, buf),
            "gss_display_name": (u32p, ctypes.c_void_p, buf, ctypes.POINTER(oid)),
            "gss_inquire_cred": (u32p, ctypes.c_void_p, vpp, u32p, ctypes.POINTER(ctypes.c_int), vpp),
            "gss_release_buffer": (u32p, buf),
            "gss_release_name": (u32p, vpp),
            "gss_delete_sec_context": (u32p, vpp, buf),
        }  # fmt: skip
        for function, argtypes in signatures.items():
            getattr(lib, function).argtypes = argtypes
            getattr(lib, function).restype = ctypes.c_uint32
        _lib = lib
        return lib
    raise Unavailable(
        "a proxy wants Kerberos (Negotiate) and this system has no GSSAPI library "
        "(Debian/Ubuntu: apt install libgssapi-krb5-2; Fedora: dnf install krb5-libs); "
        "or give -P user for NTLM"
    )


def _status(lib: ctypes.CDLL, major: int, minor: int) -> str:
    """The library's own words for major and minor, as "major: minor"."""
    texts = []
    for code, kind in ((major, GSS_C_GSS_CODE), (minor, GSS_C_MECH_CODE)):
        if not code:
            continue
        context, ignored = ctypes.c_uint32(0), ctypes.c_uint32(0)
        while True:
            out = Buffer()
            lib.gss_display_status(ctypes.byref(ignored), code, kind, None, ctypes.byref(context), ctypes.byref(out))
            texts.append(ctypes.string_at(out.value, out.length).decode(errors="replace"))
            lib.gss_release_buffer(ctypes.byref(ignored), ctypes.byref(out))
            if not context.value:
                break
    unique = [t for i, t in enumerate(texts) if t and t not in texts[:i] and not t.startswith("Unspecified GSS")]
    return ": ".join(unique) or f"GSSAPI status {major:#x}/{minor:#x}"


class KerberosError(AuthFailed):
    """A Kerberos step failed; kind says how, for the message the caller makes."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(detail)
        self.kind = kind  # "no-ticket", "expired", "unknown-service", "kdc-unreachable", "other"
        self.detail = detail


class Initiator:
    """One SPNEGO security context towards service@host (HTTP@proxy), token by token."""

    def __init__(self, service: str, host: str) -> None:
        self.lib = library()
        self.target = f"{service}@{host}"
        self.context = ctypes.c_void_p()
        self.name = ctypes.c_void_p()
        self.complete = False
        self.flags = 0
        minor = ctypes.c_uint32()
        text = self.target.encode()
        name_buffer = Buffer(len(text), ctypes.cast(ctypes.c_char_p(text), ctypes.c_void_p))
        self._hostbased = _oid(_HOSTBASED)
        self._spnego = _oid(_SPNEGO)
        major = self.lib.gss_import_name(
            ctypes.byref(minor), ctypes.byref(name_buffer), ctypes.byref(self._hostbased[0]), ctypes.byref(self.name)
        )
        if major:
            raise KerberosError("other", f"cannot name {self.target}: {_status(self.lib, major, minor.value)}")

    def step(self, token: bytes | None) -> bytes:
        """The next token to send (empty when there is none), given the proxy's last (None at first)."""
        major, minor, produced = self._init(self._spnego[0], self.context, token)
        if major not in (GSS_S_COMPLETE, GSS_S_CONTINUE_NEEDED):
            raise self._error(major, minor, first=token is None)
        self.complete = major == GSS_S_COMPLETE
        return produced

    def _init(self, mech: Oid, context: ctypes.c_void_p, token: bytes | None) -> tuple[int, int, bytes]:
        minor, flags, lifetime = ctypes.c_uint32(), ctypes.c_uint32(), ctypes.c_uint32()
        incoming = None
        if token is not None:
            given = ctypes.create_string_buffer(token, len(token) or 1)
            incoming = ctypes.byref(Buffer(len(token), ctypes.cast(given, ctypes.c_void_p)))
        out = Buffer()
        major = self.lib.gss_init_sec_context(
            ctypes.byref(minor), None, ctypes.byref(context), self.name, ctypes.byref(mech), REQUESTED, 0, None,
            incoming, None, ctypes.byref(out), ctypes.byref(flags), ctypes.byref(lifetime),
        )  # fmt: skip
        try:
            produced = ctypes.string_at(out.value, out.length) if out.length else b""
        finally:
            self.lib.gss_release_buffer(ctypes.byref(ctypes.c_uint32()), ctypes.byref(out))
        self.flags = flags.value
        return major, minor.value, produced

    def _error(self, major: int, minor: int, first: bool) -> KerberosError:
        detail = _status(self.lib, major, minor)
        if (major & _MAJOR_MASK) == GSS_S_NO_CRED:
            return KerberosError("no-ticket", detail)
        if first:
            # SPNEGO reports its own minor code for whatever went wrong underneath (the text is
            # Kerberos' own, but may be translated): ask Kerberos directly, for its code.
            plain = ctypes.c_void_p()
            major, minor, _ = self._init(_oid(_KRB5_MECH)[0], plain, None)
            if plain:
                self.lib.gss_delete_sec_context(ctypes.byref(ctypes.c_uint32()), ctypes.byref(plain), None)
        if (major & _MAJOR_MASK) == GSS_S_NO_CRED or minor in _NO_TICKET:
            return KerberosError("no-ticket", detail)
        if (major & _MAJOR_MASK) == GSS_S_CREDENTIALS_EXPIRED or minor == KRB5KRB_AP_ERR_TKT_EXPIRED:
            return KerberosError("expired", detail)
        if minor == KRB5KDC_ERR_S_PRINCIPAL_UNKNOWN:
            return KerberosError("unknown-service", detail)
        if minor == KRB5_KDC_UNREACH:
            return KerberosError("kdc-unreachable", detail)
        return KerberosError("other", detail)

    def __del__(self) -> None:
        ignored = ctypes.c_uint32()
        if getattr(self, "context", None):
            self.lib.gss_delete_sec_context(ctypes.byref(ignored), ctypes.byref(self.context), None)
        if getattr(self, "name", None):
            self.lib.gss_release_name(ctypes.byref(ignored), ctypes.byref(self.name))


def whoami() -> str | None:
    """The default credential's principal (alice@CORP.EXAMPLE), None when there is none."""
    lib = library()
    minor, name, ignored = ctypes.c_uint32(), ctypes.c_void_p(), ctypes.c_uint32()
    if lib.gss_inquire_cred(ctypes.byref(minor), None, ctypes.byref(name), None, None, None):
        return None
    try:
        out = Buffer()
        if lib.gss_display_name(ctypes.byref(minor), name, ctypes.byref(out), None):
            return None
        text = ctypes.string_at(out.value, out.length).decode(errors="replace")
        lib.gss_release_buffer(ctypes.byref(ignored), ctypes.byref(out))
        return text
    finally:
        lib.gss_release_name(ctypes.byref(ignored), ctypes.byref(name))


def credential_cache() -> str:
    """The credential cache Kerberos uses by default, as libkrb5 names it (for -v)."""
    import os

    for path in ("libkrb5.so.3", "libkrb5.so.26"):
        try:
            krb5 = ctypes.CDLL(path)
        except OSError:
            continue
        context = ctypes.c_void_p()
        krb5.krb5_init_context.argtypes = (ctypes.POINTER(ctypes.c_void_p),)
        krb5.krb5_cc_default_name.argtypes = (ctypes.c_void_p,)
        krb5.krb5_cc_default_name.restype = ctypes.c_char_p
        krb5.krb5_free_context.argtypes = (ctypes.c_void_p,)
        if krb5.krb5_init_context(ctypes.byref(context)):
            break
        try:
            found = krb5.krb5_cc_default_name(context)
            return found.decode(errors="replace") if found else "the default"
        finally:
            krb5.krb5_free_context(context)
    return os.environ.get("KRB5CCNAME", "the default")
