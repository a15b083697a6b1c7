"""Devices a person signs in from, known by a hash of the client's network and User-Agent, never by that text."""

from __future__ import annotations

import hashlib
import ipaddress
from dataclasses import dataclass

#: The network an address is known by: a home or mobile connection gets a new address within its provider's block
#: often, and an alert for each would teach people to ignore the one that matters.
IPV4_PREFIX, IPV6_PREFIX = 24, 64


def network_of(address: str) -> str:
    """The block an address belongs to (`IPV4_PREFIX` or `IPV6_PREFIX`), or the text itself if it is no address."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    prefix = IPV4_PREFIX if ip.version == 4 else IPV6_PREFIX
    return str(ipaddress.ip_network(f"{ip}/{prefix}", strict=False))


@dataclass(frozen=True)
class Device:
    """Where a sign-in came from: the client's address and the User-Agent it sent."""

    address: str
    user_agent: str

    def fingerprint(self) -> str:
        """sha256 of the address's network and the User-Agent (32 hex digits, like a rate limit's account id): what
        is stored."""
        # A newline cannot occur in either part, so no two devices share the hashed text.
        return hashlib.sha256(f"{network_of(self.address)}\n{self.user_agent}".encode()).hexdigest()[:32]
