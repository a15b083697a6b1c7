"""ECB euro reference rates, read as exact decimals from the history file shipped with currency_converter."""

from __future__ import annotations

import bisect
import csv
import datetime as dt
import functools
import importlib.resources
import io
import threading
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from importlib.resources.abc import Traversable
from pathlib import Path

from domain.fx import Rate, cross_rate
from domain.money import is_known_currency

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
