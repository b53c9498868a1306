"""What a hand-off leaves behind, read from strace's output: for tests/peers/test_process.py, which
runs ncfd under strace, and tests/unit/test_process.py, which checks the reading on recorded traces."""

from __future__ import annotations

import re
from dataclasses import dataclass

SPAWNING = {"clone", "clone3", "fork", "vfork"}
WRITING = {"write", "sendto", "sendmsg"}

# "1234 name(args) = result ...": the pid is there with -f. A call cut by another task's line ends in
# "<unfinished ...>" and has no result; its "<... name resumed>" tail is not a call of its own.
CALL = re.compile(r"^(?:(?P<pid>\d+) +)?(?P<name>\w+)\((?P<rest>.*)$")
RESULT = re.compile(r"\) += (\S+)[^=]*$")
SCM_RIGHTS = re.compile(r"SCM_RIGHTS, cmsg_data=\[([\d, ]*)\]")
FD_PAIR = re.compile(r"\[(\d+), (\d+)\]")


@dataclass
class Syscall:
    pid: int
    name: str
    args: str
    result: str | None  # None when unfinished

    def fd_arg(self) -> int:
        return int(self.args.split(",", 1)[0])

    def returned_fd(self) -> int | None:
        if self.result is None or not self.result.isdigit():
            return None  # unfinished, failed (-1) or no result (?)
        return int(self.result)


def parse_trace(text: str) -> list[Syscall]:
    calls = []
    for line in text.splitlines():
        start = CALL.match(line)
        if start is None:  # "+++ exited with 0 +++", "--- SIGALRM ---", "<... x resumed>"
            continue
        end = RESULT.search(start["rest"])
        args, result = (start["rest"][: end.start()], end[1]) if end else (start["rest"], None)
        calls.append(Syscall(int(start["pid"] or 0), start["name"], args, result))
    return calls


def made_fds(call: Syscall) -> list[int]:
    """Descriptors a successful call created (for dup2/dup3: re-pointed)."""
    fd = call.returned_fd()
    if fd is None:
        return []
    if call.name == "socketpair":
        pair = FD_PAIR.search(call.args)
        return [int(pair[1]), int(pair[2])] if pair else []
    if call.name in ("socket", "openat", "dup", "dup2", "dup3") or (call.name == "fcntl" and "F_DUPFD" in call.args):
        return [fd]
    return []


def trace_problems(calls: list[Syscall]) -> list[str]:
    """What is wrong with one ncfd -F run; [] for a clean hand-off."""
    problems = []
    if len({call.pid for call in calls}) > 1:
        problems.append("more than one task ran")
    open_fds: set[int] = set()
    stdout_fds = {1}  # descriptors on ssh's end of the socketpair
    passed: list[int] = []
    channel: int | None = None
    for call in calls:
        if call.name in SPAWNING:
            problems.append(f"started a thread or process: {call.name}({call.args}")
        elif call.name == "execve" and call is not calls[0]:
            problems.append(f"executed a program: execve({call.args}")
        elif call.name == "close" and call.result == "0":
            open_fds.discard(call.fd_arg())
            stdout_fds.discard(call.fd_arg())
        elif call.name in WRITING and call.fd_arg() in stdout_fds:
            rights = SCM_RIGHTS.search(call.args) if call.name == "sendmsg" else None
            if rights is None or passed:
                problems.append(f"sent on stdout besides the descriptor: {call.name}({call.args}")
            else:
                passed = [int(fd) for fd in rights[1].split(",") if fd.strip()]
                channel = call.fd_arg()
        elif call.name == "sendmsg" and SCM_RIGHTS.search(call.args):
            problems.append(f"passed a descriptor elsewhere than stdout: sendmsg({call.args}")
        for fd in made_fds(call):
            open_fds.add(fd)
            # A dup of stdout is stdout; dup2 over it no longer is.
            source = call.fd_arg() if call.name in ("dup", "dup2", "dup3", "fcntl") else None
            if source in stdout_fds:
                stdout_fds.add(fd)
            else:
                stdout_fds.discard(fd)
        if call.name == "exit_group":
            break
    else:
        problems.append("no exit_group: the trace stops short")
    if len(passed) != 1:
        problems.append(f"expected one descriptor passed, got {passed}")
    elif passed[0] not in open_fds:
        problems.append(f"passed descriptor {passed[0]}, which ncfd had not made or had closed")
    # 0-2 are inherited; the passed socket and stdout's private dup are ssh's to keep.
    leaked = open_fds - {0, 1, 2, channel, *passed}
    if leaked:
        problems.append(f"descriptors left open at exit: {sorted(leaked)}")
    return problems
