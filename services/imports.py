"""Imports: a statement file becomes batches of rows; each batch lands once, deduplicated and categorized."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.dialects.postgresql import insert

from domain.events import Event
from domain.fx import convert
from domain.imports import CsvMapping, DuplicateKeys, ImportedRow, RowError, batched, is_near_match, parse_csv
from domain.money import format_amount
from domain.rules import RuleSet
from models.identity import Household
from models.ledger import Account, Category, Import, ProcessedCommand, Transaction
from services.categorization import decide, household_rules
from services.context import Caller
from services.errors import Invalid, NotFound
from services.fx_rates import default_rates
from services.import_files import parse_ofx, payee_similarity
from services.uow import UnitOfWork

#: Rows per batch message.
BATCH_ROWS = 500
#: Row errors kept on an import (the counts stay exact beyond this).
MAX_ERRORS = 1000


def rows_of(data: bytes, kind: str, mapping: dict[str, Any] | None, currency: str) -> Iterator[ImportedRow | RowError]:
    """The rows of a file, streamed; ImportFormatError for a file refused as a whole."""
    if kind == "ofx":
        file_currency, rows = parse_ofx(data, default_currency=currency)
        if file_currency and file_currency != currency:
            raise Invalid(f"the statement is in {file_currency}; the account is in {currency}", field="file")
        return rows
    if mapping is None:
        raise Invalid("a CSV import needs a column mapping (or one saved on the account)", field="mapping")
    return parse_csv(data, CsvMapping.from_dict(mapping), currency)


def accept(caller: Caller, account_id: uuid.UUID, filename: str, kind: str, data: bytes,
           mapping: dict[str, Any] | None, uow: UnitOfWork) -> Import:
    """Check the file can be read at all (header, mapping, currency), store it, and queue it."""
    with uow:
        account = uow.session.scalar(select(Account).where(
            Account.id == account_id, Account.household_id == caller.household_id, Account.deleted_at.is_(None)))
        if account is None:
            raise NotFound("no such account", field="account_id")
        mapping = mapping if mapping is not None else account.import_mapping
        next(iter(rows_of(data, kind, mapping, account.currency)), None)  # refuses a bad header or encoding now
        if kind == "csv":
            account.import_mapping = mapping  # saved for the next file of this bank
        record = Import(id=uuid.uuid4(), household_id=caller.household_id, account_id=account.id,
                        user_id=caller.user_id, filename=filename[:300], format=kind, mapping=mapping, content=data,
                        status="queued", correlation_id=caller.correlation_id, errors=[])
        uow.session.add(record)
        uow.commit()
        return record


@dataclass(frozen=True)
class ImportBatch:
    """The command: land these rows of an import."""

    import_id: str
    index: int
    rows: list[dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        """The command as a message payload."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ImportBatch:
        """The command from a message payload."""
        return cls(**data)


def _row_payload(row: ImportedRow, key: str, currency: str) -> dict[str, Any]:
    return {"line": row.line, "occurred_on": row.occurred_on.isoformat(), "amount": format_amount(row.amount, currency),
            "payee": row.payee, "description": row.description, "key": key}


def split(import_id: uuid.UUID, uow: UnitOfWork, send: Callable[[ImportBatch], None]) -> None:
    """Parse a queued import and send each batch as soon as it is parsed, so rows land while the rest of the
    file is read; then record the totals and row errors. Re-running it after a crash sends the same batches
    again, and each lands once."""
    with uow:
        record = uow.session.get(Import, import_id, with_for_update=True)
        if record is None or record.status not in ("queued", "running"):
            return
        record.status = "running"
        content, kind, mapping, account_id = record.content, record.format, record.mapping, record.account_id
        currency = uow.session.scalar(select(Account.currency).where(Account.id == record.account_id))
        uow.commit()
    keys, errors, good, sent = DuplicateKeys(account_id), [], 0, 0
    for chunk in batched(rows_of(content, kind, mapping, currency), BATCH_ROWS):
        rows = [r for r in chunk if isinstance(r, ImportedRow)]
        errors += [{"line": e.line, "reason": e.reason} for e in chunk if isinstance(e, RowError)]
        good += len(rows)
        if rows:
            send(ImportBatch(str(import_id), sent, [_row_payload(r, keys.key(r), currency) for r in rows]))
            sent += 1
    _close_split(import_id, good, errors, sent, uow)


