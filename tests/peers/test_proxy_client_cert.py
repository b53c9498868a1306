"""TLS client certificates for HTTPS proxies (--proxy-cert, --proxy-key; cert=, key= in the API),
against stunnel requiring one that its CA signed, in TLS 1.3 and 1.2: the real ssh logging in with
it, and one clear line without it, with one another CA signed, with a key wrongly protected or
wrongly unlocked."""

from __future__ import annotations

import contextlib
import os
import subprocess
from pathlib import Path

import pytest

import ncfd
from ncfd.errors import AuthFailed, ProxyError
from tests.support import peers
from tests.support.fdharness import NCFD, Handoff, ncfd_command, run_fdpass

KEY_ENV = "NCFD_PROXY_KEY_PASSPHRASE"


def clean_env(**extra: str) -> dict[str, str]:
    """No passphrase, no askpass, no display: nothing could be asked unless the test says so."""
    drop = (KEY_ENV, "NCFD_PROXY_PASSWORD", "SSH_ASKPASS", "SSH_ASKPASS_REQUIRE", "DISPLAY", "WAYLAND_DISPLAY")
    return {**{k: v for k, v in os.environ.items() if k not in drop}, **extra}


def proxy_args(proxy: peers.TlsProxy, *cert: str) -> list[str]:
    return ["-x", f"https://localhost:{proxy.port}", "--proxy-cacert", str(proxy.cafile), *cert]


def handoff(proxy: peers.TlsProxy, target: peers.Target, *cert: str, env: dict[str, str] | None = None) -> Handoff:
    argv = ["setsid", *NCFD, "-F", *proxy_args(proxy, *cert), "127.0.0.1", str(target.port)]
    return run_fdpass(argv, env=env or clean_env())


def assert_one_line(r: Handoff, code: int, line: str) -> None:
    assert r.sock is None, "a descriptor was passed"
    assert (r.returncode, r.stderr) == (code, f"ncfd: {line}\n")
    assert r.elapsed < 15


def test_ssh_logs_in_through_an_https_proxy_requiring_a_client_certificate(
    sshd: peers.Sshd, https_proxy_client_cert: peers.TlsProxy
) -> None:
    proxy, work = https_proxy_client_cert, https_proxy_client_cert.workdir
    args = " ".join(
        proxy_args(proxy, "--proxy-cert", str(work / "client.pem"), "--proxy-key", str(work / "client.key"))
    )
    argv = sshd.ssh_argv(f"{ncfd_command()} -F {args} %h %p", "echo", "in")
    r = subprocess.run(argv, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL, env=clean_env())
    assert (r.returncode, r.stdout) == (0, "in\n"), r.stderr


def test_without_a_certificate_it_is_one_line_saying_the_proxy_asked_for_one(
    https_proxy_client_cert: peers.TlsProxy, banner_target: peers.Target
) -> None:
    r = handoff(https_proxy_client_cert, banner_target)
    proxy = f"HTTPS proxy localhost:{https_proxy_client_cert.port}"
    if https_proxy_client_cert.tls_max == "TLSv1.2":
        # TLS 1.2 has no alert saying a certificate is wanted: "handshake failure", and a hint.
        assert_one_line(r, 5, f"{proxy}: TLS handshake failed: SSLV3_ALERT_HANDSHAKE_FAILURE (if it wants a TLS "
                              "client certificate, give one with --proxy-cert)")  # fmt: skip
    else:
        assert_one_line(r, 5, f"{proxy} asked for a TLS client certificate and none was given (--proxy-cert file)")


def test_a_certificate_the_proxys_ca_did_not_sign_is_one_line_saying_it_was_refused(
    https_proxy_client_cert: peers.TlsProxy, banner_target: peers.Target
) -> None:
    work = https_proxy_client_cert.workdir
    rogue = work / "rogue.pem"
    proxy = f"HTTPS proxy localhost:{https_proxy_client_cert.port}"
    # Under TLS 1.3 the alert races our first write: it is read first, or after the write fails.
    for _ in range(4):
        r = handoff(
            https_proxy_client_cert, banner_target, "--proxy-cert", str(rogue), "--proxy-key", str(work / "rogue.key")
        )
        assert_one_line(r, 5, f'{proxy} refused the TLS client certificate {rogue} (TLS alert "unknown ca")')


