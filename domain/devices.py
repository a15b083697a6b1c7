"""Devices a person signs in from, known by a hash of the client address and User-Agent, never by that text."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass


@dataclass(frozen=True)
class Device:
    """Where a sign-in came from: the client's address and the User-Agent it sent."""

    address: str
    user_agent: str

    def fingerprint(self) -> str:
        """sha256 of address and User-Agent (32 hex digits, like a rate limit's account id): what is stored."""
        # A newline cannot occur in either part, so no two devices share the hashed text.
        return hashlib.sha256(f"{self.address}\n{self.user_agent}".encode()).hexdigest()[:32]
