"""Categorizing a transaction: the person's choice, then the household's rules, then built-in defaults."""

from __future__ import annotations

import functools
import json
import logging
import uuid
from dataclasses import dataclass

from sqlalchemy import ARRAY, Text, Uuid, any_, bindparam, cast, select

from domain.categorize import categorize
from domain.rules import Facts, Rule, RuleError, RuleSet, apply_rule_set, parse_rule, prepare
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
    # A Core statement on the session's connection (no ORM rows, no autoflush: nobody changes rules in the sessions
    # that read them), and each rule parsed once per content: the categorization pool reads every rule of every
    # household in each batch, and parsing them again was its largest cost after the statements.
    for row in uow.session.connection().execute(_ENABLED_RULES, {"households": list(household_ids)}).all():
        rule = _parsed(row.id, *row[2:])
        if isinstance(rule, RuleError):
            log.warning("rule %s no longer parses; skipped", row.id)
        else:
            parsed[row.household_id].append(rule)
    return {household_id: prepare(rules) for household_id, rules in parsed.items()}


#: The columns `_parsed` takes, after the household; the id, conditions and actions as text (jsonb's is the same for
#: the same content: key order and spacing are normalized), so that they key the cache of parsed rules cheaply.
_RULES = RuleRow.__table__
_ENABLED_RULES = select(
    cast(_RULES.c.id, Text).label("id"), _RULES.c.household_id, _RULES.c.name, _RULES.c.stage, _RULES.c.order,
    cast(_RULES.c.conditions, Text), cast(_RULES.c.actions, Text), _RULES.c.learned,
).where(_RULES.c.household_id == any_(bindparam("households", type_=ARRAY(Uuid))), _RULES.c.enabled.is_(True))

#: Parsed rules kept per process: a rule is immutable once parsed, and is looked up by its whole content.
PARSED_RULES_CACHED = 4096


@functools.lru_cache(maxsize=PARSED_RULES_CACHED)
def _parsed(rule_id: str, name: str, stage: str, order: int, conditions: str, actions: str,
            learned: bool) -> Rule | RuleError:
    """A stored rule parsed, or why it no longer parses."""
    try:
        return parse_rule(rule_id, {"name": name, "stage": stage, "order": order,
                                  "conditions": json.loads(conditions), "actions": json.loads(actions),
                                  "learned": learned}, MATCHER)
    except RuleError as error:
        return error.with_traceback(None)  # kept: without the frames of the parse


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
