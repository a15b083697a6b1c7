"""Learned rules: when a person re-categorizes a payee, that payee gets that category next time."""

from __future__ import annotations

import uuid

from sqlalchemy import select

from domain.rules import RuleError, learned_rule, normalize_payee
from models.ledger import Rule
from services.uow import UnitOfWork


def learn(household_id: uuid.UUID, payee: str, category: str, uow: UnitOfWork) -> None:
    """Create or update the household's learned rule for this payee (inside the caller's transaction)."""
    try:
        spec = learned_rule(payee, category)
    except RuleError:
        return  # nothing recognisable to learn from (an empty or numeric payee)
    key = normalize_payee(payee)
    for rule in uow.session.scalars(select(Rule).where(Rule.household_id == household_id, Rule.learned.is_(True))):
        if rule.conditions.get("field") == "payee" and rule.conditions.get("value") == key:
            rule.actions, rule.name = spec["actions"], spec["name"]
            return
    uow.session.add(Rule(household_id=household_id, name=spec["name"], stage=spec["stage"], order=spec["order"],
                         conditions=spec["conditions"], actions=spec["actions"], learned=True, enabled=True))
