"""Kerberos single sign-on at Negotiate proxies, against a real MIT KDC on loopback (a realm of its
own in a temp dir; the system's Kerberos files untouched) and squid with negotiate_kerberos_auth:
the real ssh logging in with no password anywhere, and each way it can fail, by its message and
exit code. What squid does not show (delegation, the proxy's final token) is checked against MIT's
own acceptor in a scripted proxy."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import peers
from tests.support.fakeservers import FAKE_TARGET_BANNER, FakeServer, silent
from tests.support.fdharness import NCFD, Handoff, ncfd_command, run_fdpass
from tests.support.krb_acceptor import GSS_C_DELEG_FLAG, Accepted, negotiate_proxy
from tests.support.peers import LB_NAME, PROXY_ALIAS, PROXY_NAME, REALM

PROXY_VARIABLES = ("https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY", "NCFD_PROXY_PASSWORD", "KRB5_CLIENT_KTNAME")
SERVICE = f"HTTP@{PROXY_NAME}"


@pytest.fixture
def env(kdc: peers.Kdc, tmp_path: Path) -> dict[str, str]:
    """A user of the test realm with no ticket yet (kdc.kinit(env) gives one), and no password
    anywhere: no NCFD_PROXY_PASSWORD, no askpass, no terminal."""
    base = {k: v for k, v in os.environ.items() if k not in PROXY_VARIABLES and k != "SSH_ASKPASS"}
    return {**base, **kdc.env(ccache=tmp_path / "ccache"), "XDG_CACHE_HOME": str(tmp_path / "cache")}


def through(proxy_port: int, target: peers.Target | FakeServer, env: dict[str, str], *args: str,
            name: str = PROXY_NAME) -> Handoff:  # fmt: skip
    argv = [*NCFD, "-F", *args, "-X", "connect", "-x", f"{name}:{proxy_port}", "127.0.0.1", str(target.port)]
    return run_fdpass(["setsid", *argv], env=env)  # no terminal: nothing could be prompted for


def assert_fails(r: Handoff, message: str) -> None:
    assert r.sock is None and r.returncode == 6, r.stderr
    assert r.stderr.count("\n") == 1 and r.stderr.startswith("ncfd: "), r.stderr
    assert message in r.stderr, r.stderr


# --- single sign-on -------------------------------------------------------------------------------


def test_ssh_logs_in_through_squid_with_the_users_ticket_and_no_password_anywhere(
    kdc: peers.Kdc, squid_kerberos: peers.Proxy, sshd: peers.Sshd, env: dict[str, str]
) -> None:
    kdc.kinit(env)
    proxy = f"{PROXY_NAME}:{squid_kerberos.port}"
    argv = sshd.ssh_argv(f"{ncfd_command()} -F -v -X connect -x {proxy} %h %p", "echo", "in")
    r = subprocess.run(["setsid", *argv], capture_output=True, text=True, timeout=60, env=env,
                       stdin=subprocess.DEVNULL)  # fmt: skip
    assert (r.returncode, r.stdout) == (0, "in\n"), r.stderr
    # -v says which principal and which credential cache.
    assert f"with Kerberos for {SERVICE}: alice@{REALM}, credential cache {env['KRB5CCNAME']}" in r.stderr
    assert "password" not in r.stderr.lower()
    assert f"alice@{REALM}" in (squid_kerberos.workdir / "access.log").read_text()


def test_a_client_keytab_is_enough(
    kdc: peers.Kdc, squid_kerberos: peers.Proxy, banner_target: peers.Target, env: dict[str, str]
) -> None:
    r = through(squid_kerberos.port, banner_target, {**env, "KRB5_CLIENT_KTNAME": str(kdc.user_keytab)})
    r.assert_banner_and_echo(banner_target.banner)


def test_a_proxy_named_by_an_alias_works_when_krb5_conf_canonicalizes(
    kdc: peers.Kdc, squid_kerberos: peers.Proxy, banner_target: peers.Target, tmp_path: Path
) -> None:
    for canonicalize in ("true", "false"):
        env = {**os.environ, **kdc.env(ccache=tmp_path / f"cc-{canonicalize}", dns_canonicalize_hostname=canonicalize)}
        kdc.kinit(env)
        r = through(squid_kerberos.port, banner_target, env, name=PROXY_ALIAS)
        if canonicalize == "true":
            r.assert_banner_and_echo(banner_target.banner)
        else:
            assert_fails(
                r,
                f"the Kerberos KDC does not know HTTP proxy {PROXY_ALIAS}:{squid_kerberos.port}'s principal"
                f" HTTP@{PROXY_ALIAS} (Server HTTP/{PROXY_ALIAS}@{REALM} not found in Kerberos database)",
            )


# --- each way it fails, one line, exit 6 ------------------------------------------------------------


def test_no_ticket_says_to_run_kinit(
    squid_kerberos: peers.Proxy, banner_target: peers.Target, env: dict[str, str]
) -> None:
    r = through(squid_kerberos.port, banner_target, env)
    assert_fails(
        r,
        f"HTTP proxy {PROXY_NAME}:{squid_kerberos.port} wants Kerberos (Negotiate) and there is no"
        f" Kerberos ticket: run kinit (the proxy's principal is {SERVICE}), or give -P user for NTLM",
    )


def test_an_expired_ticket(
    kdc: peers.Kdc, squid_kerberos: peers.Proxy, banner_target: peers.Target, env: dict[str, str]
) -> None:
    kdc.kinit(env, "-l", "2s")
    deadline = time.monotonic() + 30
    # Until the library calls it expired: kvno asks for the proxy's ticket as ncfd would (klist's
    # verdict comes up to a second earlier).
    kvno = ["kvno", "-q", f"HTTP/{PROXY_NAME}@{REALM}"]
    while subprocess.run(kvno, env=env, capture_output=True).returncode == 0:
        assert time.monotonic() < deadline
        time.sleep(0.2)
    r = through(squid_kerberos.port, banner_target, env)
    assert_fails(r, f"the Kerberos ticket has expired (Ticket expired): run kinit (for {SERVICE} at HTTP proxy")


def test_a_kdc_that_refuses(
    kdc: peers.Kdc, squid_kerberos: peers.Proxy, banner_target: peers.Target, tmp_path: Path
) -> None:
    env = {**os.environ, **kdc.env(ccache=tmp_path / "cc")}
    kdc.kinit(env)  # a ticket-granting ticket, but no ticket for the proxy yet
    down = {**env, **kdc.env(ccache=tmp_path / "cc", kdc=f"127.0.0.1:{peers.free_port()}")}
    r = through(squid_kerberos.port, banner_target, down)
    assert_fails(r, f"cannot reach the Kerberos KDC for a ticket for {SERVICE} (for HTTP proxy {PROXY_NAME}:")
    assert f"Cannot contact any KDC for realm '{REALM}'" in r.stderr


def test_a_kdc_that_does_not_answer_is_bounded_by_w(
    kdc: peers.Kdc, squid_kerberos: peers.Proxy, banner_target: peers.Target, tmp_path: Path
) -> None:
    env = {**os.environ, **kdc.env(ccache=tmp_path / "cc")}
    kdc.kinit(env)
    with FakeServer(silent) as mute:
        start = time.monotonic()
        silent_kdc = {**env, **kdc.env(ccache=tmp_path / "cc", kdc=f"127.0.0.1:{mute.port}")}
        r = through(squid_kerberos.port, banner_target, silent_kdc, "-w", "3")
        elapsed = time.monotonic() - start
    assert_fails(r, "no answer from the Kerberos KDC within 3s, getting a ticket for")
    assert elapsed < 3 + 10


@pytest.fixture
def keytab_and_silent_kdc(kdc: peers.Kdc, tmp_path: Path) -> Iterator[dict[str, str]]:
    """The user's client keytab, no credential cache, and a KDC that accepts and never answers
    (krb5.conf sends everything by TCP): whatever asks for a ticket waits."""
    with FakeServer(silent) as mute:
        yield {
            **kdc.env(ccache=tmp_path / "no-ccache", kdc=f"127.0.0.1:{mute.port}"),
            "KRB5_CLIENT_KTNAME": str(kdc.user_keytab),
        }


@pytest.mark.parametrize("verbose", [False, True], ids=["quiet", "-v"])
def test_a_client_keytab_and_a_kdc_that_does_not_answer_is_bounded_by_w(
    keytab_and_silent_kdc: dict[str, str], env: dict[str, str], verbose: bool
) -> None:
    start = time.monotonic()
    with FakeServer(negotiate_proxy(Accepted())) as proxy:
        r = through(proxy.port, proxy, {**env, **keytab_and_silent_kdc}, "-w", "3", *(["-v"] if verbose else []))
    elapsed = time.monotonic() - start
    assert r.sock is None and r.returncode == 6, r.stderr
    assert r.stderr.splitlines()[-1] == (
        f"ncfd: no answer from the Kerberos KDC within 3s, getting a ticket for {SERVICE}"
        f" (for HTTP proxy {PROXY_NAME}:{proxy.port})"
    ), r.stderr
    assert elapsed < 3 + 10, r.stderr


@pytest.mark.parametrize("verbose", [False, True], ids=["quiet", "debug-logging"])
def test_the_api_with_a_client_keytab_and_a_kdc_that_does_not_answer_is_bounded_by_timeout(
    keytab_and_silent_kdc: dict[str, str], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
    verbose: bool,
) -> None:  # fmt: skip
    import threading

    import ncfd

    for name in ("KRB5CCNAME", *PROXY_VARIABLES):
        monkeypatch.delenv(name, raising=False)
    for name, value in keytab_and_silent_kdc.items():
        monkeypatch.setenv(name, value)
    if verbose:
        caplog.set_level("DEBUG", logger="ncfd")
    raised: list[BaseException] = []

    def attempt() -> None:
        try:
            ncfd.connect("127.0.0.1", 22, proxy=f"http://{PROXY_NAME}:{proxy.port}", timeout=3).close()
        except BaseException as e:
            raised.append(e)

    with FakeServer(negotiate_proxy(Accepted())) as proxy:
        start = time.monotonic()
        caller = threading.Thread(target=attempt, daemon=True)
        caller.start()
        caller.join(3 + 10)
        elapsed = time.monotonic() - start
    assert not caller.is_alive() and elapsed < 3 + 10
    assert [type(e) for e in raised] == [ncfd.AuthFailed]
    assert str(raised[0]) == (
        f"no answer from the Kerberos KDC within 3s, getting a ticket for {SERVICE}"
        f" (for HTTP proxy {PROXY_NAME}:{proxy.port})"
    )


def test_a_proxy_that_rejects_the_ticket(kdc: peers.Kdc, env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    kdc.kinit(env)
    monkeypatch.setenv("KRB5_KTNAME", f"FILE:{kdc.http_keytab}")
    monkeypatch.setenv("KRB5_CONFIG", str(kdc.krb5_conf))
    with FakeServer(negotiate_proxy(Accepted(), final="reject")) as proxy:
        r = through(proxy.port, proxy, env)
    assert_fails(r, f"HTTP proxy {PROXY_NAME}:{proxy.port} rejected the Kerberos ticket of alice@{REALM} for {SERVICE}")


# --- what squid does not show: delegation and the proxy's final token --------------------------------


@pytest.fixture
def acceptor_env(kdc: peers.Kdc, env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """MIT's acceptor in this process, with the proxy's keytab; the client's ticket in env."""
    kdc.kinit(env)
    monkeypatch.setenv("KRB5_KTNAME", f"FILE:{kdc.http_keytab}")
    monkeypatch.setenv("KRB5_CONFIG", str(kdc.krb5_conf))
    yield env