def test_the_certificate_and_its_key_in_one_file(
    https_proxy_client_cert: peers.TlsProxy, banner_target: peers.Target, tmp_path: Path
) -> None:
    work = https_proxy_client_cert.workdir
    both = tmp_path / "both.pem"
    both.write_bytes((work / "client.pem").read_bytes() + (work / "client.key").read_bytes())
    both.chmod(0o600)
    handoff(https_proxy_client_cert, banner_target, "--proxy-cert", str(both)).assert_banner_and_echo(
        peers.TARGET_BANNER
    )
    # Holding the key, the file must be private.
    both.chmod(0o644)
    r = handoff(https_proxy_client_cert, banner_target, "--proxy-cert", str(both))
    assert_one_line(r, 2, f"TLS client key file {both} is readable by others: chmod 600 it (as ssh requires of keys)")


def test_a_key_readable_by_others_is_refused_before_anything_is_sent(
    https_proxy_client_cert: peers.TlsProxy, banner_target: peers.Target, tmp_path: Path
) -> None:
    work = https_proxy_client_cert.workdir
    key = tmp_path / "client.key"
    key.write_bytes((work / "client.key").read_bytes())
    key.chmod(0o640)
    r = handoff(
        https_proxy_client_cert, banner_target, "--proxy-cert", str(work / "client.pem"), "--proxy-key", str(key)
    )
    assert_one_line(r, 2, f"TLS client key file {key} is readable by others: chmod 600 it (as ssh requires of keys)")


def askpass(tmp_path: Path, answer: str) -> tuple[Path, Path]:
    """An SSH_ASKPASS program answering answer, and the file where it writes each prompt."""
    asked = tmp_path / "asked"
    script = tmp_path / "askpass"
    script.write_text(f'#!/bin/sh\nprintf "%s\\n" "$1" >> {asked}\necho "{answer}"\n')
    script.chmod(0o755)
    return script, asked


def test_an_encrypted_keys_passphrase_is_asked_once_and_only_for_an_encrypted_key(
    https_proxy_client_cert: peers.TlsProxy, banner_target: peers.Target, tmp_path: Path
) -> None:
    work = https_proxy_client_cert.workdir
    script, asked = askpass(tmp_path, peers.CLIENT_KEY_PASSPHRASE)
    env = clean_env(SSH_ASKPASS=str(script), SSH_ASKPASS_REQUIRE="force")
    plain = ["--proxy-cert", str(work / "client.pem"), "--proxy-key", str(work / "client.key")]
    handoff(https_proxy_client_cert, banner_target, *plain, env=env).assert_banner_and_echo(peers.TARGET_BANNER)
    assert not asked.exists()
    encrypted = ["--proxy-cert", str(work / "client.pem"), "--proxy-key", str(work / "client-encrypted.key")]
    handoff(https_proxy_client_cert, banner_target, *encrypted, env=env).assert_banner_and_echo(peers.TARGET_BANNER)
    assert asked.read_text() == f"Passphrase for the TLS client key {work / 'client-encrypted.key'}: \n"
    # The environment's passphrase comes first, and is the only one asked.
    asked.unlink()
    env = {**env, KEY_ENV: peers.CLIENT_KEY_PASSPHRASE}
    handoff(https_proxy_client_cert, banner_target, *encrypted, env=env).assert_banner_and_echo(peers.TARGET_BANNER)
    assert not asked.exists()


def test_a_wrong_passphrase_or_none_to_be_had_is_one_line(
    https_proxy_client_cert: peers.TlsProxy, banner_target: peers.Target
) -> None:
    work = https_proxy_client_cert.workdir
    key = work / "client-encrypted.key"
    encrypted = ["--proxy-cert", str(work / "client.pem"), "--proxy-key", str(key)]
    r = handoff(https_proxy_client_cert, banner_target, *encrypted, env=clean_env(**{KEY_ENV: "wrong"}))
    assert_one_line(r, 6, f"wrong passphrase for the TLS client key {key}")
    r = handoff(https_proxy_client_cert, banner_target, *encrypted)
    assert_one_line(r, 6, "cannot ask for the TLS client key passphrase: no terminal and no SSH_ASKPASS with a "
                          f"display; set {KEY_ENV}")  # fmt: skip
    r = handoff(https_proxy_client_cert, banner_target, *encrypted, env=clean_env(**{KEY_ENV: "a" * 2000}))
    assert_one_line(r, 6, f"the passphrase for the TLS client key {key} is longer than 1024 bytes")


def test_the_right_passphrase_for_a_key_not_the_certificates_says_so(
    https_proxy_client_cert: peers.TlsProxy, banner_target: peers.Target
) -> None:
    """Not "wrong passphrase": the key opened, it is the certificate that does not go with it."""
    work = https_proxy_client_cert.workdir
    key = work / "client-encrypted.key"
    r = handoff(https_proxy_client_cert, banner_target, "--proxy-cert", str(work / "rogue.pem"), "--proxy-key",
                str(key), env=clean_env(**{KEY_ENV: peers.CLIENT_KEY_PASSPHRASE}))  # fmt: skip
    assert_one_line(r, 2, f"the TLS client key {key} is not the key of the certificate {work / 'rogue.pem'}")


