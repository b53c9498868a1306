"""-h, the man page and the README say the same thing, and the parser accepts what they say."""

from __future__ import annotations

import re

import pytest

from ncfd.manual import EXIT_STATUS, OPTIONS, PASSWORD, SYNOPSIS, fdrecv_man_page, man_page
from ncfd.options import _FLAGS, _WITH_VALUE, LONG_FLAGS, LONG_OPTIONS, parse_args
from tests.support import ROOT

README = (ROOT / "README.md").read_text()


def test_man_page_is_current() -> None:
    assert (ROOT / "ncfd.1").read_text() == man_page(), "run scripts/manpage and commit ncfd.1"
    assert (ROOT / "ncfd-fdrecv.1").read_text() == fdrecv_man_page(), "run scripts/manpage, commit ncfd-fdrecv.1"


def test_the_man_page_has_https_s_default_port_and_an_authentication_example() -> None:
    page = man_page()
    assert "https:// (port 443)" in page.replace("\\-", "-")
    assert "ProxyCommand ncfd \\-F \\-P alice \\-\\-proxy\\-password\\-file ~/.ssh/proxy\\-password" in page


def test_documented_options_are_exactly_the_parsed_ones() -> None:
    documented = {option for option, _, _ in OPTIONS}
    parsed = {f"-{letter}" for letter in _FLAGS | _WITH_VALUE} | {f"--{name}" for name in LONG_OPTIONS + LONG_FLAGS}
    assert documented == parsed


@pytest.mark.parametrize(("option", "argument"), [(o, a) for o, a, _ in OPTIONS if o != "-h"])
def test_each_documented_option_parses(option: str, argument: str) -> None:
    examples = {"length": "1024", "user": "alice", "port": "4000", "seconds": "1", "source": "127.0.0.1",
                "keyword": "lowdelay", "timeout": "5", "protocol": "connect", "proxy": "socks5h://p",
                "scheme": "digest", "file": str(ROOT / "LICENSE"), "location": "http://pac.example/proxy.pac",
                "header": "X-Test: 1", "name": "HTTP", "patterns": "*.corp.example"}  # fmt: skip
    argv = [option, examples[argument]] if argument else [option]
    if option == "-s":
        argv = [*argv, "h", "22"]
    elif option == "--proxy-pac-optional":
        argv = [*argv, "--proxy-pac", examples["location"], "h", "22"]
    elif option == "--proxy-key":
        argv = [*argv, "--proxy-cert", examples["file"], "-x", "p", "h", "22"]
    else:
        chooses_the_route = ("-x", "--proxy-env", "--proxy-pac", "--proxy-auto")
        argv = [*argv, "-x", "p", "h", "22"] if option not in chooses_the_route else [*argv, "h", "22"]
    parse_args(argv)


def test_the_synopsis_names_each_value_as_the_option_list_does() -> None:
    listed = {option: argument for option, argument, _ in OPTIONS if argument}
    assert dict(re.findall(r"\[(-[-\w]+) (\w+)\]", SYNOPSIS)) == listed
    synopsis = README.split("\n## Options\n", 1)[1].strip().split("\n\n", 1)[0]
    in_readme = re.findall(r"\[(-[-\w]+) (\w+)\]", synopsis)
    assert len(in_readme) > 10 and [(o, a) for o, a in in_readme if listed.get(o) != a] == []


def test_readme_options_table_lists_every_option() -> None:
    section = README.split("\n## Options\n", 1)[1].split("\n## ", 1)[0]
    first_cells = [row.split("|")[1] for row in section.splitlines() if row.startswith("| `")]
    listed = {token.split()[0] for cell in first_cells for token in re.findall(r"`([^`]+)`", cell)}
    assert listed == {option for option, _, _ in OPTIONS}


def test_no_percent_escape_in_a_readme_proxycommand_is_left_for_ssh_to_expand() -> None:
    """ssh expands % in a ProxyCommand (%h, %p): a URL's %5C must be written %%5C there."""
    commands = [line for line in README.splitlines() if re.match(r"\s*ProxyCommand |.*-o ProxyCommand=", line)]
    assert len(commands) > 10
    assert [line for line in commands if re.search(r"(?<!%)%[0-9A-Fa-f]{2}", line.replace("%%", ""))] == []


