"""--proxy-pac end to end: PAC files served by nginx (conditional GET for real), the routes they
choose tried in order with the real ssh logging in, failover past a dead proxy and its memory, the
cache, and hostile PACs and PAC servers, each one clear line, no descriptor, within -w."""

from __future__ import annotations

import os
import socket
import struct
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from ncfd.route.choice import MAX_ROUTES
from tests.support import peers
from tests.support.fakeservers import FAKE_TARGET_BANNER, FakeServer, Session, silent, socks4_proxy, socks5_proxy
from tests.support.fdharness import NCFD, run_fdpass, run_ncfd
from tests.support.pac import PROXY_VARIABLES, assert_fails, handoff, plant, remembered_dead, returns


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """ncfd's environment: a cache of its own, and no proxy from the test runner's environment."""
    cache = tmp_path / "cache"
    return {**{k: v for k, v in os.environ.items() if k not in PROXY_VARIABLES}, "XDG_CACHE_HOME": str(cache)}


# --- the main job ---------------------------------------------------------------------------------


def speaks_socks4_or_5(s: Session) -> None:
    """A SOCKS proxy of the version the client's first byte asks for (dante speaks both, so
    reaching the target through it does not tell which was spoken)."""
    (socks4_proxy() if s.conn.recv(1, socket.MSG_PEEK) == b"\x04" else socks5_proxy())(s)


@pytest.mark.parametrize(("keyword", "version"), [("SOCKS", 4), ("SOCKS4", 4), ("SOCKS5", 5)])
def test_a_socks_entry_speaks_its_version(tmp_path: Path, env: dict[str, str], keyword: str, version: int) -> None:
    """A name, so that who resolves it shows: SOCKS4 cannot carry one (browsers resolve it
    themselves, not SOCKS4A), SOCKS5 passes it to the proxy."""
    pac = tmp_path / "proxy.pac"
    with FakeServer(speaks_socks4_or_5) as proxy:
        pac.write_text(returns(f"{keyword} 127.0.0.1:{proxy.port}"))
        r = run_fdpass([*NCFD, "-F", "--proxy-pac", str(pac), "localhost", "2222"], env=env)
        r.assert_banner_and_echo(FAKE_TARGET_BANNER)
        [session] = proxy.settled()
    port = struct.pack("!H", 2222)
    if version == 4:  # CONNECT, the address resolved here, no user id
        request = b"\x04\x01" + port + socket.inet_aton("127.0.0.1") + b"\x00"
        assert session.received.startswith(request), session.received
    else:  # the greeting, then CONNECT to the name
        assert session.received.startswith(b"\x05"), session.received
        assert b"\x05\x01\x00\x03\x09localhost" + port in session.received, session.received


def test_a_silent_socks5_entry_alone_is_one_line_about_the_pac(tmp_path: Path, env: dict[str, str]) -> None:
    pac = tmp_path / "proxy.pac"
    with FakeServer(silent) as mute:
        pac.write_text(returns(f"SOCKS5 127.0.0.1:{mute.port}"))
        r = handoff(str(pac), mute, env)
    assert_fails(r, 5, f"SOCKS5 proxy 127.0.0.1:{mute.port} did not answer the SOCKS5 greeting within 3s: the PAC")
    assert "-X connect" not in r.stderr


def socks5_refuses(s: Session) -> None:
    _, n = s.recv_exactly(2)
    s.recv_exactly(n)
    s.send(b"\x05\x00")
    s.recv_exactly(4 + 4 + 2)  # an IPv4 destination
    s.send(bytes([5, 5, 0, 1, 0, 0, 0, 0, 0, 0]))


def refuses_with(reply: bytes, *, then_close: bool = False) -> Callable[[Session], None]:
    def handle(s: Session) -> None:
        for _ in range(2):  # the request, and with credentials the request again
            s.recv_until(b"\r\n\r\n")
            if then_close and _:
                return
            s.send(reply)

    return handle


