"""Money as exact decimals: validation, parsing, rounding and formatting per ISO 4217 exponent."""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import (
    ROUND_HALF_EVEN,
    Context,
    Decimal,
    DivisionByZero,
    InvalidOperation,
    Overflow,
    localcontext,
)

from domain.currencies import EXPONENTS

#: Amounts must be strictly below this in absolute value; anything larger is a typo or an attack.
MAX_AMOUNT = Decimal("1e12")

#: Plain decimal notation only: optional sign, ASCII digits, optional point followed by digits.
_PLAIN_DECIMAL = re.compile(r"[+-]?[0-9]+(?:\.[0-9]+)?")
#: Longer input strings are refused before any parsing work.
_MAX_INPUT_LENGTH = 64
#: Working precision: far above any valid amount (13 integer digits + 4 decimals).
_PRECISION = 60


class InvalidMoney(ValueError):
    """An amount or currency that is not acceptable, with a human-readable reason."""

    def __init__(self, reason: str) -> None:
        """Keep the reason both as the message and as an attribute."""
        super().__init__(reason)
        self.reason = reason


def _context() -> Context:
    """A wide, half-even decimal context that raises instead of silently misbehaving."""
    return Context(
        prec=_PRECISION, rounding=ROUND_HALF_EVEN, traps=[InvalidOperation, DivisionByZero, Overflow]
    )


#: The context of quantize(); it is only read (localcontext would copy it on every call, in the hot path of imports).
_QUANTIZE_CONTEXT = _context()


def is_known_currency(code: str) -> bool:
    """Whether `code` is an active ISO 4217 code, exactly as written (uppercase, three letters)."""
    return isinstance(code, str) and code in EXPONENTS


def exponent(currency: str) -> int:
    """The number of decimal places of `currency`; raises InvalidMoney if it is unknown."""
    if not is_known_currency(currency):
        raise InvalidMoney(f"unknown currency code {str(currency)[:12]!r}")
    return EXPONENTS[currency]


#: The smallest unit of each currency seen so far (they never change).
_QUANTA: dict[str, Decimal] = {}


def _quantum(currency: str) -> Decimal:
    """The smallest unit of `currency` as a Decimal exponent template, e.g. 0.01 for EUR."""
    quantum = _QUANTA.get(currency) if isinstance(currency, str) else None
    if quantum is None:
        quantum = _QUANTA[currency] = Decimal(1).scaleb(-exponent(currency))
    return quantum


def _require_decimal(amount: object) -> Decimal:
    """`amount` as a finite Decimal (ints accepted, booleans and binary fractions refused)."""
    if isinstance(amount, bool) or not isinstance(amount, (Decimal, int)):
        raise InvalidMoney(f"amount must be a Decimal, not {type(amount).__name__}")
    value = Decimal(amount)
    if not value.is_finite():
        raise InvalidMoney("amount must be a finite number")
    return value


def quantize(amount: Decimal, currency: str) -> Decimal:
    """`amount` rounded half-even to the exponent of `currency` (a zero result is never negative)."""
    value = _require_decimal(amount)
    quantum = _quantum(currency)
    try:
        result = value.quantize(quantum, context=_QUANTIZE_CONTEXT)
    except InvalidOperation as exc:
        raise InvalidMoney("amount is too large to be represented") from exc
    return result.copy_abs() if result.is_zero() else result


def _has_exact_exponent(value: Decimal, currency: str) -> bool:
    """Whether `value` needs no more decimal places than `currency` allows."""
    return quantize(value, currency) == value


def format_amount(amount: Decimal, currency: str) -> str:
    """`amount` as plain text with exactly the currency's decimals, e.g. "12.30", "1200", "1.234"."""
    return f"{quantize(amount, currency):f}"


def _decimals_reason(currency: str) -> str:
    """The rejection reason for an amount with too many decimal places."""
    places = exponent(currency)
    suffix = " (whole units only)" if places == 0 else ""
    return f"{currency} amounts have at most {places} decimal places{suffix}"


def _coerce(value: object) -> Decimal:
    """Turn raw input (str, int or Decimal) into a finite Decimal, refusing anything ambiguous."""
    if isinstance(value, float):
        raise InvalidMoney("amount must be a string, not a number with binary rounding")
    if isinstance(value, bool):
        raise InvalidMoney("amount must be a string, not a boolean")
    if isinstance(value, str):
        return _parse_text(value)
    if isinstance(value, (int, Decimal)):
        return _require_decimal(value)
    raise InvalidMoney(f"amount must be a string, not {type(value).__name__}")


