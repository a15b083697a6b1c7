"""Statement imports: CSV parsing with a saved column mapping, duplicate keys and near-match rules."""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import json
import re
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, fields
from datetime import date, datetime, timedelta
from decimal import Decimal
from functools import lru_cache
from itertools import islice
from typing import Any, TypeVar
from uuid import UUID

from domain.money import InvalidMoney, exponent, parse_amount

T = TypeVar("T")

#: Rows per message when an import streams to the workers.
DEFAULT_BATCH_SIZE = 500
#: A near match may be at most this many days away.
NEAR_MATCH_DAYS = 3
#: A near match needs at least this payee similarity (0..1).
NEAR_MATCH_SIMILARITY = 0.85
#: Longest payee or description kept; longer text is reported as a bad row.
MAX_TEXT_LENGTH = 1000
#: Longest bank transaction id (the OFX limit for FITID).
MAX_BANK_ID_LENGTH = 255
#: Most preamble lines a mapping may skip before the header.
MAX_SKIP_ROWS = 100
#: Longest column name a mapping may reference.
MAX_COLUMN_NAME_LENGTH = 200

DELIMITERS = (",", ";", "\t", "|")
ENCODINGS = ("utf-8", "utf-8-sig", "latin-1", "cp1252")
_CODECS = frozenset(codecs.lookup(name).name for name in ENCODINGS)
THOUSANDS_SEPARATORS = (",", ".", " ", "'", "\u00a0", "\u202f")
_SPACES = (" ", "\u00a0", "\u202f")
_APOSTROPHES = ("'", "\u2019")
_WESTERN_GROUPS = re.compile(r"[0-9]{1,3}(?:#[0-9]{3})+")
_INDIAN_GROUPS = re.compile(r"[0-9]{1,2}(?:#[0-9]{2})*#[0-9]{3}")
_WHITESPACE = re.compile(r"\s+")
_DECODE_CHUNK = 1 << 16


class ImportFormatError(ValueError):
    """The whole file is refused (wrong type, encoding or header), with a human-readable reason."""

    def __init__(self, reason: str) -> None:
        """Keep the reason both as the message and as an attribute."""
        super().__init__(reason)
        self.reason = reason


class UnsupportedFileType(ImportFormatError):
    """The file is neither CSV nor OFX/QFX (an HTTP API answers 415 rather than 422)."""


@dataclass(frozen=True, slots=True)
class ImportedRow:
    """One parsed statement line; `amount` is signed (negative = money out)."""

    line: int
    occurred_on: date
    amount: Decimal
    payee: str
    description: str
    bank_id: str | None


@dataclass(frozen=True, slots=True)
class RowError:
    """A statement line that could not be imported, and why."""

    line: int
    reason: str


# --- the saved column mapping -------------------------------------------------------------------


def _require_column(name: str, value: object, *, optional: bool) -> None:
    """Raise ValueError unless `value` is a usable column name (or None when optional)."""
    if value is None and optional:
        return
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{name} must be a non-empty column name")
    if len(value) > MAX_COLUMN_NAME_LENGTH:
        raise ValueError(f"{name} is longer than {MAX_COLUMN_NAME_LENGTH} characters")


def _require_bool(name: str, value: object) -> None:
    """Raise ValueError unless `value` is a boolean."""
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be true or false")


def _require_date_format(value: object) -> None:
    """Raise ValueError unless `value` is a strptime format that round-trips a full date."""
    if not isinstance(value, str) or "%" not in value or len(value) > 64:
        raise ValueError("date_format must be a strptime format such as %Y-%m-%d or %d.%m.%Y")
    sample = date(2024, 12, 31)
    try:
        parsed = datetime.strptime(sample.strftime(value), value).date()
    except ValueError as exc:
        raise ValueError(f"date_format {value!r} is not a valid strptime format") from exc
    if parsed != sample:
        raise ValueError(f"date_format {value!r} must contain a day, a month and a year")


