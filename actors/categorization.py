"""The categorization pool: records submitted transactions and categorizes them."""

from __future__ import annotations

from typing import Any

from actors.bus import command
from config import wiring
from services.rules import ApplyRule, apply_batch
from services.transaction_changes import ChangeTransaction, change_transaction
from services.transactions import RecordTransaction, record_transaction

#: The queues this pool consumes.
QUEUES = ("categorization",)


@command("categorization")
def record_transaction_command(payload: dict[str, Any]) -> None:
    """Record and categorize one transaction. Safe to run twice."""
    record_transaction(RecordTransaction.from_dict(payload), wiring.uow())


@command("categorization")
def change_transaction_command(payload: dict[str, Any]) -> None:
    """Apply a change to, or the deletion of, one transaction. Safe to run twice."""
    change_transaction(ChangeTransaction.from_dict(payload), wiring.uow())


@command("categorization")
def apply_rule_command(payload: dict[str, Any]) -> None:
    """Apply one rule to a batch of history, then hand the rest to the next command. Safe to run twice."""
    following = apply_batch(ApplyRule.from_dict(payload), wiring.uow())
    if following is not None:
        wiring.broker().send_command("categorization", "apply_rule_command", following.to_dict())
