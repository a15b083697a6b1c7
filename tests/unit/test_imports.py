"""Statement imports: CSV layouts, OFX/QFX, file sniffing, duplicate keys and near matches."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from domain.imports import (
    CsvMapping,
    DuplicateKeys,
    ImportedRow,
    ImportFormatError,
    RowError,
    UnsupportedFileType,
    batched,
    content_key,
    is_near_match,
    near_match_window,
    occurrence_keys,
    parse_bank_amount,
    parse_csv,
)
from domain.money import InvalidMoney
from services.import_files import parse_ofx, payee_similarity, sniff

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "imports"
ACCOUNT = "5b0e6d1c-0000-4000-8000-000000000001"

SIGNED = CsvMapping.from_dict({
    "date_column": "Date", "date_format": "%Y-%m-%d", "payee_column": "Payee",
    "description_column": "Description", "amount_column": "Amount", "id_column": "Transaction ID",
})
DEBIT_CREDIT = CsvMapping.from_dict({
    "date_column": "Posted Date", "date_format": "%m/%d/%Y", "payee_column": "Payee", "description_column": "Memo",
    "debit_column": "Debit", "credit_column": "Credit", "thousands_separator": ",",
})
GERMAN = CsvMapping.from_dict({
    "date_column": "Buchungstag", "date_format": "%d.%m.%Y", "payee_column": "Empfänger",
    "description_column": "Verwendungszweck", "amount_column": "Betrag", "decimal_comma": True,
    "thousands_separator": ".", "delimiter": ";", "encoding": "latin-1", "skip_rows": 3,
})


def fixture(name: str) -> bytes:
    """The bytes of a sample file."""
    return (FIXTURES / name).read_bytes()


def row(line: int, on: str, amount: str, payee: str, description: str, bank_id: str | None = None) -> ImportedRow:
    """An expected ImportedRow, briefly."""
    return ImportedRow(line, date.fromisoformat(on), Decimal(amount), payee, description, bank_id)


def simple_mapping(**overrides: object) -> CsvMapping:
    """A signed-amount mapping over Date, Payee, Amount columns."""
    data = {"date_column": "Date", "date_format": "%Y-%m-%d", "payee_column": "Payee", "amount_column": "Amount"}
    return CsvMapping.from_dict(data | overrides)


# --- the three CSV layouts ----------------------------------------------------------------------


def test_signed_amount_layout_parses_good_rows_and_reports_bad_lines():
    assert list(parse_csv(fixture("signed.csv"), SIGNED, "USD")) == [
        row(2, "2024-03-01", "2500.00", "ACME Corp", "March salary", "TX1001"),
        row(3, "2024-03-02", "-3.80", "Coffee Corner", "Flat white"),
        row(4, "2024-03-02", "-3.80", "Coffee Corner", "Flat white"),
        row(5, "2024-03-05", "-950.00", "Rent, Main St", "Monthly rent", "TX1004"),
        RowError(6, "date '2024-13-07' is not a valid date in the format %Y-%m-%d"),
        RowError(7, "Amount '-45.123': USD amounts have at most 2 decimal places"),
        RowError(8, "Amount is empty"),
        row(9, "2024-03-10", "-24.00", "Cinema", "Tickets, two", "TX1008"),
    ]


def test_debit_credit_layout_with_thousands_separators():
    assert list(parse_csv(fixture("debit_credit.csv"), DEBIT_CREDIT, "USD")) == [
        row(2, "2024-01-15", "3250.00", "Employer Inc", "Payroll"),
        row(3, "2024-01-16", "-45.10", "Gas Station", "Fuel"),
        row(4, "2024-01-17", "-8.75", "Corner Deli", "Sandwich"),
        row(5, "2024-01-17", "-8.75", "Corner Deli", "Sandwich"),
        row(6, "2024-01-20", "-1234.56", "Landlord LLC", "Rent"),
        RowError(7, "date '01/32/2024' is not a valid date in the format %m/%d/%Y"),
        RowError(8, "Debit and Credit both have an amount"),
        RowError(9, "Debit '99,999,999,999,999.00': amount is too large: it must be below 1000000000000 "
                    "in absolute value"),
        RowError(10, "Debit and Credit are both empty"),
        RowError(11, "Debit '12,34.00': thousands separator ',' is in an unexpected place"),
    ]


def test_german_layout_latin1_semicolons_decimal_comma_and_preamble():
    assert list(parse_csv(fixture("german.csv"), GERMAN, "EUR")) == [
        row(5, "2024-02-01", "3100.00", "Arbeitgeber GmbH", "Gehalt Februar"),
        row(6, "2024-02-02", "-12.50", "Bäckerei Müller", "Brötchen"),
        row(7, "2024-02-02", "-12.50", "Bäckerei Müller", "Brötchen"),
        row(8, "2024-02-05", "-89.00", "Straßenbahn Köln", "Monatskarte"),
        RowError(9, "date '31.02.2024' is not a valid date in the format %d.%m.%Y"),
        RowError(10, "Betrag '12,345': EUR amounts have at most 2 decimal places"),
        RowError(11, "Betrag is empty"),
        row(12, "2024-02-10", "-1299.99", "Möbelhaus", "Sofa"),
    ]


def test_several_problems_in_one_row_are_reported_together():
    data = b"Date,Payee,Amount\n2024-02-30,Shop,1.2.3\n"
    assert list(parse_csv(data, simple_mapping(), "EUR")) == [RowError(2, (
        "date '2024-02-30' is not a valid date in the format %Y-%m-%d; Amount '1.2.3': amount must be plain decimal "
        "digits with an optional sign and point, e.g. 12.30"))]


def test_line_numbers_count_multiline_quoted_values_and_blank_lines():
    data = b'Date,Payee,Amount\n2024-01-01,"Two\nline payee",-1.00\n\n2024-01-02,Shop,x\n'
    assert list(parse_csv(data, simple_mapping(), "EUR")) == [
        row(2, "2024-01-01", "-1.00", "Two\nline payee", ""),
        RowError(5, "Amount 'x': amount must be plain decimal digits with an optional sign and point, e.g. 12.30"),
    ]


def test_rows_whose_fields_do_not_fit_the_header_are_reported():
    data = b"Date,Payee,Amount\n2024-01-01,Shop,1,234.00\n2024-01-02,Shop\n2024-01-03,Shop,5.00,,\n"
    assert list(parse_csv(data, simple_mapping(), "EUR")) == [
        RowError(2, "4 fields where the header has 3; is there an unquoted ',' inside a value?"),
        RowError(3, "2 fields where the header has 3"),
        row(4, "2024-01-03", "5.00", "Shop", ""),
    ]


def test_negate_parentheses_currency_signs_and_a_bom_header():
    data = "\ufeffdate,payee,amount\n2024-01-01,Shop,(12.50)\n2024-01-02,Refund,$-3.00\n".encode()
    rows = list(parse_csv(data, simple_mapping(negate=True), "USD"))
    assert [r.amount for r in rows] == [Decimal("12.50"), Decimal("3.00")]


def test_zero_decimal_currency_refuses_cents():
    data = b"Date,Payee,Amount\n2024-01-01,Ramen,-980\n2024-01-02,Sushi,-980.5\n"
    assert list(parse_csv(data, simple_mapping(), "JPY")) == [
        row(2, "2024-01-01", "-980", "Ramen", ""),
        RowError(3, "Amount '-980.5': JPY amounts have at most 0 decimal places (whole units only)"),
    ]


# --- whole-file refusals ------------------------------------------------------------------------


def test_header_missing_a_mapped_column_refuses_the_file():
    mapping = CsvMapping.from_dict(SIGNED.to_dict() | {"amount_column": "Betrag"})
    with pytest.raises(ImportFormatError) as raised:
        parse_csv(fixture("signed.csv"), mapping, "USD")
    assert raised.value.reason == (
        "the header on line 1 has no column 'Betrag'; found 'Date', 'Payee', 'Description', 'Amount', 'Transaction ID'"
    )


def test_header_with_a_mapped_column_twice_refuses_the_file():
    with pytest.raises(ImportFormatError, match="column 'Amount' appears twice in the header on line 1"):
        parse_csv(b"Date,Payee,Amount,amount\n", simple_mapping(), "EUR")


def test_wrong_encoding_refuses_the_file_naming_the_encoding_and_line():
    mapping = CsvMapping.from_dict(GERMAN.to_dict() | {"encoding": "utf-8"})
    with pytest.raises(ImportFormatError) as raised:
        parse_csv(fixture("german.csv"), mapping, "EUR")
    assert raised.value.reason.startswith("the file is not valid utf-8 text (first bad byte on line 4)")


@pytest.mark.parametrize(("data", "reason"), [
    (b"", "the file ends after 0 lines, before the header (skip_rows is 3)"),
    (b"a\nb\n", "the file ends after 2 lines, before the header (skip_rows is 3)"),
    (b"a\nb\nc\n\n \n", "the file has no header line after 3 preamble lines"),
])
def test_files_without_a_header_are_refused(data, reason):
    with pytest.raises(ImportFormatError) as raised:
        parse_csv(data, GERMAN, "EUR")
    assert raised.value.reason == reason


def test_an_unknown_currency_is_refused_before_parsing():
    with pytest.raises(InvalidMoney):
        parse_csv(fixture("signed.csv"), SIGNED, "EURO")


# --- the mapping --------------------------------------------------------------------------------


@pytest.mark.parametrize(("change", "message"), [
    ({"date_column": None}, "date_column must be a non-empty column name"),
    ({"payee_column": " "}, "payee_column must be a non-empty column name"),
    ({"date_format": "%Y-%m"}, "date_format '%Y-%m' must contain a day, a month and a year"),
    ({"date_format": "%Q"}, "date_format '%Q' is not a valid strptime format"),
    ({"date_format": "yyyy-mm-dd"}, "date_format must be a strptime format"),
    ({"debit_column": "Debit"}, "amount_column: give either amount_column, or debit_column and credit_column"),
    ({"amount_column": None, "debit_column": "Debit"}, "debit_column and credit_column must be given together"),
    ({"amount_column": None}, "amount_column is required"),
    ({"amount_column": None, "debit_column": "X", "credit_column": "x"}, "credit_column must differ"),
    ({"decimal_comma": "yes"}, "decimal_comma must be true or false"),
    ({"decimal_comma": True, "thousands_separator": ","}, "thousands_separator must differ from the decimal"),
    ({"thousands_separator": "_"}, "thousands_separator must be one of"),
    ({"delimiter": ":"}, "delimiter must be one of"),
    ({"encoding": "utf-16"}, "encoding must be one of utf-8, utf-8-sig, latin-1, cp1252"),
    ({"skip_rows": -1}, "skip_rows must be a whole number from 0 to 100"),
    ({"skip_rows": True}, "skip_rows must be a whole number"),
    ({"negate": 1}, "negate must be true or false"),
    ({"colour": "red"}, "unknown mapping key(s): colour"),
])
def test_mapping_validation_names_the_key(change, message):
    data = SIGNED.to_dict() | change
    with pytest.raises(ValueError) as raised:
        CsvMapping.from_dict(data)
    assert str(raised.value).startswith(message)


def test_mapping_requires_its_keys_and_round_trips():
    with pytest.raises(ValueError, match="date_format is required"):
        CsvMapping.from_dict({"date_column": "Date", "payee_column": "P", "amount_column": "A"})
    with pytest.raises(ValueError, match="must be an object"):
        CsvMapping.from_dict(["Date"])  # type: ignore[arg-type]
    assert CsvMapping.from_dict(GERMAN.to_dict()) == GERMAN
    assert CsvMapping.from_dict(SIGNED.to_dict() | {"encoding": "ISO-8859-1"}).encoding == "ISO-8859-1"


@pytest.mark.parametrize(("text", "options", "expected"), [
    ("12.50", {}, "12.50"),
    ("-12.5", {}, "-12.50"),
    ("+3", {}, "3.00"),
    ("(12.50)", {}, "-12.50"),
    ("($1,234.50)", {"thousands_separator": ","}, "-1234.50"),
    ("-$7.00", {}, "-7.00"),
    ("12.50-", {}, "-12.50"),
    ("EUR 9.99", {}, "9.99"),
    ("-1.234,56 EUR", {"decimal_comma": True, "thousands_separator": "."}, "-1234.56"),
    ("1\u00a0234,56 €", {"decimal_comma": True, "thousands_separator": " "}, "1234.56"),
    ("1'234.50", {"thousands_separator": "'"}, "1234.50"),
    ("1,23,456.00", {"thousands_separator": ","}, "123456.00"),
    ("-0.00", {}, "0.00"),
])
def test_bank_amounts_are_read_as_exact_decimals(text, options, expected):
    value = parse_bank_amount(text, "EUR", **options)
    assert value == Decimal(expected) and str(value) == expected


@pytest.mark.parametrize(("text", "options", "reason"), [
    ("", {}, "amount is empty"),
    ("12.345", {}, "EUR amounts have at most 2 decimal places"),
    ("12,345", {"decimal_comma": True}, "EUR amounts have at most 2 decimal places"),
    ("1.234,56", {"decimal_comma": True}, "a point is not expected in an amount with a decimal comma"),
    ("12,50", {"thousands_separator": ","}, "thousands separator ',' is in an unexpected place"),
    ("1e3", {}, "amount must be plain decimal digits"),
    ("(-5.00)", {}, "amount has both parentheses and a sign"),
    ("--5.00", {}, "amount has more than one sign"),
    ("1000000000000", {}, "amount is too large"),
    ("1" * 70, {}, "amount is too long"),
    ("NaN", {}, "amount must be plain decimal digits"),
])
def test_bad_bank_amounts_give_a_reason(text, options, reason):
    with pytest.raises(InvalidMoney) as raised:
        parse_bank_amount(text, "EUR", **options)
    assert raised.value.reason.startswith(reason)


# --- OFX / QFX ----------------------------------------------------------------------------------

OFX_V1 = """OFXHEADER:100
DATA:OFXSGML
VERSION:102
SECURITY:NONE
ENCODING:USASCII
CHARSET:1252
COMPRESSION:NONE
OLDFILEUID:NONE
NEWFILEUID:NONE

