"""The household's rules: create, change, delete, and apply one over history in batches."""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import select

from domain.events import Event
from domain.rules import RuleError, apply_rules, parse_rule
from models.ledger import Rule, Transaction
from services.accounts import find_category
from services.categorization import MATCHER, facts_of
from services.context import Caller
from services.errors import Invalid, NotFound
from services.uow import UnitOfWork

#: Transactions one apply command handles before it hands on to the next.
APPLY_BATCH = 500


def _validated(caller: Caller, data: dict[str, Any], uow: UnitOfWork) -> dict[str, Any]:
    """The rule as stored; Invalid naming the path of the first problem."""
    try:
        rule = parse_rule("new", {**data, "learned": False}, MATCHER)
    except RuleError as exc:
        field, _, reason = str(exc).partition(": ")
        raise Invalid(reason or str(exc), field=field or "conditions") from None
    for action in rule.actions:
        if action.kind == "set_category" and find_category(caller.household_id, action.value, uow) is None:
            raise Invalid(f"no category named {action.value!r}", field="actions")
    return data


def create(caller: Caller, data: dict[str, Any], uow: UnitOfWork) -> Rule:
    """Add a rule."""
    with uow:
        _validated(caller, data, uow)
        rule = Rule(id=uuid.uuid4(), household_id=caller.household_id, learned=False, **data)
        uow.session.add(rule)
        uow.commit()
        return rule


def _rule(caller: Caller, rule_id: uuid.UUID, uow: UnitOfWork) -> Rule:
    rule = uow.session.scalar(select(Rule).where(Rule.id == rule_id, Rule.household_id == caller.household_id))
    if rule is None:
        raise NotFound("no such rule")
    return rule


def get(caller: Caller, rule_id: uuid.UUID, uow: UnitOfWork) -> Rule:
    """One of the household's rules."""
    with uow:
        return _rule(caller, rule_id, uow)


def listed(caller: Caller, uow: UnitOfWork) -> list[Rule]:
    """The household's rules in the order they run."""
    order = {"pre": 0, "default": 1, "post": 2}
    with uow:
        rules = list(uow.session.scalars(select(Rule).where(Rule.household_id == caller.household_id)))
    return sorted(rules, key=lambda r: (order[r.stage], r.order, str(r.id)))


def change(caller: Caller, rule_id: uuid.UUID, changes: dict[str, Any], uow: UnitOfWork) -> Rule:
    """Change a rule; the whole result is validated again."""
    with uow:
        rule = _rule(caller, rule_id, uow)
        merged = {"name": rule.name, "stage": rule.stage, "order": rule.order, "conditions": rule.conditions,
                  "actions": rule.actions, "enabled": rule.enabled, **changes}
        _validated(caller, merged, uow)
        for name, value in changes.items():
            setattr(rule, name, value)
        uow.commit()
        return rule


def remove(caller: Caller, rule_id: uuid.UUID, uow: UnitOfWork) -> None:
    """Delete a rule."""
    with uow:
        uow.session.delete(_rule(caller, rule_id, uow))
        uow.commit()


@dataclass(frozen=True)
class ApplyRule:
    """The command: run one rule over the household's history, a batch at a time."""

    rule_id: str
    household_id: str
    user_id: str
    correlation_id: str
    after: str | None = None
    changed: int = 0

    def to_dict(self) -> dict[str, Any]:
        """The command as a message payload."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ApplyRule:
        """The command from a message payload."""
        return cls(**data)


def apply_batch(cmd: ApplyRule, uow: UnitOfWork) -> ApplyRule | None:
    """Apply the rule to the next batch of transactions (never to fields set by hand); the next command, or
    None when history is done (then RuleApplied tells budgets to recount). Safe to run twice."""
    with uow:
        row = uow.session.get(Rule, uuid.UUID(cmd.rule_id))
        if row is None:
            return None
        rule = parse_rule(cmd.rule_id, {"name": row.name, "stage": row.stage, "order": row.order,
                                        "conditions": row.conditions, "actions": row.actions}, MATCHER)
        query = select(Transaction).where(Transaction.household_id == uuid.UUID(cmd.household_id),
                                          Transaction.status == "recorded", Transaction.deleted_at.is_(None))
        if cmd.after:
            query = query.where(Transaction.id > uuid.UUID(cmd.after))
        batch = list(uow.session.scalars(query.order_by(Transaction.id).limit(APPLY_BATCH)
                                         .with_for_update(key_share=True)))
        changed = sum(_apply_one(rule, txn, uow) for txn in batch)
        if len(batch) < APPLY_BATCH:
            uow.emit(Event("RuleApplied", {"rule_id": cmd.rule_id, "changed": cmd.changed + changed},
                           cmd.household_id, cmd.user_id, cmd.correlation_id, None))
        uow.commit()
    if len(batch) < APPLY_BATCH:
        return None
    return ApplyRule(cmd.rule_id, cmd.household_id, cmd.user_id, cmd.correlation_id, str(batch[-1].id),
                     cmd.changed + changed)


def _apply_one(rule: Any, txn: Transaction, uow: UnitOfWork) -> bool:
    outcome = apply_rules([rule], facts_of(txn), frozenset(txn.locked or []), matcher=MATCHER)
    if not outcome.matched:
        return False
    if outcome.category and (category := find_category(txn.household_id, outcome.category, uow)):
        txn.category_id, txn.category_source, txn.category_rule_id = category.id, "rule", uuid.UUID(rule.id)
    txn.payee = outcome.payee
    txn.tags = list(dict.fromkeys([*(txn.tags or []), *outcome.tags]))
    return True