def test_the_users_credentials_are_never_delegated_whatever_krb5_conf_says(
    kdc: peers.Kdc, acceptor_env: dict[str, str], tmp_path: Path
) -> None:
    # The realm marks the proxy ok-as-delegate and the client asks for forwardable tickets: still no.
    kdc.admin(f"modprinc +ok_as_delegate HTTP/{PROXY_NAME}@{REALM}")
    try:
        willing = {**acceptor_env, **kdc.env(ccache=tmp_path / "cc", forwardable="true")}
        kdc.kinit(willing, "-f")
        seen = Accepted()
        with FakeServer(negotiate_proxy(seen)) as proxy:
            r = through(proxy.port, proxy, willing)
            assert r.returncode == 0, r.stderr
            assert r.read_exactly(len(FAKE_TARGET_BANNER)) == FAKE_TARGET_BANNER
            r.close()
    finally:
        kdc.admin(f"modprinc -ok_as_delegate HTTP/{PROXY_NAME}@{REALM}")
    assert seen.client == f"alice@{REALM}"
    assert not seen.flags & GSS_C_DELEG_FLAG and not seen.delegated
    assert len(seen.tokens) == 1


def test_the_proxys_final_token_is_verified(acceptor_env: dict[str, str]) -> None:
    with FakeServer(negotiate_proxy(Accepted(), final="token")) as proxy:
        r = through(proxy.port, proxy, acceptor_env, "-v")
        r.assert_banner_and_echo(FAKE_TARGET_BANNER)
    assert "the proxy's final Kerberos token verified (mutual authentication)" in r.stderr
    with FakeServer(negotiate_proxy(Accepted(), final="none")) as proxy:
        r = through(proxy.port, proxy, acceptor_env, "-v")
        r.assert_banner_and_echo(FAKE_TARGET_BANNER)
    assert "the proxy sent no final Kerberos token: mutual authentication is not confirmed" in r.stderr