def _parse_text(text: str) -> Decimal:
    """A plain decimal string (surrounding whitespace allowed) as a Decimal."""
    stripped = text.strip()
    if not stripped:
        raise InvalidMoney("amount is empty")
    if len(stripped) > _MAX_INPUT_LENGTH:
        raise InvalidMoney("amount is too long")
    if not _PLAIN_DECIMAL.fullmatch(stripped):
        raise InvalidMoney("amount must be plain decimal digits with an optional sign and point, e.g. 12.30")
    return Decimal(stripped)


def _check_range(value: Decimal, *, allow_negative: bool, allow_zero: bool) -> None:
    """Refuse absurd magnitudes, and negative or zero amounts unless allowed."""
    if abs(value) >= MAX_AMOUNT:
        raise InvalidMoney(f"amount is too large: it must be below {MAX_AMOUNT:f} in absolute value")
    if value.is_zero():
        if not allow_zero:
            raise InvalidMoney("amount must not be zero")
    elif value < 0 and not allow_negative:
        raise InvalidMoney("amount must not be negative")


def parse_amount(
    value: str | int | Decimal,
    currency: str,
    *,
    allow_negative: bool = False,
    allow_zero: bool = False,
) -> Decimal:
    """Validate user input for an amount in `currency`; the exact Decimal at the currency's exponent.

    Trailing zeros beyond the exponent are accepted ("12.300" EUR is 12.30), anything that would
    need rounding is refused.
    """
    exponent(currency)
    amount = _coerce(value)
    _check_range(amount, allow_negative=allow_negative, allow_zero=allow_zero)
    if not _has_exact_exponent(amount, currency):
        raise InvalidMoney(_decimals_reason(currency))
    return quantize(amount, currency)


def to_minor_units(amount: Decimal, currency: str) -> int:
    """`amount` as an integer count of minor units (cents...); raises if that would need rounding."""
    value = _require_decimal(amount)
    if not _has_exact_exponent(value, currency):
        raise InvalidMoney(f"{format(value, 'f')} {currency} is not a whole number of minor units")
    with localcontext(_context()):
        return int(value.scaleb(exponent(currency)))


def from_minor_units(units: int, currency: str) -> Decimal:
    """The amount that `units` minor units of `currency` make, at the currency's exponent."""
    if isinstance(units, bool) or not isinstance(units, int):
        raise InvalidMoney(f"minor units must be an integer, not {type(units).__name__}")
    with localcontext(_context()):
        return quantize(Decimal(units).scaleb(-exponent(currency)), currency)


@dataclass(frozen=True)
class Money:
    """An exact amount in a known currency, stored at the currency's exponent."""

    amount: Decimal
    currency: str

    def __post_init__(self) -> None:
        """Refuse unknown currencies, non-Decimal amounts and amounts that would need rounding."""
        exponent(self.currency)
        if not isinstance(self.amount, Decimal):
            raise InvalidMoney(f"Money amount must be a Decimal, not {type(self.amount).__name__}")
        if not _has_exact_exponent(_require_decimal(self.amount), self.currency):
            raise InvalidMoney(_decimals_reason(self.currency))
        object.__setattr__(self, "amount", quantize(self.amount, self.currency))

    def __str__(self) -> str:
        """Human form, e.g. "12.30 EUR"."""
        return f"{format_amount(self.amount, self.currency)} {self.currency}"

    def to_json(self) -> dict[str, str]:
        """JSON form with the amount as a string: {"amount": "12.30", "currency": "EUR"}."""
        return {"amount": format_amount(self.amount, self.currency), "currency": self.currency}

    def _same_currency(self, other: Money) -> None:
        """Raise ValueError unless `other` is in the same currency."""
        if other.currency != self.currency:
            raise ValueError(f"cannot combine {self.currency} with {other.currency}")

    def __add__(self, other: object) -> Money:
        """The sum of two amounts in the same currency."""
        if not isinstance(other, Money):
            return NotImplemented
        self._same_currency(other)
        with localcontext(_context()):
            return Money(self.amount + other.amount, self.currency)

    def __sub__(self, other: object) -> Money:
        """The difference of two amounts in the same currency."""
        if not isinstance(other, Money):
            return NotImplemented
        return self + (-other)

    def __neg__(self) -> Money:
        """The same amount with the opposite sign."""
        return Money(-self.amount, self.currency)
