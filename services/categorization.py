"""Categorizing a transaction: the person's choice, then the household's rules, then built-in defaults."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass

from sqlalchemy import select

from domain.categorize import categorize
from domain.rules import Facts, RuleError, RuleSet, apply_rule_set, parse_rule, prepare
from models.ledger import Rule as RuleRow
from models.ledger import Transaction
from services.regex_matcher import TimedMatcher
from services.uow import UnitOfWork

log = logging.getLogger(__name__)

#: Every rule's regex gets this long per transaction; a hostile pattern is cut off, never hangs a worker.
MATCHER = TimedMatcher(timeout_seconds=0.05)


@dataclass(frozen=True)
class Decision:
    """What categorization decided for one transaction."""

    category: str
    source: str
    rule_id: uuid.UUID | None
    payee: str
    tags: tuple[str, ...]


def household_rules(household_id: uuid.UUID, uow: UnitOfWork) -> RuleSet:
    """The household's enabled rules, parsed and prepared (one that no longer parses is skipped)."""
    return households_rules({household_id}, uow)[household_id]


def households_rules(household_ids: set[uuid.UUID], uow: UnitOfWork) -> dict[uuid.UUID, RuleSet]:
    """`household_rules` of several households, in one query."""
    parsed: dict[uuid.UUID, list] = {household_id: [] for household_id in household_ids}
    for row in uow.session.scalars(select(RuleRow).where(RuleRow.household_id.in_(household_ids),
                                                         RuleRow.enabled.is_(True))):
        try:
            parsed[row.household_id].append(parse_rule(str(row.id), {
                "name": row.name, "stage": row.stage, "order": row.order, "conditions": row.conditions,
                "actions": row.actions, "learned": row.learned}, MATCHER))
        except RuleError:
            log.warning("rule %s no longer parses; skipped", row.id)
    return {household_id: prepare(rules) for household_id, rules in parsed.items()}


def facts_of(txn: Transaction) -> Facts:
    """What rules may look at."""
    return Facts(payee=txn.payee, description=txn.description, amount=txn.amount, account=str(txn.account_id),
                 currency=txn.currency, type=txn.type)


def decide(txn: Transaction, rules: RuleSet) -> Decision:
    """The category, its source, and the payee and tags the rules leave."""
    locked = frozenset(txn.locked or []) | ({"category"} if txn.requested_category else frozenset())
    outcome = apply_rule_set(rules, facts_of(txn), locked, matcher=MATCHER)
    tags = tuple(dict.fromkeys([*(txn.tags or []), *outcome.tags]))
    if txn.requested_category:
        return Decision(txn.requested_category, "user", None, outcome.payee, tags)
    if outcome.category:
        source = "learned" if outcome.category_learned else "rule"
        return Decision(outcome.category, source, uuid.UUID(outcome.category_rule_id), outcome.payee, tags)
    fallback = categorize(txn.type, outcome.payee, txn.description, None)
    return Decision(fallback.name, "default", None, outcome.payee, tags)
