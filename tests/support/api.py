"""What tests/unit/test_api.py, tests/cli/test_api.py and tests/peers/test_api.py share."""

from __future__ import annotations

WAIT = 60.0


SLOW_PAC = """function FindProxyForURL(u, h) {
    for (var i = 0; i < 40; i++) dnsResolve("n" + i + ".slow.test");
    return "DIRECT";
}"""
LOOKUP = 2.0  # seconds each name of SLOW_PAC takes to fail, as with a DNS server that never answers

SLOW_RESOLVER = f"""
import socket, threading, time

real_getaddrinfo = socket.getaddrinfo
in_flight, started = [0], [0]
counting = threading.Lock()

def slow_getaddrinfo(host, *args, **kwargs):
    if not (isinstance(host, str) and host.endswith(".slow.test")):
        return real_getaddrinfo(host, *args, **kwargs)
    with counting:
        in_flight[0] += 1
        started[0] += 1
    try:
        time.sleep({LOOKUP})
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    finally:
        with counting:
            in_flight[0] -= 1

socket.getaddrinfo = slow_getaddrinfo
"""
