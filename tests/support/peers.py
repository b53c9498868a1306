"""Real servers on loopback for the tests: sshd, HTTP and SOCKS proxies, a target.

Every launcher is a context manager. It checks that its binaries are installed
(require: the test is skipped, or fails in CI, when one is not), writes its own
config into a fresh temp dir, starts the server in the foreground on a free
127.0.0.1 port, waits until the port accepts connections and stops the server
(and anything it forked) when the block exits, even if the test failed.
"""

from __future__ import annotations

import contextlib
import functools
import getpass
import hashlib
import os
import pwd
import shutil
import signal
import socket
import socketserver
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, NoReturn

import pytest

HOST = "127.0.0.1"
TARGET_BANNER = b"HELLO-TARGET\n"  # what banner_target() sends first, before echoing
START_TIMEOUT = 15.0
STOP_TIMEOUT = 3.0
NCSA_AUTH = "/usr/lib/squid/basic_ncsa_auth"


class PeerError(RuntimeError):
    """A server could not be started."""


def which(name: str) -> str | None:
    """shutil.which, also searching the sbin dirs a non-root PATH often lacks."""
    return shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")


def _bindable(family: socket.AddressFamily, host: str, port: int) -> bool:
    try:  # also fails without IPv6 support at all
        with socket.socket(family) as sock:
            sock.bind((host, port))
    except OSError:
        return False
    return True


# Proxies resolve "localhost" themselves and dante and microsocks only try the
# first address, ::1 where /etc/hosts lists it (as Docker's does). So targets
# listen on ::1 too when there is one.
LOOPBACKS = (HOST, "::1") if _bindable(socket.AF_INET6, "::1", 0) else (HOST,)


def unavailable(reason: str) -> NoReturn:
    """Skip the test, but fail it in CI, where everything is installed and a skip would hide a
    broken setup."""
    if os.environ.get("CI") == "true":
        pytest.fail(reason)
    pytest.skip(reason)


def require(*binaries: str) -> None:
    """Skip the test when a binary is missing (fail it in CI)."""
    missing = [name for name in binaries if which(name) is None]
    if missing:
        unavailable(f"not installed: {', '.join(missing)}")


def require_names(*names: str) -> None:
    """The names the tests give 127.0.0.1 in /etc/hosts, as .ci/run adds them."""
    for name in names:
        try:
            found = socket.gethostbyname(name)
        except OSError:
            found = None
        if found != HOST:
            unavailable(f"{name} must resolve to {HOST} (add it to /etc/hosts, as .ci/run does)")


def free_port() -> int:
    """A port free a moment ago on every loopback; servers cannot take port 0
    and report it, so this is racy, but only against other local processes."""
    while True:
        with socket.socket() as sock:
            sock.bind((HOST, 0))
            port: int = sock.getsockname()[1]
        if all(_bindable(socket.AF_INET6, host, port) for host in LOOPBACKS[1:]):
            return port


