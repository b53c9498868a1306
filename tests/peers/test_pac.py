"""--proxy-pac end to end: PAC files served by nginx (conditional GET for real), the routes they
choose tried in order with the real ssh logging in, failover past a dead proxy and its memory, the
cache, and hostile PACs and PAC servers, each one clear line, no descriptor, within -w."""

from __future__ import annotations

import hashlib
import os
import re
import socket
import struct
import subprocess
import time
from pathlib import Path

import pytest

from tests.support import peers
from tests.support.fakeservers import FakeServer, Session, silent
from tests.support.fdharness import NCFD, ncfd_command, run_ncfd
from tests.support.pac import PROXY_VARIABLES, assert_fails, handoff, plant, remembered_dead, returns


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """ncfd's environment: a cache of its own, and no proxy from the test runner's environment."""
    cache = tmp_path / "cache"
    return {**{k: v for k, v in os.environ.items() if k not in PROXY_VARIABLES}, "XDG_CACHE_HOME": str(cache)}


class Pacs:
    """PAC files for one test, served by the session's nginx under names no other test uses."""

    def __init__(self, web: peers.WebServer, name: str) -> None:
        self.web = web
        self.prefix = hashlib.sha256(name.encode()).hexdigest()[:12]

    def serve(self, text: str | bytes, folder: str = "", name: str = "proxy.pac") -> str:
        path = self.web.root / folder / f"{self.prefix}-{name}"
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(text.encode() if isinstance(text, str) else text)
        path.chmod(0o644)
        return self.web.url(f"{folder}/{path.name}" if folder else path.name)

    def fetches(self, url: str) -> list[tuple[int, str]]:
        """(status, If-None-Match) of each request nginx served for url."""
        path = "/" + url.split("/", 3)[3]
        return [(status, etag) for seen, status, etag in self.web.requests() if seen == path]


@pytest.fixture
def pacs(web: peers.WebServer, request: pytest.FixtureRequest) -> Pacs:
    return Pacs(web, request.node.nodeid)


# --- the main job ---------------------------------------------------------------------------------


def test_ssh_logs_in_through_the_second_proxy_of_the_pac_when_the_first_is_dead(
    sshd: peers.Sshd, squid: peers.Proxy, pacs: Pacs, env: dict[str, str]
) -> None:
    dead = peers.free_port()
    url = pacs.serve(returns(f"PROXY 127.0.0.1:{dead}; PROXY {squid.address}"))
    argv = sshd.ssh_argv(f"{ncfd_command()} -F -v --proxy-pac {url} %h %p", "echo", "in")
    r = subprocess.run(argv, capture_output=True, text=True, timeout=60, env=env, stdin=subprocess.DEVNULL)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "in\n"
    assert f"HTTP proxy 127.0.0.1:{dead} failed: connect to HTTP proxy 127.0.0.1 port {dead} failed" in r.stderr
    # The next login does not wait on the dead one first.
    r = subprocess.run(argv, capture_output=True, text=True, timeout=60, env=env, stdin=subprocess.DEVNULL)
    assert r.returncode == 0, r.stderr
    assert f"HTTP proxy 127.0.0.1:{dead} was found dead" in r.stderr
    assert f"route 1 of 2: HTTP proxy {squid.address}" in r.stderr


def test_each_kind_of_entry_reaches_the_target(
    pacs: Pacs,
    env: dict[str, str],
    banner_target: peers.Target,
    squid: peers.Proxy,
    dante: peers.Proxy,
    https_proxy: peers.TlsProxy,
) -> None:
    for answer in [
        "DIRECT",
        f"PROXY {squid.address}",
        f"HTTP {squid.address}",
        f"SOCKS {dante.address}",
        f"SOCKS4 {dante.address}",
        f"SOCKS5 {dante.address}",
        f"HTTPS localhost:{https_proxy.port}",
    ]:
        url = pacs.serve(returns(answer), name=f"{answer.split()[0]}.pac")
        r = handoff(url, banner_target, env, "--proxy-cacert", str(https_proxy.cafile))
        r.assert_banner_and_echo(banner_target.banner)


