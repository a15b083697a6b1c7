"""Webhook signatures: HMAC-SHA256 over "timestamp.body", carried with the timestamp in one header.

    X-Finance-Signature: t=1767225600, v1=5f2b...

A receiver recomputes the HMAC with the secret it was given, compares in constant time, and rejects a timestamp
further from its clock than the tolerance, so a captured request cannot be replayed later.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress

#: The header that carries the timestamp and the signature.
HEADER = "X-Finance-Signature"
#: Seconds a signature stays acceptable (either side of the receiver's clock).
TOLERANCE_SECONDS = 300


class InvalidSignature(ValueError):
    """The signature header is missing, malformed, wrong, or too old."""


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The hex HMAC-SHA256 of "timestamp.body" under `secret`."""
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The header value for a body sent at `timestamp` (Unix seconds)."""
    return f"t={timestamp}, v1={signature(secret, timestamp, body)}"


def parse(header: str) -> tuple[int, list[str]]:
    """(timestamp, v1 signatures) from a header value; InvalidSignature when it is malformed."""
    timestamp, signatures = None, []
    for part in (header or "").split(","):
        key, _, value = part.strip().partition("=")
        if key == "t" and value.isdigit():
            timestamp = int(value)
        elif key == "v1" and value:
            signatures.append(value)
    if timestamp is None or not signatures:
        raise InvalidSignature("the signature header needs t=<timestamp> and v1=<signature>")
    return timestamp, signatures


def verify(secret: str, header: str, body: bytes, now: int, tolerance: int = TOLERANCE_SECONDS) -> int:
    """Check a delivery; its timestamp when genuine and fresh, InvalidSignature otherwise."""
    timestamp, signatures = parse(header)
    if abs(now - timestamp) > tolerance:
        raise InvalidSignature(f"the timestamp is {now - timestamp} s away from now (tolerance {tolerance} s)")
    expected = signature(secret, timestamp, body)
    if not any(hmac.compare_digest(expected, candidate) for candidate in signatures):
        raise InvalidSignature("the signature does not match the body")
    return timestamp


def is_public_address(address: str) -> bool:
    """Whether an IP address is a public, unicast one a webhook may be delivered to: not loopback, private,
    link-local (the cloud metadata service), carrier-grade NAT, multicast, reserved or unspecified; an IPv4
    address mapped into IPv6 is judged as the IPv4 address it carries."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast
