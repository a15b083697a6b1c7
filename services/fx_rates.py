"""Exchange rates: the ECB reference rates shipped with currency_converter (read as exact decimals), the rates we
keep (fetched from the live provider, or set by hand per household), and the rate book that resolves them in order."""

from __future__ import annotations

import bisect
import csv
import datetime as dt
import functools
import importlib.resources
import io
import threading
import uuid
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Protocol

from sqlalchemy import case, func, or_, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session, sessionmaker

from domain.fx import MAX_RATE_AGE_DAYS, Rate, cross_rate, inverse
from domain.money import is_known_currency
from models.fx import FxRate

#: The file published by the ECB, as bundled inside the installed currency_converter package.
ECB_PACKAGE = "currency_converter"
ECB_HISTORY_FILE = "eurofxref-hist.zip"
SOURCE = "ECB"
IDENTITY_SOURCE = "identity"
_MISSING = frozenset({"", "N/A"})


@dataclass(frozen=True)
class _History:
    """Parsed rates: ascending ECB dates and, per date, 1 EUR = x units of each quoted currency."""

    dates: list[dt.date]
    quotes: dict[dt.date, dict[str, Decimal]]
    codes: frozenset[str]


def shipped_history_file() -> Traversable:
    """The ECB history archive inside the installed currency_converter package."""
    return importlib.resources.files(ECB_PACKAGE) / ECB_HISTORY_FILE


def _parse_quote(cell: str, where: str) -> Decimal:
    """One rate cell as a positive Decimal; ValueError if the file holds something else."""
    try:
        value = Decimal(cell)
    except InvalidOperation as exc:
        raise ValueError(f"bad ECB rate {cell!r} at {where}") from exc
    if not value.is_finite() or value <= 0:
        raise ValueError(f"bad ECB rate {cell!r} at {where}")
    return value


def _parse_row(header: list[str], row: list[str]) -> tuple[dt.date, dict[str, Decimal]]:
    """A CSV row as its date and the quotes it has, skipping empty and N/A cells."""
    day = dt.date.fromisoformat(row[0].strip())
    quotes: dict[str, Decimal] = {}
    for code, cell in zip(header[1:], row[1:], strict=False):
        text = cell.strip()
        if code and text not in _MISSING:
            quotes[code] = _parse_quote(text, f"{day} {code}")
    return day, quotes


def _parse(lines: Iterable[str]) -> _History:
    """Parse the ECB CSV (Date,USD,JPY,... one row per business day, any order)."""
    reader = csv.reader(lines)
    header = [name.strip() for name in next(reader)]
    quotes = dict(_parse_row(header, row) for row in reader if row and row[0].strip())
    codes = {code for day_quotes in quotes.values() for code in day_quotes}
    return _History(dates=sorted(quotes), quotes=quotes, codes=frozenset(codes | {"EUR"}))


def _read_lines(source: Traversable | Path) -> Iterator[str]:
    """The CSV lines of `source`, a .zip holding one CSV or a plain .csv file."""
    if not source.name.endswith(".zip"):
        with source.open("r", encoding="utf-8", newline="") as text:
            yield from text
        return
    with source.open("rb") as raw, zipfile.ZipFile(raw) as archive:
        member = next(name for name in archive.namelist() if name.endswith(".csv"))
        with archive.open(member) as binary:
            yield from io.TextIOWrapper(binary, encoding="utf-8", newline="")


class EcbRates:
    """Daily ECB reference rates with cross rates between any two quoted currencies."""

    def __init__(self, source: Traversable | Path | None = None) -> None:
        """Use `source` (zip or csv) or, by default, the file shipped with currency_converter."""
        self._source = source if source is not None else shipped_history_file()
        self._lock = threading.Lock()
        self._history: _History | None = None

    def _data(self) -> _History:
        """The parsed history, loaded on first use, once, even with concurrent callers."""
        history = self._history
        if history is None:
            with self._lock:
                if self._history is None:
                    self._history = _parse(_read_lines(self._source))
                history = self._history
        return history

    def currencies(self) -> frozenset[str]:
        """Codes the file has at least one rate for, plus EUR."""
        return self._data().codes

    def first_date(self) -> dt.date:
        """The earliest ECB business day in the file."""
        return self._data().dates[0]

    def last_date(self) -> dt.date:
        """The latest ECB business day in the file."""
        return self._data().dates[-1]

    def _eur_quote(self, code: str, day: dt.date) -> Decimal | None:
        """1 EUR in `code` on `day`, or None if the ECB did not publish it that day."""
        if code == "EUR":
            return Decimal(1)
        return self._data().quotes[day].get(code)

    def _days_back(self, on: dt.date, max_age_days: int) -> Iterator[dt.date]:
        """ECB dates from `on` back to `on - max_age_days`, newest first."""
        history = self._data()
        oldest = on - dt.timedelta(days=max_age_days)
        index = bisect.bisect_right(history.dates, on) - 1
        while index >= 0 and history.dates[index] >= oldest:
            yield history.dates[index]
            index -= 1

    def rate(self, base: str, quote: str, on: dt.date, *, max_age_days: int = 7) -> Rate | None:
        """The ECB cross rate base->quote on `on`, or the latest within `max_age_days` before it.

        None when there is none (unknown code, before 1999-01-04, gap too long); never made up,
        except that a known currency converts to itself at exactly 1 (source "identity").
        """
        if max_age_days < 0:
            raise ValueError("max_age_days must not be negative")
        if base == quote and is_known_currency(base):
            return Rate(base, quote, Decimal("1"), on, IDENTITY_SOURCE, on)
        for day in self._days_back(on, max_age_days):
            base_quote, quote_quote = self._eur_quote(base, day), self._eur_quote(quote, day)
            if base_quote is not None and quote_quote is not None:
                return Rate(base, quote, cross_rate(base_quote, quote_quote), day, SOURCE, on)
        return None


@functools.cache
def default_rates() -> EcbRates:
    """The process-wide EcbRates on the shipped file (parsed once, on first use)."""
    return EcbRates()


# --- rates we keep: fetched from the live provider (global) and set by hand (per household) ---------------------

#: Source names of the rates we keep.
LIVE_SOURCE = "live"
MANUAL_SOURCE = "manual"


def _latest(session: Session, household_id: uuid.UUID | None, base: str, quote: str, on: dt.date,
            source: str) -> Rate | None:
    """The kept rate base -> quote on `on` or the latest day within MAX_RATE_AGE_DAYS before it; either
    direction is used (the other one inverted); on the same day the direct one wins."""
    direct = (FxRate.base == base) & (FxRate.quote == quote)
    row = session.execute(select(FxRate.base, FxRate.rate, FxRate.rate_date).where(
        FxRate.household_id.is_(None) if household_id is None else FxRate.household_id == household_id,
        direct | ((FxRate.base == quote) & (FxRate.quote == base)),
        FxRate.rate_date <= on, FxRate.rate_date >= on - dt.timedelta(days=MAX_RATE_AGE_DAYS),
    ).order_by(FxRate.rate_date.desc(), case((direct, 0), else_=1)).limit(1)).first()
    if row is None:
        return None
    value = row.rate if row.base == base else inverse(row.rate)
    return Rate(base, quote, value, row.rate_date, source, on)


def manual_rate(session: Session, household_id: uuid.UUID, base: str, quote: str, on: dt.date) -> Rate | None:
    """The household's own rate for the date (or a few days before); None when it set none."""
    return _latest(session, household_id, base, quote, on, MANUAL_SOURCE)


def stored_rate(session: Session, base: str, quote: str, on: dt.date) -> Rate | None:
    """A rate fetched from the live provider earlier, for the date or a few days before."""
    return _latest(session, None, base, quote, on, LIVE_SOURCE)


def store_fetched(sessions: sessionmaker, rate: Rate) -> None:
    """Keep a rate fetched from the live provider (global, by the date it was published for)."""
    values = dict(id=uuid.uuid4(), household_id=None, base=rate.base, quote=rate.quote, rate_date=rate.on,
                  rate=rate.value, source=LIVE_SOURCE)
    with sessions() as session, session.begin():
        session.execute(insert(FxRate).values(**values).on_conflict_do_update(
            constraint="uq_fx_rates_owner_pair_date", set_={"rate": rate.value, "updated_at": func.now()}))