def _close_split(import_id: uuid.UUID, good: int, errors: list[dict], batches: int, uow: UnitOfWork) -> None:
    """Record what the file held; finish the import here when every batch already landed."""
    with uow:
        record = uow.session.get(Import, import_id, with_for_update=True)
        record.rows_total, record.rejected = good + len(errors), len(errors)
        record.errors, record.batches_total = errors[:MAX_ERRORS], batches
        if record.status == "running" and record.batches_done == batches:
            _finish(record, uow)
        uow.commit()


def land(batch: ImportBatch, uow: UnitOfWork) -> None:
    """Insert a batch's new rows as recorded, categorized transactions; count duplicates; flag near matches;
    move the balance once. Safe to run twice (the command id and the dedupe keys make it land once).
    Batches of one import run in parallel: the shared rows (import, account) are only touched at the end,
    by atomic increments, so their locks are held for milliseconds."""
    command_id = uuid.uuid5(uuid.NAMESPACE_URL, f"import:{batch.import_id}:{batch.index}")
    with uow:
        claimed = uow.session.execute(insert(ProcessedCommand).values(command_id=command_id)
                                      .on_conflict_do_nothing().returning(ProcessedCommand.command_id)).first()
        record = uow.session.get(Import, uuid.UUID(batch.import_id))
        if claimed is None or record is None or record.status != "running":
            uow.commit()
            return
        account = uow.session.get(Account, record.account_id)
        inserted = _insert_rows(record, account, batch.rows, uow)
        flagged = _flag_near_matches(record, inserted, uow)
        uow.session.execute(update(Account).where(Account.id == account.id).values(
            balance=Account.balance + sum((t["amount"] for t in inserted), Decimal(0))))
        done, total = uow.session.execute(update(Import).where(Import.id == record.id).values(
            imported=Import.imported + len(inserted), duplicates=Import.duplicates + len(batch.rows) - len(inserted),
            possible_duplicates=Import.possible_duplicates + flagged, batches_done=Import.batches_done + 1,
        ).returning(Import.batches_done, Import.batches_total)).one()
        if done == total:  # batches_total stays 0 until the file is read through: the splitter finishes then
            uow.session.refresh(record)
            _finish(record, uow)
        uow.commit()


#: The columns an imported row fills, in COPY order.
_COLUMNS = ("id", "household_id", "account_id", "user_id", "type", "amount", "currency", "occurred_on", "payee",
            "description", "notes", "status", "category_id", "category_source", "category_rule_id", "tags", "locked",
            "base_currency", "account_amount", "correlation_id", "import_id", "dedupe_key", "recorded_at",
            "fx_status", "base_amount", "fx_rate", "fx_rate_date", "fx_source")


def _insert_rows(record: Import, account: Account, rows: list[dict[str, Any]], uow: UnitOfWork) -> list[dict]:
    """COPY the batch into a scratch table, then insert what is new in one statement (a dedupe key already
    present is a duplicate: the row is skipped, whoever inserted it)."""
    base = _base(record, uow)
    rules = household_rules(record.household_id, uow)
    categories = {name.lower(): ident for ident, name in uow.session.execute(
        select(Category.id, Category.name).where(Category.household_id == record.household_id))}
    values = [_transaction(record, account, base, row, rules, categories) for row in rows]
    cursor = uow.session.connection().connection.driver_connection.cursor()
    columns = ", ".join(_COLUMNS)
    cursor.execute(f"CREATE TEMP TABLE IF NOT EXISTS import_rows AS SELECT {columns} FROM transactions WITH NO DATA")
    cursor.execute("TRUNCATE import_rows")
    with cursor.copy(f"COPY import_rows ({columns}) FROM STDIN") as copy:
        for value in values:
            copy.write_row([value.get(name) for name in _COLUMNS])
    cursor.execute(f"INSERT INTO transactions ({columns}) SELECT {columns} FROM import_rows "
                   "ON CONFLICT (account_id, dedupe_key) DO NOTHING RETURNING id, amount, type, occurred_on, payee")
    return [{"id": i, "amount": a if t == "income" else -a, "occurred_on": d, "payee": p}
            for i, a, t, d, p in cursor.fetchall()]


def _base(record: Import, uow: UnitOfWork) -> str:
    return uow.session.scalar(select(Household.base_currency).where(Household.id == record.household_id))


