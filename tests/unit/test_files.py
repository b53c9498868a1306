"""Files the user names, read through one module (ncfd.files): never opened in a way that blocks (a
FIFO waits for a writer), a regular file or one line saying it is not, a secret's file private to
its owner and not a symbolic link; the same words from the command line's check, the password,
netrc and header files, and the API's TLS client certificate."""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

import pytest

import ncfd
from ncfd.errors import UsageError
from ncfd.files import check_regular, read_private
from ncfd.options import parse_args
from ncfd.password import read_password_file
from tests.support.fakeservers import FakeServer, silent


def fifo(tmp_path: Path, name: str = "fifo") -> Path:
    path = tmp_path / name
    os.mkfifo(path, 0o600)
    return path


def within(seconds: float, call: object) -> BaseException | None:
    """What call() raised, in a thread given seconds: a FIFO opened the blocking way never returns."""
    raised: list[BaseException | None] = []

    def run() -> None:
        try:
            call()  # type: ignore[operator]
        except BaseException as e:  # the test's to look at
            raised.append(e)
        else:
            raised.append(None)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert raised, f"still blocked after {seconds} s"
    return raised[0]


def test_a_fifo_is_refused_at_once_whoever_reads_it(tmp_path: Path) -> None:
    path = fifo(tmp_path)
    for call, what in ((lambda: check_regular(str(path), "--proxy-cacert file"), "--proxy-cacert file"),
                       (lambda: read_private(str(path), "--proxy-netrc file"), "--proxy-netrc file"),
                       (lambda: read_password_file(str(path)), "proxy password file")):  # fmt: skip
        e = within(10, call)
        assert isinstance(e, UsageError) and str(e) == f"{what} {path} is not a regular file"


def test_the_command_line_names_the_file_as_it_was_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    fifo(tmp_path, "ca.pem")
    with pytest.raises(UsageError) as e:
        parse_args(["--proxy-cacert", "~/ca.pem", "-x", "http://p:3128", "h", "22"])
    assert str(e.value) == "--proxy-cacert file ~/ca.pem is not a regular file"
    with pytest.raises(UsageError) as e:
        parse_args(["--proxy-cacert", "~/none.pem", "-x", "http://p:3128", "h", "22"])
    assert str(e.value) == "cannot read --proxy-cacert file ~/none.pem: No such file or directory"
    (tmp_path / "ca.crt").write_text("")
    assert parse_args(["--proxy-cacert", "~/ca.crt", "-x", "http://p:3128", "h", "22"]).proxy_cacert == str(
        tmp_path / "ca.crt"
    )


def test_a_secrets_file_is_private_to_its_owner_and_no_link(tmp_path: Path) -> None:
    secret = tmp_path / "password"
    secret.write_bytes(b"hunter2\nnot this line\n")
    secret.chmod(0o600)
    assert read_password_file(str(secret)) == "hunter2"
    assert read_private(str(secret), "proxy password file", 4) == b"hunt"
    secret.chmod(0o640)
    with pytest.raises(UsageError) as e:
        read_private(str(secret), "proxy password file")
    assert str(e.value) == f"proxy password file {secret} is readable by others: chmod 600 it (as ssh requires of keys)"
    secret.chmod(0o600)
    link = tmp_path / "link"
    link.symlink_to(secret)
    with pytest.raises(UsageError) as e:
        read_private(str(link), "proxy password file")
    assert str(e.value) == f"cannot read proxy password file {link}: Too many levels of symbolic links"
    check_regular(str(link), "--proxy-cacert file")  # a CA file may be a link: it is no secret
    with pytest.raises(UsageError) as e:
        check_regular(str(tmp_path), "--proxy-cacert file")
    assert str(e.value) == f"--proxy-cacert file {tmp_path} is not a regular file"


def test_the_apis_client_certificate_that_is_a_fifo_is_refused_at_once(tmp_path: Path) -> None:
    """No command line checked it first: the TLS set-up does, before OpenSSL opens it by name."""
    key = tmp_path / "key.pem"
    key.write_text("-----BEGIN PRIVATE KEY-----\n")
    key.chmod(0o600)
    cert = fifo(tmp_path, "cert.pem")
    assert stat.S_ISFIFO(cert.stat().st_mode)
    with FakeServer(silent) as proxy:
        e = within(20, lambda: ncfd.connect("h", 22, proxy=f"https://127.0.0.1:{proxy.port}", cert=str(cert),
                                            key=str(key), timeout=10))  # fmt: skip
    assert isinstance(e, ncfd.UsageError) and str(e) == f"the TLS client certificate {cert} is not a regular file"
