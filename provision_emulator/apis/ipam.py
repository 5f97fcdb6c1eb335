"""Address arithmetic for compute: free hosts in a subnet, free blocks for peering ranges, and
public-looking addresses for external resources."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from provision_emulator import formats

# Google keeps the first two and the last two addresses of every subnet range.
_RESERVED_LOW = 2
_RESERVED_HIGH = 2
# Where external addresses come from: documentation would look fake; these are Google's blocks.
_PUBLIC_POOLS = [ipaddress.ip_network(n) for n in ("34.0.0.0/10", "35.184.0.0/13")]


def network(cidr: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    try:
        return ipaddress.ip_network(cidr, strict=True)
    except ValueError:
        return None


def gateway(cidr: str) -> str:
    net = ipaddress.ip_network(cidr)
    return str(net.network_address + 1)


def free_host(cidr: str, used: Iterable[str]) -> str | None:
    net = ipaddress.ip_network(cidr)
    taken = set(used)
    first = int(net.network_address) + _RESERVED_LOW
    last = int(net.broadcast_address) - _RESERVED_HIGH
    for value in range(first, last + 1):
        candidate = str(ipaddress.ip_address(value))
        if candidate not in taken:
            return candidate
    return None


def free_block(prefix: int, taken: Iterable[str], pool: str = "10.0.0.0/8") -> str | None:
    """The first /prefix block of `pool` overlapping none of the `taken` ranges."""
    busy = [n for n in (network(t) for t in taken) if n is not None]
    for block in ipaddress.ip_network(pool).subnets(new_prefix=prefix):
        if not any(block.overlaps(b) for b in busy):
            return str(block)
    return None


def public_address(used: Iterable[str], *seed: object) -> str:
    taken = set(used)
    attempt = 0
    while True:
        value = int.from_bytes(formats.digest(*seed, attempt)[:4])
        pool = _PUBLIC_POOLS[value % len(_PUBLIC_POOLS)]
        host = pool.network_address + 1 + value % (pool.num_addresses - 2)
        if str(host) not in taken:
            return str(host)
        attempt += 1