def test_the_ticket_goes_on_a_fresh_connection_when_the_proxy_closes_after_its_challenge(
    acceptor_env: dict[str, str],
) -> None:
    with FakeServer(negotiate_proxy(Accepted(), close_after_407=True)) as proxy:
        r = through(proxy.port, proxy, acceptor_env)
        r.assert_banner_and_echo(FAKE_TARGET_BANNER)
        assert len(proxy.sessions) == 2


def test_a_final_token_that_does_not_verify_is_refused(acceptor_env: dict[str, str]) -> None:
    with FakeServer(negotiate_proxy(Accepted(), final="tampered")) as proxy:
        r = through(proxy.port, proxy, acceptor_env)
    assert_fails(r, "the proxy's final Kerberos token does not verify (")


# --- NTLM inside Negotiate when there is no ticket ------------------------------------------------------


def test_no_ticket_and_a_password_answers_negotiate_with_ntlm(
    squid_negotiate_ntlm: peers.Proxy, banner_target: peers.Target, env: dict[str, str]
) -> None:
    r = through(
        squid_negotiate_ntlm.port, banner_target, {**env, "NCFD_PROXY_PASSWORD": "any"}, "-v", "-P", "CORP\\alice"
    )
    assert "no Kerberos ticket: answering" in r.stderr and "negotiate challenge with NTLM as CORP\\alice" in r.stderr
    r.assert_banner_and_echo(banner_target.banner)


