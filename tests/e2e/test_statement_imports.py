"""Statement imports over HTTP: three CSV layouts and OFX land once, duplicates in layers, revert, bad files."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

from domain.imports import CsvMapping, ImportedRow, RowError, parse_csv
from services.import_files import parse_ofx
from tests.support.client import ApiClient
from tests.support.stack import Stack, wait_for

pytestmark = pytest.mark.e2e

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "imports"
LAYOUTS = {
    "signed.csv": ("USD", {"date_column": "Date", "date_format": "%Y-%m-%d", "payee_column": "Payee",
                           "description_column": "Description", "amount_column": "Amount",
                           "id_column": "Transaction ID"}),
    "debit_credit.csv": ("USD", {"date_column": "Posted Date", "date_format": "%m/%d/%Y", "payee_column": "Payee",
                                 "description_column": "Memo", "debit_column": "Debit", "credit_column": "Credit",
                                 "thousands_separator": ","}),
    "german.csv": ("EUR", {"date_column": "Buchungstag", "date_format": "%d.%m.%Y", "payee_column": "Empfänger",
                           "description_column": "Verwendungszweck", "amount_column": "Betrag",
                           "decimal_comma": True, "thousands_separator": ".", "delimiter": ";",
                           "encoding": "latin-1", "skip_rows": 3}),
    "statement.ofx": ("EUR", None),
}


def _expected(name: str) -> tuple[list[ImportedRow], list[RowError]]:
    currency, mapping = LAYOUTS[name]
    data = (FIXTURES / name).read_bytes()
    rows = list(parse_ofx(data)[1]) if mapping is None else list(parse_csv(data, CsvMapping.from_dict(mapping),
                                                                           currency))
    return [r for r in rows if isinstance(r, ImportedRow)], [r for r in rows if isinstance(r, RowError)]


def _upload(user: ApiClient, account_id: str, name: str, data: bytes | None = None, mapping: dict | None = None,
            content_type: str = "text/csv"):
    form = {"account_id": account_id}
    if mapping is not None:
        form["mapping"] = json.dumps(mapping)
    files = {"file": (name, data if data is not None else (FIXTURES / name).read_bytes(), content_type)}
    user.http.headers.pop("Content-Type", None)
    return user.request("POST", "/api/v1/imports", data=form, files=files)


def _finished(user: ApiClient, import_id: str) -> dict:
    return wait_for(lambda: (r := user.get(f"/api/v1/imports/{import_id}").json())["status"] == "finished" and r,
                    timeout=20, what="the import finished")


@pytest.mark.parametrize("name", sorted(LAYOUTS))
def test_a_statement_lands_once_with_bad_rows_reported_and_identical_purchases_kept(
        stack: Stack, user: ApiClient, name: str) -> None:
    """Given a bank file, every good row lands (two identical same-day purchases included), bad rows are
    reported with their line numbers, the balance moves by the exact sum; the same file again adds nothing."""
    currency, mapping = LAYOUTS[name]
    good, bad = _expected(name)
    account = user.open_account(currency, opening="0")
    first = _upload(user, account["id"], name, mapping=mapping)
    assert first.status_code == 202, first.text
    report = _finished(user, first.json()["id"])
    assert (report["imported"], report["rejected"], report["duplicates"]) == (len(good), len(bad), 0)
    assert report["rows_total"] == len(good) + len(bad)
    assert [(e["line"], e["reason"]) for e in report["errors"]] == [(e.line, e.reason) for e in bad]
    total = sum((r.amount for r in good), Decimal(0))
    assert Decimal(user.get(f"/api/v1/accounts/{account['id']}").json()["balance"]) == total
    listed = user.get("/api/v1/transactions", params={"account_id": account["id"], "limit": 200}).json()["items"]
    assert len(listed) == len(good)
    assert len([r for r in good if (r.occurred_on, r.amount, r.payee) in _repeats(good)]) >= 2

    again = _upload(user, account["id"], name, mapping=mapping)
    report = _finished(user, again.json()["id"])
    assert (report["imported"], report["duplicates"]) == (0, len(good))
    assert Decimal(user.get(f"/api/v1/accounts/{account['id']}").json()["balance"]) == total


def _repeats(rows: list[ImportedRow]) -> set:
    seen, twice = set(), set()
    for r in rows:
        key = (r.occurred_on, r.amount, r.payee)
        (twice if key in seen else seen).add(key)
    return twice


def test_a_near_match_is_imported_and_flagged_never_dropped(stack: Stack, user: ApiClient) -> None:
    """A purchase entered by hand, then the bank's row two days later with a similar payee: both are kept."""
    account = user.open_account("EUR", opening="0")
    user.post_transaction(account["id"], "42.00", "Bäckerei Müller", occurred_on="2024-02-05")
    wait_for(lambda: user.get(f"/api/v1/accounts/{account['id']}").json()["balance"] == "-42.00", timeout=10,
             what="the hand-entered purchase")
    csv = "Date,Payee,Amount\n2024-02-07,BÄCKEREI MÜLLER GMBH,-42.00\n2024-02-06,Shell Station,-42.00\n".encode()
    mapping = {"date_column": "Date", "date_format": "%Y-%m-%d", "payee_column": "Payee", "amount_column": "Amount"}
    report = _finished(user, _upload(user, account["id"], "bank.csv", csv, mapping).json()["id"])
    assert (report["imported"], report["possible_duplicates"]) == (2, 1)
    assert user.get(f"/api/v1/accounts/{account['id']}").json()["balance"] == "-126.00"


