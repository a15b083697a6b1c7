"""Exchange-rate math on exact decimals: cross rates from euro quotes and conversion."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from decimal import (
    ROUND_05UP,
    ROUND_HALF_EVEN,
    Context,
    Decimal,
    DivisionByZero,
    Inexact,
    InvalidOperation,
    Overflow,
    localcontext,
)

from domain.money import quantize

#: Rates are kept to this many decimal places (matches the RATE column).
RATE_PLACES = 10
_RATE_QUANTUM = Decimal(1).scaleb(-RATE_PLACES)
#: Digits used for the intermediate quotient (decimal128), well above the 28 digit default.
_DIVISION_PRECISION = 34
#: Digits allowed for an exact product before giving up.
_PRODUCT_PRECISION = 80


def _positive(value: Decimal, name: str) -> Decimal:
    """`value` if it is a finite, strictly positive Decimal; ValueError otherwise."""
    if not isinstance(value, Decimal) or not value.is_finite() or value <= 0:
        raise ValueError(f"{name} must be a positive finite Decimal, got {value!r}")
    return value


def cross_rate(eur_to_base: Decimal, eur_to_quote: Decimal) -> Decimal:
    """Units of quote for one unit of base, from ECB-style quotes (1 EUR = x base, 1 EUR = y quote).

    The quotient is taken at 34 digits rounding "05up" (so the final half-even rounding to
    RATE_PLACES cannot suffer from double rounding), then quantized half-even.
    """
    base = _positive(eur_to_base, "eur_to_base")
    quote = _positive(eur_to_quote, "eur_to_quote")
    division = Context(
        prec=_DIVISION_PRECISION, rounding=ROUND_05UP, traps=[InvalidOperation, DivisionByZero, Overflow]
    )
    with localcontext(division):
        quotient = quote / base
    with localcontext(division) as final:
        final.rounding = ROUND_HALF_EVEN
        rate = quotient.quantize(_RATE_QUANTUM)
    if rate.is_zero():
        raise ValueError(f"the rate rounds to zero at {RATE_PLACES} decimal places")
    return rate


def convert(amount: Decimal, rate: Decimal, to_currency: str) -> Decimal:
    """`amount` times `rate`, computed exactly, then rounded half-even to `to_currency`'s exponent."""
    if not isinstance(amount, Decimal) or not amount.is_finite():
        raise ValueError(f"amount must be a finite Decimal, got {amount!r}")
    factor = _positive(rate, "rate")
    exact = Context(prec=_PRODUCT_PRECISION, traps=[InvalidOperation, Overflow, Inexact])
    with localcontext(exact):
        product = amount * factor
    return quantize(product, to_currency)


@dataclass(frozen=True)
class Rate:
    """How many units of `quote` one unit of `base` buys, as published for date `on`."""

    base: str
    quote: str
    value: Decimal
    on: dt.date
    source: str
    requested_on: dt.date

    def __post_init__(self) -> None:
        """Refuse a rate that is not a positive finite Decimal."""
        _positive(self.value, "rate value")

    @property
    def stale(self) -> bool:
        """Whether the rate was published on an earlier date than the one asked for."""
        return self.on != self.requested_on

    def to_json(self) -> dict[str, str | bool]:
        """JSON form: strings for the value and ISO dates, plus the stale flag."""
        return {
            "base": self.base,
            "quote": self.quote,
            "value": f"{self.value:f}",
            "on": self.on.isoformat(),
            "source": self.source,
            "requested_on": self.requested_on.isoformat(),
            "stale": self.stale,
        }


#: The first day of the euro and of the ECB reference rates: no exchange rate is served before it.
EARLIEST_RATE_DATE = dt.date(1999, 1, 4)
#: A rate published this many days before the date asked for may still be used (marked stale).
MAX_RATE_AGE_DAYS = 7
#: Rates must be strictly below this (the RATE column holds 14 integer digits).
MAX_RATE = Decimal("1e14")
_PLAIN_RATE = re.compile(r"[0-9]+(?:\.[0-9]+)?")
_MAX_RATE_TEXT = 40


def inverse(rate: Decimal) -> Decimal:
    """The rate of the opposite direction (1 / rate), at RATE_PLACES like every other rate."""
    return cross_rate(_positive(rate, "rate"), Decimal(1))


def compose(first: Decimal, second: Decimal) -> Decimal:
    """The exact product of two rates (a -> b, then b -> c), unrounded, for one rounding at the end."""
    exact = Context(prec=_PRODUCT_PRECISION, traps=[InvalidOperation, Overflow, Inexact])
    with localcontext(exact):
        return _positive(first, "first rate") * _positive(second, "second rate")


def parse_rate(text: object) -> Decimal:
    """A rate typed by a person ("0.9123") as an exact Decimal; ValueError with the reason otherwise."""
    if not isinstance(text, str):
        raise ValueError(f'rate must be a decimal string such as "0.9123", not {type(text).__name__}')
    stripped = text.strip()
    if len(stripped) > _MAX_RATE_TEXT or not _PLAIN_RATE.fullmatch(stripped):
        raise ValueError('rate must be plain decimal digits such as "0.9123" (no sign, exponent or spaces)')
    value = Decimal(stripped)
    if value.is_zero():
        raise ValueError("rate must be greater than zero")
    if value >= MAX_RATE:
        raise ValueError(f"rate must be below {MAX_RATE:f}")
    if value != value.quantize(_RATE_QUANTUM, rounding=ROUND_HALF_EVEN):
        raise ValueError(f"rate has at most {RATE_PLACES} decimal places")
    return value.quantize(_RATE_QUANTUM)


def check_rate_date(on: dt.date, today: dt.date) -> None:
    """Refuse a date no exchange rate can exist for: before the euro, or after `today`."""
    if on < EARLIEST_RATE_DATE:
        raise ValueError(f"exchange rates exist from {EARLIEST_RATE_DATE.isoformat()} (the euro's first day); "
                         f"{on.isoformat()} is before that")
    if on > today:
        raise ValueError(f"{on.isoformat()} is in the future; rates exist up to today ({today.isoformat()})")


def quantize_rate(value: Decimal) -> Decimal:
    """A rate from elsewhere (a provider) at RATE_PLACES, half-even; ValueError if not positive or zero there."""
    rate = _positive(value, "rate")
    if rate >= MAX_RATE:
        raise ValueError(f"rate {rate} is too large")
    with localcontext(Context(prec=_DIVISION_PRECISION, rounding=ROUND_HALF_EVEN)):
        rounded = rate.quantize(_RATE_QUANTUM)
    if rounded.is_zero():
        raise ValueError(f"the rate rounds to zero at {RATE_PLACES} decimal places")
    return rounded