BASIC_407 = b'HTTP/1.1 407 Auth\r\nProxy-Authenticate: Basic realm="x"\r\nContent-Length: 0\r\n\r\n'
ANSWERS = {  # entry keyword, server, exit status, message
    "403": ("PROXY", refuses_with(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n"), 5,
            'HTTP proxy {proxy} refused CONNECT 127.0.0.1:{port}: "HTTP/1.1 403 Forbidden"'),
    "wrong-password": ("PROXY", refuses_with(BASIC_407), 6,
                       "proxy authentication failed for alice at HTTP proxy {proxy}"),
    "closes-after-a-407": ("PROXY", refuses_with(BASIC_407, then_close=True), 5,
                           "HTTP proxy {proxy} closed the connection without answering"),
    "socks5-refuses-the-destination": ("SOCKS5", socks5_refuses, 5,
                                       "SOCKS5 proxy {proxy} could not connect to 127.0.0.1:{port}: Connection"),
}  # fmt: skip


@pytest.mark.parametrize("case", ANSWERS)
def test_an_answer_is_not_a_dead_proxy_it_ends_the_run(tmp_path: Path, env: dict[str, str], case: str) -> None:
    keyword, server, code, message = ANSWERS[case]
    pac = tmp_path / "proxy.pac"
    with FakeServer(server) as answering, FakeServer(silent) as second:
        pac.write_text(returns(f"{keyword} 127.0.0.1:{answering.port}; PROXY 127.0.0.1:{second.port}"))
        # Allowed the password (a PAC's proxy gets none otherwise): a wrong one is an answer.
        r = handoff(str(pac), second, {**env, "NCFD_PROXY_PASSWORD": "s3cret"}, "-P", "alice",
                    "--proxy-auth-hosts", "127.0.0.1")  # fmt: skip
        assert second.settled() == []
    assert_fails(r, code, message.format(proxy=f"127.0.0.1:{answering.port}", port=second.port))
    assert remembered_dead(env) == []  # a proxy that answers is alive, whatever it answered


def test_a_pac_on_disk_and_as_a_file_url(tmp_path: Path, env: dict[str, str], banner_target: peers.Target) -> None:
    path = tmp_path / "local.pac"
    path.write_text(returns("DIRECT"))
    for location in (str(path), f"file://{path}"):
        handoff(location, banner_target, env).assert_banner_and_echo(banner_target.banner)
    r = handoff(str(tmp_path / "missing.pac"), banner_target, env)
    assert_fails(r, 9, f"cannot read PAC file {tmp_path / 'missing.pac'}: No such file or directory")


# --- hostile PACs and PAC servers -----------------------------------------------------------------


def not_here(case: str) -> tuple[str, str]:
    """A PAC URL whose server is not on this network, and how -v says so."""
    if case == "unresolvable":
        return "http://pac.invalid/proxy.pac", 'cannot resolve PAC server "pac.invalid"'
    port = peers.free_port()
    return f"http://127.0.0.1:{port}/proxy.pac", f"connect to PAC server 127.0.0.1 port {port} failed"


@pytest.mark.parametrize("case", ["unresolvable", "refused"])
def test_an_optional_pac_whose_server_is_not_here_means_direct(
    env: dict[str, str], banner_target: peers.Target, case: str
) -> None:
    """Off the corporate network, with --proxy-pac-optional: direct, and -v says why; without it,
    an error as ever."""
    url, why = not_here(case)
    r = handoff(url, banner_target, env, "-v", "--proxy-pac-optional")
    r.assert_banner_and_echo(banner_target.banner)
    [said] = [line for line in r.stderr.splitlines() if line.startswith("ncfd: --proxy-pac-optional: ")]
    assert said.startswith(f"ncfd: --proxy-pac-optional: cannot fetch PAC {url}: {why}"), said
    assert said.endswith("; connecting directly"), said
    assert_fails(handoff(url, banner_target, env), 9, f"ncfd: cannot fetch PAC {url}: {why}")


@pytest.mark.parametrize("age", ["fresh", "stale"])
@pytest.mark.parametrize("case", ["unresolvable", "refused"])
def test_an_optional_pac_with_a_cached_copy_uses_the_copy(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch, case: str, age: str
) -> None:
    url, _ = not_here(case)
    now = time.time()
    plant(env, monkeypatch, url, "PROXY cached.proxy.example:3128", now - 3600, now + (600 if age == "fresh" else -60))
    r = run_ncfd(["--show-route", "--proxy-pac-optional", "--proxy-pac", url, "ssh.example", "22"], env=env)
    assert r.returncode == 0, r.stderr
    assert r.stdout.decode().splitlines()[1:] == [
        f"source: PAC {url}",
        "PAC answer: PROXY cached.proxy.example:3128",
        "route 1: HTTP proxy cached.proxy.example:3128",
    ]
    assert (b"; using the copy fetched 60 min ago" in r.stderr) == (age == "stale"), r.stderr


def test_a_pac_server_redirecting_to_a_broken_url_is_one_clear_line(env: dict[str, str]) -> None:
    def redirects(s: Session) -> None:
        s.recv_until(b"\r\n\r\n")
        s.send(b"HTTP/1.1 302 Found\r\nLocation: http://[pac/proxy.pac\r\nContent-Length: 0\r\n\r\n")

    with FakeServer(redirects) as server, FakeServer(silent) as target:
        url = f"http://127.0.0.1:{server.port}/proxy.pac"
        r = handoff(url, target, env, "-w", "3")
    assert_fails(r, 9, f"cannot fetch PAC {url}: PAC {url}: redirected to an invalid URL: 'http://[pac/proxy.pac'")


# --- a PAC's long list ------------------------------------------------------------------------------


def test_twenty_thousand_dead_entries_end_in_one_short_line_well_within_w(env: dict[str, str]) -> None:
    """Each refused at once, yet the deadline went on rewriting the dead-proxy file after each (3,521
    routes in -w 30, then a timeout). Only the first entries are tried, the file is written once, and
    the line stays short."""
    with socket.socket() as probe:  # a port nobody listens on, on any address
        probe.bind(("0.0.0.0", 0))
        port = probe.getsockname()[1]
    pac = f"""function FindProxyForURL(url, host) {{
        var entries = [];
        for (var i = 0; i < 20000; i++) entries.push("PROXY 127.1." + (i >> 8) + "." + (i & 255) + ":{port}");
        return entries.join("; ");
    }}"""
    path = Path(env["XDG_CACHE_HOME"]).parent / "long.pac"
    path.write_text(pac)
    with FakeServer(silent) as target:
        r = handoff(str(path), target, env, "-w", "20")
        assert target.settled() == []
    first = f"HTTP proxy 127.1.0.0:{port}: connect to HTTP proxy 127.1.0.0 port {port} failed: Connection refused"
    assert_fails(r, 4, f"ncfd: no route to 127.0.0.1:{target.port} worked: {first}; ")
    assert r.stderr.endswith(f"; and {MAX_ROUTES - 3} more (-v names each)\n") and len(r.stderr) < 1000, r.stderr
    assert r.elapsed < 20
    dead = (Path(env["XDG_CACHE_HOME"]) / "ncfd" / "dead-proxies").read_text().splitlines()
    assert len(dead) == MAX_ROUTES and dead[0].endswith(f" HTTP proxy 127.1.0.0:{port}")
    shown = run_ncfd(["--show-route", "--proxy-pac", str(path), "h", "22"], env=env).stdout.decode()
    assert f"note: the PAC gave 20000 entries: only the first {MAX_ROUTES} are tried\n" in shown
    assert shown.count("\nroute ") == MAX_ROUTES


# --- what a PAC may not put on the screen ----------------------------------------------------------


# A cleared screen, red, a bell, a C1 CSI, DEL: as the PAC writes them in JavaScript, and as ncfd shows them.
ESCAPES = SHOWN = r"\x1b[2J\x1b[31mred\x07\x9b1m\x7f"


def test_control_bytes_from_a_pac_are_escaped_on_stdout_and_stderr(tmp_path: Path, env: dict[str, str]) -> None:
    pac = tmp_path / "escapes.pac"
    pac.write_text(
        f'function FindProxyForURL(u, h) {{ alert("{ESCAPES}"); return "PROXY p.example:8080; {ESCAPES}"; }}'
    )
    r = run_ncfd(["-v", "--show-route", "--proxy-pac", str(pac), "ssh.example", "22"], env=env)
    assert r.returncode == 0, r.stderr
    assert r.stdout.decode().splitlines() == [
        "destination: ssh.example port 22",
        f"source: PAC {pac}",
        f"PAC answer: PROXY p.example:8080; {SHOWN}",
        f"note: skipped '{SHOWN}': not a PAC entry ncfd knows",
        "route 1: HTTP proxy p.example:8080",
    ]
    assert r.stderr.decode().splitlines() == [
        f"ncfd: PAC {pac} alert: {SHOWN}",
        f'ncfd: PAC {pac} (read from the file): FindProxyForURL("https://ssh.example:22/", "ssh.example") ='
        f' "PROXY p.example:8080; {SHOWN}"',
        f"ncfd: PAC {pac}: skipping '{SHOWN}': not an entry ncfd knows",
    ]
    assert r.stdout.isascii() and r.stderr.isascii()


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (f'throw "{ESCAPES}";', f"PAC {{pac}}: threw '{SHOWN}' while running FindProxyForURL"),
        (f'throw new SyntaxError("{ESCAPES}");', f"PAC {{pac}}: cannot be loaded: SyntaxError: {SHOWN}"),
        (f'return "{ESCAPES}";', f'PAC {{pac}} answered "{SHOWN}" for ssh.example: no entry ncfd can use'),
        # 20 MiB of ESC: the line holds the first 500, escaped.
        ('return new Array((20 << 20) + 1).join("\\x1b");',
         'PAC {pac} answered "' + "\\x1b" * 500 + '..." for ssh.example: no entry ncfd can use'),
        ('throw new Array((20 << 20) + 1).join("\\x1b");',
         "PAC {pac}: threw '" + "\\x1b" * 500 + "...' while running FindProxyForURL"),
    ],
    ids=["throw", "syntax-error", "answer", "20-MiB-answer", "20-MiB-throw"],
)  # fmt: skip
def test_a_pac_error_with_control_bytes_is_one_escaped_bounded_line(
    tmp_path: Path, env: dict[str, str], body: str, message: str
) -> None:
    pac = tmp_path / "hostile.pac"
    pac.write_text(f"function FindProxyForURL(u, h) {{ {body} }}")
    r = run_ncfd(["--show-route", "--proxy-pac", str(pac), "ssh.example", "22"], env=env)
    assert (r.returncode, r.stdout) == (9, b"")
    assert r.stderr == f"ncfd: {message.format(pac=pac)}\n".encode()


