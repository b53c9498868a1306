"""-v narration on stderr, written unbuffered so it is out before the descriptor is passed."""

from __future__ import annotations

import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    Log = Callable[[str], None]


def stderr_line(message: str) -> None:
    data = (message.rstrip("\n") + "\n").encode(errors="backslashreplace")
    # With ControlPersist ssh may have closed our stderr: then there is nowhere left to report to.
    # (try, not contextlib.suppress: contextlib's import costs more than every message.)
    try:  # noqa: SIM105
        os.write(2, data)
    except OSError:
        pass


def verbose(message: str) -> None:
    stderr_line(f"ncfd: {message}")


def quiet(message: str) -> None:
    pass


def enabled(log: Log) -> bool:
    """Whether log says anything: what is worked out only for -v is worked out only then (the
    faces give quiet when nobody listens)."""
    return log is not quiet