# --- a proxy whose principal is not HTTP@ its name: --proxy-service-name ---------------------------------


def test_ssh_logs_in_through_a_proxy_whose_principal_is_a_load_balancers(
    kdc: peers.Kdc, squid_kerberos_elsewhere: peers.Proxy, sshd: peers.Sshd, env: dict[str, str]
) -> None:
    kdc.kinit(env)
    proxy = f"{PROXY_NAME}:{squid_kerberos_elsewhere.port}"
    command = f"{ncfd_command()} -F -v --proxy-service-name HTTP@{LB_NAME} -X connect -x {proxy} %h %p"
    r = subprocess.run(["setsid", *sshd.ssh_argv(command, "echo", "in")], capture_output=True, text=True, timeout=60,
                       env=env, stdin=subprocess.DEVNULL)  # fmt: skip
    assert (r.returncode, r.stdout) == (0, "in\n"), r.stderr
    assert f"with Kerberos for HTTP@{LB_NAME}: alice@{REALM}" in r.stderr
    assert f"alice@{REALM}" in (squid_kerberos_elsewhere.workdir / "access.log").read_text()


def test_a_service_alone_is_that_service_at_the_proxys_name(
    kdc: peers.Kdc, squid_kerberos_elsewhere: peers.Proxy, banner_target: peers.Target, env: dict[str, str]
) -> None:
    kdc.kinit(env)
    r = through(squid_kerberos_elsewhere.port, banner_target, env, "-v", "--proxy-service-name", "proxy")
    r.assert_banner_and_echo(banner_target.banner)
    assert f"with Kerberos for proxy@{PROXY_NAME}: alice@{REALM}" in r.stderr