def _check_amount_columns(mapping: CsvMapping) -> None:
    """Raise ValueError unless the mapping has one signed column xor a debit and a credit column."""
    debit, credit = mapping.debit_column, mapping.credit_column
    if mapping.amount_column is not None:
        if debit is not None or credit is not None:
            raise ValueError("amount_column: give either amount_column, or debit_column and credit_column, not both")
        return
    if debit is None and credit is None:
        raise ValueError("amount_column is required (or debit_column and credit_column)")
    if debit is None or credit is None:
        raise ValueError("debit_column and credit_column must be given together")
    if debit.strip().casefold() == credit.strip().casefold():
        raise ValueError("credit_column must differ from debit_column")


def _check_number_format(mapping: CsvMapping) -> None:
    """Raise ValueError unless the separators and delimiter are known and consistent."""
    _require_bool("decimal_comma", mapping.decimal_comma)
    separator = mapping.thousands_separator
    if separator is not None and separator not in THOUSANDS_SEPARATORS:
        raise ValueError(f"thousands_separator must be one of {THOUSANDS_SEPARATORS} or null")
    if separator == ("," if mapping.decimal_comma else "."):
        raise ValueError("thousands_separator must differ from the decimal separator")
    if mapping.delimiter not in DELIMITERS:
        raise ValueError(f"delimiter must be one of {DELIMITERS}")


def _codec_name(encoding: str) -> str | None:
    """Python's canonical name for `encoding` ("latin1" -> "iso8859-1"), or None if unknown."""
    try:
        return codecs.lookup(encoding).name
    except LookupError:
        return None


def _check_file_options(mapping: CsvMapping) -> None:
    """Raise ValueError unless the encoding, skip_rows and negate are acceptable."""
    if not isinstance(mapping.encoding, str) or _codec_name(mapping.encoding) not in _CODECS:
        raise ValueError(f"encoding must be one of {', '.join(ENCODINGS)}")
    skip = mapping.skip_rows
    if isinstance(skip, bool) or not isinstance(skip, int) or not 0 <= skip <= MAX_SKIP_ROWS:
        raise ValueError(f"skip_rows must be a whole number from 0 to {MAX_SKIP_ROWS}")
    _require_bool("negate", mapping.negate)


