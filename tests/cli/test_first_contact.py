"""Where a newcomer stopped, each row of that table: --version, the forgotten -X connect, usage
errors that name the bad value and the valid ones, the SOCKS5 server that wants a password, files
named on the command line, -n/-4/-6 as the reason a name does not resolve, and a chain of proxies
with passwords of their own."""

from __future__ import annotations

from pathlib import Path

import pytest

import ncfd
from tests.support import peers
from tests.support.fdharness import NCFD, run_fdpass, run_ncfd
from tests.support.first_contact import one_line


def test_version_on_stdout() -> None:
    r = run_ncfd(["--version"])
    assert (r.returncode, r.stderr) == (0, b"")
    assert r.stdout.decode().splitlines()[0] == f"ncfd {ncfd.__version__}"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-V"], "ncfd: option requires an argument -- 'V' (nc's routing table, not supported; the version is"
                 " --version)"),
        (["-V", "1", "h", "22"], "ncfd: option -V is not supported by ncfd (the version is --version)"),
        (["-X", "conect", "h", "22"], "ncfd: unsupported proxy protocol 'conect' (use connect, 4, 4A or 5)"),
        (["-X", "http", "h", "22"],
         "ncfd: unsupported proxy protocol 'http' (use connect, 4, 4A or 5; an HTTP proxy is -X connect)"),
        (["-X", "socks5", "h", "22"],
         "ncfd: unsupported proxy protocol 'socks5' (use connect, 4, 4A or 5; SOCKS5 is -X 5)"),
        (["-X", "5h", "h", "22"], "ncfd: unsupported proxy protocol '5h' (use connect, 4, 4A or 5; -X 5 sends names to"
                                  " the proxy, as socks5h:// does)"),
        (["--proxy-auth", "kerberos", "h", "22"],
         "ncfd: unsupported proxy authentication scheme 'kerberos' (use basic, digest, ntlm, negotiate)"),
        (["-x", "ftp://p", "h", "22"], "ncfd: unsupported proxy URL scheme 'ftp' in ftp://p (use http, https, socks4,"
                                        " socks4a, socks5, socks5h)"),
        (["-T", "fast", "h", "22"], "ncfd: illegal tos value fast (use lowdelay, throughput, reliability, af11..af43,"
                                    " cs0..cs7, ef, va, critical, inetcontrol, netcontrol or a number, 0 to 255)"),
        (["--proxy-pass-file", "f", "h", "22"], "ncfd: unrecognized option '--proxy-pass-file' (did you mean"
                                                " --proxy-password-file?)"),
        (["-Y", "h", "22"], "ncfd: invalid option -- 'Y' (ncfd -h lists the options)"),
        (["-x", "[::1", "h", "22"], 'ncfd: missing closing bracket in proxy "[::1" (write [addr] or [addr]:port)'),
        (["--proxy-env=1", "h", "22"], "ncfd: option '--proxy-env' takes no value: write --proxy-env alone"),
        (["-x", "http:/127.0.0.1:8888", "h", "22"], 'ncfd: malformed proxy URL "http:/127.0.0.1:8888": write'
                                                    " scheme://host:port, with two slashes"),
        (["--proxy", "p:3128", "h", "22"], "ncfd: unrecognized option '--proxy' (the proxy is -x: -x host:port, or -x"
                                           " URL as curl's --proxy takes it)"),
    ],
)  # fmt: skip
def test_a_usage_error_names_the_bad_value_and_the_valid_ones(args: list[str], message: str) -> None:
    r = run_ncfd(args)
    assert r.returncode == 2
    assert one_line(r) == message


@pytest.mark.parametrize("option", ["--proxy-cacert", "--proxy-password-file", "--proxy-netrc"])
def test_a_missing_file_named_on_the_command_line_is_a_usage_error(option: str, tmp_path: Path) -> None:
    missing = tmp_path / "missing"
    r = run_ncfd([option, str(missing), "-x", "https://p", "h", "22"])
    assert r.returncode == 2
    assert one_line(r).endswith(f"{missing}: No such file or directory")