def _transaction(record: Import, account: Account, base: str, row: dict[str, Any], rules: RuleSet,
                 categories: dict[str, uuid.UUID]) -> dict[str, Any]:
    signed = Decimal(row["amount"])
    txn = SimpleNamespace(account_id=account.id, type="income" if signed > 0 else "expense", amount=abs(signed),
                          currency=account.currency, occurred_on=dt.date.fromisoformat(row["occurred_on"]),
                          payee=row["payee"][:200], description=row["description"], tags=[], locked=[],
                          requested_category=None)
    decision = decide(txn, rules)
    values = dict(id=uuid.uuid4(), household_id=record.household_id, account_id=account.id, user_id=record.user_id,
                  type=txn.type, amount=txn.amount, currency=account.currency, occurred_on=txn.occurred_on,
                  payee=decision.payee[:200], description=txn.description, notes="", status="recorded",
                  category_id=categories.get(decision.category.lower()) or categories.get("uncategorized"),
                  category_source=decision.source, category_rule_id=decision.rule_id, tags=list(decision.tags),
                  locked=[], base_currency=base, account_amount=txn.amount, correlation_id=record.correlation_id,
                  import_id=record.id, dedupe_key=row["key"], recorded_at=dt.datetime.now(dt.UTC), fx_status="none")
    values.update(_converted(txn, base))
    return values


def _converted(txn: SimpleNamespace, base: str) -> dict[str, Any]:
    """Imported rows in another currency than the base convert at the ECB rate of their date, or are flagged."""
    if txn.currency == base:
        return {"base_amount": txn.amount}
    rate = default_rates().rate(txn.currency, base, txn.occurred_on)
    if rate is None:
        return {"base_amount": None, "fx_status": "missing"}
    return {"base_amount": convert(txn.amount, rate.value, base), "fx_rate": rate.value, "fx_rate_date": rate.on,
            "fx_source": rate.source, "fx_status": "converted"}


def _flag_near_matches(record: Import, inserted: list[dict], uow: UnitOfWork) -> int:
    """Mark new rows that look like an existing transaction of another source (never dropped)."""
    if not inserted:
        return 0
    days = [t["occurred_on"] for t in inserted]
    amounts = {abs(t["amount"]) for t in inserted}
    candidates = uow.session.execute(select(Transaction.id, Transaction.occurred_on, Transaction.amount,
                                            Transaction.payee).where(
        Transaction.account_id == record.account_id, Transaction.deleted_at.is_(None),
        Transaction.amount.in_(amounts), Transaction.occurred_on.between(min(days) - dt.timedelta(days=3),
                                                                         max(days) + dt.timedelta(days=3)),
        (Transaction.import_id.is_(None)) | (Transaction.import_id != record.id))).all()
    flagged = 0
    for t in inserted:
        match = next((c for c in candidates if is_near_match(t["occurred_on"], abs(t["amount"]), t["payee"],
                                                              c.occurred_on, c.amount, c.payee, payee_similarity)),
                     None)
        if match is not None:
            uow.session.execute(update(Transaction).where(Transaction.id == t["id"])
                                .values(possible_duplicate_of=match.id))
            flagged += 1
    return flagged


def _finish(record: Import, uow: UnitOfWork) -> None:
    record.status, record.finished_at, record.content = "finished", dt.datetime.now(dt.UTC), None
    uow.emit(Event("ImportFinished", {"import_id": str(record.id), "account_id": str(record.account_id),
                                      "rows_total": record.rows_total, "imported": record.imported,
                                      "duplicates": record.duplicates, "rejected": record.rejected,
                                      "possible_duplicates": record.possible_duplicates},
                   str(record.household_id), str(record.user_id) if record.user_id else None,
                   record.correlation_id, None))


def get(caller: Caller, import_id: uuid.UUID, uow: UnitOfWork) -> Import:
    """One of the household's imports."""
    with uow:
        record = uow.session.scalar(select(Import).where(Import.id == import_id,
                                                         Import.household_id == caller.household_id))
        if record is None:
            raise NotFound("no such import")
        return record


def revert(import_id: uuid.UUID, caller_user: str, correlation_id: str, uow: UnitOfWork) -> None:
    """Remove every transaction an import added and take back their effect on the balance. Safe to run twice."""
    with uow:
        record = uow.session.get(Import, import_id, with_for_update=True)
        if record is None or record.status == "reverted":
            return
        account = uow.session.get(Account, record.account_id, with_for_update=True)
        removed = uow.session.execute(delete(Transaction).where(Transaction.import_id == import_id).returning(
            Transaction.amount, Transaction.type)).all()
        account.balance -= sum((a if t == "income" else -a for a, t in removed), Decimal(0))
        record.status = "reverted"
        uow.emit(Event("ImportReverted", {"import_id": str(import_id), "removed": len(removed)},
                       str(record.household_id), caller_user, correlation_id, None))
        uow.commit()
