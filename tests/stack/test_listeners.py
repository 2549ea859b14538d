"""Every socket the local stack listens on is bound to loopback, never 0.0.0.0 / ::.

Reads the kernel's socket tables (/proc/net/{tcp,tcp6,udp,udp6}) and keeps the sockets whose
inodes are open in the stack's processes (pids from .stack/run/*.pid, /proc/<pid>/fd).
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

import pytest

from otel_ml._internal.stack import processes
from otel_ml._internal.stack.components import components
from otel_ml._internal.stack.paths import StackPaths
from tests.stack.backends import Backends

REPO = Path(__file__).resolve().parents[2]
TCP_LISTEN, UDP_UNCONNECTED = "0A", "07"


@dataclass(frozen=True)
class Listener:
    proto: str
    address: ipaddress.IPv4Address | ipaddress.IPv6Address
    port: int
    inode: int


def parse_address(hex_addr: str) -> tuple[ipaddress.IPv4Address | ipaddress.IPv6Address, int]:
    """``0100007F:10E1`` -> (127.0.0.1, 4321); IPv6 is four little-endian 32-bit words."""
    host, port = hex_addr.split(":")
    raw = bytes.fromhex(host)
    packed = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
    return ipaddress.ip_address(packed), int(port, 16)


def listeners(net: Path = Path("/proc/net")) -> list[Listener]:
    """Listening TCP and bound, unconnected UDP sockets of this network namespace."""
    found = []
    for proto, state in (("tcp", TCP_LISTEN), ("tcp6", TCP_LISTEN), ("udp", UDP_UNCONNECTED),
                         ("udp6", UDP_UNCONNECTED)):
        try:
            lines = (net / proto).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if fields[3] != state:
                continue
            address, port = parse_address(fields[1])
            found.append(Listener(proto, address, port, int(fields[9])))
    return found


def socket_inodes(pid: int) -> set[int]:
    inodes = set()
    fd_dir = Path(f"/proc/{pid}/fd")
    for fd in os.listdir(fd_dir):
        try:
            target = os.readlink(fd_dir / fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(int(target[len("socket:["):-1]))
    return inodes


def test_parse_address_reads_the_kernel_format() -> None:
    assert parse_address("0100007F:10E1") == (ipaddress.ip_address("127.0.0.1"), 4321)
    assert parse_address("00000000:1F90") == (ipaddress.ip_address("0.0.0.0"), 8080)
    assert parse_address("00000000000000000000000001000000:0016") == (ipaddress.ip_address("::1"), 22)
    assert parse_address("00000000000000000000000000000000:0016") == (ipaddress.ip_address("::"), 22)


@pytest.mark.e2e
def test_every_stack_listener_is_on_loopback(backends: Backends) -> None:
    paths = StackPaths(REPO)
    table = listeners()
    by_component: dict[str, list[Listener]] = {}
    for component in components(paths):
        pid = processes.state(paths, component).pid
        assert pid is not None, f"{component.name}: no live pid in {paths.run}"
        inodes = socket_inodes(pid)
        by_component[component.name] = [s for s in table if s.inode in inodes]
    # Each component serves at least its health endpoint, so an empty list means the lookup is broken.
    assert all(by_component.values()), {name: len(socks) for name, socks in by_component.items()}
    exposed = [f"{name}: {s.proto} {s.address}:{s.port}" for name, socks in by_component.items() for s in socks
               if not s.address.is_loopback]
    assert exposed == []
