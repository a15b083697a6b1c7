"""The password policy: long enough, and not one of the passwords attackers try first."""

from __future__ import annotations

from functools import cache

from zxcvbn.frequency_lists import FREQUENCY_LISTS

from services.errors import Invalid

#: Shorter passwords are refused.
MIN_LENGTH = 10


@cache
def _common() -> frozenset[str]:
    """The 30,000 most common passwords of real leaks (as zxcvbn ships them)."""
    return frozenset(FREQUENCY_LISTS["passwords"])


def check_password(password: str, email: str) -> None:
    """Raise Invalid(field="password") when the password is too short, common, or the email itself."""
    if len(password) < MIN_LENGTH:
        raise Invalid(f"must be at least {MIN_LENGTH} characters", field="password")
    lowered = password.lower()
    if lowered in _common() or lowered.strip("0123456789!") in _common():
        raise Invalid("is one of the most common passwords; choose another", field="password")
    if lowered == email.strip().lower() or lowered == email.split("@")[0].lower():
        raise Invalid("must not be your email address", field="password")