def test_a_missing_pac_file_is_a_pac_that_cannot_be_had(tmp_path: Path) -> None:
    """Exit 9, as for a PAC server that cannot be reached; a path that starts like a server lacks its http://."""
    missing = tmp_path / "missing.pac"
    r = run_ncfd(["--proxy-pac", str(missing), "h", "22"])
    assert r.returncode == 9
    assert one_line(r) == f"ncfd: cannot read PAC file {missing}: No such file or directory"
    r = run_ncfd(["--proxy-pac", "127.0.0.1:7050/simple.pac", "h", "22"])
    assert r.returncode == 9
    assert one_line(r) == (
        "ncfd: cannot read PAC file 127.0.0.1:7050/simple.pac: No such file or directory (did you mean"
        " http://127.0.0.1:7050/simple.pac?)"
    )


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (["-n", "-x", "localhost:1080"], '"localhost": Name or service not known (-n: numeric addresses only, no DNS)'),
        (["-6", "-x", "127.0.0.1:1080"], '"127.0.0.1": Address family for hostname not supported (-6: IPv6 addresses'
                                         " only, and 127.0.0.1 has none)"),
        (["-4", "-x", "[::1]:1080"], '"::1": Address family for hostname not supported (-4: IPv4 addresses only, and'
                                     " ::1 has none)"),
    ],
)  # fmt: skip
def test_a_name_that_does_not_resolve_because_of_n_4_or_6_says_so(args: list[str], reason: str) -> None:
    r = run_fdpass([*NCFD, "-F", *args, "h", "22"])
    assert r.sock is None and r.returncode == 3
    assert one_line(r) == f"ncfd: cannot resolve SOCKS5 proxy {reason}"


def test_a_netrc_line_that_does_not_parse_shows_none_of_its_words(tmp_path: Path) -> None:
    """An unquoted space in a password: the word after it is not a keyword, and is not shown."""
    netrc = tmp_path / "proxies.netrc"
    netrc.write_text("machine a.example login carol password x\nmachine proxy.example login alice password pa ss\n")
    netrc.chmod(0o600)
    r = run_ncfd(["--proxy-netrc", str(netrc), "-x", "http://proxy.example:3128", "h", "22"])
    assert (r.returncode, r.stdout) == (2, b"")
    assert r.stderr == (
        f"ncfd: --proxy-netrc file {netrc}: line 2 has a word where a netrc keyword belongs (a password with"
        ' spaces goes in double quotes: password "two words")\n'.encode()
    )


def test_the_netrc_file_is_not_read_through_a_symbolic_link(tmp_path: Path) -> None:
    """As the password file: opened once, without following a link, its mode checked on what was opened."""
    netrc = tmp_path / "proxies.netrc"
    netrc.write_text("machine proxy.invalid login alice password s3cret\n")
    netrc.chmod(0o600)
    link = tmp_path / "link.netrc"
    link.symlink_to(netrc)
    r = run_ncfd(["--proxy-netrc", str(link), "-x", "http://proxy.invalid:3128", "h", "22"])
    assert (r.returncode, r.stdout) == (2, b"")
    assert r.stderr == f"ncfd: cannot read --proxy-netrc file {link}: Too many levels of symbolic links\n".encode()


def test_v_says_which_netrc_machine_was_looked_for(tmp_path: Path) -> None:
    """A machine written with the proxy's port never matches: -v says so, rather than nothing."""
    netrc = tmp_path / "proxies.netrc"
    netrc.write_text("machine 127.0.0.1:3128 login alice password s3cret\n")
    netrc.chmod(0o600)
    port = peers.free_port()  # nothing listens: the lookup comes first
    r = run_ncfd(["-v", "--proxy-netrc", str(netrc), "-x", f"http://127.0.0.1:{port}", "h", "22"])
    assert r.returncode == 4
    assert (
        f"ncfd: --proxy-netrc file {netrc}: no machine 127.0.0.1 in it (machine 127.0.0.1:3128 has a port: write the"
        " host alone)" in r.stderr.decode().splitlines()
    )
