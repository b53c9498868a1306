"""What tests/cli/test_first_contact.py and tests/peers/test_first_contact.py share."""

from __future__ import annotations


def one_line(r: object) -> str:
    err = r.stderr.decode() if isinstance(r.stderr, bytes) else str(r.stderr)  # type: ignore[attr-defined]
    assert err.count("\n") == 1, err
    return err.rstrip("\n")
