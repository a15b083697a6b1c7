"""Imports: a statement file becomes batches of rows; each batch lands once, deduplicated and categorized."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

from sqlalchemy import and_, delete, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import aliased

from domain.events import Event
from domain.fx import convert
from domain.imports import (
    NEAR_MATCH_DAYS,
    CsvMapping,
    DuplicateKeys,
    ImportedRow,
    RowError,
    batched,
    is_near_match,
    parse_csv,
)
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
        """The command as a message payload (the rows as they are: they are already plain JSON values)."""
        return {"import_id": self.import_id, "index": self.index, "rows": self.rows}

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
    """Insert a batch's new rows as recorded, categorized transactions; count duplicates; move the balance
    once; the batch that completes the import flags its near matches. Safe to run twice (the command id and
    the dedupe keys make it land once). Batches of one import run in parallel: the shared rows (import,
    account) are only touched at the end, by atomic increments, so their locks are held for milliseconds."""
    command_id = uuid.uuid5(uuid.NAMESPACE_URL, f"import:{batch.import_id}:{batch.index}")
    with uow:
        claimed = uow.session.execute(insert(ProcessedCommand).values(command_id=command_id)
                                      .on_conflict_do_nothing().returning(ProcessedCommand.command_id)).first()
        record = uow.session.get(Import, uuid.UUID(batch.import_id))
        if claimed is None or record is None or record.status != "running":
            uow.commit()
            return
        account = uow.session.get(Account, record.account_id)
        inserted, moved = _insert_rows(record, account, batch.rows, uow)
        uow.session.execute(update(Account).where(Account.id == account.id).values(balance=Account.balance + moved))
        done, total = uow.session.execute(update(Import).where(Import.id == record.id).values(
            imported=Import.imported + inserted, duplicates=Import.duplicates + len(batch.rows) - inserted,
            batches_done=Import.batches_done + 1,
        ).returning(Import.batches_done, Import.batches_total)).one()
        if done == total:  # batches_total stays 0 until the file is read through: the splitter finishes then
            uow.session.refresh(record)
            _finish(record, uow)
        uow.commit()


#: What varies from row to row of an import, in COPY order (the rest is the same for the whole batch).
_ROW_COLUMNS = ("type", "amount", "occurred_on", "payee", "description", "category_id", "category_source",
                "category_rule_id", "tags", "dedupe_key", "base_amount", "fx_status", "fx_rate", "fx_rate_date",
                "fx_source")
#: The scratch table a batch is copied into (one per connection; emptied per batch).
_SCRATCH = ("CREATE TEMP TABLE IF NOT EXISTS import_batch_rows (type text, amount numeric, occurred_on date, "
            "payee text, description text, category_id uuid, category_source text, category_rule_id uuid, "
            "tags text[], dedupe_key text, base_amount numeric, fx_status text, fx_rate numeric, fx_rate_date date, "
            "fx_source text)")
#: New rows from the scratch table: ids, the batch's constants and the signed sum made by PostgreSQL, in one pass.
_INSERT = (
    "WITH new AS (INSERT INTO transactions (id, household_id, account_id, user_id, currency, notes, status, locked, "
    "base_currency, account_amount, correlation_id, import_id, recorded_at, " + ", ".join(_ROW_COLUMNS) + ") "
    "SELECT gen_random_uuid(), %(household)s, %(account)s, %(user)s, %(currency)s, '', 'recorded', '{}', %(base)s, "
    "amount, %(correlation)s, %(import)s, now(), " + ", ".join(_ROW_COLUMNS) + " FROM import_batch_rows "
    "ON CONFLICT (account_id, dedupe_key) DO NOTHING RETURNING amount, type) "
    "SELECT count(*), coalesce(sum(CASE WHEN type = 'income' THEN amount ELSE -amount END), 0) FROM new")


def _insert_rows(record: Import, account: Account, rows: list[dict[str, Any]], uow: UnitOfWork
                 ) -> tuple[int, Decimal]:
    """COPY the batch into a scratch table, then insert what is new in one statement (a dedupe key already
    present is a duplicate: the row is skipped, whoever inserted it); (rows inserted, their signed sum)."""
    base = _base(record, uow)
    rules = household_rules(record.household_id, uow)
    categories = {name.lower(): ident for ident, name in uow.session.execute(
        select(Category.id, Category.name).where(Category.household_id == record.household_id))}
    cursor = uow.session.connection().connection.driver_connection.cursor()
    cursor.execute(_SCRATCH)
    cursor.execute("TRUNCATE import_batch_rows")
    with cursor.copy(f"COPY import_batch_rows ({', '.join(_ROW_COLUMNS)}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(_row_values(account, base, row, rules, categories))
    cursor.execute(_INSERT, {"household": record.household_id, "account": account.id, "user": record.user_id,
                             "currency": account.currency, "base": base, "correlation": record.correlation_id,
                             "import": record.id})
    return cursor.fetchone()


def _base(record: Import, uow: UnitOfWork) -> str:
    return uow.session.scalar(select(Household.base_currency).where(Household.id == record.household_id))


def _row_values(account: Account, base: str, row: dict[str, Any], rules: RuleSet,
                categories: dict[str, uuid.UUID]) -> tuple[Any, ...]:
    """One row's values in _ROW_COLUMNS order: categorized by the household's rules, converted to the base."""
    signed = Decimal(row["amount"])
    txn = SimpleNamespace(type="income" if signed > 0 else "expense", amount=abs(signed), currency=account.currency,
                          occurred_on=dt.date.fromisoformat(row["occurred_on"]), payee=row["payee"][:200],
                          description=row["description"], tags=[], locked=[], requested_category=None,
                          account_id=account.id)
    decision = decide(txn, rules)
    fx = _converted(txn, base)
    return (txn.type, txn.amount, txn.occurred_on, decision.payee[:200], txn.description,
            categories.get(decision.category.lower()) or categories.get("uncategorized"), decision.source,
            decision.rule_id, list(decision.tags), row["key"], fx.get("base_amount"), fx.get("fx_status", "none"),
            fx.get("fx_rate"), fx.get("fx_rate_date"), fx.get("fx_source"))


def _converted(txn: SimpleNamespace, base: str) -> dict[str, Any]:
    """Imported rows in another currency than the base convert at the ECB rate of their date, or are flagged."""
    if txn.currency == base:
        return {"base_amount": txn.amount}
    rate = default_rates().rate(txn.currency, base, txn.occurred_on)
    if rate is None:
        return {"base_amount": None, "fx_status": "missing"}
    return {"base_amount": convert(txn.amount, rate.value, base), "fx_rate": rate.value, "fx_rate_date": rate.on,
            "fx_source": rate.source, "fx_status": "converted"}


def _near_match_pairs(record: Import, uow: UnitOfWork) -> list[Any]:
    """(imported row, existing row of another source) with the same amount at most NEAR_MATCH_DAYS apart, in one
    set-based query over the whole import."""
    mine, other = aliased(Transaction), aliased(Transaction)
    return uow.session.execute(
        select(mine.id, mine.occurred_on, mine.amount, mine.payee, other.id.label("other_id"),
               other.occurred_on.label("other_on"), other.payee.label("other_payee"))
        .join(other, and_(other.account_id == mine.account_id, other.amount == mine.amount))
        .where(mine.import_id == record.id, other.deleted_at.is_(None),
               or_(other.import_id.is_(None), other.import_id != record.id),
               func.abs(other.occurred_on - mine.occurred_on) <= NEAR_MATCH_DAYS)
        .order_by(mine.id, other.occurred_on, other.id)).all()


def _flag_near_matches(record: Import, uow: UnitOfWork) -> int:
    """Mark the import's rows that look like an existing transaction of another source (never dropped)."""
    flags: dict[uuid.UUID, uuid.UUID] = {}
    for p in _near_match_pairs(record, uow):
        if p.id not in flags and is_near_match(p.occurred_on, p.amount, p.payee, p.other_on, p.amount,
                                               p.other_payee, payee_similarity):
            flags[p.id] = p.other_id
    if flags:
        uow.session.execute(update(Transaction), [{"id": i, "possible_duplicate_of": d} for i, d in flags.items()])
    return len(flags)


def _finish(record: Import, uow: UnitOfWork) -> None:
    record.possible_duplicates = _flag_near_matches(record, uow)
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
        account = uow.session.get(Account, record.account_id, with_for_update={"key_share": True})
        removed = uow.session.execute(delete(Transaction).where(Transaction.import_id == import_id).returning(
            Transaction.amount, Transaction.type)).all()
        account.balance -= sum((a if t == "income" else -a for a, t in removed), Decimal(0))
        record.status = "reverted"
        uow.emit(Event("ImportReverted", {"import_id": str(import_id), "removed": len(removed)},
                       str(record.household_id), caller_user, correlation_id, None))
        uow.commit()