def test_no_direct_in_the_answer_means_no_direct_connection(pacs: Pacs, env: dict[str, str]) -> None:
    one, two = peers.free_port(), peers.free_port()
    url = pacs.serve(returns(f"PROXY 127.0.0.1:{one}; SOCKS5 127.0.0.1:{two}"))
    with FakeServer(silent) as target:
        r = handoff(url, target, env)
        assert target.settled() == []  # never reached directly
    assert_fails(r, 4, f"no route to 127.0.0.1:{target.port} worked: HTTP proxy 127.0.0.1:{one}: connect")
    assert f"; SOCKS5 proxy 127.0.0.1:{two}: connect to SOCKS5 proxy 127.0.0.1 port {two} failed" in r.stderr
    assert remembered_dead(env) == [f"HTTP proxy 127.0.0.1:{one}", f"SOCKS5 proxy 127.0.0.1:{two}"]


def test_an_unanswering_proxy_gets_its_share_of_the_deadline_then_the_next_is_tried(
    pacs: Pacs, env: dict[str, str], banner_target: peers.Target, squid: peers.Proxy
) -> None:
    with FakeServer(silent) as stuck:
        url = pacs.serve(returns(f"PROXY 127.0.0.1:{stuck.port}; PROXY {squid.address}"))
        start = time.monotonic()
        r = handoff(url, banner_target, env, "-v", "-w", "6")
    # Half of what is left of -w 6 once the PAC is in: about 3 s, less the fetch.
    share = re.search(rf"route 1 of 2: HTTP proxy 127.0.0.1:{stuck.port} \(within ([\d.]+) s\)", r.stderr)
    assert share is not None and 2.0 <= float(share.group(1)) <= 3.0, r.stderr
    assert f"HTTP proxy 127.0.0.1:{stuck.port} failed: timed out after {share.group(1)}s waiting for" in r.stderr
    r.assert_banner_and_echo(banner_target.banner)
    assert time.monotonic() - start < 20


# Proxies that die before answering: a browser passes over each to the next entry.


def closes(s: Session) -> None:
    s.recv_until(b"\r\n\r\n")  # then FakeServer closes: a FIN, the request read


def resets(s: Session) -> None:
    s.recv_until(b"\r\n\r\n")
    s.conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


