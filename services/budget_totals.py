"""Running budget totals in Redis, in integer minor units; PostgreSQL stays the truth.

Each budget period is a Redis hash: one field per counted transaction (its amount) and `__total`. A Lua
script sets a transaction's amount and moves the total by the difference, so applying the same state twice
changes nothing (redelivery, a worker killed mid-message). The script runs while the budget's row is
locked, just before the SQL commit; a hash that does not exist (Redis flushed) is left alone and rebuilt
from SQL on the next read, under the same lock. Redis unreachable fails the update (and so the SQL change
with it, retried later): a total that survived the outage must not miss what happened during it.
`reconcile` compares every total with SQL and fixes it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol

import redis
from sqlalchemy import select

from domain.money import from_minor_units, quantize, to_minor_units
from models.budgets import Budget, BudgetEntry
from services.uow import UnitOfWork

#: The field holding a period's total.
TOTAL = "__total"
_SET_ENTRY = """
if redis.call('EXISTS', KEYS[1]) == 0 then return nil end
local old = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0')
local new = tonumber(ARGV[2])
if ARGV[3] == '1' then redis.call('HDEL', KEYS[1], ARGV[1]) else redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) end
return redis.call('HINCRBY', KEYS[1], '__total', new - old)
"""
#: What EVALSHA names the script by.
_SET_ENTRY_SHA = hashlib.sha1(_SET_ENTRY.encode()).hexdigest()


class TotalsUnavailable(RuntimeError):
    """Redis did not take a running-total update; the caller's SQL transaction must not commit without it."""


def key(budget_id: uuid.UUID, start: dt.date) -> str:
    """The Redis key of one budget period."""
    return f"budget:{budget_id}:{start.isoformat()}"


class Kept(Protocol):
    """What a running total needs of its budget: an ORM `Budget`, or a row of its columns."""

    id: uuid.UUID
    currency: str


#: One running-total update: (budget, period start, transaction id, amount; None removes the transaction).
Update = tuple[Kept, dt.date, uuid.UUID, Decimal | None]


def record(client: redis.Redis, budget: Budget, start: dt.date, transaction_id: uuid.UUID,
           amount: Decimal | None) -> None:
    """Set (or with None remove) one transaction's amount in a period's running total; a missing total is
    left for the next read to rebuild. TotalsUnavailable when Redis cannot be reached."""
    record_many(client, [(budget, start, transaction_id, amount)])


def record_many(client: redis.Redis, updates: list[Update]) -> None:
    """`record` for many updates, applied in order in one round trip (a pipeline). TotalsUnavailable when Redis
    cannot be reached."""
    if not updates:
        return
    commands = [(key(budget.id, start), str(transaction_id),
                 0 if amount is None else to_minor_units(amount, budget.currency), "1" if amount is None else "0")
                for budget, start, transaction_id, amount in updates]
    try:
        try:
            _set_entries(client, commands, by_hash=True)
        except redis.exceptions.NoScriptError:
            # Redis does not hold the script (first use, or restarted): EVAL sends it, and Redis keeps it for the next.
            # Any update that did run is idempotent: running it again changes nothing.
            _set_entries(client, commands, by_hash=False)
    except redis.RedisError as error:
        # Unreachable is not emptied: the total may still be there and would miss this amount for good. Fail, so
        # the SQL change rolls back and the message is retried once Redis answers (the script is idempotent).
        budgets = ", ".join(sorted({str(budget.id) for budget, *_ in updates}))
        raise TotalsUnavailable(f"running total of budget {budgets} not updated: {error}") from error


def _set_entries(client: redis.Redis, commands: list[tuple[str, str, int, str]], by_hash: bool) -> None:
    """Run the entry script once per (key, transaction, units, removed) in one pipeline; by its hash (EVALSHA, not
    sending the script each time) or by its text."""
    pipe = client.pipeline(transaction=False)
    for command in commands:
        if by_hash:
            pipe.evalsha(_SET_ENTRY_SHA, 1, *command)
        else:
            pipe.eval(_SET_ENTRY, 1, *command)
    pipe.execute()


def _sql_entries(budget_id: uuid.UUID, start: dt.date, uow: UnitOfWork) -> dict[str, Decimal]:
    return {str(t): a for t, a in uow.session.execute(select(BudgetEntry.transaction_id, BudgetEntry.amount).where(
        BudgetEntry.budget_id == budget_id, BudgetEntry.period_start == start))}


def rebuild(client: redis.Redis, budget: Budget, start: dt.date, uow: UnitOfWork) -> Decimal:
    """Write a period's total from SQL (the caller holds the budget's row lock); returns it."""
    entries = _sql_entries(budget.id, start, uow)
    units = {t: to_minor_units(a, budget.currency) for t, a in entries.items()}
    pipe = client.pipeline(transaction=True)
    pipe.delete(key(budget.id, start))
    pipe.hset(key(budget.id, start), mapping={**units, TOTAL: sum(units.values())})
    pipe.execute()
    return sum(entries.values(), Decimal(0))


def spent(client: redis.Redis, budget_id: uuid.UUID, start: dt.date, uow: UnitOfWork) -> Decimal:
    """A period's spent total from Redis; rebuilt from SQL when Redis lost it (or cannot be reached)."""
    try:
        units = client.hget(key(budget_id, start), TOTAL)
    except redis.RedisError:
        units = None
    with uow:
        budget = uow.session.get(Budget, budget_id)
        if units is not None:
            return from_minor_units(int(units), budget.currency)
        budget = uow.session.get(Budget, budget_id, with_for_update=True)
        try:
            total = rebuild(client, budget, start, uow)
        except redis.RedisError:
            total = sum(_sql_entries(budget_id, start, uow).values(), Decimal(0))
        uow.commit()
        return total


@dataclass(frozen=True)
class Difference:
    """A period whose Redis total disagreed with SQL."""

    budget_id: uuid.UUID
    period_start: dt.date
    redis_total: Decimal | None
    sql_total: Decimal


def reconcile(client: redis.Redis, uow: UnitOfWork) -> list[Difference]:
    """Compare every budget period's running total with SQL; rebuild and report those that differ."""
    differences = []
    with uow:
        periods = uow.session.execute(select(BudgetEntry.budget_id, BudgetEntry.period_start).distinct()).all()
    for budget_id, start in periods:
        with uow:
            budget = uow.session.get(Budget, budget_id, with_for_update=True)
            raw = client.hget(key(budget_id, start), TOTAL)
            have = None if raw is None else from_minor_units(int(raw), budget.currency)
            truth = quantize(sum(_sql_entries(budget_id, start, uow).values(), Decimal(0)), budget.currency)
            if have != truth or client.hlen(key(budget_id, start)) != len(_sql_entries(budget_id, start, uow)) + 1:
                rebuild(client, budget, start, uow)
                differences.append(Difference(budget_id, start, have, truth))
            uow.commit()
    return differences