def test_the_password_sources_are_in_one_order_everywhere() -> None:
    """-h and the man page (manual.PASSWORD), the README's list and the code's docstring."""
    import ncfd.password

    sources = ["--proxy-netrc", "NCFD_PROXY_PASSWORD", "--proxy-password-file", "SSH_ASKPASS", "/dev/tty"]
    readme = README.split("The password comes from, in this order:", 1)[1].strip().split("\n\n", 1)[0]
    for text in (PASSWORD, readme, ncfd.password.__doc__ or ""):
        assert sorted(sources, key=text.index) == sources, text


@pytest.mark.parametrize(("code", "meaning"), EXIT_STATUS)
def test_readme_exit_status_table_lists_every_code(code: int, meaning: str) -> None:
    assert re.search(rf"^\| {code} \|", README, re.M), f"README's failure table lacks exit {code}"


def test_the_readmes_install_commands_work_from_a_checkout() -> None:
    """ncfd is not on PyPI: every install command the README gives names this checkout or the wheel
    scripts/package builds, none a name an index would have to know."""
    section = README.split("\n## Install\n", 1)[1].split("\n## ", 1)[0]
    commands = [re.sub(r"\s#.*", "", line).split() for line in section.splitlines() if line.startswith("    ")]
    outdir = re.findall(r"--outdir (\S+)", (ROOT / "scripts" / "package").read_text())
    wheel = f"{outdir[0]}/ncfd-*.whl"
    installs = [words[2:] for words in commands if words[:2] in (["pip", "install"], ["pipx", "install"])]
    assert installs and all(args in (["."], [wheel]) for args in installs), installs
    assert [words for words in commands if words[0].startswith("scripts/")] == [["scripts/package"]]


def test_the_package_links_to_no_page_that_does_not_exist() -> None:
    """pip show and an index display the project's URLs; ncfd has no public page yet (no PyPI
    project, no public repository), so pyproject.toml names none."""
    settings = [line for line in (ROOT / "pyproject.toml").read_text().splitlines() if not line.startswith("#")]
    assert [line for line in settings if re.search(r"https?://|\[project\.urls\]", line)] == []


def test_install_peers_starts_stops_and_kills_nothing() -> None:
    """It runs on a newcomer's workstation, where `service ssh stop` stops their sshd and Debian's
    `service tinyproxy stop` every tinyproxy on the machine; and upgrades nothing already there."""
    script = (ROOT / "scripts" / "install-peers").read_text()
    code = "\n".join(re.sub(r"(^|\s)#.*", "", line) for line in script.splitlines())
    # systemctl mask alone: a NetworkManager installed where systemd runs must never start.
    forbidden = [r"\bservice\s+\S+\s+(start|stop|restart|reload|force-reload)\b", r"\bsystemctl\s+(?!mask\b)",
                 r"\binvoke-rc\.d\b", r"start-stop-daemon", r"\bp?kill\b", r"\bkillall\b", r"\bfuser\b"]  # fmt: skip
    assert [pattern for pattern in forbidden if re.search(pattern, code)] == []
    installs = re.findall(r"apt-get install .*", code)
    assert installs and all("--no-upgrade" in line for line in installs), installs
    assert "policy-rc.d" in code


def test_the_readmes_layout_names_every_module_of_the_package_and_no_other() -> None:
    """README's Layout is the tree as it is: each file of ncfd/ once, in its own folder, and no
    file that is not there."""
    section = README.split("\n## Layout\n", 1)[1].split("\n## ", 1)[0]
    block = [line for line in section.splitlines() if line.startswith("    ncfd/") or line.startswith("      ")]
    named, folder = set(), ""
    for line in block:
        word = line.split()[0]
        if word.endswith("/"):
            folder = "" if word == "ncfd/" else word
        elif word.endswith((".py", ".js")) and len(line) - len(line.lstrip()) in (6, 8):
            named.add(folder * (len(line) - len(line.lstrip()) == 8) + word)
    package = ROOT / "ncfd"
    files = {str(path.relative_to(package)) for path in package.rglob("*") if path.suffix in (".py", ".js")}
    inline = {"__main__.py", "route/pac_helpers.js"}  # named in another module's line
    subinits = {f"{folder}/__init__.py" for folder in ("net", "route", "tunnel")}  # a docstring each
    assert named | inline | subinits == files
