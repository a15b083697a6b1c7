"""Transactions: the record command, recording it in the categorization pool, and reading one back."""

from __future__ import annotations

import datetime as dt
import json
import logging
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, Row, select, text

from domain.events import Event
from domain.money import format_amount
from domain.rules import RuleSet
from models.ledger import Transaction
from services.balances import signed
from services.categorization import decide, households_rules
from services.context import Caller
from services.errors import NotFound
from services.uow import UnitOfWork

log = logging.getLogger(__name__)

#: The transactions table, for Core statements.
TABLE = Transaction.__table__
#: A category: its id as text, and its name.
_Category = tuple[str, str]

#: Sends the command to its pool; raises when RabbitMQ did not confirm it.
SendCommand = Callable[[dict[str, Any]], None]
#: Transaction types.
TYPES = ("expense", "income", "transfer")


@dataclass(frozen=True)
class RecordTransaction:
    """The command: record this transaction."""

    transaction_id: str
    household_id: str
    user_id: str
    account_id: str
    type: str
    amount: str
    currency: str
    occurred_on: str
    payee: str
    description: str
    notes: str
    category: str | None
    correlation_id: str
    counter_account_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The command as a message payload."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RecordTransaction:
        """The command from a message payload."""
        return cls(**data)


def record_transaction(cmd: RecordTransaction, uow: UnitOfWork) -> None:
    """Categorize and record a submitted transaction. Safe to run twice."""
    record_transactions([cmd], uow)


def record_transactions(cmds: list[RecordTransaction], uow: UnitOfWork,
                        origins: dict[str, dict[str, str]] | None = None) -> None:
    """Categorize and record submitted transactions in one database transaction, in a constant number of
    statements whatever their number; `origins` (by transaction id) says which request each came from. Safe to
    run twice."""
    # Prebuilt statements and plain objects, no ORM: the pool runs this for every purchase, and the ORM's identity
    # map, attribute history and flush cost several times what categorizing does.
    with uow:
        connection = uow.session.connection()
        batch = _Batch.load(cmds, uow, connection)
        events = []
        for txn in batch.pending:
            account = batch.accounts.get(txn.account_id)
            if account is None or account.deleted_at is not None or account.household_id != txn.household_id:
                events.append(_reject(txn, "the account no longer exists", origins))
            else:
                events.append(_record(txn, account, batch, origins))
        batch.store(connection)
        uow.emit_many(events)
        uow.commit()


@dataclass(slots=True)
class _Txn:
    """A transaction row as recording reads and changes it, read like the model by `decide` and
    `transaction_payload`; ids as text (they only go into events and JSON). The fields are `_LOCK_TRANSACTIONS`'s
    columns, in its order."""

    id: str
    household_id: str
    user_id: str | None
    account_id: str
    counter_account_id: str | None
    type: str
    amount: Decimal
    currency: str
    occurred_on: dt.date
    description: str
    requested_category: str | None
    correlation_id: str
    # What recording writes (`_STORE`), as loaded until it changes them:
    status: str
    reject_reason: str | None
    base_currency: str
    category_id: str | None
    category_source: str | None
    category_rule_id: str | None
    payee: str
    tags: list[str]
    locked: list[str]
    base_amount: Decimal | None
    fx_status: str
    account_amount: Decimal | None
    recorded_at: dt.datetime | None


_ID_COLUMNS = {"id", "household_id", "user_id", "account_id", "counter_account_id", "category_id", "category_rule_id"}
#: Locks the batch's rows, then (`_LOCK_ACCOUNTS`) their accounts, each in id order. FOR NO KEY UPDATE: neither is
#: re-keyed, and a purchase's foreign key check (KEY SHARE on its account) must not wait for the batch to commit.
_LOCK_TRANSACTIONS = text(
    "SELECT " + ", ".join(f"CAST({f.name} AS text)" if f.name in _ID_COLUMNS else f.name for f in fields(_Txn))
    + " FROM transactions WHERE id = ANY(CAST(:ids AS uuid[])) ORDER BY id FOR NO KEY UPDATE")
