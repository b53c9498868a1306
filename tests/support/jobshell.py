"""A minimal job-control shell for the prompt tests: python jobshell.py TTY PIDFILE ARGV...

Takes TTY as the controlling terminal of a new session, runs ARGV in a process group of its own in
the foreground of that terminal (as an interactive shell runs a command), writes the child's pid
to PIDFILE and exits with the child's status as a shell gives it (128 + the signal that ended
it). Unlike a session leader, a child of a shell is in a process group that is not orphaned, so
Ctrl-Z (SIGTSTP) really stops it.
"""

import os
import signal
import sys


def main() -> int:
    tty_name, pid_file, *argv = sys.argv[1:]
    os.setsid()
    tty = os.open(tty_name, os.O_RDWR)  # the first terminal a session leader opens becomes its own
    signal.signal(signal.SIGTTOU, signal.SIG_IGN)  # as shells do, to be allowed tcsetpgrp()
    pid = os.fork()
    if pid == 0:
        os.setpgid(0, 0)
        os.tcsetpgrp(tty, os.getpid())
        signal.signal(signal.SIGTTOU, signal.SIG_DFL)
        os.close(tty)
        os.execvp(argv[0], argv)
    with open(pid_file + ".tmp", "w") as f:
        f.write(str(pid))
    os.rename(pid_file + ".tmp", pid_file)
    while True:
        _, status = os.waitpid(pid, os.WUNTRACED)
        if os.WIFSTOPPED(status):
            continue  # the test resumes it with SIGCONT
        code = os.waitstatus_to_exitcode(status)
        return 128 - code if code < 0 else code


if __name__ == "__main__":
    sys.exit(main())
