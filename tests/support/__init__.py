"""Helpers of the tests at every level (tests/unit, tests/cli, tests/peers) and of scripts/bench,
scripts/load and scripts/demo."""

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
"""The checkout's root."""