<OFX>
<SIGNONMSGSRSV1><SONRS><STATUS><CODE>0<SEVERITY>INFO</STATUS>
<DTSERVER>20240131120000<LANGUAGE>DEU<INTU.BID>3000</SONRS></SIGNONMSGSRSV1>
<CREDITCARDMSGSRSV1><CCSTMTTRNRS><TRNUID>1<STATUS><CODE>0<SEVERITY>INFO</STATUS>
<CCSTMTRS>
<CURDEF>USD
<CCACCTFROM><ACCTID>4111111111111111</CCACCTFROM>
<BANKTRANLIST>
<DTSTART>20240101<DTEND>20240131
<STMTTRN><TRNTYPE>DEBIT<DTPOSTED>20240110<TRNAMT>-45,10<FITID>CC-1<NAME>Barnes &amp; Noble<MEMO>Café</STMTTRN>
<STMTTRN><TRNTYPE>DEBIT<DTPOSTED>20240111<TRNAMT>-1.005<FITID>CC-2<NAME>Too Precise</STMTTRN>
<STMTTRN><TRNTYPE>DEBIT<DTPOSTED>2024011<TRNAMT>-2.00<FITID>CC-3<NAME>Bad Date</STMTTRN>
<STMTTRN><TRNTYPE>CREDIT<DTPOSTED>20240115<TRNAMT>20.00<FITID>CC-4
<PAYEE><NAME>Refund Co<ADDR1>1 Main St<CITY>Town<STATE>NY<POSTALCODE>10001<PHONE>555</PAYEE></STMTTRN>
<STMTTRN><TRNTYPE>DEBIT<DTPOSTED>20240116<TRNAMT>-3.00<MEMO>CARD PURCHASE KIOSK</STMTTRN>
</BANKTRANLIST>
</CCSTMTRS></CCSTMTTRNRS></CREDITCARDMSGSRSV1>
</OFX>
""".replace("\n", "\r\n").encode("cp1252")


def test_ofx_v2_statement_parses_with_fitids_and_dates_as_written():
    currency, rows = parse_ofx(fixture("statement.ofx"))
    assert currency == "EUR"
    assert list(rows) == [
        row(1, "2024-03-01", "2500.00", "Arbeitgeber GmbH", "Gehalt März", "202403010001"),
        row(2, "2024-03-02", "-12.50", "Bäckerei Müller", "Kartenzahlung", "202403020001"),
        row(3, "2024-03-02", "-12.50", "Bäckerei Müller", "Kartenzahlung", "202403020002"),
        row(4, "2024-03-05", "-950.00", "Hausverwaltung Schmidt", "Miete März", "202403050001"),
        row(5, "2024-03-31", "-4.99", "Streaming Dienst", "", "202403310001"),
    ]


def test_ofx_v1_sgml_credit_card_statement_with_row_errors():
    currency, rows = parse_ofx(OFX_V1)
    assert currency == "USD"
    assert list(rows) == [
        row(1, "2024-01-10", "-45.10", "Barnes & Noble", "Café", "CC-1"),
        RowError(2, "TRNAMT '-1.005': USD amounts have at most 2 decimal places"),
        RowError(3, "DTPOSTED '2024011' is not a valid OFX date"),
        row(4, "2024-01-15", "20.00", "Refund Co", "", "CC-4"),
        row(5, "2024-01-16", "-3.00", "CARD PURCHASE KIOSK", "CARD PURCHASE KIOSK"),
    ]


def test_ofx_without_currency_uses_the_default_or_is_refused():
    data = OFX_V1.replace(b"<CURDEF>USD\r\n", b"")
    currency, rows = parse_ofx(data, default_currency="JPY")
    assert currency is None
    assert next(rows) == RowError(1, "TRNAMT '-45,10': JPY amounts have at most 0 decimal places (whole units only)")
    with pytest.raises(ImportFormatError, match="names no currency"):
        parse_ofx(data)


@pytest.mark.parametrize(("data", "reason"), [
    (b"OFXHEADER:100\r\nDATA:OFXSGML\r\n</OFX>", "not a readable OFX/QFX file: OFX header is malformed"),
    (b"<OFX><SIGNONMSGSRSV1></SIGNONMSGSRSV1></OFX>", "not a readable OFX/QFX file: OFX header is malformed"),
    (fixture("statement.ofx").replace("M\u00fcller".encode(), b"M\xfcller"), "not a readable OFX/QFX file: 'utf-8'"),
    (fixture("statement.ofx")[:1500], "the OFX file is incomplete: it does not end with </OFX>"),
    (OFX_V1.replace(b"<CURDEF>USD", b"<CURDEF>ABC"), "the OFX statement's currency 'ABC' is not a known currency"),
    (OFX_V1.replace(b"CCSTMTRS", b"XXSTMTRS"), "the OFX file has no bank or credit card statement"),
    (OFX_V1.replace(b"</CCSTMTRS>", b"</CCSTMTRS><CCSTMTRS><CURDEF>USD</CCSTMTRS>"), "the OFX file holds 2 statements"),
])
def test_unreadable_or_ambiguous_ofx_is_refused(data, reason):
    with pytest.raises(ImportFormatError) as raised:
        parse_ofx(data)
    assert raised.value.reason.startswith(reason)


# --- sniffing -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "kind"), [
    ("signed.csv", "csv"), ("debit_credit.csv", "csv"), ("german.csv", "csv"), ("statement.ofx", "ofx"),
])
def test_sniff_recognizes_the_samples(name, kind):
    assert sniff(fixture(name), name, "application/octet-stream") == kind


def test_sniff_recognizes_qfx_and_ignores_misleading_names():
    assert sniff(OFX_V1, "export.qfx", "application/vnd.intu.qfx") == "ofx"
    assert sniff(b"\xef\xbb\xbfDate;Payee;Amount\r\n", "export.txt", "text/plain") == "csv"


@pytest.mark.parametrize(("data", "what"), [
    (fixture("not_a_statement.pdf"), "a PDF document"),
    (b"", "empty"),
    (b" \r\n\t\n", "empty"),
    (b"PK\x03\x04\x14\x00rest", "a ZIP archive (an Excel .xlsx workbook or similar)"),
    (b"<!DOCTYPE html><html><body>Login</body></html>", "an HTML page"),
    (b'{"date": "2024-01-01"}', "JSON"),
    (b"just some words\nand more words\n", "text without comma, semicolon or tab separated columns"),
    (b"Date,Amount\x00\x00\x01", "binary data"),
])
def test_sniff_refuses_other_files_with_a_reason(data, what):
    with pytest.raises(UnsupportedFileType) as raised:
        sniff(data, "upload.bin", None)
    assert raised.value.reason == f"not a CSV or OFX/QFX file: 'upload.bin' is {what}"
    assert isinstance(raised.value, ImportFormatError)


# --- duplicate keys -----------------------------------------------------------------------------


def good_rows(data: bytes, mapping: CsvMapping, currency: str) -> list[ImportedRow]:
    """Only the rows that parsed."""
    return [r for r in parse_csv(data, mapping, currency) if isinstance(r, ImportedRow)]


@pytest.mark.parametrize(("name", "mapping", "currency"), [
    ("signed.csv", SIGNED, "USD"), ("debit_credit.csv", DEBIT_CREDIT, "USD"), ("german.csv", GERMAN, "EUR"),
])
def test_identical_purchases_get_distinct_keys_and_reimports_the_same_keys(name, mapping, currency):
    first = occurrence_keys(good_rows(fixture(name), mapping, currency), ACCOUNT)
    again = occurrence_keys(good_rows(fixture(name), mapping, currency), ACCOUNT)
    assert first == again
    assert len(set(first)) == len(first)
    repeats = [key for key in first if key.endswith("#2")]
    assert len(repeats) == 1 and repeats[0].removesuffix("#2") + "#1" in first


def test_bank_ids_give_fitid_keys_and_keys_depend_on_the_account():
    rows = good_rows(fixture("signed.csv"), SIGNED, "USD")
    keys = occurrence_keys(rows, ACCOUNT)
    assert keys[0] == f"fitid:{ACCOUNT}:TX1001"
    assert keys[1].endswith("#1") and keys[2].endswith("#2") and len(keys[1]) == 64 + 2
    assert set(keys).isdisjoint(occurrence_keys(rows, "another-account"))
    _, ofx_rows = parse_ofx(fixture("statement.ofx"))
    assert occurrence_keys(ofx_rows, ACCOUNT)[1:3] == [f"fitid:{ACCOUNT}:202403020001", f"fitid:{ACCOUNT}:202403020002"]


def test_counting_across_batches_matches_the_whole_file():
    rows = good_rows(fixture("german.csv"), GERMAN, "EUR")
    keys = DuplicateKeys(ACCOUNT)
    assert [keys.key(r) for batch in batched(rows, 2) for r in batch] == occurrence_keys(rows, ACCOUNT)


def test_content_key_normalizes_text_but_not_amounts_or_dates():
    base = row(1, "2024-02-02", "-12.50", "Bäckerei  Müller", "Brötchen")
    same = row(9, "2024-02-02", "-12.5", "BÄCKEREI MÜLLER ", "brötchen")
    assert content_key(base, ACCOUNT) == content_key(same, ACCOUNT)
    for other in (row(1, "2024-02-03", "-12.50", "Bäckerei Müller", "Brötchen"),
                  row(1, "2024-02-02", "12.50", "Bäckerei Müller", "Brötchen"),
                  row(1, "2024-02-02", "-12.50", "Bäckerei Müller", "Brezel")):
        assert content_key(other, ACCOUNT) != content_key(base, ACCOUNT)


# --- near matches -------------------------------------------------------------------------------

D = date(2024, 3, 10)
AMOUNT = Decimal("-42.00")


@pytest.mark.parametrize(("b_date", "b_amount", "b_payee", "expected"), [
    (D, AMOUNT, "Bäckerei Müller", True),
    (date(2024, 3, 13), AMOUNT, "BACKEREI MUELLER", True),
    (date(2024, 3, 7), AMOUNT, "Bäckerei Müller GmbH", True),
    (D, Decimal("-42.01"), "Bäckerei Müller", False),
    (date(2024, 3, 14), AMOUNT, "Bäckerei Müller", False),
    (date(2024, 3, 6), AMOUNT, "Bäckerei Müller", False),
    (D, AMOUNT, "Tankstelle Nord", False),
])
def test_near_match_rule(b_date, b_amount, b_payee, expected):
    assert is_near_match(D, AMOUNT, "Bäckerei Müller", b_date, b_amount, b_payee, payee_similarity) is expected


def test_payee_similarity_and_the_search_window():
    assert payee_similarity("Amazon", "AMAZON ") == 1.0
    assert payee_similarity("", "Amazon") == 0.0
    assert payee_similarity("Straße Café", "STRASSE CAFE") == 1.0
    assert 0 <= payee_similarity("Shell", "Netflix") < 0.85
    assert near_match_window(D) == (date(2024, 3, 7), date(2024, 3, 13))


# --- batching and streaming ---------------------------------------------------------------------


def test_batched_is_lazy_and_validates_the_size():
    pulled: list[int] = []

    def numbers() -> Iterator[int]:
        for n in range(7):
            pulled.append(n)
            yield n

    batches = batched(numbers(), 3)
    assert next(batches) == [0, 1, 2] and len(pulled) == 3
    assert list(batches) == [[3, 4, 5], [6]]
    with pytest.raises(ValueError):
        batched([], 0)


def big_csv(rows: int) -> bytes:
    """A generated signed-amount statement with `rows` data lines."""
    def lines() -> Iterator[bytes]:
        yield b"Date,Payee,Description,Amount,Transaction ID\n"
        for i in range(rows):
            yield (f"2024-{1 + i % 12:02d}-{1 + i % 28:02d},Payee {i % 500},Purchase {i},"
                   f"-{i % 1000}.{i % 100:02d},\n").encode()
    return b"".join(lines())


def test_a_100000_row_file_streams_quickly():
    data = big_csv(100_000)
    started = time.perf_counter()
    rows = parse_csv(data, SIGNED, "USD")
    assert not isinstance(rows, list)
    first = next(batched(rows, 500))
    assert [r.line for r in first] == list(range(2, 502))
    keys = DuplicateKeys(ACCOUNT)
    count, last_key = len(first), ""
    for batch in batched(rows, 500):
        count += len(batch)
        last_key = keys.key(batch[-1])
    elapsed = time.perf_counter() - started
    print(f"\nparsed 100,000 CSV rows in {elapsed:.2f} s")
    assert count == 100_000 and last_key.endswith("#1")
    assert elapsed < 20
