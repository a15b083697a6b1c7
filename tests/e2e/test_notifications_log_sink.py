"""Development without SendGrid or Twilio keys: email and SMS go to the log sink (addresses masked) and the inbox;
nothing is dropped silently."""

from __future__ import annotations

import signal
import uuid

import pytest

from tests.support.client import log_in, new_device, register
from tests.support.stack import Stack, wait_for

pytestmark = pytest.mark.e2e

NO_KEYS = {"SENDGRID_API_KEY": "", "TWILIO_ACCOUNT_SID": "", "TWILIO_AUTH_TOKEN": "", "TWILIO_FROM_NUMBER": ""}


def swap_pool(stack: Stack, to: str, env: dict[str, str] | None = None) -> None:
    """Stop whichever notifications process runs and start `to` (with `env`); return once it consumes."""
    for name in [n for n in stack.procs if n.startswith("notifications")]:
        if stack.procs[name].poll() is None:
            stack.signal(name, signal.SIGKILL)  # quicker than a graceful stop; unacked messages come back
            stack.wait_exit(name, timeout=30)
    before = stack.log(to).count("pool notifications consuming")
    stack.start_pool("notifications", name=to, env=env)
    wait_for(lambda: stack.log(to).count("pool notifications consuming") > before, timeout=30,
             what=f"{to} consuming")


def test_without_provider_keys_messages_are_logged_masked_and_marked_sent(stack: Stack, providers: tuple) -> None:
    """Given a notifications pool without keys, the email and SMS about a sign-in from a new device are logged with
    the address and number masked, never sent to a provider, and their status says sent via the log."""
    phone = f"+49151{uuid.uuid4().int % 10**8:08d}"
    swap_pool(stack, "notifications-nokeys", NO_KEYS)
    try:
        client, me = register(stack.url, phone=phone)
        log_in(stack.url, me["email"], user_agent=new_device())
        rows = wait_for(lambda: len(items := [n for n in client.get(
            "/api/v1/notifications", params={"channel": "all"}).json()["items"] if n["kind"] == "security"]) == 3
            and all(n["status"] == "sent" for n in items) and items, timeout=20, what="the sign-in on every channel")
        assert sorted((n["channel"], n["provider"]) for n in rows) == [("email", "log"), ("in_app", "inbox"),
                                                                       ("sms", "log")]
        log = stack.log("notifications-nokeys")
        assert "via log sink (no email provider configured)" in log and "via log sink (no sms provider" in log
        assert me["email"] not in log and phone not in log
        assert f"{me['email'][:1]}***@example.com" in log
        assert providers[0].for_key(me["email"]) == [] and providers[1].for_key(phone) == []
    finally:
        swap_pool(stack, "notifications")
