"""ncfd installed as a user installs it (the `installed` fixture of tests/conftest.py)."""

from __future__ import annotations

from pathlib import Path


class Installed:
    def __init__(self, venv: Path, wheel: Path) -> None:
        self.venv, self.wheel = venv, wheel
        self.ncfd = venv / "bin" / "ncfd"
        self.python = venv / "bin" / "python"
