"""Daily and monthly aggregates of the ledger per household, account, category and currency, so reports never
scan raw transactions."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Amount, Base

#: The category key of transactions without a category (a primary key column cannot be NULL).
NO_CATEGORY = uuid.UUID(int=0)
#: What a row counts: money in, money out, and the two legs of a transfer (never income or expense).
KINDS = ("income", "expense", "transfer_out", "transfer_in")


class _Totals:
    """The figures both aggregate levels keep for one key."""

    transactions: Mapped[int] = mapped_column(Integer)
    #: The sum in the transactions' own currency.
    amount: Mapped[Amount]
    #: The sum of the converted amounts in `base_currency` (those with a conversion only).
    base_amount: Mapped[Amount]
    #: Transactions still without a base-currency amount: left out of `base_amount`, never counted 1:1.
    unconverted: Mapped[int] = mapped_column(Integer)
    #: The sum in the account's currency (what moved the balance).
    account_amount: Mapped[Amount]


class DailyAggregate(_Totals, Base):
    """What a household's recorded transactions of one day add up to, per account, category, kind and currency."""

    __tablename__ = "insights_daily_aggregates"
    household_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("households.id"), primary_key=True)
    day: Mapped[dt.date] = mapped_column(primary_key=True)
    account_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    category_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(12), primary_key=True)
    currency: Mapped[str] = mapped_column(String(3), primary_key=True)
    base_currency: Mapped[str] = mapped_column(String(3), primary_key=True)


class MonthlyAggregate(_Totals, Base):
    """The daily aggregates of one calendar month added up (what trends and yearly reports read)."""

    __tablename__ = "insights_monthly_aggregates"
    household_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("households.id"), primary_key=True)
    #: The first day of the month.
    month: Mapped[dt.date] = mapped_column(primary_key=True)
    account_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    category_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(12), primary_key=True)
    currency: Mapped[str] = mapped_column(String(3), primary_key=True)
    base_currency: Mapped[str] = mapped_column(String(3), primary_key=True)
