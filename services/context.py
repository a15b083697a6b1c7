"""Who is asking: the authenticated user, their role in the household, and the request that started it all."""

from __future__ import annotations

import uuid
from dataclasses import dataclass


@dataclass(frozen=True)
class Caller:
    """The authenticated caller of a use case."""

    user_id: uuid.UUID
    household_id: uuid.UUID
    base_currency: str
    correlation_id: str
    #: Role in this household: owner, member or viewer.
    role: str = "owner"
    #: Role on the platform: user or admin.
    user_role: str = "user"
    #: read or read_write (personal access tokens may be read-only).
    scope: str = "read_write"
    #: The login session (token family), when authenticated by a JWT.
    family_id: uuid.UUID | None = None
    #: The personal access token, when authenticated by one.
    token_id: uuid.UUID | None = None
    #: The caller's IANA time zone.
    timezone: str = "UTC"

    @property
    def can_write(self) -> bool:
        """May change the household's data."""
        return self.scope == "read_write" and self.role in ("owner", "member")

    @property
    def is_admin(self) -> bool:
        """A platform administrator."""
        return self.user_role == "admin"