_LOCK_ACCOUNTS = text(
    "SELECT CAST(id AS text) AS id, CAST(household_id AS text) AS household_id, currency, balance, deleted_at"
    " FROM accounts WHERE id = ANY(CAST(:ids AS uuid[])) ORDER BY id FOR NO KEY UPDATE")
#: The households' base currencies and categories (ids as text, and names, in name order), a row per household: as
#: objects, the 10-20 categories of each household in a batch cost more than the statement.
_HOUSEHOLDS = text(
    "SELECT CAST(h.id AS text) AS id, h.base_currency, c.ids, c.names FROM households AS h LEFT JOIN LATERAL"
    " (SELECT array_agg(CAST(id AS text) ORDER BY name) AS ids, array_agg(name ORDER BY name) AS names"
    " FROM categories WHERE household_id = h.id) AS c ON true WHERE h.id = ANY(CAST(:ids AS uuid[]))")
#: The rows of the commands the API never committed, from one JSON document: one short statement for any batch size
#: (psycopg prepares it once), where an executemany INSERT .. RETURNING is a new statement for every size.
_INSERT_MISSING = text(
    "INSERT INTO transactions (id, household_id, user_id, account_id, type, amount, currency, occurred_on, payee,"
    " description, notes, requested_category, status, base_currency, correlation_id, fx_status, counter_account_id)"
    " SELECT id, household_id, user_id, account_id, type, amount, currency, occurred_on, payee, description, notes,"
    " requested_category, 'pending', coalesce((SELECT base_currency FROM households WHERE households.id ="
    " r.household_id), currency), correlation_id, 'none', counter_account_id"
    " FROM json_to_recordset(CAST(:rows AS json)) AS r(id uuid, household_id uuid, user_id uuid, account_id uuid,"
    " type varchar, amount numeric, currency varchar, occurred_on date, payee varchar, description text,"
    " notes text, requested_category varchar, correlation_id varchar, counter_account_id uuid)"
    " ON CONFLICT (id) DO NOTHING RETURNING CAST(id AS text)")
_DELETE = text("DELETE FROM transactions WHERE id = ANY(CAST(:ids AS uuid[]))")
#: What recording changed, in one statement for any batch size: the balances that moved and every row of the batch
#: (which keeps the values it was loaded with where recording left them alone).
_STORE = text(
    "WITH moved AS (UPDATE accounts AS a SET balance = m.balance"
    " FROM json_to_recordset(CAST(:balances AS json)) AS m(id uuid, balance numeric) WHERE a.id = m.id)"
    " UPDATE transactions AS t SET status = r.status, reject_reason = r.reject_reason,"
    " base_currency = r.base_currency, category_id = r.category_id, category_source = r.category_source,"
    " category_rule_id = r.category_rule_id, payee = r.payee, tags = r.tags, locked = r.locked,"
    " base_amount = r.base_amount, fx_status = r.fx_status, account_amount = r.account_amount,"
    " recorded_at = r.recorded_at"
    " FROM json_to_recordset(CAST(:rows AS json)) AS r(id uuid, status varchar, reject_reason text,"
    " base_currency varchar, category_id uuid, category_source varchar, category_rule_id uuid, payee varchar,"
    " tags varchar[], locked varchar[], base_amount numeric, fx_status varchar, account_amount numeric,"
    " recorded_at timestamptz)"
    " WHERE t.id = r.id")


