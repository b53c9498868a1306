"""What tests/unit/test_auth.py, tests/cli/test_auth.py and tests/peers/test_auth.py share."""

from __future__ import annotations

import os

from tests.support.fakeservers import Session, socks5_proxy

USER = "alice"
# A space and a colon: Basic splits user:password at the first colon only.
PASSWORD = "s3cret pass:word"
LONG_PASSWORD = "p" * 200  # RFC 1929 lengths from 128 on are what PySocks gets wrong


def with_password(password: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("SSH_ASKPASS", "DISPLAY", "SSH_ASKPASS_REQUIRE")}
    return {**env, "NCFD_PROXY_PASSWORD": password, **extra}


def socks5_with_password(s: Session) -> None:
    _, methods = s.recv_exactly(2)
    s.recv_exactly(methods)
    s.send(b"\x05\x02")
    _, user_length = s.recv_exactly(2)
    s.recv_exactly(user_length)
    (password_length,) = s.recv_exactly(1)
    s.recv_exactly(password_length)
    s.send(b"\x01\x00")
    socks5_proxy(method_reply=b"")(s)
