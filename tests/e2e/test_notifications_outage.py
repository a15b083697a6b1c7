"""A provider outage loses nothing: with SendGrid and Twilio down longer than Dramatiq's whole retry budget (and, in
the slow run, for several minutes), queued notifications go out once each when they come back."""

from __future__ import annotations

import time
import uuid

import pytest

from tests.support.client import ApiClient, log_in, new_device, register
from tests.support.fake_sendgrid import FakeSendGrid
from tests.support.fake_twilio import FakeTwilio
from tests.support.stack import Stack, wait_for

pytestmark = pytest.mark.e2e

#: Attempts that outlast the test stack's whole Dramatiq budget (DRAMATIQ_MAX_RETRIES=2: three runs).
BEYOND_DRAMATIQ = 5


def outgoing(client: ApiClient) -> list[dict]:
    """The caller's email and SMS notifications."""
    items = client.get("/api/v1/notifications", params={"channel": "all"}).json()["items"]
    return [n for n in items if n["channel"] in ("email", "sms")]


def survive_outage(stack: Stack, sendgrid: FakeSendGrid, twilio: FakeTwilio, hold_seconds: float) -> None:
    """Take both providers down, register someone and sign in from a new device (welcome and sign-in emails, a
    sign-in SMS), keep them down until every message was tried BEYOND_DRAMATIQ times and `hold_seconds` passed, bring
    them up: each goes out once."""
    phone = f"+49151{uuid.uuid4().int % 10**8:08d}"
    sendgrid.go_down()
    twilio.go_down()
    try:
        client, me = register(stack.url, phone=phone)
        log_in(stack.url, me["email"], user_agent=new_device())
        started = time.monotonic()
        wait_for(lambda: len(rows := outgoing(client)) == 3 and all(
            n["status"] == "queued" and n["attempts"] >= BEYOND_DRAMATIQ for n in rows), timeout=60 + hold_seconds,
            every=0.5, what=f"three messages queued after {BEYOND_DRAMATIQ} failed attempts")
        time.sleep(max(0.0, hold_seconds - (time.monotonic() - started)))
        assert sendgrid.for_key(me["email"]) == [] and twilio.for_key(phone) == []
    finally:
        sendgrid.come_up()
        twilio.come_up()
    rows = wait_for(lambda: (rows := outgoing(client)) and all(n["status"] == "sent" for n in rows) and rows,
                    timeout=30, what="every message sent after the outage")
    assert sorted((n["channel"], n["kind"]) for n in rows) == [("email", "security"), ("email", "welcome"),
                                                               ("sms", "security")]
    assert all(n["attempts"] > BEYOND_DRAMATIQ for n in rows)
    time.sleep(1.5)
    subjects = sorted(m["subject"] for m in sendgrid.emails(me["email"]))
    assert subjects == ["Sign-in from a new device", "Welcome"]
    assert len(twilio.texts(phone)) == 1


def test_an_outage_longer_than_the_retry_budget_loses_nothing(stack: Stack, providers: tuple) -> None:
    """SendGrid and Twilio refuse connections for longer than Dramatiq would retry; then they recover."""
    survive_outage(stack, providers[0], providers[1], hold_seconds=0)


@pytest.mark.slow
def test_an_outage_of_several_minutes_loses_nothing(stack: Stack, providers: tuple,
                                                    request: pytest.FixtureRequest) -> None:
    """The same with both providers down for three minutes (make chaos, or pytest -m slow)."""
    selected = request.config.getoption("markexpr") or ""
    if "slow" not in selected or "not slow" in selected:
        pytest.skip("a three-minute outage: run with -m slow (make chaos)")
    survive_outage(stack, providers[0], providers[1], hold_seconds=180)
