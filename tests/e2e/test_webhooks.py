"""Outbound webhooks with every pool and a local receiver: signed deliveries that the receiver verifies, tampering
and old timestamps refused, a failing receiver retried with backoff and then failed, every attempt in the log."""

from __future__ import annotations

import time
import uuid

import pytest

from domain.webhooks import HEADER, InvalidSignature, verify
from tests.support.client import ApiClient, log_in, new_device, register
from tests.support.stack import Stack, wait_for
from tests.support.webhook_receiver import WebhookReceiver

pytestmark = pytest.mark.e2e

HOOKS = "/api/v1/webhooks"


@pytest.fixture
def receiver(providers: tuple) -> WebhookReceiver:
    """The session's webhook receiver."""
    return providers[2]


def add_hook(client: ApiClient, receiver: WebhookReceiver, kinds: list[str] | None = None) -> tuple[dict, str]:
    """A webhook to a fresh path of the receiver, which verifies with its secret; (webhook, path)."""
    path = f"/hooks/{uuid.uuid4().hex[:10]}"
    r = client.post(HOOKS, {"url": receiver.url + path, "kinds": kinds if kinds is not None else ["security"]})
    assert r.status_code == 201, r.text
    hook = r.json()
    assert hook["secret"].startswith("whsec_")
    receiver.expect(path, hook["secret"])
    return hook, path


def sign_in_again(stack: Stack, email: str) -> None:
    """A new session from a new device: a LoginSucceeded event that makes a security notification."""
    log_in(stack.url, email, user_agent=new_device())


def log_of(client: ApiClient, hook_id: str) -> list[dict]:
    """The webhook's deliveries, newest first."""
    r = client.get(f"{HOOKS}/{hook_id}/deliveries")
    assert r.status_code == 200, r.text
    return r.json()["items"]


def finished(client: ApiClient, hook_id: str, count: int = 1) -> list[dict]:
    """The log once `count` deliveries reached a final status."""
    return wait_for(lambda: (items := log_of(client, hook_id)) and len(items) == count
                    and all(d["status"] in ("sent", "failed", "skipped") for d in items) and items,
                    timeout=25, what=f"{count} finished deliveries")


def test_a_delivery_is_signed_and_the_receiver_verifies_it(stack: Stack, receiver: WebhookReceiver) -> None:
    """Given a webhook for security events, a new sign-in is delivered once, signed over "timestamp.body"; the same
    body tampered with, or presented after the tolerance, fails verification."""
    client, me = register(stack.url)
    hook, path = add_hook(client, receiver)
    listed = client.get(HOOKS).json()["items"]
    assert [h["id"] for h in listed] == [hook["id"]] and "secret" not in listed[0]
    sign_in_again(stack, me["email"])
    [delivery] = finished(client, hook["id"])
    assert delivery["status"] == "sent" and delivery["event_type"] == "LoginSucceeded"
    assert [(a["attempt"], a["outcome"], a["status_code"]) for a in delivery["attempts"]] == [(1, "sent", 200)]

    [received] = receiver.deliveries(path)
    document = received.data["document"]
    assert document["id"] == delivery["id"] == received.headers["X-Finance-Delivery"]
    assert document["type"] == "LoginSucceeded" and document["kind"] == "security"
    assert document["household_id"] == me["household_id"]
    header, body, now = received.headers[HEADER], received.body, int(time.time())
    assert verify(hook["secret"], header, body, now)
    with pytest.raises(InvalidSignature, match="does not match"):
        verify(hook["secret"], header, body.replace(b"LoginSucceeded", b"LoginSucceedeD"), now)
    with pytest.raises(InvalidSignature, match="away from now"):
        verify(hook["secret"], header, body, now + 3600)
    with pytest.raises(InvalidSignature):
        verify("whsec_someone_else", header, body, now)


