"""ncfd side by side with nc.openbsd, ncat, socat, connect-proxy and the seed's dialer, on loopback,
through the same real proxies, alternating runs, medians. Run it through scripts/bench (a clean,
non-editable install).

  hand-off   ncfd -F and nc -F against the floor: spawn to exit, the socket passed (ms)
  connect    without -F, as a relaying ProxyCommand: spawn to the target's banner on stdout (ms)
  relay      1 GiB (--relay-mib) through each tool, direct to a loopback source or sink: MB/s,
             CPU seconds of the tool, peak RSS
  eyeballs   a name whose ::1 drops SYNs and whose 127.0.0.1 answers: spawn to hand-off (s)
  pac        ncfd -F --proxy-pac (served by nginx) to squid beside -X connect to the same squid:
             a warm cache, a cold one, and a 360 KB PAC of 5,000 rules (ms)
  auth       ncfd -F through squid asking for Basic, NTLM, and Negotiate with a Kerberos ticket
             from a KDC on loopback, beside squid asking for nothing (ms)
  api        in-process ncfd.connect() through squid beside a hand-written CONNECT on a raw socket,
             the floor for a library (ms per connection, banner read)

The floor of a path is the seed write-up's ten-line dialer (create_connection + sendmsg, same
interpreter) plus importing the library that path needs (nothing direct, PySocks for SOCKS, h11 for
CONNECT): what no Python implementation of the path can undercut. Peak RSS comes from GNU time
(/usr/bin/time), since a child's own getrusage() maximum also counts the fork that started it.
The source and sink of the relay test use sendfile and splice where they can, so that the tool
measured is the bottleneck.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import select
import shutil
import signal
import socket
import stat
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

# The checkout's root after site-packages: tests.support from here, ncfd still the one installed.
sys.path.append(str(Path(__file__).resolve().parent.parent))
from tests.support import peers  # the test suite's launchers for the real servers
from tests.support.eyeballs import DUALSTACK, Blackhole, Listening, NoBlackhole, dualstack_resolves
from tests.support.fdharness import run_fdpass

DIALER = """\
import array, socket, sys
{imports}
s = socket.create_connection((sys.argv[1], int(sys.argv[2])))
fds = array.array("i", [s.fileno()])
socket.socket(fileno=1).sendmsg([b"\\0"], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, fds)])
"""
GNU_TIME = "/usr/bin/time"
MIB = 1 << 20
NA = "—"

# A path: its label, the proxy protocol (None: direct), the proxy's name in servers(), the kind of
# library the floor imports.
PATHS = [
    ("direct", None, None, "direct"),
    ("microsocks -X 5", "5", "microsocks", "socks"),
    ("dante -X 5", "5", "dante", "socks"),
    ("dante -X 4", "4", "dante", "socks"),
    ("tinyproxy -X connect", "connect", "tinyproxy", "http"),
    ("squid -X connect", "connect", "squid", "http"),
]

Hop = tuple[str, str] | None  # (protocol, "host:port") of the proxy, or None
Argv = Callable[[Hop, str, int], list[str] | None]  # a tool's command line for a path, None if it has none


# --- the tools ------------------------------------------------------------------------------------


def nc_style(binary: str) -> Argv:
    def argv(hop: Hop, host: str, port: int) -> list[str]:
        proxy = ["-X", hop[0], "-x", hop[1]] if hop else []
        return [binary, *proxy, host, str(port)]

    return argv


def ncat(binary: str) -> Argv:
    def argv(hop: Hop, host: str, port: int) -> list[str]:
        kinds = {"5": "socks5", "4": "socks4", "connect": "http"}
        proxy = ["--proxy", hop[1], "--proxy-type", kinds[hop[0]]] if hop else []
        return [binary, *proxy, host, str(port)]

    return argv


def socat(binary: str) -> Argv:
    def argv(hop: Hop, host: str, port: int) -> list[str] | None:
        if hop is None:
            return [binary, "-", f"TCP:{host}:{port}"]
        proxy_host, proxy_port = hop[1].rsplit(":", 1)
        if hop[0] == "4":
            return [binary, "-", f"SOCKS4:{proxy_host}:{host}:{port},socksport={proxy_port}"]
        if hop[0] == "connect":
            return [binary, "-", f"PROXY:{proxy_host}:{host}:{port},proxyport={proxy_port}"]
        return None  # SOCKS5 only from socat 1.8

    return argv


def connect_proxy(binary: str) -> Argv:
    def argv(hop: Hop, host: str, port: int) -> list[str]:
        proxy = {"5": ["-S", hop[1]], "4": ["-4", "-S", hop[1]], "connect": ["-H", hop[1]]}[hop[0]] if hop else []
        return [binary, *proxy, host, str(port)]

    return argv


def relay_tools(ncfd: str) -> dict[str, Argv]:
    """The relaying tools installed, ncfd first and nc.openbsd (the reference for ratios) second."""
    tools = {"ncfd": nc_style(ncfd)}
    for name, make in [("nc.openbsd", nc_style), ("ncat", ncat), ("socat", socat), ("connect-proxy", connect_proxy)]:
        path = shutil.which(name)
        if path:
            tools[name] = make(path)
    return tools


# --- measuring one run ----------------------------------------------------------------------------


def handoff_seconds(argv: list[str]) -> float:
    """Spawn argv as ssh would (socketpair on stdin/stdout), until it has passed a socket and exited."""
    r = run_fdpass(argv)
    r.close()
    if r.returncode != 0 or r.sock is None:
        raise RuntimeError(f"{argv} failed (exit {r.returncode}): {r.stderr.strip()}")
    return r.elapsed


def peak_rss_kib(argv: list[str], run: Callable[[list[str]], object]) -> int | None:
    """argv's peak RSS under GNU time, run the way run() runs a command."""
    with _rss_file() as rss_file:
        if rss_file is None:
            return None
        run(_timed(argv, rss_file))
        return _rss(rss_file)