def port_holder(host: str, port: int) -> str | None:
    """None when TCP port of host (IPv4) is free to listen on; else who listens there, as
    `ss -ltnp` would name it ("nginx (pid 812)"), read from /proc: ss is not everywhere."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # an earlier test's TIME_WAIT holds nothing
        try:
            sock.bind((host, port))
        except OSError as exc:
            error = exc.strerror
        else:
            return None
    # /proc/net/tcp prints an address as the number its network-order bytes make in host order.
    ends = {f"{int.from_bytes(socket.inet_aton(address), sys.byteorder):08X}" for address in (host, "0.0.0.0")}
    local = {f"{end}:{port:04X}" for end in (*ends, "0" * 32)}  # also [::], which may take IPv4 too
    sockets = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for row in Path(table).read_text().splitlines()[1:]:
                fields = row.split()
                if fields[1] in local and fields[3] == "0A":  # LISTEN
                    sockets.add(f"socket:[{fields[9]}]")
    holders = set()
    for fd in Path("/proc").glob("[0-9]*/fd/*"):
        with contextlib.suppress(OSError):
            if os.readlink(fd) in sockets:
                process = fd.parent.parent
                holders.add(f"{(process / 'comm').read_text().strip()} (pid {process.name})")
    return ", ".join(sorted(holders)) or f"nothing this user can see ({error})"


@dataclass
class Peer:
    """A running server. Everything it logs ends in *.log inside workdir."""

    host: ClassVar[str] = HOST
    port: int
    workdir: Path
    process: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def address(self) -> str:
        """host:port, as `nc -x` wants it."""
        return f"{self.host}:{self.port}"

    def log_text(self) -> str:
        return "\n".join(
            f"--- {path.name}\n{path.read_text(errors='replace')}" for path in sorted(self.workdir.glob("*.log"))
        )

    def check_alive(self) -> None:
        """Fail the test at hand, in one line and the log's last lines, when the server is gone:
        a session's server dead since an earlier test would otherwise fail every later one with a
        bare "Connection refused" on a port number."""
        if self.process is None or self.process.poll() is None:
            return
        status = self.process.returncode
        how = f"killed by {signal.Signals(-status).name}" if status < 0 else f"exited with status {status}"
        tails = []
        for path in sorted(self.workdir.glob("*.log")):
            tail = path.read_text(errors="replace").splitlines()[-10:]
            tails += [f"--- last lines of {path}:", *tail] if tail else [f"--- {path}: empty"]
        name = Path(str(self.process.args[0])).name  # type: ignore[index]
        pytest.fail("\n".join([f"{name} on {self.address} is gone: {how} (pid {self.process.pid})", *tails]),
                    pytrace=False)  # fmt: skip


@dataclass
class Proxy(Peer):
    """An HTTP or SOCKS proxy; user/password are set when it requires them."""

    user: str | None = None
    password: str | None = None


ProxyFactory = Callable[..., Proxy]
"""Starts (or reuses) a proxy requiring this user and password; squid also takes schemes=(...)."""


@dataclass
class Sshd(Peer):
    user: str
    client_key: Path
    known_hosts: Path

    def ssh_argv(
        self,
        proxy_command: str,
        *remote_command: str,
        host: str = HOST,
        extra_opts: Sequence[str] = (),
    ) -> list[str]:
        """ssh argv that reaches this server only through proxy_command."""
        return [
            "ssh",
            "-F", "/dev/null",
            "-o", "BatchMode=yes",
            "-o", "IdentitiesOnly=yes",
            "-i", str(self.client_key),
            "-o", f"UserKnownHostsFile={self.known_hosts}",
            "-o", "StrictHostKeyChecking=yes",
            "-o", "ProxyUseFdpass=yes",
            "-o", f"ProxyCommand={proxy_command}",
            "-p", str(self.port),
            *extra_opts,
            f"{self.user}@{host}",
            *remote_command,
        ]  # fmt: skip


@dataclass
class Target:
    """The banner/echo server; see banner_target()."""

    host: ClassVar[str] = HOST
    banner: ClassVar[bytes] = TARGET_BANNER
    port: int


def _lines(*lines: str) -> str:
    return "".join(f"{line}\n" for line in lines)


def _binary(name: str) -> str:
    path = which(name)
    if path is None:
        raise PeerError(f"{name} not found in PATH or /usr/sbin")
    return path


@contextlib.contextmanager
def _workdir(name: str, owner: str | None = None) -> Iterator[Path]:
    """A temp dir; when root, owned by the user the server drops privileges to,
    so it can still write its logs and pid file there."""
    with tempfile.TemporaryDirectory(prefix=f"ncfd-{name}-") as tmp:
        if owner and os.geteuid() == 0:
            entry = pwd.getpwnam(owner)
            os.chown(tmp, entry.pw_uid, entry.pw_gid)
        yield Path(tmp)


@contextlib.contextmanager
def _running(
    peer: Peer, argv: Sequence[str | Path], host: str = HOST, env: dict[str, str] | None = None
) -> Iterator[None]:
    """Run argv until the block exits; the block starts once host:peer.port accepts."""
    with (peer.workdir / "output.log").open("wb") as output:
        # Own session and process group, for _stop to kill as a whole.
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            cwd=peer.workdir,
            start_new_session=True,
            env=env,
        )
    peer.process = proc
    try:
        _wait_accepting(proc, peer, host)
        yield
    finally:
        _stop(proc)


def _wait_accepting(proc: subprocess.Popen[bytes], peer: Peer, host: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise PeerError(f"{proc.args!r} exited with {proc.returncode}:\n{peer.log_text()}")
        with contextlib.suppress(OSError), socket.create_connection((host, peer.port), timeout=1):
            return
        time.sleep(0.02)
    raise PeerError(f"{proc.args!r} not accepting on {host}:{peer.port} after {START_TIMEOUT}s:\n{peer.log_text()}")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    # Only the leader gets SIGTERM, so it can stop and reap its own children.
    proc.terminate()
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(STOP_TIMEOUT)
    # Then SIGKILL the process group: a hung leader and anything it left behind.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def _keygen(path: Path) -> str:
    """Make an ed25519 key pair at path; return the public key line."""
    subprocess.run([_binary("ssh-keygen"), "-q", "-t", "ed25519", "-N", "", "-C", path.name, "-f", path], check=True)
    return path.with_suffix(".pub").read_text().strip()


@contextlib.contextmanager
def sshd() -> Iterator[Sshd]:
    """OpenSSH server accepting only the generated client key for this user."""
    require("sshd", "ssh-keygen")
    if os.geteuid() == 0:
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)  # privilege separation
    with _workdir("sshd") as tmp:
        port = free_port()
        host_pub = _keygen(tmp / "host_key")
        (tmp / "authorized_keys").write_text(_keygen(tmp / "client_key") + "\n")
        key_type, key = host_pub.split()[:2]
        known_hosts = tmp / "known_hosts"
        known_hosts.write_text(f"[{HOST}]:{port},[localhost]:{port} {key_type} {key}\n")
        config = tmp / "sshd_config"
        config.write_text(
            _lines(
                *(f"ListenAddress [{host}]:{port}" for host in LOOPBACKS),
                f"HostKey {tmp / 'host_key'}",
                f"PidFile {tmp / 'sshd.pid'}",
                f"AuthorizedKeysFile {tmp / 'authorized_keys'}",
                "AuthenticationMethods publickey",
                "PasswordAuthentication no",
                "KbdInteractiveAuthentication no",
                "PermitRootLogin prohibit-password",
                "UsePAM no",
                "StrictModes no",  # the temp dir is not a home dir sshd would trust
                "LogLevel VERBOSE",
            )
        )
        server = Sshd(
            port=port,
            workdir=tmp,
            user=getpass.getuser(),
            client_key=tmp / "client_key",
            known_hosts=known_hosts,
        )
        # sshd re-executes itself, so it needs an absolute path.
        with _running(server, [_binary("sshd"), "-D", "-e", "-f", config]):
            yield server


def _passwd_file(path: Path, user: str, password: str) -> None:
    """An htpasswd-style line for basic_ncsa_auth, hashed by openssl (MD5-APR1), not htpasswd."""
    hashed = subprocess.run([_binary("openssl"), "passwd", "-apr1", "-stdin"], input=password.encode(), check=True,
                            capture_output=True).stdout.decode().strip()  # fmt: skip
    path.write_text(f"{user}:{hashed}\n")


SQUID_HELPERS = "/usr/lib/squid"


def _squid_auth(tmp: Path, schemes: Sequence[str], user: str, password: str) -> list[str]:
    """auth_param lines, in the order squid offers the schemes."""
    # user:realm:HA1 (-c): a plain user:password line could not hold a password with a colon.
    ha1 = hashlib.md5(f"{user}:ncfd:{password}".encode()).hexdigest()
    (tmp / "digest_passwd").write_text(f"{user}:ncfd:{ha1}\n")
    _passwd_file(tmp / "passwd", user, password)
    helpers = {
        "basic": f"{NCSA_AUTH} {tmp / 'passwd'}",
        "digest": f"{SQUID_HELPERS}/digest_file_auth -c {tmp / 'digest_passwd'}",
        # Accepts any NTLM credentials: it proves the exchange, not the password.
        "ntlm": f"{SQUID_HELPERS}/ntlm_fake_auth",
    }
    require("openssl", *(helpers[scheme].split()[0] for scheme in schemes))
    lines = []
    for scheme in schemes:
        lines += [f"auth_param {scheme} program {helpers[scheme]}", f"auth_param {scheme} children 2"]
        if scheme in ("basic", "digest"):
            lines.append(f"auth_param {scheme} realm ncfd")
    return lines


@contextlib.contextmanager
def squid(
    user: str | None = None,
    password: str | None = None,
    schemes: Sequence[str] = ("basic",),
    auth_lines: Sequence[str] = (),
    workdir: Path | None = None,
    access_lines: Sequence[str] = (),
) -> Iterator[Proxy]:
    """Squid allowing CONNECT to any port; with a user, it requires one of schemes; with auth_lines
    (auth_param lines of the caller's), it requires what they configure; access_lines (acl and
    http_access lines) come before the rest: "http_access deny !h" makes what acl h says a must."""
    require("squid")
    with contextlib.ExitStack() as stack:
        tmp = workdir or stack.enter_context(_workdir("squid", owner="proxy"))
        port = free_port()
        if user is None and not auth_lines:
            access = ["http_access allow localhost"]
        else:
            access = [
                *(_squid_auth(tmp, schemes, user, password or "") if user is not None else []),
                *auth_lines,
                "acl authenticated proxy_auth REQUIRED",
                "http_access deny !localhost",
                "http_access allow authenticated",
            ]
        config = tmp / "squid.conf"
        # No SSL_ports acl as in the stock config: CONNECT to any port is fine.
        config.write_text(
            _lines(
                f"http_port {HOST}:{port}",
                *access_lines,
                *access,
                "http_access deny all",
                "cache deny all",
                f"pid_filename {tmp / 'squid.pid'}",
                f"access_log stdio:{tmp / 'access.log'}",
                f"cache_log {tmp / 'cache.log'}",
                "netdb_filename none",
                "pinger_enable off",
                "visible_hostname ncfd-test",  # else fatal when the hostname is unresolvable
                "shutdown_lifetime 0 seconds",  # else SIGTERM waits 30 s for clients
            )
        )
        proxy = Proxy(port=port, workdir=tmp, user=user, password=password)
        with _running(proxy, [_binary("squid"), "-N", "-f", config]):
            yield proxy


@contextlib.contextmanager
def tinyproxy(user: str | None = None, password: str | None = None) -> Iterator[Proxy]:
    """Tinyproxy; without ConnectPort lines it allows CONNECT to any port."""
    require("tinyproxy")
    with _workdir("tinyproxy", owner="nobody") as tmp:
        port = free_port()
        config = tmp / "tinyproxy.conf"
        config.write_text(
            _lines(
                # Don't proxy as root, as the packaged config doesn't (it only warns).
                *(["User nobody", "Group nogroup"] if os.geteuid() == 0 else []),
                f"Port {port}",
                f"Listen {HOST}",
                f"Allow {HOST}",
                f'PidFile "{tmp / "tinyproxy.pid"}"',  # paths must be quoted
                f'LogFile "{tmp / "tinyproxy.log"}"',
                "LogLevel Info",
                *([f"BasicAuth {user} {password}"] if user is not None else []),
            )
        )
        proxy = Proxy(port=port, workdir=tmp, user=user, password=password)
        with _running(proxy, [_binary("tinyproxy"), "-d", "-c", config]):
            yield proxy


@contextlib.contextmanager
def dante() -> Iterator[Proxy]:
    """Dante serving unauthenticated SOCKS4 and SOCKS5 CONNECT; it has no
    SOCKS4A (it connects to the placeholder 0.0.0.x address instead)."""
    require("danted")
    with _workdir("dante", owner="nobody") as tmp:
        port = free_port()
        config = tmp / "danted.conf"
        config.write_text(
            _lines(
                f"logoutput: {tmp / 'danted.log'}",
                f"internal: {HOST} port = {port}",
                "external: lo",  # both families, in case a name resolves to ::1
                "clientmethod: none",
                "socksmethod: none",
                *(["user.privileged: root", "user.unprivileged: nobody"] if os.geteuid() == 0 else []),
                "client pass { from: 127.0.0.0/8 to: 0/0 }",
                "client pass { from: ::1/128 to: 0/0 }",
                "socks pass { from: 127.0.0.0/8 to: 0/0 log: error connect }",
                "socks pass { from: ::1/128 to: 0/0 log: error connect }",
            )
        )
        proxy = Proxy(port=port, workdir=tmp)
        # Without -D it stays in the foreground.
        argv: list[str | Path] = [_binary("danted"), "-f", config, "-p", tmp / "danted.pid"]
        with _running(proxy, argv):
            yield proxy


@contextlib.contextmanager
def microsocks(user: str | None = None, password: str | None = None) -> Iterator[Proxy]:
    """microsocks (SOCKS5 only); username/password auth if user is given."""
    require("microsocks")
    with _workdir("microsocks") as tmp:
        port = free_port()
        argv = [_binary("microsocks"), "-i", HOST, "-p", str(port)]
        if user is not None:
            argv += ["-u", user, "-P", password or ""]
        proxy = Proxy(port=port, workdir=tmp, user=user, password=password)
        with _running(proxy, argv):
            yield proxy


@dataclass
class TlsProxy(Proxy):
    """A TLS front (stunnel) to an HTTP proxy; cafile is the CA that signed its certificate. With
    client certificates required: client.pem and client.key (its CA is the one stunnel trusts),
    client-encrypted.key (the same key under CLIENT_KEY_PASSPHRASE), and rogue.pem and rogue.key
    (a CA stunnel does not trust signed it), all in workdir."""

    cafile: Path = Path()
    tls_max: str | None = None  # the highest TLS version it speaks, when capped


CLIENT_KEY_PASSPHRASE = "key pass:phrase"


def _ca(tmp: Path, name: str) -> None:
    """A throwaway CA: name.pem, name.key."""
    subject = f"/CN=ncfd test {'CA' if name == 'ca' else name}"
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    subprocess.run([_binary("openssl"), "req", "-x509", *ec, "-keyout", f"{name}.key", "-out", f"{name}.pem", "-days",
                    "2", "-subj", subject, "-addext", "basicConstraints=critical,CA:TRUE", "-addext",
                    "keyUsage=critical,keyCertSign"], check=True, capture_output=True, cwd=tmp)  # fmt: skip


def _client_certificates(tmp: Path) -> None:
    """client-ca.pem, which stunnel is to trust, and the client certificates of TlsProxy's doc."""
    openssl = _binary("openssl")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    run = functools.partial(subprocess.run, check=True, capture_output=True, cwd=tmp)
    (tmp / "client.ext").write_text("basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n")
    for name, ca in (("client", "client-ca"), ("rogue", "rogue-ca")):
        _ca(tmp, ca)
        run([openssl, "req", *ec, "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN=ncfd {name}"])
        run([openssl, "x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.pem", "-CAkey", f"{ca}.key",
             "-CAcreateserial", "-out", f"{name}.pem", "-days", "2", "-extfile", "client.ext"])  # fmt: skip
    run(
        [openssl, "pkey", "-in", "client.key", "-aes256", "-passout", "stdin", "-out", "client-encrypted.key"],
        input=CLIENT_KEY_PASSPHRASE.encode(),
    )
    for key in tmp.glob("*.key"):
        key.chmod(0o600)