def speaks_http_to_tls(s: Session) -> None:
    s.conn.recv(4096)  # the ClientHello
    s.send(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")


DYING = {  # entry keyword, server, what -v says of it
    "closes": ("PROXY", closes, "HTTP proxy {proxy} closed the connection without answering"),
    "resets": ("PROXY", resets, "HTTP proxy {proxy} reset the connection during the handshake"),
    "not-tls": ("HTTPS", speaks_http_to_tls, "HTTPS proxy {proxy}: TLS handshake failed: "),
    "silent-socks5": ("SOCKS5", silent, "SOCKS5 proxy {proxy} did not answer the SOCKS5 greeting within 3s: the PAC"),
}


@pytest.mark.parametrize("case", DYING)
def test_a_proxy_that_dies_before_answering_is_passed_over_for_the_next_entry(
    tmp_path: Path, env: dict[str, str], banner_target: peers.Target, tinyproxy: peers.Proxy, case: str
) -> None:
    keyword, server, said = DYING[case]
    pac = tmp_path / "proxy.pac"
    with FakeServer(server) as dying:
        # -w 20: the working proxy's share is 10 s, far from the SOCKS5 greeting's 3.
        pac.write_text(returns(f"{keyword} 127.0.0.1:{dying.port}; PROXY {tinyproxy.address}"))
        r = handoff(str(pac), banner_target, env, "-v", "-w", "20")
    proxy = f"127.0.0.1:{dying.port}"
    assert said.format(proxy=proxy) in r.stderr, r.stderr
    assert re.search(rf"^ncfd: {keyword.replace('PROXY', 'HTTP')} proxy {proxy} failed: .*; trying the next route$",
                     r.stderr, re.M), r.stderr  # fmt: skip
    assert "-X connect" not in r.stderr  # no advice the PAC's user cannot take
    r.assert_banner_and_echo(banner_target.banner)
    assert r.elapsed < 20


def test_show_route_prints_the_source_the_answer_and_the_routes(pacs: Pacs, env: dict[str, str]) -> None:
    url = pacs.serve(returns("PROXY p.example:8080; QUIC q:1; SOCKS5 s.example; SOCKS f.example:1081; DIRECT"))
    r = run_ncfd(["--show-route", "--proxy-pac", url, "ssh.example", "22"], env=env)
    assert r.returncode == 0, r.stderr
    assert r.stdout.decode().splitlines() == [
        "destination: ssh.example port 22",
        f"source: PAC {url}",
        "PAC answer: PROXY p.example:8080; QUIC q:1; SOCKS5 s.example; SOCKS f.example:1081; DIRECT",
        "note: skipped 'QUIC q:1': not a PAC entry ncfd knows",
        "route 1: HTTP proxy p.example:8080",
        "route 2: SOCKS5 proxy s.example:1080",
        "route 3: SOCKS4 proxy f.example:1081",  # a PAC's plain SOCKS is version 4, as in browsers
        "route 4: direct",
    ]


def test_an_https_pac_server_is_verified_with_the_proxy_cacert_trust(
    web: peers.WebServer, pacs: Pacs, env: dict[str, str], banner_target: peers.Target
) -> None:
    url = pacs.serve(returns("DIRECT"))
    with peers.stunnel(web) as tls:
        https = f"https://localhost:{tls.port}/{url.split('/', 3)[3]}"
        r = handoff(https, banner_target, env, "--proxy-cacert", str(tls.cafile))
        r.assert_banner_and_echo(banner_target.banner)
        r = handoff(https, banner_target, {**env, "XDG_CACHE_HOME": env["XDG_CACHE_HOME"] + "-2"})
    assert_fails(r, 9, f"cannot fetch PAC {https}: PAC server localhost:{tls.port}: TLS certificate verification")


def test_an_https_pac_server_by_a_name_its_certificate_does_not_carry_is_refused(
    web: peers.WebServer, pacs: Pacs, env: dict[str, str]
) -> None:
    # The name resolves to the server's address, and its CA is trusted: only the name is wrong.
    peers.require_names(peers.PROXY_NAME)
    url = pacs.serve(returns("DIRECT"))
    with peers.stunnel(web) as tls, FakeServer(silent) as target:
        https = f"https://{peers.PROXY_NAME}:{tls.port}/{url.split('/', 3)[3]}"
        r = handoff(https, target, env, "--proxy-cacert", str(tls.cafile))
        assert target.settled() == []
    server = f"{peers.PROXY_NAME}:{tls.port}"
    why = f"Hostname mismatch, certificate is not valid for '{peers.PROXY_NAME}'."
    assert_fails(r, 9, f"cannot fetch PAC {https}: PAC server {server}: TLS certificate verification failed: {why}")


def test_a_pac_server_the_system_trusts_is_still_verified_with_proxy_cacert(
    web: peers.WebServer, pacs: Pacs, env: dict[str, str], banner_target: peers.Target, https_proxy: peers.TlsProxy
) -> None:
    """SSL_CERT_FILE stands for the system's CAs (a PAC server with a public certificate); the
    HTTPS proxy's CA is the one given, as for a PAC that names that proxy."""
    url = pacs.serve(returns(f"HTTPS localhost:{https_proxy.port}"))
    with peers.stunnel(web) as tls:
        https = f"https://localhost:{tls.port}/{url.split('/', 3)[3]}"
        r = handoff(https, banner_target, {**env, "SSL_CERT_FILE": str(tls.cafile)},
                    "--proxy-cacert", str(https_proxy.cafile))  # fmt: skip
    r.assert_banner_and_echo(banner_target.banner)


# --- the cache ------------------------------------------------------------------------------------


def test_a_fresh_copy_is_used_without_fetching(pacs: Pacs, env: dict[str, str], banner_target: peers.Target) -> None:
    url = pacs.serve(returns("DIRECT"), folder="fresh")  # Cache-Control: max-age=3600
    for _ in range(3):
        handoff(url, banner_target, env).assert_banner_and_echo(banner_target.banner)
    assert pacs.fetches(url) == [(200, "-")]
    cached = list((Path(env["XDG_CACHE_HOME"]) / "ncfd").glob("pac-*"))
    assert len(cached) == 1 and cached[0].stat().st_mode & 0o777 == 0o600
    assert cached[0].parent.stat().st_mode & 0o777 == 0o700


def test_a_stale_copy_is_revalidated_with_its_etag(
    pacs: Pacs, env: dict[str, str], banner_target: peers.Target
) -> None:
    url = pacs.serve(returns("DIRECT"), folder="stale")  # Cache-Control: max-age=0
    for _ in range(2):
        handoff(url, banner_target, env).assert_banner_and_echo(banner_target.banner)
    [(first, none), (second, etag)] = pacs.fetches(url)
    assert (first, none, second) == (200, "-", 304)
    assert etag not in ("", "-")  # the ETag of the first answer
    # A changed file is fetched again.
    pacs.serve(returns(f"PROXY 127.0.0.1:{peers.free_port()}"), folder="stale")
    r = handoff(url, banner_target, env)
    assert r.returncode == 4 and pacs.fetches(url)[-1][0] == 200


def test_a_stale_copy_stands_in_with_a_warning_when_the_server_is_gone(
    env: dict[str, str], banner_target: peers.Target
) -> None:
    with peers.nginx() as server:
        (server.root / "proxy.pac").write_text(returns("DIRECT"))
        (server.root / "proxy.pac").chmod(0o644)
        url = server.url("proxy.pac")
        handoff(url, banner_target, env).assert_banner_and_echo(banner_target.banner)
    # The default lifetime is minutes: age the copy past it.
    [copy] = (Path(env["XDG_CACHE_HOME"]) / "ncfd").glob("pac-*")
    copy.write_text(re.sub(r"^fresh-until .*$", "fresh-until 0.0", copy.read_text(), count=1, flags=re.M))
    r = handoff(url, banner_target, env)
    assert r.stderr.startswith(f"ncfd: warning: cannot fetch PAC {url} (connect to PAC server 127.0.0.1 port")
    assert "; using the copy fetched" in r.stderr
    r.assert_banner_and_echo(banner_target.banner)


NOBODY = 65534
YEAR = 365 * 86400.0


@pytest.mark.parametrize(
    "how",
    ["directory of another user", "directory writable by group", "directory writable by others",
     "file of another user", "file writable by others", "symbolic link", "fifo"],
)  # fmt: skip
def test_a_cache_someone_else_could_have_written_is_ignored_with_a_warning(
    pacs: Pacs,
    env: dict[str, str],
    banner_target: peers.Target,
    tmp_path: Path,
    how: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url = pacs.serve(returns("DIRECT"), folder="fresh")
    now = time.time()
    copy = plant(env, monkeypatch, url, f"PROXY 127.0.0.1:{peers.free_port()}", now, now + YEAR)
    folder = copy.parent
    where = f"the cache {folder}"
    if how == "directory of another user":
        os.chown(folder, NOBODY, NOBODY)
    elif how.startswith("directory writable"):
        folder.chmod(0o770 if how.endswith("group") else 0o703)
    else:
        where = f"the cached copy of PAC {url} in {folder}"
        if how == "file of another user":
            os.chown(copy, NOBODY, NOBODY)
        elif how == "file writable by others":
            copy.chmod(0o602)
        elif how == "symbolic link":
            copy.rename(tmp_path / "elsewhere")
            copy.symlink_to(tmp_path / "elsewhere")
        else:
            copy.unlink()
            os.mkfifo(copy, 0o600)
    why = {"directory of another user": f"it belongs to uid {NOBODY}, not to uid {os.geteuid()}",
           "directory writable by group": "others can write to it (mode 0770)",
           "directory writable by others": "others can write to it (mode 0703)",
           "file of another user": f"it belongs to uid {NOBODY}, not to uid {os.geteuid()}",
           "file writable by others": "others can write to it (mode 0602)",
           "symbolic link": "it is a symbolic link", "fifo": "it is not a regular file"}[how]  # fmt: skip
    r = handoff(url, banner_target, env)
    assert r.stderr == f"ncfd: warning: ignoring {where}: {why}\n"
    r.assert_banner_and_echo(banner_target.banner)
    assert pacs.fetches(url) == [(200, "-")]
    if where.startswith("the cache "):  # and nothing written there
        assert [f.name for f in folder.iterdir()] == [copy.name] and "PROXY" in copy.read_text()
    else:  # the cache is ours: our own copy took the file's place, and is used from then on
        assert copy.is_file() and not copy.is_symlink() and (copy.stat().st_uid, copy.stat().st_mode & 0o777) == (
            os.geteuid(), 0o600)  # fmt: skip
        r = handoff(url, banner_target, env)
        assert r.stderr == ""
        r.assert_banner_and_echo(banner_target.banner)
        assert pacs.fetches(url) == [(200, "-")]


def test_a_copy_is_fresh_no_longer_than_a_day_whatever_it_says(
    pacs: Pacs, env: dict[str, str], banner_target: peers.Target, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = pacs.serve(returns("DIRECT"), folder="fresh")
    now = time.time()
    plant(env, monkeypatch, url, f"PROXY 127.0.0.1:{peers.free_port()}", now - 2 * 86400, now + YEAR)
    r = handoff(url, banner_target, env, "-v")
    assert "cached copy, fresh for" not in r.stderr
    assert f"PAC {url}: fetched " in r.stderr
    r.assert_banner_and_echo(banner_target.banner)
    assert pacs.fetches(url) == [(200, "-")]


@pytest.mark.parametrize("owner", ["ours", "another user's"])
def test_the_memory_of_dead_proxies_is_obeyed_only_when_ours(pacs: Pacs, env: dict[str, str], owner: str) -> None:
    url = pacs.serve(returns("PROXY p.example:8080; PROXY q.example:8080"))
    folder = Path(env["XDG_CACHE_HOME"]) / "ncfd"
    folder.mkdir(mode=0o700, parents=True)
    memory = folder / "dead-proxies"
    memory.write_text(f"{time.time()!r} HTTP proxy p.example:8080\n")
    memory.chmod(0o600)
    if owner != "ours":
        os.chown(memory, NOBODY, NOBODY)
    r = run_ncfd(["--show-route", "-v", "--proxy-pac", url, "ssh.example", "22"], env=env)
    assert r.returncode == 0, r.stderr
    routes = [line for line in r.stdout.decode().splitlines() if line.startswith("route ")]
    owned = f"it belongs to uid {NOBODY}, not to uid {os.geteuid()}"
    ignored = f"ncfd: ignoring the memory of dead proxies in {folder}: {owned}\n"
    if owner == "ours":
        assert routes == ["route 1: HTTP proxy q.example:8080", "route 2: HTTP proxy p.example:8080"]
        assert "ignoring" not in r.stderr.decode()
    else:
        assert routes == ["route 1: HTTP proxy p.example:8080", "route 2: HTTP proxy q.example:8080"]
        assert ignored in r.stderr.decode()


def test_fifty_processes_on_a_cold_cache_all_succeed_and_leave_one_valid_copy(
    pacs: Pacs, env: dict[str, str], banner_target: peers.Target
) -> None:
    text = returns("DIRECT") + "\n// " + "x" * 50_000  # big enough for a torn write to show
    url = pacs.serve(text, folder="fresh")
    argv = [*NCFD, "-z", "--proxy-pac", url, "127.0.0.1", str(banner_target.port)]
    procs = [subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) for _ in range(50)]
    results = [(p.wait(120), p.stderr.read().decode() if p.stderr else "") for p in procs]
    for p in procs:
        assert p.stderr is not None
        p.stderr.close()
    assert [code for code, _ in results] == [0] * 50, [err for code, err in results if code]
    files = list((Path(env["XDG_CACHE_HOME"]) / "ncfd").iterdir())
    assert [f.name[:4] for f in files] == ["pac-"]  # no temporary file left behind
    assert files[0].read_text().split("\n\n", 1)[1] == text


def test_the_charset_says_how_to_decode(pacs: Pacs, env: dict[str, str]) -> None:
    text = 'function FindProxyForURL(u, h) { return "caf\xe9".length == 4 ? "DIRECT" : "PROXY wrong:1"; }'
    for folder, data in (("latin1", text.encode("latin-1")), ("", text.encode("utf-8")),
                         ("", b"\xef\xbb\xbf" + text.encode("utf-8")), ("", text.encode("utf-16"))):  # fmt: skip
        url = pacs.serve(data, folder=folder, name=f"{len(data)}.pac")
        r = run_ncfd(["--show-route", "--proxy-pac", url, "h", "22"], env=env)
        assert "route 1: direct" in r.stdout.decode(), (folder, r.stderr)
    # No charset and not UTF-8: Latin-1, as browsers fall back.
    url = pacs.serve(text.encode("latin-1"), name="guess.pac")
    assert "route 1: direct" in run_ncfd(["--show-route", "--proxy-pac", url, "h", "22"], env=env).stdout.decode()


def test_a_redirect_is_followed(web: peers.WebServer, env: dict[str, str]) -> None:
    (web.root / "fresh").mkdir(exist_ok=True)
    (web.root / "fresh" / "proxy.pac").write_text(returns("PROXY after.redirect:1"))
    (web.root / "fresh" / "proxy.pac").chmod(0o644)
    r = run_ncfd(["--show-route", "--proxy-pac", web.url("redirect.pac"), "h", "22"], env=env)
    assert "route 1: HTTP proxy after.redirect:1" in r.stdout.decode(), r.stderr


# --- hostile PACs and PAC servers -----------------------------------------------------------------


def huge_pac(pairs: int = 2500) -> str:
    """A corporate PAC: thousands of rules (two per pair), hundreds of KB."""
    lines = ["function FindProxyForURL(url, host) {", "    host = host.toLowerCase();"]
    for i in range(pairs):
        lines.append(
            f'    if (shExpMatch(host, "*.department-{i:05d}.corp.example.com")) return "PROXY p{i % 7}.corp:8080";'
        )
        lines.append(f'    if (dnsDomainIs(host, ".site{i:05d}.example.net")) return "DIRECT";')
    lines += ['    return "PROXY fallback.corp:3128; DIRECT";', "}"]
    return "\n".join(lines)


def test_a_huge_pac_is_evaluated(pacs: Pacs, env: dict[str, str]) -> None:
    text = huge_pac()
    assert len(text) > 300_000 and text.count("return") == 5001
    url = pacs.serve(text)
    r = run_ncfd(["--show-route", "--proxy-pac", url, "x.department-02499.corp.example.com", "22"], env=env)
    assert r.returncode == 0, r.stderr
    assert "route 1: HTTP proxy p0.corp:8080" in r.stdout.decode()  # the last rule but one


@pytest.mark.parametrize(
    ("script", "code", "message"),
    [
        # The deadline's message: within -w 10 the PAC's CPU limit is set a second past it.
        ("function FindProxyForURL(u, h) { while (true) {} }", 7,
         "timed out after 3s evaluating PAC {url} (a slow DNS answer or an endless loop?)"),
        ("function f(n) { return f(n + 1) + 1; } f(0);", 9, "PAC {url}: recursed too deeply while loading it"),
        ("function FindProxyForURL(u, h) { throw new Error('boom'); }", 9,
         "PAC {url}: threw 'Error: boom' while running FindProxyForURL"),
        ("function FindProxyForURL(u, h) { return 'DIRECT' ", 9, "PAC {url}: cannot be loaded: SyntaxError"),
        ("function FindProxy(u, h) { return 'DIRECT'; }", 9, "PAC {url} defines no FindProxyForURL function"),
        (returns("NOPE nothing; ???"), 9,
         'PAC {url} answered "NOPE nothing; ???" for 127.0.0.1: no entry ncfd can use'),
        ("function FindProxyForURL(u, h) { return {}; }", 9,
         "PAC {url}: FindProxyForURL returned object, not a string"),
        (returns("DIRECT") + "\x00", 9, "PAC {url} contains a NUL character (at offset 56): not a PAC file, or"),
        (returns("DIRECT").encode("utf-16-le"), 9,
         "PAC {url} contains a NUL character (at offset 1): not a PAC file, or UTF-16 without a byte-order mark"),
        ("Array.prototype.join = function () { return 'string'; };" + returns("DIRECT"), 9,
         "PAC {url}: its answer cannot be read: it redefines what ncfd's PAC functions use"),
        ("function __ncfd_run() { return 5; }" + returns("DIRECT"), 9,
         "PAC {url}: its answer cannot be read: it redefines what ncfd's PAC functions use"),
        ("var big = 10n;" + returns("DIRECT") + "\nbig", 9,
         "PAC {url}: left a value ncfd cannot read while loading it"),
    ],
    ids=["endless-loop", "deep-recursion", "throws", "syntax-error", "no-function", "junk-answer",
         "not-a-string", "nul-byte", "utf-16-without-bom", "redefines-join", "redefines-ncfds-entry", "ends-in-bigint"],
)  # fmt: skip
def test_a_hostile_pac_is_one_clear_line(
    pacs: Pacs, env: dict[str, str], banner_target: peers.Target, script: str | bytes, code: int, message: str
) -> None:
    url = pacs.serve(script)
    start = time.monotonic()
    r = handoff(url, banner_target, env, "-w", "3")
    assert_fails(r, code, message.format(url=url))
    assert time.monotonic() - start < 3 + 10


def test_a_pac_hogging_memory_is_stopped_by_the_memory_limit(
    pacs: Pacs, env: dict[str, str], banner_target: peers.Target
) -> None:
    # That limit alone: it takes a second or two of CPU, the CPU limit is 10, -w 20 (-w 3 was
    # reached first on a busy machine).
    url = pacs.serve("var hog = []; while (true) hog.push(new Array(1000).join('x') + hog.length);")
    r = handoff(url, banner_target, env, "-w", "20")
    assert_fails(r, 9, f"PAC {url}: used more than 64 MiB of memory while loading it")


@pytest.mark.parametrize("case", ["never-answers", "404", "refused", "redirect-loop", "megabytes", "unresolvable"])
def test_a_pac_that_cannot_be_had_is_an_error_never_a_direct_connection(
    pacs: Pacs, env: dict[str, str], case: str
) -> None:
    with FakeServer(silent) as target, FakeServer(silent) as mute:
        if case == "never-answers":
            # Half of what is left of -w 3: about 1.5 s.
            url, message = f"http://127.0.0.1:{mute.port}/proxy.pac", "s waiting for the PAC server 127.0.0.1:"
        elif case == "404":
            url, message = pacs.web.url("no-such.pac"), 'the server answered "404 Not Found"'
        elif case == "refused":
            port = peers.free_port()
            url, message = f"http://127.0.0.1:{port}/proxy.pac", f"PAC server 127.0.0.1 port {port} failed"
        elif case == "redirect-loop":
            url, message = pacs.web.url("loop-a.pac"), "redirected in a loop (back to "
        elif case == "megabytes":
            url, message = pacs.serve(b"//" + b"x" * (3 << 20)), "is larger than 2 MiB"
        else:
            url, message = "http://pac.invalid/proxy.pac", 'cannot resolve PAC server "pac.invalid"'
        start = time.monotonic()
        r = handoff(url, target, env, "-w", "3")
        assert target.settled() == []  # no direct connection instead
    assert_fails(r, 9, f"cannot fetch PAC {url}")
    assert message in r.stderr
    if case == "never-answers":
        waited = re.search(r"timed out after ([\d.]+)s waiting for the PAC server", r.stderr)
        assert waited is not None and 1.0 <= float(waited.group(1)) <= 1.5, r.stderr
    assert time.monotonic() - start < 3 + 10


@pytest.mark.parametrize("case", ["404", "never-answers", "broken"])
def test_an_optional_pac_that_fails_otherwise_is_still_an_error(pacs: Pacs, env: dict[str, str], case: str) -> None:
    """The server is there: a 404, a PAC that does not run, or a server that does not answer in time
    (as an overloaded PAC server or a filtering firewall on the corporate network would) is no
    licence to bypass the proxy."""
    with FakeServer(silent) as target, FakeServer(silent) as mute:
        if case == "404":
            url, message = pacs.web.url("no-such.pac"), 'the server answered "404 Not Found"'
        elif case == "never-answers":
            url, message = f"http://127.0.0.1:{mute.port}/proxy.pac", "s waiting for the PAC server 127.0.0.1:"
        else:
            url, message = pacs.serve("function FindProxyForURL(url, host) {"), "SyntaxError"
        r = handoff(url, target, env, "-w", "3", "--proxy-pac-optional")
        assert target.settled() == []  # no direct connection instead
    assert_fails(r, 9, message)


# --- what a PAC may not put on the screen ----------------------------------------------------------


def test_a_pac_url_with_a_password_is_refused_never_shown_sent_or_cached(pacs: Pacs, env: dict[str, str]) -> None:
    url = pacs.serve(returns("DIRECT"))
    with_password = url.replace("http://", "http://alice:s3cret@", 1)
    shown = url.replace("http://", "http://alice:***@", 1)
    message = (f"PAC {shown}: ncfd sends no user or password to a PAC server (an @ in a path is written %40);"
               " fetch the file with them yourself and give ncfd its path")  # fmt: skip
    r = run_ncfd(["-v", "--show-route", "--proxy-pac", with_password, "ssh.example", "22"], env=env)
    assert (r.returncode, r.stdout, r.stderr) == (2, b"", f"ncfd: {message}\n".encode())
    assert pacs.fetches(url) == []
    assert not Path(env["XDG_CACHE_HOME"]).exists()
    import ncfd

    with pytest.raises(ncfd.UsageError) as e:
        ncfd.connect("ssh.example", 22, pac=with_password)
    assert str(e.value) == message