def banner_seconds(argv: list[str], size: int, timeout: float = 10.0) -> float | None:
    """Spawn a relaying argv until size bytes have come out on its stdout; None if they do not."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert proc.stdout is not None and proc.stdin is not None
    got = b""
    end = start + timeout
    while len(got) < size and select.select([proc.stdout], [], [], max(0.0, end - time.perf_counter()))[0]:
        chunk = os.read(proc.stdout.fileno(), size - len(got))
        if not chunk:
            break
        got += chunk
    elapsed = time.perf_counter() - start
    proc.kill()
    proc.wait()
    proc.stdin.close()
    proc.stdout.close()
    return elapsed if len(got) == size else None


class Transfer:
    """One relay run's result."""

    def __init__(self, seconds: float, cpu: float, rss: int | None) -> None:
        self.seconds, self.cpu, self.rss = seconds, cpu, rss


PAYLOAD = bytes(range(256)) * (MIB // 256)


def _payload_fd() -> int:
    """A descriptor holding PAYLOAD, to send from without copying: a memfd where there is one."""
    if hasattr(os, "memfd_create"):
        fd = os.memfd_create("bench")
    else:
        fd, name = tempfile.mkstemp()
        os.unlink(name)
    os.write(fd, PAYLOAD)
    return fd


PAYLOAD_FD = _payload_fd()


def send_bytes(out: int, size: int) -> None:
    """size bytes to out, a socket (sendfile) or a pipe (splice, else write)."""
    to_socket = stat.S_ISSOCK(os.fstat(out).st_mode)
    while size:
        count = min(size, MIB)
        if to_socket:
            size -= os.sendfile(out, PAYLOAD_FD, 0, count)
        elif hasattr(os, "splice"):
            size -= os.splice(PAYLOAD_FD, out, count, offset_src=0)
        else:
            size -= os.write(out, PAYLOAD[:count])


def drain_bytes(src: int, size: int) -> None:
    """Read and discard size bytes from src, a socket or a pipe; EOFError if it ends first."""
    if not hasattr(os, "splice"):
        buffer = memoryview(bytearray(MIB))
        while size:
            n = os.readv(src, [buffer[: min(size, MIB)]])
            if not n:
                raise EOFError
            size -= n
        return
    # splice() needs a pipe on one side: src itself, or one of ours in between.
    null = os.open(os.devnull, os.O_WRONLY)
    r, w = (-1, -1) if stat.S_ISFIFO(os.fstat(src).st_mode) else os.pipe()
    try:
        while size:
            n = os.splice(src, null if w < 0 else w, min(size, MIB))
            if not n:
                raise EOFError
            left = n if w >= 0 else 0
            while left:
                left -= os.splice(r, null, left)
            size -= n
    finally:
        for fd in (null, r, w):
            if fd >= 0:
                os.close(fd)


def _reap(proc: subprocess.Popen[bytes], grace: float = 5.0) -> float:
    """Wait for proc (killing it after grace seconds); its and its children's CPU seconds."""
    end = time.monotonic() + grace
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        if time.monotonic() > end:
            proc.kill()
            pid, status, usage = os.wait4(proc.pid, 0)
            break
        time.sleep(0.005)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return usage.ru_utime + usage.ru_stime


@contextlib.contextmanager
def _server(serve: Callable[[socket.socket], None]) -> Iterator[int]:
    """A one-connection loopback server running serve(conn) in a thread; yields the port."""
    listener = socket.create_server(("127.0.0.1", 0))

    def run() -> None:
        conn, _ = listener.accept()
        with conn, contextlib.suppress(OSError, EOFError):
            serve(conn)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        listener.close()
        thread.join(30)


@contextlib.contextmanager
def _rss_file() -> Iterator[str | None]:
    if not os.access(GNU_TIME, os.X_OK):
        yield None
        return
    with tempfile.NamedTemporaryFile("r") as f:
        yield f.name


def _timed(argv: list[str], rss_file: str | None) -> list[str]:
    return [GNU_TIME, "-f", "%M", "-o", rss_file, *argv] if rss_file else argv


def _rss(rss_file: str | None) -> int | None:
    if rss_file is None:
        return None
    with open(rss_file) as f:
        return int(f.read().split()[-1])


def download(argv: Argv, size: int) -> Transfer:
    """The network sends size bytes; the tool writes them to its stdout, a pipe we drain."""
    with _server(lambda conn: send_bytes(conn.fileno(), size)) as port, _rss_file() as rss_file:
        start = time.perf_counter()
        command = argv(None, "127.0.0.1", port)
        assert command is not None
        proc = subprocess.Popen(
            _timed(command, rss_file), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
        )
        assert proc.stdin is not None and proc.stdout is not None
        # stdin stays open while the bytes flow: some tools stop when it ends.
        drain_bytes(proc.stdout.fileno(), size)
        elapsed = time.perf_counter() - start
        proc.stdin.close()
        proc.stdout.close()
        cpu = _reap(proc)
        return Transfer(elapsed, cpu, _rss(rss_file))


def upload(argv: Argv, size: int) -> Transfer:
    """We write size bytes to the tool's stdin, a pipe; it sends them to the network, which drains."""
    done: list[float] = []

    def sink(conn: socket.socket) -> None:
        drain_bytes(conn.fileno(), size)
        done.append(time.perf_counter())

    with _server(sink) as port, _rss_file() as rss_file:
        command = argv(None, "127.0.0.1", port)
        assert command is not None
        start = time.perf_counter()
        proc = subprocess.Popen(
            _timed(command, rss_file), stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        assert proc.stdin is not None
        with contextlib.suppress(BrokenPipeError):
            send_bytes(proc.stdin.fileno(), size)
        proc.stdin.close()
        # The sink closes once it has it all, and every tool then ends.
        for _ in range(6000):
            if done:
                break
            time.sleep(0.01)
        cpu = _reap(proc)
        if not done:
            raise RuntimeError(f"{command}: the sink did not get {size} bytes")
        return Transfer(done[0] - start, cpu, _rss(rss_file))


# --- the sections ---------------------------------------------------------------------------------


def servers(stack: contextlib.ExitStack) -> dict[str, peers.Proxy]:
    found = {}
    launchers = [("microsocks", peers.microsocks, "microsocks"), ("dante", peers.dante, "danted"),
                 ("tinyproxy", peers.tinyproxy, "tinyproxy"), ("squid", peers.squid, "squid")]  # fmt: skip
    for name, launch, binary in launchers:
        if peers.which(binary):
            found[name] = stack.enter_context(launch())
    return found


def ratio(a: float | None, b: float | None) -> str:
    return f"{a / b:.2f}x" if a is not None and b else NA


def change(now: float, before: float) -> str:
    """now against before, as a signed percentage: the figure a "within 2%" is read from."""
    return f"{(now / before - 1) * 100:+.1f}%"


def baseline_ncfd(rev: str) -> str:
    """ncfd as git revision rev has it, installed (not editable, as the bench's own) in a
    virtualenv of its own, to be measured side by side with the working tree's."""
    root = Path(__file__).resolve().parent.parent
    venv = root / ".venv-bench-base"
    if not (venv / "bin" / "python").exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    with tempfile.TemporaryDirectory() as source:
        tree = subprocess.run(["git", "-C", str(root), "archive", rev], check=True, capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", source], input=tree, check=True)
        pip = [str(venv / "bin" / "pip"), "install", "-q", "--disable-pip-version-check"]
        subprocess.run([*pip, source], check=True)
        subprocess.run([*pip, "--force-reinstall", "--no-deps", source], check=True)
    return str(venv / "bin" / "ncfd")


def number(value: float | None, form: str) -> str:
    return NA if value is None else format(value, form)


def median(values: list[float] | list[int]) -> float | None:
    return statistics.median(values) if values else None


def section_handoff(args: argparse.Namespace, ncfd: str, target: peers.Target, proxies: dict[str, peers.Proxy]) -> None:
    nc = shutil.which("nc.openbsd")
    floors = {name: DIALER.format(imports=imp) for name, imp in
              [("direct", ""), ("socks", "import socks"), ("http", "import h11")]}  # fmt: skip
    t = [target.host, str(target.port)]
    print(f"\n## hand-off: -F, spawn to exit, the socket passed; median of {args.runs} alternating runs (ms)\n")
    before = f"| ncfd {args.baseline} | ncfd vs {args.baseline} " if args.baseline else ""
    print(f"| path | ncfd {before}| nc.openbsd | floor | ncfd/floor | ncfd/nc |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |" + (" ---: | ---: |" if before else ""))
    for label, protocol, server, kind in PATHS:
        if server is not None and server not in proxies:
            continue
        proxy_args = ["-X", protocol, "-x", proxies[server].address] if server and protocol else []
        commands = {"ncfd": [ncfd, "-F", *proxy_args, *t]}
        if args.baseline_ncfd:
            commands["before"] = [args.baseline_ncfd, "-F", *proxy_args, *t]
        if nc:
            commands["nc"] = [nc, "-F", *proxy_args, *t]
        # The floor dials the first hop the same way: the proxy, or the target.
        hop = [peers.HOST, str(proxies[server].port)] if server else t
        commands["floor"] = [sys.executable, "-c", floors[kind], *hop]
        times: dict[str, list[float]] = {name: [] for name in commands}
        for argv in commands.values():  # warm caches once
            handoff_seconds(argv)
        for _ in range(args.runs):
            for name, argv in commands.items():
                times[name].append(handoff_seconds(argv))
        med = {name: statistics.median(v) * 1000 for name, v in times.items()}
        versus = f"| {med['before']:.1f} | {change(med['ncfd'], med['before'])} " if "before" in med else ""
        print(
            f"| {label} | {med['ncfd']:.1f} {versus}| {number(med.get('nc'), '.1f')} | {med['floor']:.1f} "
            f"| {ratio(med['ncfd'], med['floor'])} | {ratio(med['ncfd'], med.get('nc'))} |"
        )
    if os.access(GNU_TIME, os.X_OK):
        direct = {"ncfd": [ncfd, "-F", *t], "floor": [sys.executable, "-c", floors["direct"], *t]}
        if nc:
            direct["nc.openbsd"] = [nc, "-F", *t]
        rss = {
            name: median([peak_rss_kib(argv, handoff_seconds) or 0 for _ in range(3)]) for name, argv in direct.items()
        }
        print(
            "\npeak RSS of a direct hand-off (MiB): " + ", ".join(f"{k} {(v or 0) / 1024:.1f}" for k, v in rss.items())
        )


def section_connect(args: argparse.Namespace, ncfd: str, target: peers.Target, proxies: dict[str, peers.Proxy]) -> None:
    tools = relay_tools(ncfd)
    print(
        f"\n## connect: without -F, spawn to the target's banner on stdout; median of {args.runs} alternating"
        f" runs (ms)\n"
    )
    print("| path | " + " | ".join(tools) + " | ncfd/nc |")
    print("| --- |" + " ---: |" * (len(tools) + 1))
    for label, protocol, server, _ in PATHS:
        if server is not None and server not in proxies:
            continue
        hop: Hop = (protocol, proxies[server].address) if server and protocol else None
        commands = {name: argv(hop, target.host, target.port) for name, argv in tools.items()}
        times: dict[str, list[float]] = {name: [] for name in tools}
        failed: set[str] = set()
        for run in range(args.runs + 1):  # the first run warms caches
            for name, command in commands.items():
                if command is None or name in failed:
                    continue
                seconds = banner_seconds(command, len(target.banner))
                if seconds is None:
                    failed.add(name)  # no banner: the tool lost it, or failed outright
                elif run:
                    times[name].append(seconds * 1000)
        cells = []
        for name in tools:
            if commands[name] is None:
                cells.append(NA)
            elif name in failed:
                cells.append("no banner")
            else:
                cells.append(number(median(times[name]), ".1f"))
        nc_ms = median(times.get("nc.openbsd", []))
        print(f"| {label} | " + " | ".join(cells) + f" | {ratio(median(times['ncfd']), nc_ms)} |")


def section_relay(args: argparse.Namespace, ncfd: str) -> None:
    tools = relay_tools(ncfd)
    size = args.relay_mib * MIB
    results: dict[tuple[str, str], list[Transfer]] = {}
    for _ in range(args.relay_runs):
        for direction, run in [("network to stdout", download), ("stdin to network", upload)]:
            for name, argv in tools.items():
                results.setdefault((direction, name), []).append(run(argv, size))
    print(
        f"\n## relay: {args.relay_mib} MiB through each tool, direct, loopback; median of {args.relay_runs}"
        " alternating runs\n"
    )
    print("| direction | tool | MB/s | CPU s | peak RSS MiB | MB/s vs nc | CPU vs nc |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: |")
    for (direction, name), runs in results.items():
        rate = statistics.median(size / r.seconds / 1e6 for r in runs)
        cpu = statistics.median(r.cpu for r in runs)
        rss = median([r.rss / 1024 for r in runs if r.rss is not None])
        ref = results.get((direction, "nc.openbsd"))
        ref_rate = statistics.median(size / r.seconds / 1e6 for r in ref) if ref else None
        ref_cpu = statistics.median(r.cpu for r in ref) if ref else None
        print(
            f"| {direction} | {name} | {rate:.0f} | {cpu:.2f} | {number(rss, '.1f')} "
            f"| {ratio(rate, ref_rate)} | {ratio(cpu, ref_cpu)} |"
        )


def section_eyeballs(args: argparse.Namespace, ncfd: str) -> None:
    print(f"\n## eyeballs: {DUALSTACK}, whose ::1 drops SYNs; -F, spawn to hand-off; median of {args.he_runs} runs")
    if not dualstack_resolves():
        print(f"\nskipped: {DUALSTACK} does not resolve to ::1 and 127.0.0.1 (add both to /etc/hosts, as .ci/run does)")
        return
    port = peers.free_port()
    try:
        blackhole = Blackhole("::1", port)
    except NoBlackhole as e:
        print(f"\nskipped: {e}")
        return
    nc = shutil.which("nc.openbsd")
    commands = {"ncfd": [ncfd, "-F", DUALSTACK, str(port)]}
    if nc:
        commands[f"nc.openbsd -w {args.he_wait:g}"] = [nc, "-F", "-w", f"{args.he_wait:g}", DUALSTACK, str(port)]
    with blackhole, Listening(port=port):
        times: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(args.he_runs):
            for name, argv in commands.items():
                times[name].append(handoff_seconds(argv))
    print("\n| tool | seconds | vs ncfd |")
    print("| --- | ---: | ---: |")
    med = {name: statistics.median(values) for name, values in times.items()}
    for name, seconds in med.items():
        print(f"| {name} | {seconds:.3f} | {ratio(seconds, med['ncfd'])} |")
    print("\nnc without -w (and the seed's dialer) wait for the kernel to give up on ::1 (about 130 s with Linux's")
    print("default tcp_syn_retries) before they try 127.0.0.1.")


def huge_pac(pairs: int, answer: str) -> str:
    """A corporate PAC of thousands of rules (two per pair), none of which matches the target: the
    script runs through all of them to its last line, which answers."""
    lines = ["function FindProxyForURL(url, host) {", "    host = host.toLowerCase();"]
    for i in range(pairs):
        lines.append(f'    if (shExpMatch(host, "*.department-{i:05d}.corp.example.com")) return "DIRECT";')
        lines.append(f'    if (dnsDomainIs(host, ".site{i:05d}.example.net")) return "DIRECT";')
    lines += [f'    return "{answer}";', "}"]
    return "\n".join(lines)


def section_pac(args: argparse.Namespace, ncfd: str, target: peers.Target, proxies: dict[str, peers.Proxy]) -> None:
    print(f"\n## pac: -F through squid, chosen by a PAC from nginx; median of {args.runs} alternating runs (ms)\n")
    if "squid" not in proxies or not peers.which("nginx"):
        print("skipped: needs squid and nginx")
        return
    squid = proxies["squid"].address
    t = [target.host, str(target.port)]
    with peers.nginx() as web, tempfile.TemporaryDirectory() as cache:
        (web.root / "small.pac").write_text(f'function FindProxyForURL(u, h) {{ return "PROXY {squid}"; }}')
        (web.root / "huge.pac").write_text(huge_pac(2500, f"PROXY {squid}"))
        for name in ("small.pac", "huge.pac"):
            (web.root / name).chmod(0o644)
        size = (web.root / "huge.pac").stat().st_size
        commands = {
            "-X connect": [ncfd, "-F", "-X", "connect", "-x", squid, *t],
            "PAC, warm cache": [ncfd, "-F", "--proxy-pac", web.url("small.pac"), *t],
            "PAC, cold cache": [ncfd, "-F", "--proxy-pac", web.url("small.pac"), *t],
            f"PAC of {size // 1000} KB, 5,000 rules, warm cache": [ncfd, "-F", "--proxy-pac", web.url("huge.pac"), *t],
        }
        if args.baseline_ncfd:  # each route by the commit before too, alternating with ncfd's own
            commands |= {f"{name}, {args.baseline}": [args.baseline_ncfd, *argv[1:]] for name, argv in commands.items()}
        saved = os.environ.get("XDG_CACHE_HOME")
        os.environ["XDG_CACHE_HOME"] = cache
        try:
            times: dict[str, list[float]] = {name: [] for name in commands}
            for run in range(args.runs + 1):  # the first run warms the caches
                for name, argv in commands.items():
                    if name.startswith("PAC, cold cache"):
                        shutil.rmtree(os.path.join(cache, "ncfd"), ignore_errors=True)
                    seconds = handoff_seconds(argv)
                    if run:
                        times[name].append(seconds * 1000)
        finally:
            if saved is None:
                del os.environ["XDG_CACHE_HOME"]
            else:
                os.environ["XDG_CACHE_HOME"] = saved
    med = {name: statistics.median(values) for name, values in times.items()}
    if not args.baseline_ncfd:
        print("| route | ncfd | vs -X connect |")
        print("| --- | ---: | ---: |")
        for name, ms in med.items():
            print(f"| {name} | {ms:.1f} | {ratio(ms, med['-X connect'])} |")
        return
    print(f"| route | ncfd | ncfd {args.baseline} | ncfd vs {args.baseline} | vs -X connect |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for name, ms in med.items():
        if not name.endswith(f", {args.baseline}"):
            then = med[f"{name}, {args.baseline}"]
            print(f"| {name} | {ms:.1f} | {then:.1f} | {change(ms, then)} | {ratio(ms, med['-X connect'])} |")


def section_auth(args: argparse.Namespace, ncfd: str, target: peers.Target) -> None:
    print(f"\n## auth: -F through squid, by the scheme it asks for; median of {args.runs} alternating runs (ms)\n")
    needed = ["squid", "krb5kdc", "kinit", f"{peers.SQUID_HELPERS}/negotiate_kerberos_auth"]
    if not all(peers.which(n) for n in needed):
        print(f"skipped: needs {', '.join(needed)}")
        return
    t = [target.host, str(target.port)]
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        kdc = stack.enter_context(peers.kdc())
        plain = stack.enter_context(peers.squid())
        basic = stack.enter_context(peers.squid("alice", "s3cret", schemes=("basic",)))
        ntlm = stack.enter_context(peers.squid("alice", "s3cret", schemes=("ntlm",)))
        kerberos = stack.enter_context(peers.squid_negotiate(kdc))
        krb_env = kdc.env(ccache=tmp / "ccache")
        kdc.kinit(krb_env)
        commands = {
            "none": [ncfd, "-F", "-X", "connect", "-x", plain.address, *t],
            "Basic": [ncfd, "-F", "-P", "alice", "-X", "connect", "-x", basic.address, *t],
            "NTLM": [ncfd, "-F", "-P", "alice", "-X", "connect", "-x", ntlm.address, *t],
            "Kerberos": [ncfd, "-F", "-X", "connect", "-x", f"{peers.PROXY_NAME}:{kerberos.port}", *t],
        }
        saved = dict(os.environ)
        os.environ.update(krb_env, NCFD_PROXY_PASSWORD="s3cret")
        try:
            times: dict[str, list[float]] = {name: [] for name in commands}
            for run in range(args.runs + 1):  # the first run warms the caches (and gets the service ticket)
                for name, argv in commands.items():
                    seconds = handoff_seconds(argv)
                    if run:
                        times[name].append(seconds * 1000)
        finally:
            os.environ.clear()
            os.environ.update(saved)
    print("| scheme | ncfd | vs Basic | vs none |")
    print("| --- | ---: | ---: | ---: |")
    med = {name: statistics.median(values) for name, values in times.items()}
    for name, ms in med.items():
        print(f"| {name} | {ms:.1f} | {ratio(ms, med['Basic'])} | {ratio(ms, med['none'])} |")


def _raw_connect(proxy: tuple[str, int], host: str, port: int) -> socket.socket:
    """The least a library can do: connect, send CONNECT, read to the blank line, byte by byte."""
    sock = socket.create_connection(proxy)
    sock.sendall(f"CONNECT {host}:{port} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode())
    reply = b""
    while not reply.endswith(b"\r\n\r\n"):
        reply += sock.recv(1)
    if not reply.startswith(b"HTTP/1.1 200"):
        raise RuntimeError(reply)
    return sock


def section_api(args: argparse.Namespace, target: peers.Target, proxies: dict[str, peers.Proxy]) -> None:
    print(f"\n## api: in-process, through squid, to the banner; median of {args.runs * 10} alternating runs (ms)\n")
    if "squid" not in proxies:
        print("skipped: needs squid")
        return
    import ncfd

    squid = proxies["squid"]
    ways: dict[str, Callable[[], socket.socket]] = {
        "ncfd.connect()": lambda: ncfd.connect(target.host, target.port, proxy=f"http://{squid.address}"),
        "raw CONNECT (floor)": lambda: _raw_connect((squid.host, squid.port), target.host, target.port),
    }
    times: dict[str, list[float]] = {name: [] for name in ways}
    for run in range(args.runs * 10 + 1):
        for name, way in ways.items():
            start = time.perf_counter()
            with way() as sock:
                sock.recv(len(target.banner), socket.MSG_WAITALL)
            if run:
                times[name].append((time.perf_counter() - start) * 1000)
    print("| way | ms | vs floor |")
    print("| --- | ---: | ---: |")
    med = {name: statistics.median(values) for name, values in times.items()}
    for name, ms in med.items():
        print(f"| {name} | {ms:.2f} | {ratio(ms, med['raw CONNECT (floor)'])} |")


SECTIONS = ["handoff", "connect", "relay", "eyeballs", "pac", "auth", "api"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", "--runs", type=int, default=30, help="runs per command, hand-off and connect (30)")
    parser.add_argument("--relay-mib", type=int, default=1024, help="MiB per relay run (1024)")
    parser.add_argument("--relay-runs", type=int, default=3, help="runs per tool and direction, relay (3)")
    parser.add_argument("--he-runs", type=int, default=3, help="runs per tool, eyeballs (3)")
    parser.add_argument("--he-wait", type=float, default=5, help="nc's -w in the eyeballs test (5)")
    parser.add_argument("--only", choices=SECTIONS, action="append", help="run only this section (repeatable)")
    parser.add_argument("--baseline", metavar="REV", help="also measure ncfd at this git revision (handoff, pac)")
    args = parser.parse_args()
    args.baseline_ncfd = baseline_ncfd(args.baseline) if args.baseline else None
    ncfd = shutil.which("ncfd", path=os.path.dirname(sys.executable))
    if ncfd is None:
        sys.exit("bench: ncfd is not installed next to this interpreter; run scripts/bench")
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    sections = args.only or SECTIONS
    print(
        f"ncfd bench: Python {sys.version.split()[0]}, {os.uname().sysname} {os.uname().release}, {os.cpu_count()} CPUs"
    )
    with contextlib.ExitStack() as stack:
        if {"handoff", "connect", "pac", "auth", "api"} & set(sections):
            target = stack.enter_context(peers.banner_target())
            proxies = servers(stack)
            if "handoff" in sections:
                section_handoff(args, ncfd, target, proxies)
            if "connect" in sections:
                section_connect(args, ncfd, target, proxies)
            if "pac" in sections:
                section_pac(args, ncfd, target, proxies)
            if "auth" in sections:
                section_auth(args, ncfd, target)
            if "api" in sections:
                section_api(args, target, proxies)
    if "relay" in sections:
        section_relay(args, ncfd)
    if "eyeballs" in sections:
        section_eyeballs(args, ncfd)
    return 0


if __name__ == "__main__":
    sys.exit(main())
