"""The categorization pool: records submitted transactions and categorizes them."""

from __future__ import annotations

import uuid
from functools import cache
from typing import Any

from actors import goals as _goals  # noqa: F401 - goal and group contributions are recorded by this pool too
from actors.bus import command
from actors.pools import threads_for
from config import wiring
from config.settings import get_settings
from services import imports
from services.group_commit import GroupCommit, Item
from services.rules import ApplyRule, apply_batch
from services.transaction_changes import ChangeTransaction, change_transaction
from services.transactions import RecordTransaction, record_transactions
from services.uow import request_origin

#: The queues this pool consumes.
QUEUES = ("categorization",)


@command("categorization")
def record_transaction_command(payload: dict[str, Any]) -> None:
    """Record and categorize one transaction, in one database transaction with the others waiting. Safe to run
    twice."""
    recorder().submit(payload)


@command("categorization")
def record_transactions_command(payloads: list[dict[str, Any]]) -> None:
    """Record and categorize the transactions the API accepted together (each payload may carry its request's
    origin), with whatever else waits. Safe to run twice."""
    recorder().submit_all(payloads)


@cache
def recorder() -> GroupCommit[dict[str, Any], None]:
    """This process's group commit of recorded transactions. When it is quiet it lingers a little after a
    transaction for others: each batch's events travel as one message to every subscriber, so the pools' work
    per transaction (a message, a transaction each) shrinks as batches grow."""
    settings = get_settings()
    return GroupCommit(_record_batch, name="record-group-commit", max_batch=settings.record_batch_size,
                       linger_seconds=settings.record_linger_ms / 1000,
                       callers=threads_for("categorization", settings.worker_threads))


def _record_batch(items: list[Item[dict[str, Any]]]) -> list[None]:
    """Record a batch in one transaction."""
    commands = [RecordTransaction.from_dict({k: v for k, v in payload.items() if k != "origin"})
                for payload, _ in items]
    record_transactions(commands, wiring.uow(), _origins(items))
    return [None] * len(items)


def _origins(items: list[Item[dict[str, Any]]]) -> dict[str, dict[str, str]]:
    """Which request each command came from: carried in the payload of a command sent with others, else set by the
    Correlation middleware in the sender's context."""
    found = {}
    for payload, context in items:
        current = context.get(request_origin)
        if payload.get("origin"):
            found[payload["transaction_id"]] = payload["origin"]
        elif current and current[0] == payload.get("correlation_id"):
            found[payload["transaction_id"]] = current[1]
    return found


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