def test_reverting_an_import_removes_exactly_it_and_budgets_follow(stack: Stack, user: ApiClient) -> None:
    """Given a purchase entered by hand and an imported statement, reverting the import leaves the first."""
    account = user.open_account("EUR", opening="100.00")
    budget = user.create_budget("Groceries", "100.00")
    user.post_transaction(account["id"], "10.00", "REWE", occurred_on="2024-02-10")
    csv = b"Date,Payee,Amount\n2024-02-03,Lidl,-20.00\n2024-02-04,Aldi,-30.00\n"
    mapping = {"date_column": "Date", "date_format": "%Y-%m-%d", "payee_column": "Payee", "amount_column": "Amount"}
    imported = _finished(user, _upload(user, account["id"], "feb.csv", csv, mapping).json()["id"])
    wait_for(lambda: user.budget_status(budget["id"], "2024-02")["spent"] == "60.00", timeout=10,
             what="the import counted")
    assert user.request("DELETE", f"/api/v1/imports/{imported['id']}").status_code == 202
    wait_for(lambda: user.budget_status(budget["id"], "2024-02")["spent"] == "10.00", timeout=10,
             what="the revert counted")
    assert user.get(f"/api/v1/accounts/{account['id']}").json()["balance"] == "90.00"
    assert user.get(f"/api/v1/imports/{imported['id']}").json()["status"] == "reverted"
    # Reverted rows may be imported again.
    again = _finished(user, _upload(user, account["id"], "feb.csv", csv, mapping).json()["id"])
    assert again["imported"] == 2


def test_files_that_cannot_be_imported_are_refused_clearly(stack: Stack, user: ApiClient) -> None:
    """Not a statement -> 415; a header without the mapped columns -> 422; too big -> 413; nothing lands."""
    account = user.open_account("EUR")
    pdf = _upload(user, account["id"], "not_a_statement.pdf", content_type="application/pdf")
    assert pdf.status_code == 415 and "file" in pdf.json()["errors"]
    wrong = _upload(user, account["id"], "x.csv", b"When,Who,HowMuch\n2024-01-01,A,-1.00\n",
                    {"date_column": "Date", "date_format": "%Y-%m-%d", "payee_column": "Payee",
                     "amount_column": "Amount"})
    assert wrong.status_code == 422 and "file" in wrong.json()["errors"], wrong.text
    no_mapping = _upload(user, account["id"], "x.csv", b"Date,Payee,Amount\n2024-01-01,A,-1.00\n")
    assert no_mapping.status_code == 422 and "mapping" in no_mapping.json()["errors"]
    bad_mapping = _upload(user, account["id"], "x.csv", b"Date,Payee,Amount\n", {"date_column": "Date"})
    assert bad_mapping.status_code == 422
    huge = _upload(user, account["id"], "huge.csv", b"Date,Payee,Amount\n" + b"2024-01-01,A,-1.00\n" * 1_200_000)
    assert huge.status_code == 413
    assert user.get("/api/v1/transactions", params={"account_id": account["id"]}).json()["items"] == []