@pytest.mark.parametrize(
    ("script", "lines"),
    [
        ('for (var i = 0; i < 40; i++) isResolvable("n" + i + ".invalid");',
         ["after 2 runs for DNS answers",
          "asked for more than 32 names to resolve; 8 not looked up, answered \"does not resolve\": "
          + ", ".join(f"n{i}.invalid" for i in range(32, 40))]),
        ('runs++; isResolvable("r" + runs + ".invalid");',  # a new name on each run
         ["after 8 runs for DNS answers",
          'still asked for new names to resolve after 8 runs; 1 not looked up, answered "does not resolve": '
          "r8.invalid"]),
    ],
    ids=["names", "runs"],
)  # fmt: skip
def test_names_past_the_dns_limits_are_said_under_v_and_in_show_route(
    tmp_path: Path, env: dict[str, str], script: str, lines: list[str]
) -> None:
    pac = tmp_path / "asks.pac"
    pac.write_text(f'var runs = 0; function FindProxyForURL(u, h) {{ {script} return "DIRECT"; }}')
    r = run_ncfd(["-v", "--show-route", "--proxy-pac", str(pac), "ssh.example", "22"], env=env)
    assert r.returncode == 0, r.stderr
    assert r.stderr.decode().splitlines() == [
        f'ncfd: PAC {pac} (read from the file): FindProxyForURL("https://ssh.example:22/", "ssh.example") = "DIRECT"'
        f" {lines[0]}",
        f"ncfd: PAC {pac} {lines[1]}",
    ]
    assert f"note: the PAC {lines[1]}" in r.stdout.decode().splitlines()
