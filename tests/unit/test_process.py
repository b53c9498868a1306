"""ncfd as a process: SIGINT, SIGTERM and SIGHUP end it promptly and quietly, and a hand-off leaves
nothing behind. strace shows every descriptor ncfd made closed but the passed socket, no thread or
child, and nothing on ssh's end of stdout but the one SCM_RIGHTS message."""

from __future__ import annotations

import pytest

from tests.support.strace import parse_trace, trace_problems

# --- what a hand-off leaves behind, from strace --------------------------------------------


CLEAN = """\
700 execve("/usr/bin/python3", ["python3", "-m", "ncfd"], 0x7ffd /* 9 vars */) = 0
700 openat(AT_FDCWD, "/nonexistent", O_RDONLY|O_CLOEXEC) = -1 ENOENT (No such file or directory)
700 openat(AT_FDCWD, "/usr/lib/python3.11/os.py", O_RDONLY|O_CLOEXEC) = 3
700 close(3)                          = 0
700 fcntl(1, F_DUPFD_CLOEXEC, 0)      = 3
700 dup2(2, 1)                        = 1
700 write(1, "ncfd: connecting\\n", 17) = 17
700 socket(AF_INET, SOCK_STREAM|SOCK_CLOEXEC, IPPROTO_TCP) = 4
700 connect(4, {sa_family=AF_INET, sin_port=htons(1080), sin_addr=inet_addr("127.0.0.1")}, 16) = 0
700 sendto(4, "\\5\\1\\0", 3, 0, NULL, 0) = 3
700 sendmsg(3, {msg_name=NULL, msg_namelen=0, msg_iov=[{iov_base="\\0", iov_len=1}], msg_iovlen=1, \
msg_control=[{cmsg_len=20, cmsg_level=SOL_SOCKET, cmsg_type=SCM_RIGHTS, cmsg_data=[4]}], msg_controllen=24, \
msg_flags=0}, 0) = 1
700 exit_group(0)                     = ?
700 +++ exited with 0 +++
"""


def test_parser_passes_a_clean_trace() -> None:
    assert trace_problems(parse_trace(CLEAN)) == []


# (replace this, with that) in CLEAN, and what the check must then say.
BAD_EDITS = [
    (("700 exit_group", "700 socket(AF_INET6, SOCK_STREAM, 0) = 5\n700 exit_group"), "left open at exit: [5]"),
    (("700 exit_group", "700 dup(4) = 6\n700 exit_group"), "left open at exit: [6]"),
    (("700 dup2(2, 1)", '700 write(1, "x", 1) = 1\n700 dup2(2, 1)'), "sent on stdout besides the descriptor"),
    (("fcntl(1,", "fcntl(2,"), "passed a descriptor elsewhere than stdout"),
    (("700 socket(", "700 clone3({flags=CLONE_VM} <unfinished ...>\n701 <... clone3 resumed>) = 0\n700 socket("),
     "started a thread or process: clone3"),
    (("700 exit_group(0)                     = ?\n", ""), "no exit_group"),
]  # fmt: skip


@pytest.mark.parametrize(("change", "expected"), BAD_EDITS)
def test_parser_flags_a_bad_trace(change: tuple[str, str], expected: str) -> None:
    bad = CLEAN.replace(*change)
    assert bad != CLEAN
    problems = trace_problems(parse_trace(bad))
    assert any(expected in p for p in problems), problems
