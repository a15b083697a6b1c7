"""A household's rules are read as stored at every batch: parsed rules are reused only for the same content, so an
edited, disabled or broken rule takes effect at once."""

from __future__ import annotations

import logging
import uuid

import pytest
from sqlalchemy import update

from config import wiring
from models.identity import Household
from models.ledger import Rule
from services.categorization import household_rules
from services.uow import UnitOfWork

GYM = {"name": "Gym", "stage": "default", "order": 0, "actions": [{"set_category": "Health"}],
       "conditions": {"field": "payee", "op": "contains", "value": "fitness"}}


def _uow() -> UnitOfWork:
    return UnitOfWork(wiring.session_factory(), lambda e: None, lambda ids: None)


def _household_with(rule: dict) -> tuple[uuid.UUID, uuid.UUID]:
    household_id, rule_id = uuid.uuid4(), uuid.uuid4()
    with wiring.session_factory()() as session, session.begin():
        session.add(Household(id=household_id, name="rules", base_currency="EUR"))
        session.flush()
        session.add(Rule(id=rule_id, household_id=household_id, enabled=True, learned=False, **rule))
    return household_id, rule_id


def _change(rule_id: uuid.UUID, **values: object) -> None:
    with wiring.session_factory()() as session, session.begin():
        session.execute(update(Rule).where(Rule.id == rule_id).values(**values))


def _categories_set(household_id: uuid.UUID) -> list[str]:
    uow = _uow()
    with uow:
        rules = household_rules(household_id, uow)
    return [a.value for r in rules.ordered for a in r.actions if a.kind == "set_category"]


def test_an_edited_rule_is_read_as_edited() -> None:
    """Given a rule read once, then edited, the next read gives the edited rule."""
    household_id, rule_id = _household_with(GYM)
    assert _categories_set(household_id) == ["Health"]
    _change(rule_id, actions=[{"set_category": "Sport"}])
    assert _categories_set(household_id) == ["Sport"]


def test_a_disabled_rule_is_left_out() -> None:
    """Given a rule read once, then disabled, the next read leaves it out."""
    household_id, rule_id = _household_with(GYM)
    assert _categories_set(household_id) == ["Health"]
    _change(rule_id, enabled=False)
    assert _categories_set(household_id) == []


def test_a_rule_that_no_longer_parses_is_skipped_at_every_read(caplog: pytest.LogCaptureFixture) -> None:
    """Given a stored rule whose conditions no longer parse, every read skips it and says so."""
    household_id, rule_id = _household_with({**GYM, "conditions": {"field": "payee", "op": "sounds_like"}})
    with caplog.at_level(logging.WARNING, logger="services.categorization"):
        assert _categories_set(household_id) == []
        assert _categories_set(household_id) == []
    assert [r.getMessage() for r in caplog.records] == [f"rule {rule_id} no longer parses; skipped"] * 2
