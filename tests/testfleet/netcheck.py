"""Guards that keep every byte of fleet traffic on this machine's loopback interface.

Test hosts listen on addresses in 127.0.0.0/8.  Before anything connects to one, the kernel is
asked how it would route there (``ip route get``); only a ``local`` route via ``lo`` is accepted.
A misconfigured machine (say, a route that sends part of 127/8 elsewhere) then fails loudly
instead of sending SSH traffic off the box.
"""

import ipaddress
import socket
import subprocess
import time

LOOPBACK = ipaddress.ip_network("127.0.0.0/8")


class RouteError(RuntimeError):
    """An address the fleet must not talk to."""


def route_is_loopback(route_line):
    """True when an ``ip route get`` answer describes delivery on this machine via ``lo``."""
    words = route_line.split()
    devices = [nxt for word, nxt in zip(words, words[1:]) if word == "dev"]
    return words[:1] == ["local"] and devices == ["lo"]


def check_loopback_route(address):
    """Raise RouteError unless *address* is in 127/8 and the kernel routes it via ``lo``."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        raise RouteError("{0!r} is not an IP address".format(address))
    if ip not in LOOPBACK:
        raise RouteError("{0} is outside {1}; refusing to use it".format(ip, LOOPBACK))
    result = subprocess.run(["ip", "-o", "route", "get", str(ip)], capture_output=True,
                            text=True, check=False)
    line = result.stdout.strip()
    if result.returncode != 0 or not route_is_loopback(line):
        raise RouteError("{0} does not route via lo ({1!r}); refusing to use it".format(
            ip, line or result.stderr.strip()))
    return line


def ensure_unused(address, port):
    """Refuse an address something already listens on (a fleet of another cache dir, a stray
    sshd): waiting for our sshd there would succeed against the wrong host."""
    check_loopback_route(address)
    try:
        with socket.create_connection((address, port), timeout=1):
            pass
    except OSError:
        return
    raise RouteError("{0}:{1} is already in use".format(address, port))


def wait_for_accept(address, port, deadline, alive=lambda: True):
    """Poll until *address*:*port* accepts a TCP connection, the deadline passes or ``alive()``
    turns false (the listener died: no point waiting).  The route is checked first."""
    check_loopback_route(address)
    while True:
        try:
            with socket.create_connection((address, port), timeout=1):
                return True
        except OSError:
            if time.monotonic() > deadline or not alive():
                return False
            time.sleep(0.05)
