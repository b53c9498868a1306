"""TLS to an HTTPS proxy or a PAC server: verified against the system's CAs and --proxy-cacert, with
a client certificate for a server that asks for one. What comes after, the session being in this
process's memory, goes through ncfd.net.bridge.
"""

from __future__ import annotations

import socket

from ncfd.errors import AuthFailed, DeadProxy, NcfdError, ProxyError, UsageError

TYPE_CHECKING = False
if TYPE_CHECKING:
    import ssl

    from ncfd.deadline import Deadline
    from ncfd.log import Log
    from ncfd.request import ClientCert

# OpenSSL's X509_V_ERR_ codes that a CA given with --proxy-cacert can cure: unable to get the issuer
# certificate, self-signed certificate, self-signed one in the chain, unable to get the local issuer.
_UNKNOWN_ISSUER = (2, 18, 19, 20)
MAX_PEM = 1 << 20  # bytes of a client key file: a key is a few kilobytes
# The alerts a server sends about the client certificate (OpenSSL's reasons): TLS 1.3's for none
# given, and those for one it does not take. Under TLS 1.3 they come after the handshake, with the
# first read; under TLS 1.2, in it.
_CERTIFICATE_REQUIRED = "TLSV13_ALERT_CERTIFICATE_REQUIRED"
_CERTIFICATE_REFUSED = ("TLSV1_ALERT_UNKNOWN_CA", "SSLV3_ALERT_BAD_CERTIFICATE", "SSLV3_ALERT_CERTIFICATE_UNKNOWN",
                        "SSLV3_ALERT_CERTIFICATE_EXPIRED", "SSLV3_ALERT_CERTIFICATE_REVOKED",
                        "SSLV3_ALERT_UNSUPPORTED_CERTIFICATE", "TLSV1_ALERT_ACCESS_DENIED")  # fmt: skip


def start_tls(
    sock: socket.socket,
    host: str,
    peer: str,
    cafile: str | None,
    deadline: Deadline,
    log: Log,
    client: ClientCert | None = None,
) -> ssl.SSLSocket:
    """TLS to host (an HTTPS proxy, a PAC server; peer names it in messages), verified against
    the system CAs (and cafile), SNI from host, with client's certificate for a server that asks
    for one. The handshake's waits together are bounded by the socket timeout, set to what is left;
    a timeout is the caller's to name (its ncfd.deadline.Step), a failure is said here."""
    import ssl

    try:
        context = trusting(cafile)
    except (OSError, ssl.SSLError) as e:
        sock.close()
        raise ProxyError(f"cannot load --proxy-cacert {cafile}: {getattr(e, 'strerror', None) or e}") from None
    if client is not None:
        try:
            _load_client(context, client, deadline)
        except BaseException:
            sock.close()
            raise
    try:
        deadline.arm(sock)
        tls = context.wrap_socket(sock, server_hostname=host)
    except (NcfdError, TimeoutError):  # the deadline's end, in the words of the caller's step
        sock.close()
        raise
    # Dead: browsers try the next proxy after a TLS or certificate error of this one.
    except ssl.SSLCertVerificationError as e:
        sock.close()
        hint = ""
        if e.verify_code in _UNKNOWN_ISSUER:
            hint = (f" (signed by none of the system's CAs nor --proxy-cacert {cafile})" if cafile else
                    " (if a CA of your own signed it, give its certificate with --proxy-cacert file)")  # fmt: skip
        raise DeadProxy(f"{peer}: TLS certificate verification failed: {e.verify_message}{hint}") from None
    except (ssl.SSLError, OSError) as e:
        sock.close()
        refused = refusal(e, peer, client)
        if refused is not None:
            raise refused from None
        reason = getattr(e, "reason", None) or getattr(e, "strerror", None) or e
        # Under TLS 1.2 a server wanting a certificate and given none says only "handshake failure".
        hint = " (if it wants a TLS client certificate, give one with --proxy-cert)" if client is None else ""
        if reason != "SSLV3_ALERT_HANDSHAKE_FAILURE":
            hint = ""
        raise DeadProxy(f"{peer}: TLS handshake failed: {reason}{hint}") from None
    log(f"{peer}: {tls.version()}, certificate verified")
    return tls


def refusal(e: BaseException, peer: str, client: ClientCert | None) -> ProxyError | None:
    """The error for a TLS alert about our client certificate, if e is one: an answer of a live
    proxy (not a dead one to pass over), which the next proxy would give as well."""
    reason = getattr(e, "reason", None)
    if reason == _CERTIFICATE_REQUIRED and client is None:
        return ProxyError(f"{peer} asked for a TLS client certificate and none was given (--proxy-cert file)")
    if reason in _CERTIFICATE_REFUSED or reason == _CERTIFICATE_REQUIRED:
        said = str(reason).lower().partition("alert_")[2].replace("_", " ")
        given = f" {client.cert}" if client is not None else ""
        return ProxyError(f'{peer} refused the TLS client certificate{given} (TLS alert "{said}")')
    return None


def refusal_after(tls: socket.socket, e: OSError, peer: str, client: ClientCert | None) -> ProxyError | None:
    """refusal(e), or the refusal that made e: under TLS 1.3 the server may refuse our certificate and
    close before our first write, which then fails, with its alert waiting to be read."""
    refused = refusal(e, peer, client)
    if refused is not None or not hasattr(tls, "pending"):
        return refused
    try:
        tls.settimeout(0)  # the alert, if any, came before the close: no wait
        tls.recv(1)
    except OSError as alert:
        return refusal(alert, peer, client)
    return None


def _load_client(context: ssl.SSLContext, client: ClientCert, deadline: Deadline) -> None:
    """client's certificate and key into context. The key's file must be private to its owner, as
    ssh insists for keys; its passphrase is asked only when OpenSSL finds the key encrypted (a
    callable always: without one, OpenSSL would prompt on the terminal itself)."""
    import ssl

    from ncfd.files import check_regular, read_private

    key = client.key or client.cert
    text = read_private(key, "TLS client key file", MAX_PEM + 1)
    if len(text) > MAX_PEM:
        raise UsageError(f"TLS client key file {key} is longer than {MAX_PEM} bytes: not a PEM key")
    check_regular(client.cert, "the TLS client certificate")  # OpenSSL reads it by name: not a FIFO
    asked = []

    def passphrase() -> str:
        asked.append(True)
        return client.passphrase(deadline)

    try:
        context.load_cert_chain(client.cert, client.key, passphrase)
    except ValueError:  # the ssl module's bound on what it hands OpenSSL
        raise AuthFailed(f"the passphrase for the TLS client key {key} is longer than 1024 bytes") from None
    except ssl.SSLError as e:
        if e.reason == "KEY_VALUES_MISMATCH":
            raise UsageError(f"the TLS client key {key} is not the key of the certificate {client.cert}") from None
        if asked:
            raise AuthFailed(f"wrong passphrase for the TLS client key {key}") from None
        if b"PRIVATE KEY-----" not in text:
            raise UsageError(f"no PEM private key in {key}") from None
        raise UsageError(f"no PEM certificate in the TLS client certificate file {client.cert}") from None
    except OSError as e:
        raise UsageError(f"cannot read the TLS client certificate {client.cert}: {e.strerror or e}") from None


def trusting(cafile: str | None) -> ssl.SSLContext:
    """A verifying client context trusting the system's CAs, and those in cafile besides:
    create_default_context(cafile=) would trust cafile's instead, and fail every proxy or PAC
    server with a public certificate once --proxy-cacert is given."""
    import ssl

    context = ssl.create_default_context()
    if cafile is not None:
        context.load_verify_locations(cafile)
    return context
