"""Who is asking: the authenticated user, their household, and the request that started it all."""

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
