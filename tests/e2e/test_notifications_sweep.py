"""The sweep: a delivery command that was lost is sent again, and an attempt cut off between the provider's answer
and its record is resolved -- email failed as "outcome unknown" (never sent twice), a webhook sent again."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest

from config import wiring
from models.notifications import Notification
from tests.support.client import register
from tests.support.stack import Stack, wait_for

pytestmark = pytest.mark.e2e


def insert(**fields: object) -> uuid.UUID:
    """A notification row written straight to the database, as a crash would leave it."""
    now = dt.datetime.now(dt.UTC)
    values = {"id": uuid.uuid4(), "event_id": uuid.uuid4(), "event_type": "PasswordChanged", "kind": "security",
              "title": "Your password was changed", "body": "Sweep test.", "attempts": 0, "event_occurred_at": now,
              **fields}
    row = Notification(**values)
    with wiring.session_factory()() as s, s.begin():
        s.add(row)
    return row.id


def status_of(notification_id: uuid.UUID) -> Notification:
    """The row as stored now."""
    with wiring.session_factory()() as s:
        return s.get(Notification, notification_id)


def test_a_queued_notification_whose_command_was_lost_is_sent_by_the_sweep(stack: Stack, providers: tuple) -> None:
    """Given a queued email that no command will ever deliver, the sweep sends it, once."""
    sendgrid = providers[0]
    _, me = register(stack.url)
    lost = insert(household_id=uuid.UUID(me["household_id"]), user_id=uuid.UUID(me["id"]), channel="email",
                  status="queued", next_attempt_at=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1))
    wait_for(lambda: status_of(lost).status == "sent", timeout=30, what="the lost email sent by the sweep")
    assert [m["text"].split("\n")[0] for m in sendgrid.emails(me["email"], "Your password was changed")] == [
        "Sweep test."]


def test_an_attempt_cut_off_mid_call_is_failed_for_email_and_resent_for_webhooks(stack: Stack,
                                                                                 providers: tuple) -> None:
    """Rows left `sending` past the lease: the email is failed with "outcome unknown" and not sent; the webhook is
    queued again and delivered (the receiver deduplicates by X-Finance-Delivery)."""
    sendgrid, receiver = providers[0], providers[2]
    client, me = register(stack.url)
    path = f"/hooks/{uuid.uuid4().hex[:10]}"
    hook = client.post("/api/v1/webhooks", {"url": receiver.url + path, "kinds": ["goal_reached"]}).json()
    receiver.expect(path, hook["secret"])
    long_ago = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    common = {"household_id": uuid.UUID(me["household_id"]), "user_id": uuid.UUID(me["id"]), "status": "sending",
              "attempts": 1, "claimed_at": long_ago, "next_attempt_at": long_ago}
    email = insert(channel="email", **common)
    webhook_id = uuid.uuid4()
    webhook = insert(channel="webhook", target=hook["id"], document={"id": str(webhook_id), "type": "GoalReached"},
                     **{**common, "id": webhook_id})
    wait_for(lambda: status_of(email).status == "failed" and status_of(webhook).status == "sent", timeout=30,
             what="both stuck rows resolved")
    assert status_of(email).reason.startswith("outcome unknown")
    assert sendgrid.emails(me["email"], "Your password was changed") == []
    [delivered] = receiver.deliveries(path)
    assert delivered.headers["X-Finance-Delivery"] == str(webhook_id)
    [logged] = client.get(f"/api/v1/webhooks/{hook['id']}/deliveries").json()["items"]
    assert [(a["attempt"], a["outcome"]) for a in logged["attempts"]] == [(1, "unknown"), (2, "sent")]
