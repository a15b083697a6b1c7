"""Households and their users."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, Created, UUIDPk


class Household(Base):
    """The tenant: all financial data belongs to one household."""

    __tablename__ = "households"
    id: Mapped[UUIDPk]
    name: Mapped[str] = mapped_column(String(200))
    base_currency: Mapped[str] = mapped_column(String(3))
    created_at: Mapped[Created]


class User(Base):
    """A person who logs in; belongs to a household."""

    __tablename__ = "users"
    id: Mapped[UUIDPk]
    email: Mapped[str] = mapped_column(String(320), unique=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    name: Mapped[str] = mapped_column(String(200))
    phone: Mapped[str | None] = mapped_column(String(32))
    role: Mapped[str] = mapped_column(String(20), default="user")
    household_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("households.id"), index=True)
    created_at: Mapped[Created]
    last_login_at: Mapped[dt.datetime | None]