def _certificates(tmp: Path) -> None:
    """A throwaway CA (ca.pem) and a certificate it signed for localhost and 127.0.0.1 (server.*)."""
    openssl = _binary("openssl")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    run = functools.partial(subprocess.run, check=True, capture_output=True, cwd=tmp)
    _ca(tmp, "ca")
    run([openssl, "req", *ec, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=localhost"])
    (tmp / "server.ext").write_text(
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nauthorityKeyIdentifier=keyid\n"
        "basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n"
    )
    run([openssl, "x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
         "-out", "server.pem", "-days", "2", "-extfile", "server.ext"])  # fmt: skip


@contextlib.contextmanager
def stunnel(backend: Peer, client_certificates: bool = False, tls_max: str | None = None) -> Iterator[TlsProxy]:
    """stunnel taking TLS on a free port and passing the plain stream to backend: an HTTPS proxy;
    with client_certificates, one that requires a client certificate client-ca.pem signed (verify
    and CAfile); tls_max ("TLSv1.2") caps the protocol version."""
    require("stunnel", "openssl")
    with _workdir("stunnel") as tmp:
        _certificates(tmp)
        verify: list[str] = []
        if client_certificates:
            _client_certificates(tmp)
            verify = ["verifyChain = yes", "requireCert = yes", f"CAfile = {tmp / 'client-ca.pem'}"]
        port = free_port()
        config = tmp / "stunnel.conf"
        config.write_text(
            _lines(
                "foreground = yes",
                f"pid = {tmp / 'stunnel.pid'}",
                f"output = {tmp / 'stunnel.log'}",
                "[https-proxy]",
                f"accept = {HOST}:{port}",
                f"connect = {backend.host}:{backend.port}",
                f"cert = {tmp / 'server.pem'}",
                f"key = {tmp / 'server.key'}",
                *verify,
                *([f"sslVersionMax = {tls_max}"] if tls_max else []),
            )
        )
        proxy = TlsProxy(port=port, workdir=tmp, cafile=tmp / "ca.pem", tls_max=tls_max)
        with _running(proxy, [_binary("stunnel"), config]):
            yield proxy


@contextlib.contextmanager
def ssh_socks(server: Sshd) -> Iterator[Proxy]:
    """`ssh -D` into server: SOCKS4, SOCKS4A and SOCKS5, the only SOCKS4A here."""
    require("ssh")
    with _workdir("ssh-socks") as tmp:
        port = free_port()
        proxy = Proxy(port=port, workdir=tmp)
        forward = ["-N", "-D", f"{HOST}:{port}", "-o", "ExitOnForwardFailure=yes"]
        with _running(proxy, server.ssh_argv("none", extra_opts=forward)):
            yield proxy


class _BannerEchoHandler(socketserver.BaseRequestHandler):
    server: _BannerEchoServer

    def handle(self) -> None:
        self.server.connections.add(self.request)
        with contextlib.suppress(OSError):
            self.request.sendall(TARGET_BANNER)
            while data := self.request.recv(65536):
                self.request.sendall(data)
        self.server.connections.discard(self.request)


class _BannerEchoServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    # socketserver's backlog of 5 overflows under bursts of connections (the load tests): the
    # kernel drops SYNs and clients resend them a second later.
    request_queue_size = 256

    def __init__(self, host: str, port: int) -> None:
        self.address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.connections: set[socket.socket] = set()
        super().__init__((host, port), _BannerEchoHandler)

    def close(self) -> None:
        self.shutdown()
        self.server_close()
        # Wake handlers still blocked in recv() on connections a test left open.
        for conn in list(self.connections):
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)


@contextlib.contextmanager
def banner_target() -> Iterator[Target]:
    """TCP server on every loopback, sending TARGET_BANNER on accept, then echoing."""
    port = free_port()
    with contextlib.ExitStack() as stack:
        for host in LOOPBACKS:
            server = _BannerEchoServer(host, port)
            stack.callback(server.close)
            # A short poll interval keeps shutdown() from taking 0.5 s.
            serve = functools.partial(server.serve_forever, poll_interval=0.02)
            threading.Thread(target=serve, daemon=True).start()
        yield Target(port=port)


@dataclass
class WebServer(Peer):
    """nginx serving the files in root (a directory the test fills) on host:port."""

    root: Path = Path()
    web_host: str = HOST

    @property
    def address(self) -> str:
        return f"{self.web_host}:{self.port}"

    def url(self, path: str) -> str:
        port = "" if self.port == 80 else f":{self.port}"
        return f"http://{self.web_host}{port}/{path.lstrip('/')}"

    def requests(self) -> list[tuple[str, int, str]]:
        """(request path, status, If-None-Match sent) for each request so far, oldest first."""
        log = self.workdir / "access.log"
        if not log.exists():
            return []
        rows = []
        for line in log.read_text().splitlines():
            path, status, etag = line.split("\t")
            rows.append((path, int(status), etag))
        return rows


NGINX_LOCATIONS = """
        location /fresh/ { add_header Cache-Control "max-age=3600"; }
        location /stale/ { add_header Cache-Control "max-age=0"; }
        location = /redirect.pac { return 302 /fresh/proxy.pac; }
        location = /loop-a.pac { return 302 /loop-b.pac; }
        location = /loop-b.pac { return 302 /loop-a.pac; }
        location /latin1/ { default_type "application/x-ns-proxy-autoconfig; charset=iso-8859-1"; }
"""


@contextlib.contextmanager
def nginx(host: str = HOST, port: int | None = None, server_name: str | None = None) -> Iterator[WebServer]:
    """nginx with a config of its own; conditional GET (ETag, Last-Modified) as it does for any
    static file. Port 80 (for WPAD) needs root."""
    require("nginx")
    with _workdir("nginx", owner="nobody") as tmp:
        root = tmp / "www"
        root.mkdir()
        if os.geteuid() == 0:
            os.chown(root, pwd.getpwnam("nobody").pw_uid, -1)
        port = port or free_port()
        config = tmp / "nginx.conf"
        config.write_text(
            _lines(
                "daemon off;",
                "worker_processes 1;",
                f"pid {tmp / 'nginx.pid'};",
                f"error_log {tmp / 'error.log'} info;",
                *(["user nobody nogroup;"] if os.geteuid() == 0 else []),
                "events { worker_connections 512; }",
                "http {",
                "    log_format ncfd '$uri\\t$status\\t$http_if_none_match';",
                f"    access_log {tmp / 'access.log'} ncfd;",
                *(f"    {kind}_temp_path {tmp / kind};" for kind in ("client_body", "proxy", "fastcgi", "uwsgi")),
                f"    scgi_temp_path {tmp / 'scgi'};",
                "    default_type application/x-ns-proxy-autoconfig;",
                "    server {",
                f"        listen {host}:{port};",
                f"        server_name {server_name or host};",
                f"        root {root};",
                NGINX_LOCATIONS,
                "    }",
                "}",
            )
        )
        server = WebServer(port=port, workdir=tmp, root=root, web_host=server_name or host)
        with _running(server, [_binary("nginx"), "-p", tmp, "-c", config, "-e", tmp / "error.log"], host):
            yield server


REALM = "NCFD.TEST"
PROXY_NAME = "proxy.ncfd.test"  # .ci/run: 127.0.0.1, with proxy-alias.ncfd.test as an alias
PROXY_ALIAS = "proxy-alias.ncfd.test"
LB_NAME = "lb.ncfd.test"  # a load balancer's name, known to the KDC, in no DNS and no /etc/hosts
KRB_USER = "alice"


@dataclass
class Kdc(Peer):
    """An MIT KDC for REALM on loopback, with its files in workdir; the system's are untouched.

    env() gives what a client needs (KRB5_CONFIG, KRB5CCNAME); the service principal
    HTTP/PROXY_NAME is in http_keytab, the user's keys in user_keytab (no password anywhere)."""

    http_keytab: Path = Path()
    user_keytab: Path = Path()

    @property
    def krb5_conf(self) -> Path:
        return self.workdir / "krb5.conf"

    def env(self, ccache: Path | None = None, **krb5_conf: str) -> dict[str, str]:
        """A client environment; krb5_conf overrides [libdefaults] (dns_canonicalize_hostname=...)
        or, with kdc=, where the realm's KDC is said to be, in a krb5.conf of its own."""
        conf = self.krb5_conf
        if krb5_conf:
            conf = self.workdir / f"krb5-{len(list(self.workdir.glob('krb5-*.conf')))}.conf"
            conf.write_text(_krb5_conf(krb5_conf.pop("kdc", f"127.0.0.1:{self.port}"), **krb5_conf))
        ccache = ccache or self.workdir / "ccache"
        return {
            "KRB5_CONFIG": str(conf),
            "KRB5CCNAME": f"FILE:{ccache}",
            "KRB5_KDC_PROFILE": str(self.workdir / "kdc.conf"),
        }

    def kinit(self, env: dict[str, str], *args: str) -> None:
        """A ticket for KRB_USER from its keytab, into env's credential cache."""
        run = functools.partial(subprocess.run, check=True, capture_output=True, env={**os.environ, **env})
        run([_binary("kinit"), *args, "-k", "-t", str(self.user_keytab), f"{KRB_USER}@{REALM}"])

    def admin(self, query: str) -> None:
        env = {**os.environ, "KRB5_CONFIG": str(self.krb5_conf), "KRB5_KDC_PROFILE": str(self.workdir / "kdc.conf")}
        subprocess.run([_binary("kadmin.local"), "-q", query], check=True, capture_output=True, env=env)


def _krb5_conf(kdc: str, **libdefaults: str) -> str:
    settings = {"default_realm": REALM, "dns_lookup_kdc": "false", "dns_lookup_realm": "false", "rdns": "false",
                "dns_canonicalize_hostname": "true", "udp_preference_limit": "1", **libdefaults}  # fmt: skip
    return _lines(
        "[libdefaults]",
        *(f"    {key} = {value}" for key, value in settings.items()),
        "[realms]",
        f"    {REALM} = {{",
        f"        kdc = {kdc}",
        "    }",
        "[domain_realm]",
        f"    .ncfd.test = {REALM}",
        f"    ncfd.test = {REALM}",
    )


@contextlib.contextmanager
def kdc() -> Iterator[Kdc]:
    """krb5kdc with a fresh database: HTTP/PROXY_NAME and KRB_USER, each with a keytab; kinit for
    Kdc.kinit."""
    require("krb5kdc", "kdb5_util", "kadmin.local", "kinit")
    with _workdir("kdc") as tmp:
        port = free_port()
        (tmp / "krb5.conf").write_text(_krb5_conf(f"127.0.0.1:{port}"))
        (tmp / "kdc.conf").write_text(
            _lines(
                "[kdcdefaults]",
                f"    kdc_ports = {port}",
                f"    kdc_tcp_ports = {port}",
                "[realms]",
                f"    {REALM} = {{",
                f"        database_name = {tmp / 'principal'}",
                f"        key_stash_file = {tmp / 'stash'}",
                f"        acl_file = {tmp / 'kadm5.acl'}",
                "        max_life = 10h",
                "    }",
                "[logging]",
                f"    kdc = FILE:{tmp / 'kdc.log'}",
            )
        )
        (tmp / "kadm5.acl").write_text("")
        server = Kdc(port=port, workdir=tmp, http_keytab=tmp / "http.keytab", user_keytab=tmp / "user.keytab")
        env = {**os.environ, "KRB5_CONFIG": str(tmp / "krb5.conf"), "KRB5_KDC_PROFILE": str(tmp / "kdc.conf")}
        run = functools.partial(subprocess.run, check=True, capture_output=True, env=env)
        run([_binary("kdb5_util"), "create", "-s", "-r", REALM, "-P", "master-password-of-the-test-realm"])
        for query in (
            f"addprinc -randkey HTTP/{PROXY_NAME}@{REALM}",
            f"ktadd -k {server.http_keytab} HTTP/{PROXY_NAME}",
            f"addprinc -randkey {KRB_USER}@{REALM}",
            f"ktadd -k {server.user_keytab} {KRB_USER}",
        ):
            server.admin(query)
        with _running(server, [_binary("krb5kdc"), "-n", "-P", tmp / "krb5kdc.pid"], env=env):
            yield server


def _negotiate_helper(tmp: Path, kdc_server: Kdc, keytab_of: Path | None = None, principal: str = "") -> str:
    """squid passes its helpers no environment of ours: a wrapper exports the realm's files and
    execs the real helper, logging (-d) into the workdir's negotiate.log. It accepts HTTP/PROXY_NAME,
    or the principal given (GSS_C_NO_NAME: any in keytab_of)."""
    keytab, conf = tmp / "http.keytab", tmp / "krb5.conf"
    principal = principal or f"HTTP/{PROXY_NAME}@{REALM}"
    shutil.copy(keytab_of or kdc_server.http_keytab, keytab)
    shutil.copy(kdc_server.krb5_conf, conf)
    if os.geteuid() == 0:  # squid runs its helpers as its own user
        proxy_user = pwd.getpwnam("proxy")
        for path in (keytab, conf):
            os.chown(path, proxy_user.pw_uid, proxy_user.pw_gid)
    wrapper = tmp / "negotiate-helper"
    wrapper.write_text(
        _lines(
            "#!/bin/sh",
            f"export KRB5_CONFIG={conf}",
            f"export KRB5_KTNAME=FILE:{keytab}",
            f"exec {SQUID_HELPERS}/negotiate_kerberos_auth -k {keytab} -s {principal} -d 2>>{tmp / 'negotiate.log'}",
        )
    )
    wrapper.chmod(0o755)
    return str(wrapper)


@contextlib.contextmanager
def squid_negotiate(kdc_server: Kdc, ntlm: bool = False, principals: Sequence[str] = ()) -> Iterator[Proxy]:
    """squid that wants Negotiate and checks it with negotiate_kerberos_auth against kdc_server
    (reached as PROXY_NAME: the address 127.0.0.1 has no principal); with ntlm, through
    negotiate_wrapper_auth, which gives raw NTLM tokens to ntlm_fake_auth instead. With principals
    (service/host, made in the realm now), it has those and not HTTP/PROXY_NAME: the first is
    another service at PROXY_NAME, which curl --proxy-service-name can ask for.

    Before any test uses it, an independent client (curl --proxy-negotiate, with a ticket of its
    own) must get through it: a broken fixture cannot pass for a broken ncfd."""
    wrapper = [f"{SQUID_HELPERS}/negotiate_wrapper_auth", f"{SQUID_HELPERS}/ntlm_fake_auth"] if ntlm else []
    require("squid", "curl", f"{SQUID_HELPERS}/negotiate_kerberos_auth", *wrapper)
    with _workdir("squid-negotiate", owner="proxy") as tmp:
        keytab = None
        if principals:
            keytab = tmp / "other.keytab"
            for principal in principals:
                kdc_server.admin(f"addprinc -randkey {principal}@{REALM}")
                kdc_server.admin(f"ktadd -k {keytab} {principal}")
        helper = _negotiate_helper(tmp, kdc_server, keytab, "GSS_C_NO_NAME" if principals else "")
        if ntlm:
            helper = f"{SQUID_HELPERS}/negotiate_wrapper_auth --ntlm {SQUID_HELPERS}/ntlm_fake_auth --kerberos {helper}"
        lines = [f"auth_param negotiate program {helper}", "auth_param negotiate children 2",
                 "auth_param negotiate keep_alive on"]  # fmt: skip
        with squid(auth_lines=lines, workdir=tmp) as proxy, banner_target() as target:
            env = kdc_server.env(ccache=tmp / "self-check-ccache")
            kdc_server.kinit(env)
            service = ["--proxy-service-name", principals[0].split("/")[0]] if principals else []
            curl = [_binary("curl"), "-s", "--max-time", "5", "--proxy-negotiate", "-U", ":", *service,
                    "-x", f"http://{PROXY_NAME}:{proxy.port}", "-p", f"telnet://127.0.0.1:{target.port}"]  # fmt: skip
            r = subprocess.run(curl, env={**os.environ, **env}, capture_output=True, stdin=subprocess.DEVNULL)
            if not r.stdout.startswith(TARGET_BANNER):
                raise PeerError(f"curl --proxy-negotiate does not get through squid: {r.stderr!r}\n{proxy.log_text()}")
            yield proxy
