"""TLS client certificates for HTTPS proxies (--proxy-cert, --proxy-key; cert=, key= in the API),
against stunnel requiring one that its CA signed, in TLS 1.3 and 1.2: the real ssh logging in with
it, and one clear line without it, with one another CA signed, with a key wrongly protected or
wrongly unlocked."""

from __future__ import annotations

import subprocess

from tests.support.fdharness import NCFD


def test_proxy_key_without_proxy_cert_is_a_usage_error() -> None:
    r = subprocess.run([*NCFD, "--proxy-key", __file__, "-x", "https://p", "h", "22"], capture_output=True, text=True)
    assert (r.returncode, r.stderr) == (
        2,
        "ncfd: --proxy-key goes with --proxy-cert (the certificate the key is for)\n",
    )