def test_without_the_service_name_the_proxy_rejects_the_ticket_for_its_name(
    kdc: peers.Kdc, squid_kerberos_elsewhere: peers.Proxy, banner_target: peers.Target, env: dict[str, str]
) -> None:
    kdc.kinit(env)
    r = through(squid_kerberos_elsewhere.port, banner_target, env)
    assert_fails(
        r,
        f"HTTP proxy {PROXY_NAME}:{squid_kerberos_elsewhere.port} rejected the Kerberos ticket of alice@{REALM}"
        f" for {SERVICE}",
    )


def test_a_service_name_the_kdc_does_not_know_is_named(
    kdc: peers.Kdc, squid_kerberos_elsewhere: peers.Proxy, banner_target: peers.Target, env: dict[str, str]
) -> None:
    kdc.kinit(env)
    r = through(squid_kerberos_elsewhere.port, banner_target, env, "--proxy-service-name", "HTTP@nowhere.ncfd.test")
    assert_fails(
        r,
        f"the Kerberos KDC does not know HTTP proxy {PROXY_NAME}:{squid_kerberos_elsewhere.port}'s principal"
        f" HTTP@nowhere.ncfd.test (Server HTTP/nowhere.ncfd.test@{REALM} not found in Kerberos database)",
    )


def test_the_api_takes_the_service_name(
    kdc: peers.Kdc, squid_kerberos_elsewhere: peers.Proxy, banner_target: peers.Target, env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    import ncfd

    kdc.kinit(env)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    proxy = f"http://{PROXY_NAME}:{squid_kerberos_elsewhere.port}"
    with ncfd.connect("127.0.0.1", banner_target.port, proxy=proxy, service_name=f"HTTP@{LB_NAME}", timeout=20) as s:
        s.settimeout(10)
        assert s.recv(len(banner_target.banner), socket.MSG_WAITALL) == banner_target.banner
    rejected = re.escape(f"rejected the Kerberos ticket of alice@{REALM} for {SERVICE}")
    with pytest.raises(ncfd.AuthFailed, match=rejected):
        ncfd.connect("127.0.0.1", banner_target.port, proxy=proxy, timeout=20)
    with pytest.raises(ncfd.UsageError, match=re.escape(f"invalid Kerberos service name 'HTTP/{LB_NAME}@{REALM}'")):
        ncfd.connect("127.0.0.1", banner_target.port, proxy=proxy, service_name=f"HTTP/{LB_NAME}@{REALM}")