def offline_rate(session: Session, household_id: uuid.UUID | None, base: str, quote: str, on: dt.date,
                 ecb: EcbRates | None = None) -> Rate | None:
    """Without asking the live provider: the household's manual rate, else a stored one, else the ECB's."""
    if base == quote:
        return (ecb or default_rates()).rate(base, quote, on)
    if household_id is not None and (found := manual_rate(session, household_id, base, quote, on)):
        return found
    return stored_rate(session, base, quote, on) or (ecb or default_rates()).rate(
        base, quote, on, max_age_days=MAX_RATE_AGE_DAYS)


class LiveSource(Protocol):
    """The live provider as the rate book sees it."""

    def rate(self, base: str, quote: str, on: dt.date) -> Rate | None:
        """The provider's rate, or None when it has none or cannot be asked."""


class RateBook:
    """Every source in one place, in order: the household's manual rate, the live provider (when configured and
    its breaker lets the call through), a rate fetched earlier, the ECB reference rates. Never a made-up one."""

    def __init__(self, sessions: sessionmaker, ecb: EcbRates, live: LiveSource | None = None) -> None:
        self.sessions = sessions
        self.ecb = ecb
        self.live = live

    def rate(self, base: str, quote: str, on: dt.date, household_id: uuid.UUID | None = None) -> Rate | None:
        """The rate base -> quote for `on` (or a few days before, marked stale), or None."""
        if base == quote:
            return self.ecb.rate(base, quote, on)
        if household_id is not None:
            with self.sessions() as session:
                if found := manual_rate(session, household_id, base, quote, on):
                    return found
        if self.live is not None and (found := self.live.rate(base, quote, on)):
            return found
        with self.sessions() as session:
            return offline_rate(session, None, base, quote, on, self.ecb)

    def rates_from(self, base: str, on: dt.date, household_id: uuid.UUID | None) -> list[Rate]:
        """Every rate from `base` known without the live provider (manual, stored, ECB) for `on`, by quote."""
        with self.sessions() as session:
            kept = _kept_counterparts(session, household_id, base, on)
            found = (offline_rate(session, household_id, base, quote, on, self.ecb) if quote in kept
                     else self.ecb.rate(base, quote, on, max_age_days=MAX_RATE_AGE_DAYS)
                     for quote in sorted((set(self.ecb.currencies()) | kept) - {base}) if is_known_currency(quote))
            return [rate for rate in found if rate is not None]


def _kept_counterparts(session: Session, household_id: uuid.UUID | None, code: str, on: dt.date) -> set[str]:
    """Currencies with a kept rate against `code` (either direction) in the days a rate for `on` may come from."""
    rows = session.execute(select(FxRate.base, FxRate.quote).where(
        or_(FxRate.base == code, FxRate.quote == code),
        or_(FxRate.household_id.is_(None), FxRate.household_id == household_id),
        FxRate.rate_date <= on, FxRate.rate_date >= on - dt.timedelta(days=MAX_RATE_AGE_DAYS))).all()
    return {quote if base == code else base for base, quote in rows}


# --- manual rates: set by the household's owners and members -----------------------------------------------------


def set_manual_rate(household_id: uuid.UUID, user_id: uuid.UUID | None, base: str, quote: str, on: dt.date,
                    value: Decimal, session: Session) -> tuple[FxRate, bool]:
    """Create or replace the household's rate for (base, quote, date); (row, created). The caller commits."""
    existing = session.scalar(select(FxRate).where(
        FxRate.household_id == household_id, FxRate.base == base, FxRate.quote == quote, FxRate.rate_date == on
    ).with_for_update())
    if existing is not None:
        existing.rate, existing.created_by, existing.updated_at = value, user_id, dt.datetime.now(dt.UTC)
        return existing, False
    now = dt.datetime.now(dt.UTC)
    row = FxRate(id=uuid.uuid4(), household_id=household_id, base=base, quote=quote, rate_date=on, rate=value,
                 source=MANUAL_SOURCE, created_by=user_id, created_at=now, updated_at=now)
    session.add(row)
    return row, True


def manual_rates(household_id: uuid.UUID, session: Session, limit: int = 500) -> list[FxRate]:
    """The household's manual rates, newest date first."""
    return list(session.scalars(select(FxRate).where(FxRate.household_id == household_id).order_by(
        FxRate.rate_date.desc(), FxRate.base, FxRate.quote).limit(limit)))
