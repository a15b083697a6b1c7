"""Statement files: telling CSV from OFX/QFX, parsing OFX with ofxtools, and payee similarity."""

from __future__ import annotations

import io
import re
import unicodedata
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from xml.sax import saxutils

from ofxtools.Parser import OFXTree
from rapidfuzz import fuzz

from domain.imports import (
    ImportedRow,
    ImportFormatError,
    RowError,
    UnsupportedFileType,
    build_row,
    check_bank_id,
    check_text,
    normalize_text,
    parse_bank_amount,
)
from domain.money import InvalidMoney, exponent, is_known_currency

#: How much of the file sniff() looks at.
_SNIFF_BYTES = 8192
#: Leading bytes of common files people upload by mistake, and what they are.
_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"%PDF-", "a PDF document"),
    (b"PK\x03\x04", "a ZIP archive (an Excel .xlsx workbook or similar)"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "an Excel .xls or other Office document"),
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"\xff\xfe", "UTF-16 text (export the file as UTF-8 or latin-1)"),
    (b"\xfe\xff", "UTF-16 text (export the file as UTF-8 or latin-1)"),
)
_CSV_DELIMITERS = (",", ";", "\t", "|")
_OFX_ENTITIES = {"&nbsp;": " ", "&apos;": "'", "&quot;": '"'}
_OFX_DATE = re.compile(r"([0-9]{4})([0-9]{2})([0-9]{2})")
_STATEMENTS = ("STMTRS", "CCSTMTRS")


def _refuse(filename: str, what: str) -> UnsupportedFileType:
    """The error for a file that is neither CSV nor OFX/QFX."""
    name = filename if len(filename) <= 80 else filename[:79] + "\u2026"
    return UnsupportedFileType(f"not a CSV or OFX/QFX file: {name!r} is {what}")


def _looks_like_ofx(text: str) -> bool:
    """Whether the start of a file has an OFX v1 header, an OFX v2 declaration or an <OFX> root."""
    upper = text.upper()
    return upper.startswith("OFXHEADER") or "<?OFX" in upper or "<OFX>" in upper


def _other_markup(text: str) -> str | None:
    """What a markup or JSON file is when it is not OFX, else None."""
    lower = text[:512].lower()
    if lower.startswith(("<!doctype html", "<html")):
        return "an HTML page"
    if lower.startswith("<"):
        return "an XML or HTML file that is not OFX"
    if lower.startswith(("{", "[")):
        return "JSON"
    return None


def _has_columns(text: str) -> bool:
    """Whether one of the first lines is split by a comma, semicolon, tab or pipe."""
    lines = [line for line in text.splitlines()[:20] if line.strip()]
    return any(delimiter in line for line in lines for delimiter in _CSV_DELIMITERS)


def sniff(data: bytes, filename: str, content_type: str | None) -> str:
    """"csv" or "ofx" from the file's content (name and content type only label the error).

    Raises UnsupportedFileType (an ImportFormatError) for empty, binary, markup or column-less files.
    """
    label = filename or content_type or "the file"
    if not data.strip():
        raise _refuse(label, "empty")
    head = data[:_SNIFF_BYTES]
    for signature, what in _SIGNATURES:
        if head.startswith(signature):
            raise _refuse(label, what)
    text = head.removeprefix(b"\xef\xbb\xbf").decode("latin-1").lstrip()
    if _looks_like_ofx(text):
        return "ofx"
    if b"\x00" in head:
        raise _refuse(label, "binary data")
    other = _other_markup(text)
    if other:
        raise _refuse(label, other)
    if not _has_columns(text):
        raise _refuse(label, "text without comma, semicolon or tab separated columns")
    return "csv"


# --- OFX / QFX ----------------------------------------------------------------------------------


def _ofx_root(data: bytes) -> ET.Element:
    """The element tree of an OFX v1 (SGML) or v2 (XML) file; raises ImportFormatError if unreadable."""
    if b"</OFX>" not in data[-_SNIFF_BYTES:].upper():
        raise ImportFormatError("the OFX file is incomplete: it does not end with </OFX> (was the download cut short?)")
    tree = OFXTree()
    try:
        root = tree.parse(io.BytesIO(data))
    except Exception as exc:  # ofxtools raises SyntaxError, ValueError, IndexError... on bad input
        detail = (str(exc).strip().splitlines() or [type(exc).__name__])[0].rstrip(" :-")
        detail = detail if len(detail) <= 120 else detail[:119] + "\u2026"
        raise ImportFormatError(f"not a readable OFX/QFX file: {detail}") from None
    if root is None or root.tag != "OFX":
        raise ImportFormatError("not a readable OFX/QFX file: there is no <OFX> element")
    return root


