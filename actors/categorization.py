"""The categorization pool: records submitted transactions and categorizes them."""

from __future__ import annotations

import uuid
from typing import Any

from actors import goals as _goals  # noqa: F401 - goal and group contributions are recorded by this pool too
from actors.bus import command
from config import wiring
from services import imports
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


@command("categorization")
def start_import_command(payload: dict[str, Any]) -> None:
    """Split a stored statement file into batch commands. Safe to run twice (each batch lands once)."""
    def send(batch: imports.ImportBatch) -> None:
        wiring.broker().send_command("categorization", "import_batch_command", batch.to_dict())

    imports.split(uuid.UUID(payload["import_id"]), wiring.uow(), send)


@command("categorization")
def import_batch_command(payload: dict[str, Any]) -> None:
    """Land one batch of imported rows. Safe to run twice."""
    imports.land(imports.ImportBatch.from_dict(payload), wiring.uow())


@command("categorization")
def revert_import_command(payload: dict[str, Any]) -> None:
    """Remove everything an import added. Safe to run twice."""
    imports.revert(uuid.UUID(payload["import_id"]), payload["user_id"], payload["correlation_id"], wiring.uow())
