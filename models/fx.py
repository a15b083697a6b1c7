"""Exchange rates we keep (fetched from the live provider, or set by hand per household) and history re-conversions."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

from sqlalchemy import CheckConstraint, DateTime, ForeignKey, Index, Integer, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from models.base import RATE, Base, Created, UUIDPk
from models.ledger import Transaction


class FxRate(Base):
    """One unit of `base` buys `rate` units of `quote` on `rate_date`.

    Global rates (fetched from the live provider, `household_id` NULL) and a household's manual rates share the
    table; a manual rate overrides every other source for that household.
    """

    __tablename__ = "fx_rates"
    __table_args__ = (
        UniqueConstraint("household_id", "base", "quote", "rate_date", name="uq_fx_rates_owner_pair_date",
                         postgresql_nulls_not_distinct=True),
        CheckConstraint("rate > 0", name="ck_fx_rates_positive"),
        CheckConstraint("base <> quote", name="ck_fx_rates_two_currencies"),
    )
    id: Mapped[UUIDPk]
    household_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("households.id"))
    base: Mapped[str] = mapped_column(String(3))
    quote: Mapped[str] = mapped_column(String(3))
    rate_date: Mapped[dt.date]
    rate: Mapped[Decimal] = mapped_column(RATE)
    #: "live" (fetched from the provider) or "manual" (set by a member of the household).
    source: Mapped[str] = mapped_column(String(20))
    created_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[Created]
    updated_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class FxReconversion(Base):
    """Re-converting a household's history into a new base currency, in batches; the cursor makes it resumable."""

    __tablename__ = "fx_reconversions"
    id: Mapped[UUIDPk]
    household_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("households.id"), index=True)
    from_currency: Mapped[str] = mapped_column(String(3))
    to_currency: Mapped[str] = mapped_column(String(3))
    #: running, done, or superseded (the base currency changed again before it finished).
    status: Mapped[str] = mapped_column(String(12), default="running")
    #: The last transaction id handled (transactions are visited in id order).
    after: Mapped[uuid.UUID | None]
    #: Batches done so far; a batch command carries the number it expects, so a duplicate does nothing.
    batches: Mapped[int] = mapped_column(Integer, default=0)
    converted: Mapped[int] = mapped_column(Integer, default=0)
    missing: Mapped[int] = mapped_column(Integer, default=0)
    user_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))
    correlation_id: Mapped[str] = mapped_column(String(100), default="")
    created_at: Mapped[Created]
    updated_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


#: The few recorded transactions still waiting for a rate (to the base, or to their account's currency): what the
#: sweep visits after the breaker closes, a manual rate arrives, or every FX_SWEEP_SECONDS.
Index("ix_transactions_waiting_for_rate", Transaction.id,
      postgresql_where=text("status = 'recorded' AND deleted_at IS NULL "
                            "AND (fx_status = 'missing' OR account_amount IS NULL)"))