def _text(element: ET.Element, path: str) -> str | None:
    """The unescaped, stripped text at `path` under `element`, or None when absent or empty."""
    found = element.find(path)
    if found is None or found.text is None:
        return None
    value = saxutils.unescape(found.text, _OFX_ENTITIES).strip()
    return value or None


def _statement(root: ET.Element) -> ET.Element:
    """The one bank or credit card statement in the file; raises ImportFormatError otherwise."""
    statements = [element for element in root.iter() if element.tag in _STATEMENTS]
    if not statements:
        if root.find(".//INVSTMTRS") is not None:
            raise ImportFormatError("investment statements are not supported; export a bank or card statement")
        raise ImportFormatError("the OFX file has no bank or credit card statement")
    if len(statements) > 1:
        raise ImportFormatError(f"the OFX file holds {len(statements)} statements; export one account per file")
    return statements[0]


def _statement_currency(statement: ET.Element) -> str | None:
    """The statement's CURDEF, uppercased; raises ImportFormatError if it is not a known currency."""
    currency = _text(statement, "CURDEF")
    if currency is None:
        return None
    if not is_known_currency(currency.upper()):
        raise ImportFormatError(f"the OFX statement's currency {currency[:12]!r} is not a known currency")
    return currency.upper()


def _posted_on(text: str | None) -> date:
    """The date an OFX DTPOSTED value names, as written (its time and time zone are ignored)."""
    if text is None:
        raise ValueError("DTPOSTED is missing")
    match = _OFX_DATE.match(text)
    try:
        if match is None:
            raise ValueError
        return date(int(match[1]), int(match[2]), int(match[3]))
    except ValueError:
        raise ValueError(f"DTPOSTED {text[:40]!r} is not a valid OFX date") from None


def _ofx_amount(text: str | None, currency: str) -> Decimal:
    """The signed TRNAMT (a decimal comma is accepted, as the OFX spec allows)."""
    if text is None:
        raise ValueError("TRNAMT is missing")
    comma = "," in text and "." not in text
    try:
        return parse_bank_amount(text, currency, decimal_comma=comma)
    except InvalidMoney as exc:
        raise ValueError(f"TRNAMT {text[:40]!r}: {exc.reason}") from None


def _ofx_row(line: int, transaction: ET.Element, currency: str) -> ImportedRow | RowError:
    """One STMTTRN as an ImportedRow (NAME, else PAYEE/NAME, else MEMO as payee), or a RowError."""
    memo = _text(transaction, "MEMO") or ""
    payee = _text(transaction, "NAME") or _text(transaction, "PAYEE/NAME") or memo
    return build_row(line, (
        ("occurred_on", lambda: _posted_on(_text(transaction, "DTPOSTED"))),
        ("amount", lambda: _ofx_amount(_text(transaction, "TRNAMT"), currency)),
        ("payee", lambda: check_text("payee", payee)),
        ("description", lambda: check_text("description", memo)),
        ("bank_id", lambda: check_bank_id(_text(transaction, "FITID"))),
    ))


def _ofx_rows(transactions: list[ET.Element], currency: str) -> Iterator[ImportedRow | RowError]:
    """The statement's transactions in file order, numbered from 1."""
    for line, transaction in enumerate(transactions, start=1):
        yield _ofx_row(line, transaction, currency)


def parse_ofx(
    data: bytes, *, default_currency: str | None = None
) -> tuple[str | None, Iterator[ImportedRow | RowError]]:
    """The statement currency (None if the file names none) and its rows; `line` is the transaction's index.

    Amounts are checked against the statement currency, else `default_currency` (the account's);
    the file as a whole is refused with ImportFormatError when it is unreadable or ambiguous.
    """
    statement = _statement(_ofx_root(data))
    currency = _statement_currency(statement)
    amount_currency = currency or default_currency
    if amount_currency is None:
        raise ImportFormatError("the OFX statement names no currency (CURDEF)")
    exponent(amount_currency)
    return currency, _ofx_rows(statement.findall("BANKTRANLIST/STMTTRN"), amount_currency)


# --- near matches -------------------------------------------------------------------------------


def _fold(payee: str) -> str:
    """A payee normalized and without accents, so "Müller" and "MULLER" compare alike."""
    decomposed = unicodedata.normalize("NFKD", normalize_text(payee))
    return "".join(char for char in decomposed if not unicodedata.combining(char))


def payee_similarity(a: str, b: str) -> float:
    """How alike two payees are, 0..1 (rapidfuzz token set ratio on normalized, accent-free text)."""
    left, right = _fold(a), _fold(b)
    if left == right:
        return 1.0
    if not left or not right:
        return 0.0
    return fuzz.token_set_ratio(left, right) / 100