@dataclass
class _Batch:
    """What recording a batch needs, each loaded in one statement: the pending rows (locked), their accounts
    (locked) and the balances recording moves them to, the households' base currencies, categories and rules; all
    by id as text."""

    pending: list[_Txn]
    accounts: dict[str, Row]
    balances: dict[str, Decimal]
    bases: dict[str, str]
    #: Per household: its categories by id, and by lowercase name.
    categories: dict[str, tuple[dict[str, _Category], dict[str, _Category]]]
    rules: dict[str, RuleSet]

    @classmethod
    def load(cls, cmds: list[RecordTransaction], uow: UnitOfWork, connection: Connection) -> _Batch:
        """Insert what the API never committed (and drop it again), then lock and load the rest."""
        households = connection.execute(_HOUSEHOLDS, {"ids": list({c.household_id for c in cmds})}).all()
        dropped = _drop_orphans(cmds, connection)
        # Each id as PostgreSQL writes it (the canonical text), so that it finds its row.
        ids = [str(uuid.UUID(c.transaction_id)) for c in cmds if c.transaction_id not in dropped]
        found = {row[0]: _Txn(*row) for row in connection.execute(_LOCK_TRANSACTIONS, {"ids": ids}).all()}
        pending = [found[i] for i in dict.fromkeys(ids) if i in found and found[i].status == "pending"]
        account_ids = {t.account_id for t in pending} | {t.counter_account_id for t in pending if t.counter_account_id}
        accounts = {a.id: a for a in connection.execute(_LOCK_ACCOUNTS, {"ids": list(account_ids)}).all()}
        rules = households_rules({uuid.UUID(t.household_id) for t in pending}, uow)
        categories = {h.id: _categories(h.ids or [], h.names or []) for h in households}
        unread = list({t.household_id for t in pending} - categories.keys())
        if unread:  # a row whose command named another household: its categories are its own household's
            categories.update((h.id, _categories(h.ids or [], h.names or []))
                              for h in connection.execute(_HOUSEHOLDS, {"ids": unread}).all())
        return cls(pending, accounts, {a.id: a.balance for a in accounts.values()},
                   {h.id: h.base_currency for h in households}, categories,
                   {str(household_id): rule_set for household_id, rule_set in rules.items()})

    def store(self, connection: Connection) -> None:
        """Write the recorded and rejected rows, and the balances that moved."""
        if not self.pending:
            return
        moved = [{"id": i, "balance": str(b)} for i, b in sorted(self.balances.items())
                 if b != self.accounts[i].balance]
        connection.execute(_STORE, {"rows": json.dumps([_written(t) for t in self.pending]),
                                    "balances": json.dumps(moved)})


def _written(txn: _Txn) -> dict[str, Any]:
    """What `_STORE` writes of a row, as JSON-ready values (exact: amounts and times as text)."""
    return {"id": txn.id, "status": txn.status, "reject_reason": txn.reject_reason,
            "base_currency": txn.base_currency, "category_id": txn.category_id,
            "category_source": txn.category_source, "category_rule_id": txn.category_rule_id, "payee": txn.payee,
            "tags": txn.tags, "locked": txn.locked, "base_amount": _text(txn.base_amount), "fx_status": txn.fx_status,
            "account_amount": _text(txn.account_amount),
            "recorded_at": txn.recorded_at.isoformat() if txn.recorded_at else None}


def _text(value: object) -> str | None:
    return None if value is None else str(value)


def _drop_orphans(cmds: list[RecordTransaction], connection: Connection) -> set[str]:
    """Insert each command's pending row unless the API's is there; the ids that had none, whose rows are removed
    again in this transaction.

    The API inserts the pending row before it sends the command; if its commit is still in flight this insert
    waits for it, then does nothing. If it does insert, the API rolled back after sending (it answered an error,
    e.g. the publisher confirm was lost with the connection): the client was not told 2xx and retries under its
    Idempotency-Key, so recording this orphan would record the purchase twice."""
    rows = list({c.transaction_id: _pending_row(c) for c in cmds}.values())
    orphans = set(connection.execute(_INSERT_MISSING, {"rows": json.dumps(rows)}).scalars())
    if orphans:
        connection.execute(_DELETE, {"ids": list(orphans)})
        for orphan in orphans:
            log.warning("transaction %s: its request was rolled back after the command was sent; dropped", orphan)
    return orphans


def _pending_row(cmd: RecordTransaction) -> dict[str, Any]:
    """The pending row the API would have inserted (but its constants), as JSON-ready values: ids, amount and date
    as the command carries them, checked by PostgreSQL as the columns' types."""
    return {"id": cmd.transaction_id, "household_id": cmd.household_id, "user_id": cmd.user_id,
            "account_id": cmd.account_id, "type": cmd.type, "amount": cmd.amount, "currency": cmd.currency,
            "occurred_on": cmd.occurred_on, "payee": cmd.payee, "description": cmd.description, "notes": cmd.notes,
            "requested_category": cmd.category, "correlation_id": cmd.correlation_id,
            "counter_account_id": cmd.counter_account_id or None}


