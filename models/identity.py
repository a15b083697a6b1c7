"""Households, their users and members, and the state behind tokens."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import DateTime, ForeignKey, String, Text, func
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, Created, UUIDPk
from models.crypto import EncryptedText

#: Roles inside a household.
MEMBER_ROLES = ("owner", "member", "viewer")
#: Roles on the platform.
USER_ROLES = ("user", "admin")


class Household(Base):
    """The tenant: all financial data belongs to one household."""

    __tablename__ = "households"
    id: Mapped[UUIDPk]
    name: Mapped[str] = mapped_column(String(200))
    base_currency: Mapped[str] = mapped_column(String(3))
    created_at: Mapped[Created]


class User(Base):
    """A person who logs in; `household_id` is their personal household."""

    __tablename__ = "users"
    id: Mapped[UUIDPk]
    email: Mapped[str] = mapped_column(String(320), unique=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    name: Mapped[str] = mapped_column(String(200))
    phone: Mapped[str | None] = mapped_column(EncryptedText)
    role: Mapped[str] = mapped_column(String(20), default="user")
    household_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("households.id"), index=True)
    created_at: Mapped[Created]
    last_login_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    #: The IANA time zone the person lives in: it decides which budget period is "now".
    timezone: Mapped[str] = mapped_column(String(64), default="UTC", server_default="UTC")
    #: The locale messages are written in (amounts, dates), e.g. "en" or "de_DE".
    locale: Mapped[str] = mapped_column(String(16), default="en", server_default="en")
    #: Tokens issued before this moment are void ("log out everywhere").
    tokens_valid_after: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class KnownDevice(Base):
    """A device a user has signed in from (`domain.devices.Device.fingerprint`): a sign-in from any other is
    announced to them."""

    __tablename__ = "known_devices"
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(Text, primary_key=True)
    first_seen_at: Mapped[Created]
    last_seen_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class HouseholdMember(Base):
    """A user's role in a household: owner, member or viewer (read-only)."""

    __tablename__ = "household_members"
    household_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("households.id"), primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"), primary_key=True, index=True)
    role: Mapped[str] = mapped_column(String(10))
    created_at: Mapped[Created]


class TokenFamily(Base):
    """One login session: its refresh tokens rotate within it; revoking it ends the session."""

    __tablename__ = "token_families"
    id: Mapped[UUIDPk]
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"), index=True)
    created_at: Mapped[Created]
    revoked_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    revoke_reason: Mapped[str | None] = mapped_column(String(100))


class RefreshToken(Base):
    """A refresh token by its id; used once, then replaced."""

    __tablename__ = "refresh_tokens"
    jti: Mapped[str] = mapped_column(String(64), primary_key=True)
    family_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("token_families.id"), index=True)
    expires_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    used_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class PersonalAccessToken(Base):
    """A token for scripts: shown once, stored as a hash, scoped read or read_write, revocable."""

    __tablename__ = "personal_access_tokens"
    id: Mapped[UUIDPk]
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"), index=True)
    household_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("households.id"))
    name: Mapped[str] = mapped_column(String(100))
    scope: Mapped[str] = mapped_column(String(10))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[Created]
    last_used_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
