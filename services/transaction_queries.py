"""Reading transactions: keyset pagination, newest first, with filters and text search."""

from __future__ import annotations

import base64
import datetime as dt
import json
import uuid
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import Select, and_, func, or_, select, tuple_

from models.ledger import Category, Transaction
from services.context import Caller
from services.errors import Invalid
from services.uow import UnitOfWork

#: Most rows one page may hold.
MAX_LIMIT = 200


@dataclass(frozen=True)
class Filters:
    """What a list of transactions is narrowed to."""

    account_id: uuid.UUID | None = None
    category_ids: tuple[uuid.UUID, ...] | None = None
    type: str | None = None
    status: str | None = None
    since: dt.date | None = None
    until: dt.date | None = None
    q: str | None = None
    min_amount: Decimal | None = None
    max_amount: Decimal | None = None


@dataclass(frozen=True)
class Page:
    """One page of transactions and the cursor of the next, if any."""

    items: list[tuple[Transaction, str | None]]
    next_cursor: str | None


def encode_cursor(txn: Transaction) -> str:
    """An opaque cursor after this transaction."""
    raw = json.dumps([txn.occurred_on.isoformat(), str(txn.id)]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[dt.date, uuid.UUID]:
    """The position a cursor names; Invalid(field="cursor") when it names none."""
    try:
        day, ident = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        return dt.date.fromisoformat(day), uuid.UUID(ident)
    except (ValueError, TypeError, json.JSONDecodeError):
        raise Invalid("not a cursor this API gave out", field="cursor") from None


def _narrowed(query: Select, f: Filters) -> Select:
    conditions = []
    if f.account_id:
        conditions.append(or_(Transaction.account_id == f.account_id, Transaction.counter_account_id == f.account_id))
    if f.category_ids is not None:
        conditions.append(Transaction.category_id.in_(f.category_ids))
    if f.type:
        conditions.append(Transaction.type == f.type)
    if f.status:
        conditions.append(Transaction.status == f.status)
    if f.since:
        conditions.append(Transaction.occurred_on >= f.since)
    if f.until:
        conditions.append(Transaction.occurred_on <= f.until)
    if f.q:
        pattern = "%" + f.q.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        conditions.append(func.lower(Transaction.payee + " " + Transaction.description).like(pattern))
    if f.min_amount is not None:
        conditions.append(Transaction.amount >= f.min_amount)
    if f.max_amount is not None:
        conditions.append(Transaction.amount <= f.max_amount)
    return query.where(and_(*conditions)) if conditions else query


def list_transactions(caller: Caller, f: Filters, cursor: str | None, limit: int, uow: UnitOfWork) -> Page:
    """A page of the household's transactions, newest first (by date, then id)."""
    query = (select(Transaction, Category.name).outerjoin(Category, Category.id == Transaction.category_id)
             .where(Transaction.household_id == caller.household_id, Transaction.deleted_at.is_(None)))
    query = _narrowed(query, f)
    if cursor:
        day, ident = decode_cursor(cursor)
        query = query.where(tuple_(Transaction.occurred_on, Transaction.id) < tuple_(day, ident))
    query = query.order_by(Transaction.occurred_on.desc(), Transaction.id.desc()).limit(min(limit, MAX_LIMIT) + 1)
    with uow:
        rows = [(t, name) for t, name in uow.session.execute(query)]
    more = len(rows) > limit
    rows = rows[:limit]
    return Page(rows, encode_cursor(rows[-1][0]) if more and rows else None)


def category_subtree(household_id: uuid.UUID, root: uuid.UUID, uow: UnitOfWork) -> tuple[uuid.UUID, ...]:
    """A category and every category below it (children count toward their parent)."""
    with uow:
        pairs = uow.session.execute(select(Category.id, Category.parent_id).where(
            Category.household_id == household_id)).all()
    children: dict[uuid.UUID | None, list[uuid.UUID]] = {}
    for ident, parent in pairs:
        children.setdefault(parent, []).append(ident)
    found, todo = [], [root]
    while todo:
        node = todo.pop()
        found.append(node)
        todo.extend(children.get(node, []))
    return tuple(found)