@dataclass(frozen=True)
class CsvMapping:
    """How to read one bank's CSV export; columns are referenced by their header names."""

    date_column: str
    date_format: str
    payee_column: str
    amount_column: str | None = None
    debit_column: str | None = None
    credit_column: str | None = None
    description_column: str | None = None
    id_column: str | None = None
    decimal_comma: bool = False
    thousands_separator: str | None = None
    delimiter: str = ","
    encoding: str = "utf-8"
    skip_rows: int = 0
    negate: bool = False

    def __post_init__(self) -> None:
        """Refuse an incomplete or inconsistent mapping with a ValueError naming the key."""
        for name in ("date_column", "payee_column"):
            _require_column(name, getattr(self, name), optional=False)
        for name in ("amount_column", "debit_column", "credit_column", "description_column", "id_column"):
            _require_column(name, getattr(self, name), optional=True)
        _require_date_format(self.date_format)
        _check_amount_columns(self)
        _check_number_format(self)
        _check_file_options(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CsvMapping:
        """A mapping from saved JSON; raises ValueError naming the missing, unknown or bad key."""
        if not isinstance(data, Mapping):
            raise ValueError("the CSV mapping must be an object")
        known = {field.name for field in fields(cls)}
        unknown = sorted(str(key) for key in data if key not in known)
        if unknown:
            raise ValueError(f"unknown mapping key(s): {', '.join(unknown)}")
        for name in ("date_column", "date_format", "payee_column"):
            if name not in data:
                raise ValueError(f"{name} is required")
        return cls(**data)

    def to_dict(self) -> dict[str, Any]:
        """The mapping as plain JSON-ready data (the inverse of from_dict)."""
        return asdict(self)


# --- amounts, dates and text --------------------------------------------------------------------


def _strip_currency(text: str, currency: str) -> str:
    """`text` without a leading or trailing currency symbol or ISO code."""
    upper = text.upper()
    if upper.startswith(currency):
        text = text[3:]
    elif upper.endswith(currency):
        text = text[:-3]
    text = text.strip()
    while text and unicodedata.category(text[0]) == "Sc":
        text = text[1:].lstrip()
    while text and unicodedata.category(text[-1]) == "Sc":
        text = text[:-1].rstrip()
    return text


def _split_sign(text: str, currency: str) -> tuple[bool, str]:
    """(negative, unsigned text) from parentheses "(12.50)", a leading sign or a trailing minus "12.50-"."""
    parenthesized = text.startswith("(") and text.endswith(")")
    if parenthesized:
        text = _strip_currency(text[1:-1], currency)
    sign = ""
    if text.startswith(("-", "+")):
        sign, text = text[0], _strip_currency(text[1:], currency)
    elif text.endswith("-"):
        sign, text = "-", text[:-1].rstrip()
    if parenthesized and sign:
        raise InvalidMoney("amount has both parentheses and a sign")
    if text.startswith(("-", "+", "(")) or text.endswith(("-", ")")):
        raise InvalidMoney("amount has more than one sign")
    return parenthesized or sign == "-", text


def _remove_grouping(text: str, separator: str | None, decimal_point: str) -> str:
    """`text` without thousands separators, which must sit between groups of three digits."""
    if separator is None:
        return text
    if separator in _SPACES:
        for space in _SPACES:
            text = text.replace(space, separator)
    elif separator in _APOSTROPHES:
        text = text.replace("\u2019", separator)
    integer, point, fraction = text.partition(decimal_point)
    if separator not in integer:
        return text
    marked = integer.replace(separator, "#")
    if not (_WESTERN_GROUPS.fullmatch(marked) or _INDIAN_GROUPS.fullmatch(marked)):
        raise InvalidMoney(f"thousands separator {separator!r} is in an unexpected place")
    return integer.replace(separator, "") + point + fraction


def parse_bank_amount(
    text: str, currency: str, *, decimal_comma: bool = False, thousands_separator: str | None = None
) -> Decimal:
    """A signed amount as banks write it ("-1.234,56 EUR", "(12.50)", "$3,250.00", "12.50-").

    Currency symbols and codes, thousands separators and a decimal comma are handled, then the
    number must satisfy domain.money rules for `currency`; raises InvalidMoney with the reason.
    """
    raw = text.strip()
    if not raw:
        raise InvalidMoney("amount is empty")
    if len(raw) > 64:
        raise InvalidMoney("amount is too long")
    negative, unsigned = _split_sign(_strip_currency(raw, currency), currency)
    decimal_point = "," if decimal_comma else "."
    plain = _remove_grouping(unsigned, thousands_separator, decimal_point)
    if decimal_comma:
        if "." in plain:
            raise InvalidMoney("a point is not expected in an amount with a decimal comma")
        plain = plain.replace(",", ".")
    value = parse_amount(plain, currency, allow_negative=False, allow_zero=True)
    return -value if negative and not value.is_zero() else value


def parse_date(text: str, date_format: str) -> date:
    """The calendar date in `text` per the strptime `date_format`; raises ValueError with the reason."""
    raw = text.strip()
    if not raw:
        raise ValueError("date is empty")
    try:
        return _strptime_date(raw, date_format)
    except ValueError:
        raise ValueError(f"date {_clip(raw)!r} is not a valid date in the format {date_format}") from None


@lru_cache(maxsize=4096)
def _strptime_date(text: str, date_format: str) -> date:
    """strptime's date, cached: a statement repeats the same few hundred dates."""
    return datetime.strptime(text, date_format).date()


def normalize_text(text: str) -> str:
    """Text compared loosely: Unicode-normalized, case-folded, whitespace collapsed."""
    return _WHITESPACE.sub(" ", unicodedata.normalize("NFKC", text).casefold()).strip()


def _clip(text: str, limit: int = 40) -> str:
    """`text` shortened for quoting in an error reason."""
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def check_text(name: str, text: str) -> str:
    """`text` stripped; raises ValueError if it is longer than MAX_TEXT_LENGTH."""
    value = text.strip()
    if len(value) > MAX_TEXT_LENGTH:
        raise ValueError(f"{name} is longer than {MAX_TEXT_LENGTH} characters")
    return value


def check_bank_id(text: str | None) -> str | None:
    """A bank transaction id stripped (None when empty); raises ValueError if it is too long."""
    value = (text or "").strip()
    if len(value) > MAX_BANK_ID_LENGTH:
        raise ValueError(f"bank id is longer than {MAX_BANK_ID_LENGTH} characters")
    return value or None


# --- CSV parsing --------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Columns:
    """Header positions of the mapped columns (None when not mapped)."""

    width: int
    date: int
    payee: int
    amount: int | None
    debit: int | None
    credit: int | None
    description: int | None
    bank_id: int | None


def _check_decodes(data: bytes, encoding: str) -> None:
    """Raise ImportFormatError, with the line, if `data` is not valid in `encoding`."""
    decoder = codecs.getincrementaldecoder(encoding)("strict")
    for start in range(0, len(data), _DECODE_CHUNK):
        chunk = data[start : start + _DECODE_CHUNK]
        try:
            decoder.decode(chunk, final=start + _DECODE_CHUNK >= len(data))
        except UnicodeDecodeError as exc:
            buffered = len(exc.object) - len(chunk)
            line = data.count(b"\n", 0, max(start + exc.start - buffered, 0)) + 1
            raise ImportFormatError(
                f"the file is not valid {encoding} text (first bad byte on line {line}); "
                "choose the file's encoding in the mapping, e.g. latin-1 or cp1252"
            ) from None


def _header_index(header: list[str]) -> dict[str, int]:
    """Case-insensitive header name -> position; names appearing twice map to -1."""
    index: dict[str, int] = {}
    for position, name in enumerate(header):
        key = name.strip().lstrip("\ufeff").strip().casefold()
        index[key] = -1 if key in index else position
    return index


def _locate_columns(header: list[str], mapping: CsvMapping, line: int) -> _Columns:
    """Positions of every mapped column; raises ImportFormatError naming missing or repeated ones."""
    index = _header_index(header)
    names = {
        "date": mapping.date_column, "payee": mapping.payee_column, "amount": mapping.amount_column,
        "debit": mapping.debit_column, "credit": mapping.credit_column,
        "description": mapping.description_column, "bank_id": mapping.id_column,
    }
    wanted = {role: name for role, name in names.items() if name is not None}
    missing = [name for name in wanted.values() if name.strip().casefold() not in index]
    if missing:
        found = ", ".join(repr(_clip(cell.strip())) for cell in header[:20]) or "nothing"
        raise ImportFormatError(
            f"the header on line {line} has no column {', '.join(map(repr, missing))}; found {found}"
        )
    repeated = [name for name in wanted.values() if index[name.strip().casefold()] < 0]
    if repeated:
        raise ImportFormatError(f"column {', '.join(map(repr, repeated))} appears twice in the header on line {line}")
    positions = {role: index[name.strip().casefold()] for role, name in wanted.items()}
    return _Columns(width=len(header), **{role: positions.get(role) for role in names})


def _cell(cells: list[str], position: int | None) -> str:
    """The cell at `position` ("" when unmapped or absent)."""
    if position is None or position >= len(cells):
        return ""
    return cells[position]


def _signed_amount(cells: list[str], columns: _Columns, mapping: CsvMapping, currency: str) -> Decimal:
    """The row's signed amount from one signed column, or a debit and a credit column."""
    def read(position: int | None, name: str | None) -> Decimal | None:
        text = _cell(cells, position)
        if not text.strip():
            return None
        try:
            return parse_bank_amount(text, currency, decimal_comma=mapping.decimal_comma,
                                     thousands_separator=mapping.thousands_separator)
        except InvalidMoney as exc:
            raise ValueError(f"{name} {_clip(text.strip())!r}: {exc.reason}") from None

    if columns.amount is not None:
        amount = read(columns.amount, mapping.amount_column)
        if amount is None:
            raise ValueError(f"{mapping.amount_column} is empty")
    else:
        debit, credit = read(columns.debit, mapping.debit_column), read(columns.credit, mapping.credit_column)
        if debit is None and credit is None:
            raise ValueError(f"{mapping.debit_column} and {mapping.credit_column} are both empty")
        if debit and credit:
            raise ValueError(f"{mapping.debit_column} and {mapping.credit_column} both have an amount")
        amount = abs(credit or Decimal(0)) - abs(debit or Decimal(0))
    return -amount if mapping.negate and not amount.is_zero() else amount


def _shape_error(cells: list[str], columns: _Columns, delimiter: str) -> str | None:
    """Why the row's field count does not fit the header, or None when it does."""
    extra = cells[columns.width :]
    if any(cell.strip() for cell in extra):
        shown = "tab" if delimiter == "\t" else repr(delimiter)
        return (f"{len(cells)} fields where the header has {columns.width}; "
                f"is there an unquoted {shown} inside a value?")
    needed = max(p for p in (columns.date, columns.payee, columns.amount, columns.debit, columns.credit,
                             columns.description, columns.bank_id) if p is not None)
    if len(cells) <= needed:
        return f"{len(cells)} fields where the header has {columns.width}"
    return None


def _csv_row(line: int, cells: list[str], columns: _Columns, mapping: CsvMapping,
             currency: str) -> ImportedRow | RowError:
    """One data row as an ImportedRow, or a RowError listing every problem found."""
    shape = _shape_error(cells, columns, mapping.delimiter)
    if shape:
        return RowError(line, shape)
    reasons: list[str] = []
    return build_row(line, (
        ("occurred_on", lambda: parse_date(cells[columns.date], mapping.date_format)),
        ("amount", lambda: _signed_amount(cells, columns, mapping, currency)),
        ("payee", lambda: check_text("payee", cells[columns.payee])),
        ("description", lambda: check_text("description", _cell(cells, columns.description))),
        ("bank_id", lambda: check_bank_id(_cell(cells, columns.bank_id))),
    ), reasons)


def build_row(line: int, steps: tuple[tuple[str, Callable[[], Any]], ...],
              reasons: list[str] | None = None) -> ImportedRow | RowError:
    """Run each field's parser; the row, or one RowError naming every reason the row was refused."""
    reasons = list(reasons or [])
    values: dict[str, Any] = {}
    for name, step in steps:
        try:
            values[name] = step()
        except ValueError as exc:
            reasons.append(str(exc))
    if reasons:
        return RowError(line, "; ".join(reasons))
    return ImportedRow(line=line, **values)


def _open_reader(data: bytes, mapping: CsvMapping) -> tuple[Any, int]:
    """A csv reader positioned after the preamble, and the number of preamble lines skipped."""
    stream = io.TextIOWrapper(io.BytesIO(data), encoding=mapping.encoding, newline="")
    for skipped in range(mapping.skip_rows):
        if not stream.readline():
            raise ImportFormatError(f"the file ends after {skipped} lines, before the header "
                                    f"(skip_rows is {mapping.skip_rows})")
    return csv.reader(stream, delimiter=mapping.delimiter), mapping.skip_rows


def _read_header(reader: Any, offset: int) -> tuple[list[str], int]:
    """The first non-blank record after the preamble and its line number."""
    try:
        for cells in reader:
            if any(cell.strip() for cell in cells):
                return cells, offset + reader.line_num
    except csv.Error as exc:
        raise ImportFormatError(f"line {offset + reader.line_num}: not valid CSV ({exc})") from None
    raise ImportFormatError("the file has no header line" + (f" after {offset} preamble lines" if offset else ""))


def _csv_rows(reader: Any, offset: int, columns: _Columns, mapping: CsvMapping,
              currency: str) -> Iterator[ImportedRow | RowError]:
    """Parse data records one at a time; blank lines are skipped."""
    while True:
        line = offset + reader.line_num + 1
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise ImportFormatError(f"line {line}: not valid CSV ({exc})") from None
        if any(cell.strip() for cell in cells):
            yield _csv_row(line, cells, columns, mapping, currency)


def parse_csv(data: bytes, mapping: CsvMapping, currency: str) -> Iterator[ImportedRow | RowError]:
    """Stream a CSV statement as rows and per-line errors (1-based file line numbers).

    The encoding and the header are checked before this returns: ImportFormatError refuses the
    whole file; a bad data row becomes a RowError and later rows still come out.
    """
    exponent(currency)
    _check_decodes(data, mapping.encoding)
    reader, offset = _open_reader(data, mapping)
    header, header_line = _read_header(reader, offset)
    columns = _locate_columns(header, mapping, header_line)
    return _csv_rows(reader, offset, columns, mapping, currency)


# --- duplicates ---------------------------------------------------------------------------------


def _amount_text(amount: Decimal) -> str:
    """A canonical text for a signed amount ("-12.5" for -12.50, "0" for zero)."""
    return "0" if amount.is_zero() else format(amount.normalize(), "f")


def content_key(row: ImportedRow, account_id: str | UUID) -> str:
    """A sha256 of what the row says: account, date, signed amount, payee and description."""
    parts = [str(account_id), row.occurred_on.isoformat(), _amount_text(row.amount),
             normalize_text(row.payee), normalize_text(row.description)]
    return hashlib.sha256(json.dumps(parts, ensure_ascii=False).encode("utf-8")).hexdigest()


def bank_id_key(account_id: str | UUID, bank_id: str) -> str:
    """The duplicate key of a row the bank identified (FITID or an id column)."""
    return f"fitid:{account_id}:{bank_id}"


class DuplicateKeys:
    """Assigns the rows of one file their duplicate keys, counting repeats across all batches."""

    def __init__(self, account_id: str | UUID) -> None:
        """Start counting for one file imported into `account_id`."""
        self._account = str(account_id)
        self._seen: Counter[str] = Counter()

    def key(self, row: ImportedRow) -> str:
        """The bank id key, else the content key with its occurrence in this file ("<sha256>#2")."""
        if row.bank_id:
            return bank_id_key(self._account, row.bank_id)
        base = content_key(row, self._account)
        self._seen[base] += 1
        return f"{base}#{self._seen[base]}"


def occurrence_keys(rows: Iterable[ImportedRow], account_id: str | UUID) -> list[str]:
    """Duplicate keys of a whole file's rows (use DuplicateKeys to keep counting across batches)."""
    keys = DuplicateKeys(account_id)
    return [keys.key(row) for row in rows]


def near_match_window(occurred_on: date) -> tuple[date, date]:
    """The first and last dates an existing transaction may have to be a near match."""
    delta = timedelta(days=NEAR_MATCH_DAYS)
    return occurred_on - delta, occurred_on + delta


def is_near_match(
    a_date: date,
    a_amount: Decimal,
    a_payee: str,
    b_date: date,
    b_amount: Decimal,
    b_payee: str,
    similarity: Callable[[str, str], float],
) -> bool:
    """Same amount, dates at most NEAR_MATCH_DAYS apart and payees at least NEAR_MATCH_SIMILARITY alike."""
    if a_amount != b_amount or abs((a_date - b_date).days) > NEAR_MATCH_DAYS:
        return False
    return similarity(a_payee, b_payee) >= NEAR_MATCH_SIMILARITY


def batched(iterable: Iterable[T], size: int = DEFAULT_BATCH_SIZE) -> Iterator[list[T]]:
    """Consecutive lists of at most `size` items, pulled lazily from `iterable`."""
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise ValueError("batch size must be a positive whole number")
    return _batches(iter(iterable), size)


def _batches(items: Iterator[T], size: int) -> Iterator[list[T]]:
    """The generator behind batched()."""
    while chunk := list(islice(items, size)):
        yield chunk