def test_a_failing_receiver_is_retried_with_backoff_then_failed_and_every_attempt_is_logged(
        stack: Stack, receiver: WebhookReceiver) -> None:
    """Given a receiver answering 500 every time, the delivery is tried WEBHOOK_MAX_ATTEMPTS (4) times with growing
    delays (200, 400, 800 ms), then failed; the log shows each attempt."""
    client, me = register(stack.url)
    hook, path = add_hook(client, receiver)
    receiver.script(path, 500, 500, 500, 500, 500, 500)
    sign_in_again(stack, me["email"])
    [delivery] = finished(client, hook["id"])
    assert delivery["status"] == "failed" and delivery["reason"].startswith("gave up after 4 attempts")
    attempts = delivery["attempts"]
    assert [(a["attempt"], a["outcome"], a["status_code"]) for a in attempts] == [
        (1, "retry", 500), (2, "retry", 500), (3, "retry", 500), (4, "failed", 500)]
    assert [a["retry_in_ms"] for a in attempts] == [200, 400, 800, None]
    starts = [a["started_at"] for a in attempts]
    assert starts == sorted(starts)
    assert len(receiver.for_key(path)) == 4 and all(r.data["verified"] for r in receiver.for_key(path))


def test_a_receiver_that_recovers_gets_the_delivery_once(stack: Stack, receiver: WebhookReceiver) -> None:
    """A 503 and then a 429 are retried; the third attempt is accepted and nothing is delivered twice."""
    client, me = register(stack.url)
    hook, path = add_hook(client, receiver)
    receiver.script(path, 503, 429)
    sign_in_again(stack, me["email"])
    [delivery] = finished(client, hook["id"])
    assert delivery["status"] == "sent"
    assert [a["status_code"] for a in delivery["attempts"]] == [503, 429, 200]
    assert len(receiver.deliveries(path)) == 3 and [r.status for r in receiver.for_key(path)] == [503, 429, 200]


def test_a_refusing_receiver_is_failed_at_once(stack: Stack, receiver: WebhookReceiver) -> None:
    """A 410 (any 4xx but 408 and 429) is not retried."""
    client, me = register(stack.url)
    hook, path = add_hook(client, receiver)
    receiver.script(path, 410)
    sign_in_again(stack, me["email"])
    [delivery] = finished(client, hook["id"])
    assert (delivery["status"], len(delivery["attempts"])) == ("failed", 1)
    time.sleep(1)
    assert len(receiver.for_key(path)) == 1


def test_only_the_chosen_kinds_are_delivered_and_a_deleted_webhook_gets_nothing(
        stack: Stack, receiver: WebhookReceiver) -> None:
    """A webhook for goals ignores sign-ins; after DELETE, nothing more reaches a deleted webhook."""
    client, me = register(stack.url)
    goals_only, goals_path = add_hook(client, receiver, ["goal_reached"])
    security, security_path = add_hook(client, receiver)
    assert client.request("DELETE", f"{HOOKS}/{security['id']}").status_code == 204
    assert client.request("DELETE", f"{HOOKS}/{security['id']}").status_code == 404
    assert [h["id"] for h in client.get(HOOKS).json()["items"]] == [goals_only["id"]]
    sign_in_again(stack, me["email"])
    wait_for(lambda: len([n for n in client.get("/api/v1/notifications").json()["items"]
                          if n["kind"] == "security"]) == 1, timeout=20, what="the sign-in in the inbox")
    time.sleep(1)
    assert receiver.for_key(goals_path) == [] and receiver.for_key(security_path) == []
    assert log_of(client, goals_only["id"]) == []


def test_bad_webhooks_are_refused_and_other_households_cannot_see_them(stack: Stack, receiver: WebhookReceiver
                                                                       ) -> None:
    """Only absolute http(s) URLs without credentials and known kinds; another household's webhook is 404."""
    client, _ = register(stack.url)
    for body, field in (({"url": "ftp://example.com/x"}, "url"), ({"url": "not a url"}, "url"),
                        ({"url": "file:///etc/passwd"}, "url"), ({"url": "http://user:pw@example.com/"}, "url"),
                        ({"url": "https://example.com/h", "kinds": ["nope"]}, "kinds"), ({}, "url")):
        r = client.post(HOOKS, body)
        assert r.status_code == 422 and field in r.json()["errors"], (body, r.text)
    assert client.get(HOOKS).json()["items"] == []
    hook, _ = add_hook(client, receiver)
    stranger, _ = register(stack.url)
    assert stranger.get(f"{HOOKS}/{hook['id']}/deliveries").status_code == 404
    assert stranger.request("DELETE", f"{HOOKS}/{hook['id']}").status_code == 404
    assert client.get(f"{HOOKS}/{hook['id']}/deliveries").status_code == 200