def _categories(ids: list[str], names: list[str]) -> tuple[dict[str, _Category], dict[str, _Category]]:
    """A household's categories by id and by lowercase name (the first in name order, for names equal but for
    case)."""
    by_id: dict[str, _Category] = {}
    by_name: dict[str, _Category] = {}
    for category in zip(ids, names, strict=True):
        by_id[category[0]] = category
        by_name.setdefault(category[1].lower(), category)
    return by_id, by_name


def _category(batch: _Batch, household_id: str, name_or_id: str) -> _Category | None:
    """A category by id or by name (case-insensitive), as `find_category` finds it."""
    by_id, by_name = batch.categories.get(household_id, ({}, {}))
    try:
        return by_id.get(str(uuid.UUID(name_or_id)))
    except ValueError:
        return by_name.get(name_or_id.strip().lower())


def _reject(txn: _Txn, reason: str, origins: dict[str, dict[str, str]] | None) -> Event:
    txn.status, txn.reject_reason = "rejected", reason
    return _event(txn, "TransactionRejected", {"transaction_id": txn.id, "reason": reason}, origins)


def _record(txn: _Txn, account: Row, batch: _Batch, origins: dict[str, dict[str, str]] | None) -> Event:
    # The base currency of the moment of recording (it may have changed since the API accepted the command).
    txn.base_currency = batch.bases.get(txn.household_id) or txn.base_currency
    decision = decide(txn, batch.rules[txn.household_id])
    category = _category(batch, txn.household_id, decision.category) or _category(
        batch, txn.household_id, "Uncategorized")
    txn.category_id, txn.category_source = category[0] if category else None, decision.source
    txn.category_rule_id = str(decision.rule_id) if decision.rule_id else None
    txn.payee, txn.tags = decision.payee, list(decision.tags)
    if decision.source == "user":
        txn.locked = sorted({*(txn.locked or []), "category"})  # chosen by hand: no rule may change it later
    if txn.currency == txn.base_currency:
        txn.base_amount, txn.fx_status = txn.amount, "none"
    else:
        txn.fx_status = "pending"
    if txn.currency == account.currency:
        txn.account_amount = txn.amount
        batch.balances[account.id] += signed(txn.type, txn.amount)
        if txn.type == "transfer" and txn.counter_account_id and txn.counter_account_id in batch.accounts:
            batch.balances[txn.counter_account_id] += txn.amount
    txn.status, txn.recorded_at = "recorded", dt.datetime.now(dt.UTC)
    return _event(txn, "TransactionRecorded", transaction_payload(txn, category[1] if category else None), origins)


def transaction_payload(txn: Transaction | _Txn, category: str | None) -> dict[str, Any]:
    """What a TransactionRecorded event says about a transaction."""
    return {
        "transaction_id": str(txn.id), "account_id": str(txn.account_id), "type": txn.type,
        "amount": format_amount(txn.amount, txn.currency), "currency": txn.currency,
        "occurred_on": txn.occurred_on.isoformat(), "payee": txn.payee, "category": category,
        "category_source": txn.category_source, "fx_status": txn.fx_status, "base_currency": txn.base_currency,
        "base_amount": format_amount(txn.base_amount, txn.base_currency) if txn.base_amount is not None else None,
        "counter_account_id": str(txn.counter_account_id) if txn.counter_account_id else None,
        "tags": list(txn.tags or []),
    }


def _event(txn: _Txn, type: str, payload: dict[str, Any], origins: dict[str, dict[str, str]] | None = None
           ) -> Event:
    return Event(type, payload, txn.household_id, txn.user_id, txn.correlation_id,
                 txn.id,  # the command is identified by the transaction id
                 origin=(origins or {}).get(txn.id))


def get_transaction(caller: Caller, transaction_id: uuid.UUID, uow: UnitOfWork) -> Transaction:
    """One of the caller's transactions; NotFound for any other id."""
    with uow:
        txn = uow.session.scalar(select(Transaction).where(
            Transaction.id == transaction_id, Transaction.household_id == caller.household_id))
        if txn is None:
            raise NotFound("no such transaction")
        return txn