def test_a_certificate_that_is_a_fifo_is_refused_at_once(
    https_proxy_client_cert: peers.TlsProxy, banner_target: peers.Target, tmp_path: Path
) -> None:
    """OpenSSL reads the certificate by name: a FIFO without a writer would block it for ever."""
    fifo = tmp_path / "cert.pem"
    os.mkfifo(fifo, 0o600)
    key = https_proxy_client_cert.workdir / "client.key"
    r = handoff(https_proxy_client_cert, banner_target, "--proxy-cert", str(fifo), "--proxy-key", str(key))
    assert_one_line(r, 2, f"--proxy-cert file {fifo} is not a regular file")


def test_a_key_not_the_certificates_is_a_usage_error(
    https_proxy_client_cert: peers.TlsProxy, banner_target: peers.Target
) -> None:
    work = https_proxy_client_cert.workdir
    key = work / "rogue.key"
    r = handoff(
        https_proxy_client_cert, banner_target, "--proxy-cert", str(work / "client.pem"), "--proxy-key", str(key)
    )
    assert_one_line(r, 2, f"the TLS client key {key} is not the key of the certificate {work / 'client.pem'}")


def test_the_api_presents_the_certificate_and_says_the_same_when_refused(
    https_proxy_client_cert: peers.TlsProxy, banner_target: peers.Target
) -> None:
    work = https_proxy_client_cert.workdir
    proxy = f"https://localhost:{https_proxy_client_cert.port}"
    calls: list[int] = []

    def passphrase() -> str:
        calls.append(1)
        return peers.CLIENT_KEY_PASSPHRASE

    sock = ncfd.connect("127.0.0.1", banner_target.port, proxy=proxy, cacert=str(https_proxy_client_cert.cafile),
                        cert=str(work / "client.pem"), key=str(work / "client-encrypted.key"),
                        key_passphrase=passphrase, timeout=15)  # fmt: skip
    with sock:
        sock.settimeout(10)
        assert sock.recv(len(peers.TARGET_BANNER), 0) == peers.TARGET_BANNER
    assert calls == [1]
    with pytest.raises(AuthFailed, match="is encrypted: give its passphrase as key_passphrase="):
        ncfd.connect("127.0.0.1", banner_target.port, proxy=proxy, cacert=str(https_proxy_client_cert.cafile),
                     cert=str(work / "client.pem"), key=str(work / "client-encrypted.key"), timeout=15)  # fmt: skip
    with pytest.raises(ProxyError, match=r'refused the TLS client certificate .*rogue\.pem \(TLS alert "unknown ca"\)'):
        ncfd.connect("127.0.0.1", banner_target.port, proxy=proxy, cacert=str(https_proxy_client_cert.cafile),
                     cert=str(work / "rogue.pem"), key=str(work / "rogue.key"), timeout=15)  # fmt: skip


def test_a_refusal_read_after_a_failed_write_is_still_the_refusal(https_proxy_client_cert: peers.TlsProxy) -> None:
    """TLS 1.3: the server checks our certificate after the handshake, alerts and closes, and our
    first write may come after that and fail; the alert, waiting unread, says why. Against stunnel
    either order happens: here, in-process, the write comes only once the server has closed."""
    import socket
    import ssl
    import threading

    from ncfd.net.tls import refusal_after
    from ncfd.request import ClientCert

    work = https_proxy_client_cert.workdir
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(work / "server.pem", work / "server.key")
    server.verify_mode = ssl.CERT_REQUIRED
    server.load_verify_locations(work / "client-ca.pem")
    client = ssl.create_default_context(cafile=work / "ca.pem")
    client.minimum_version = ssl.TLSVersion.TLSv1_3
    client.load_cert_chain(work / "rogue.pem", work / "rogue.key")
    ours, theirs = socket.socketpair()

    def refuse() -> None:
        with contextlib.suppress(ssl.SSLError, OSError), server.wrap_socket(theirs, server_side=True):
            pass

    thread = threading.Thread(target=refuse)
    thread.start()
    tls = client.wrap_socket(ours, server_hostname="localhost")
    thread.join(10)
    assert not thread.is_alive()
    theirs.close()
    try:
        with pytest.raises(OSError) as failed:
            tls.sendall(b"CONNECT h:22 HTTP/1.1\r\n\r\n")
        cert = str(work / "rogue.pem")
        refused = refusal_after(tls, failed.value, "HTTPS proxy p:443", ClientCert(cert, None, str))
    finally:
        tls.close()
    assert str(refused) == f'HTTPS proxy p:443 refused the TLS client certificate {cert} (TLS alert "unknown ca")'
