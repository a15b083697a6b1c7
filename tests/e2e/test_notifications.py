"""Notifications over HTTP with every pool and the real SendGrid and Twilio SDKs talking to local fakes: the right
people get the right content once, whatever the redelivery or the provider's answer, as their preferences say."""

from __future__ import annotations

import datetime as dt
import time
import uuid
from urllib.parse import urlsplit

import pytest
from sqlalchemy import select

from config import wiring
from domain.events import Event
from models.messaging import OutboxEvent
from tests.support.client import PASSWORD, ApiClient, log_in, new_device, register
from tests.support.fake_sendgrid import FakeSendGrid
from tests.support.fake_twilio import FakeTwilio
from tests.support.stack import Stack, wait_for

pytestmark = pytest.mark.e2e

NOTES = "/api/v1/notifications"
PREFS = "/api/v1/notification-preferences"
SIGN_IN = "Sign-in from a new device"


@pytest.fixture
def sendgrid(providers: tuple) -> FakeSendGrid:
    """The session's fake SendGrid."""
    return providers[0]


@pytest.fixture
def twilio(providers: tuple) -> FakeTwilio:
    """The session's fake Twilio."""
    return providers[1]


def fresh_email() -> str:
    """An address nobody has used."""
    return f"notify-{uuid.uuid4().hex[:10]}@example.com"


def fresh_phone() -> str:
    """A phone number nobody has used (E.164)."""
    return f"+49151{uuid.uuid4().int % 10**8:08d}"


def register_only(stack: Stack, email: str, **fields: str) -> dict:
    """Register without logging in (so the only event is UserRegistered)."""
    r = ApiClient(stack.url).post("/api/v1/auth/register", {"email": email, "password": PASSWORD, "name": "Ann",
                                                            **fields})
    assert r.status_code == 201, r.text
    return r.json()


def notes(client: ApiClient, channel: str = "all", **params: str) -> list[dict]:
    """The caller's notifications on a channel."""
    r = client.get(NOTES, params={"channel": channel, **params})
    assert r.status_code == 200, r.text
    return r.json()["items"]


def settled(client: ApiClient, channel: str, kind: str, count: int = 1) -> list[dict]:
    """The caller's notifications of a kind on a channel once `count` of them reached a final status."""
    def check() -> list[dict] | None:
        found = [n for n in notes(client, channel) if n["kind"] == kind]
        return found if len(found) == count and all(n["status"] in ("sent", "failed", "skipped") for n in found) \
            else None
    return wait_for(check, timeout=20, what=f"{count} {kind} notification(s) on {channel} settled")


def outbox_events(user_id: str, type: str) -> list[dict]:
    """Every event of a type about a user, as stored in the outbox."""
    with wiring.session_factory()() as s:
        return [row.envelope for row in s.scalars(select(OutboxEvent).where(
            OutboxEvent.envelope["user_id"].astext == user_id, OutboxEvent.envelope["type"].astext == type))]


def quiet_until_marker(client: ApiClient, user_id: str, household_id: str) -> None:
    """Publish a fresh event after whatever was published before and wait until it notified: everything the pool
    took earlier from the same queue has been handled by then."""
    marker = Event("PasswordChanged", {"user_id": user_id, "marker": True}, household_id, user_id, "marker", None)
    wiring.publish(marker)
    wait_for(lambda: [n for n in notes(client, "in_app") if n["event_id"] == marker.event_id], timeout=20,
             what="the marker event notified")
    time.sleep(0.5)


def test_a_budget_alert_reaches_its_person_by_email_sms_and_inbox_in_their_locale(
        stack: Stack, sendgrid: FakeSendGrid, twilio: FakeTwilio) -> None:
    """Given a German-speaking user with a phone and a 100 EUR groceries budget, spending 85 EUR sends the 50% and
    80% alerts once each by email (amounts as "85,00 €", an unsubscribe link) and SMS, and to nobody else."""
    phone = fresh_phone()
    ann, me = register(stack.url, phone=phone)
    bob, bob_me = register(stack.url)
    assert ann.request("PATCH", "/api/v1/users/me", json={"locale": "de_DE"}).json()["locale"] == "de_DE"
    account = ann.open_account("EUR")
    ann.create_budget("Groceries", "100.00")
    assert ann.post_transaction(account["id"], "85.00", "REWE").status_code == 202

    emails = wait_for(lambda: len(sendgrid.emails(me["email"], "Budget 80% reached")) == 1
                      and sendgrid.emails(me["email"], "Budget 80% reached"), timeout=20, what="the 80% email")
    assert "85,00\xa0€" in emails[0]["text"] and "100,00\xa0€" in emails[0]["text"]
    assert "85,00\xa0€" in emails[0]["html"] and "/notification-preferences/unsubscribe?token=" in emails[0]["html"]
    assert emails[0]["headers"]["List-Unsubscribe"].startswith("<http")
    texts = wait_for(lambda: len([t for t in twilio.texts(phone) if "Budget" in t["body"]]) == 2
                     and twilio.texts(phone), timeout=20, what="two budget texts")
    assert all(t["from"] == twilio.from_number and len(t["body"]) <= 160 for t in texts)
    assert len(sendgrid.emails(me["email"], "Budget 50% reached")) == 1
    assert not [m for m in sendgrid.emails(bob_me["email"]) if m["subject"].startswith("Budget")]

    email_rows = settled(ann, "email", "budget_threshold", 2)
    assert {(n["status"], n["provider"], n["attempts"]) for n in email_rows} == {("sent", "sendgrid", 1)}
    assert {n["status"] for n in settled(ann, "sms", "budget_threshold", 2)} == {"sent"}
    assert len([n for n in notes(ann, "in_app") if n["kind"] == "budget_threshold"]) == 2

    # The unsubscribe link (public, signed) turns exactly that kind of email off.
    link = emails[0]["headers"]["List-Unsubscribe"].strip("<>")
    parts = urlsplit(link)
    r = ApiClient(stack.url).get(f"{parts.path}?{parts.query}")
    assert r.status_code == 200 and r.json() == {"kind": "budget_threshold", "channel": "email", "enabled": False}
    prefs = ann.get(PREFS).json()["preferences"]
    assert prefs["budget_threshold"]["email"] is False and prefs["budget_threshold"]["sms"] is True
    assert prefs["security"]["email"] is True
    forged = ApiClient(stack.url).get(f"{parts.path}?token=x{parts.query[6:]}")
    assert forged.status_code == 422 and "token" in forged.json()["errors"]


def test_a_500_then_a_202_sends_the_email_exactly_once(stack: Stack, sendgrid: FakeSendGrid) -> None:
    """Given SendGrid answering 500 once, the welcome email is retried and accepted once; its status says sent after
    two attempts."""
    email = fresh_email()
    sendgrid.script(email, 500)
    register_only(stack, email)
    wait_for(lambda: sendgrid.emails(email, "Welcome"), timeout=20, what="the welcome email accepted")
    requests = sendgrid.for_key(email)
    assert [r.status for r in requests] == [500, 202]
    client = log_in(stack.url, email)
    [welcome] = settled(client, "email", "welcome")
    assert (welcome["status"], welcome["attempts"], welcome["reason"]) == ("sent", 2, None)
    assert len(sendgrid.emails(email, "Welcome")) == 1


def test_a_400_is_failed_with_its_reason_and_not_retried(stack: Stack, sendgrid: FakeSendGrid) -> None:
    """Given SendGrid refusing the welcome email with 400, it is tried once and marked failed with the reason."""
    email = fresh_email()
    sendgrid.script(email, 400)
    register_only(stack, email)
    wait_for(lambda: sendgrid.for_key(email), timeout=20, what="the welcome email tried")
    client = log_in(stack.url, email)
    [welcome] = settled(client, "email", "welcome")
    assert (welcome["status"], welcome["attempts"]) == ("failed", 1)
    assert "SendGrid 400" in welcome["reason"] and "scripted 400" in welcome["reason"]
    assert notes(client, "email", status="failed")[0]["id"] == welcome["id"]
    time.sleep(1.0)  # several backoffs (200, 400 ms): a retry would have happened by now
    assert [r.data["subject"] for r in sendgrid.for_key(email)].count("Welcome") == 1


def test_a_redelivered_event_still_sends_one_email_and_one_sms(stack: Stack, sendgrid: FakeSendGrid,
                                                               twilio: FakeTwilio) -> None:
    """Given a login from a new device that sent one email and one SMS, publishing its event (and the welcome, and the
    quiet login right after registering) twice more and sending the delivery commands again sends nothing more."""
    phone = fresh_phone()
    client, me = register(stack.url, phone=phone)
    log_in(stack.url, me["email"], user_agent=new_device())
    wait_for(lambda: sendgrid.emails(me["email"], SIGN_IN) and twilio.texts(phone), timeout=20,
             what="the sign-in email and SMS")
    logins = outbox_events(me["id"], "LoginSucceeded")
    assert sorted(e["payload"]["new_device"] for e in logins) == [False, True]
    events = logins + outbox_events(me["id"], "UserRegistered")
    for _ in range(2):
        for envelope in events:
            wiring.publish(Event.from_dict(envelope))
    from actors.notifications import send_delivery

    for n in notes(client):
        send_delivery(uuid.UUID(n["id"]))
    quiet_until_marker(client, me["id"], me["household_id"])
    assert len(sendgrid.emails(me["email"], SIGN_IN)) == 1
    assert len(sendgrid.emails(me["email"], "Welcome")) == 1
    assert len([t for t in twilio.texts(phone) if "sign-in" in t["body"]]) == 1
    by_channel = sorted((n["kind"], n["channel"]) for n in notes(client) if n["event_type"] != "PasswordChanged")
    assert by_channel == [("security", "email"), ("security", "in_app"), ("security", "sms"),
                          ("welcome", "email"), ("welcome", "in_app")]


def test_only_a_sign_in_from_a_new_device_is_announced(stack: Stack, sendgrid: FakeSendGrid,
                                                        twilio: FakeTwilio) -> None:
    """Given a person who registered and logged in from one device, logging in from it again announces nothing; the
    first login from another device (User-Agent) sends one alert by email, SMS and inbox, naming the address and what
    to do; logging in from that device again announces nothing more. The audit trail holds every login."""
    phone = fresh_phone()
    client, me = register(stack.url, phone=phone)
    log_in(stack.url, me["email"])
    laptop = new_device()
    log_in(stack.url, me["email"], user_agent=laptop)
    mail = wait_for(lambda: sendgrid.emails(me["email"], SIGN_IN), timeout=20, what="the new-device email")
    log_in(stack.url, me["email"], user_agent=laptop)
    quiet_until_marker(client, me["id"], me["household_id"])

    alerts = [n for n in notes(client) if n["event_type"] == "LoginSucceeded"]
    assert sorted(n["channel"] for n in alerts) == ["email", "in_app", "sms"]
    assert len({n["event_id"] for n in alerts}) == 1 and {n["kind"] for n in alerts} == {"security"}
    assert [m["subject"] for m in sendgrid.emails(me["email"]) if "sign-in" in m["subject"].lower()] == [SIGN_IN]
    assert "127.0.0.1" in mail[0]["text"] and "log out everywhere and change your password" in mail[0]["text"]
    [text] = [t for t in twilio.texts(phone) if "sign-in" in t["body"]]
    assert "new device (127.0.0.1)" in text["body"] and "Log out everywhere" in text["body"]

    logins = wait_for(lambda: len(found := [e for e in client.get("/api/v1/audit", params={
        "type": "LoginSucceeded"}).json()["items"]]) == 4 and found, timeout=20, what="four logins audited")
    assert [e["payload"]["new_device"] for e in reversed(logins)] == [False, False, True, False]
    assert {e["origin"]["user_agent"] for e in logins[:2]} == {laptop}


def test_preferences_off_sends_nothing_on_that_channel(stack: Stack, sendgrid: FakeSendGrid,
                                                       twilio: FakeTwilio) -> None:
    """Given security email and SMS turned off, a new sign-in reaches the inbox only."""
    phone = fresh_phone()
    client, me = register(stack.url, phone=phone)
    log_in(stack.url, me["email"], user_agent=new_device())
    wait_for(lambda: sendgrid.emails(me["email"], SIGN_IN) and twilio.texts(phone), timeout=20,
             what="the first sign-in's email and SMS")
    r = client.request("PUT", PREFS, json={"preferences": {"security": {"email": False, "sms": False}}})
    assert r.status_code == 200, r.text
    assert r.json()["preferences"]["security"] == {"in_app": True, "email": False, "sms": False, "webhook": True}
    again = log_in(stack.url, me["email"], user_agent=new_device())
    wait_for(lambda: len([n for n in notes(again, "in_app") if n["kind"] == "security"]) == 2, timeout=20,
             what="the second sign-in in the inbox")
    quiet_until_marker(again, me["id"], me["household_id"])
    assert len(sendgrid.emails(me["email"], SIGN_IN)) == 1
    assert len([t for t in twilio.texts(phone) if "sign-in" in t["body"]]) == 1
    assert len([n for n in notes(again, "email") if n["kind"] == "security"]) == 1 + 0  # the first new device only


def test_bad_preferences_are_refused_naming_the_field_and_change_nothing(user: ApiClient) -> None:
    """Unknown kinds or channels, non-booleans and a missing body answer 422 and change nothing."""
    before = user.get(PREFS).json()
    for body in ({"preferences": {"nope": {"email": False}}}, {"preferences": {"security": {"pigeon": True}}},
                 {"preferences": {"security": {"email": "maybe"}}}, {}, {"preferences": []}):
        r = user.request("PUT", PREFS, json=body)
        assert r.status_code == 422 and set(r.json()["errors"]) == {"preferences"}, (body, r.text)
    assert user.get(PREFS).json() == before


def test_no_phone_number_means_no_sms(stack: Stack, sendgrid: FakeSendGrid) -> None:
    """A person without a phone gets the sign-in email and nothing on SMS."""
    client, me = register(stack.url)
    log_in(stack.url, me["email"], user_agent=new_device())
    wait_for(lambda: sendgrid.emails(me["email"], SIGN_IN), timeout=20, what="the sign-in email")
    quiet_until_marker(client, me["id"], me["household_id"])
    assert notes(client, "sms") == []


def test_a_stale_sms_is_skipped_and_says_why(stack: Stack, sendgrid: FakeSendGrid, twilio: FakeTwilio) -> None:
    """An alert older than NOTIFY_SMS_MAX_AGE_SECONDS (600 s here) is not texted; its SMS is skipped as stale, the
    email still goes out."""
    phone = fresh_phone()
    client, me = register(stack.url, phone=phone)
    log_in(stack.url, me["email"], user_agent=new_device())
    wait_for(lambda: twilio.texts(phone), timeout=20, what="the sign-in SMS")
    old = (dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)).isoformat()
    event = Event("PasswordChanged", {"user_id": me["id"]}, me["household_id"], me["id"], "stale", None,
                  occurred_at=old)
    wiring.publish(event)
    rows = wait_for(lambda: [n for n in notes(client) if n["event_id"] == event.event_id and n["channel"] == "sms"
                             and n["status"] == "skipped"], timeout=20, what="the stale SMS skipped")
    assert rows[0]["reason"].startswith("stale")
    assert len(twilio.texts(phone)) == 1
    wait_for(lambda: sendgrid.emails(me["email"], "Your password was changed"), timeout=20, what="the email")


def test_changing_the_password_is_checked_and_announced(stack: Stack, sendgrid: FakeSendGrid) -> None:
    """POST /auth/password checks the current password and the policy (422 naming the field), then tells the person
    by email; the new password logs in."""
    client, me = register(stack.url)
    new = "a much better passphrase 42"
    for body, field in (({"current_password": "wrong password!", "new_password": new}, "current_password"),
                        ({"current_password": PASSWORD, "new_password": "password123"}, "new_password"),
                        ({"current_password": PASSWORD}, "new_password")):
        r = client.post("/api/v1/auth/password", body)
        assert r.status_code == 422 and set(r.json()["errors"]) == {field}, r.text
    assert client.post("/api/v1/auth/password", {"current_password": PASSWORD, "new_password": new}).status_code == 204
    wait_for(lambda: sendgrid.emails(me["email"], "Your password was changed"), timeout=20, what="the email")
    r = ApiClient(stack.url).post("/api/v1/auth/login", {"email": me["email"], "password": new})
    assert r.status_code == 200, r.text


def test_imports_unusual_transactions_and_opted_in_transactions_notify(stack: Stack,
                                                                      sendgrid: FakeSendGrid) -> None:
    """An import's result and an unusual transaction reach the person; each transaction only after opting in."""
    client, me = register(stack.url)
    account = client.open_account("EUR")
    r = client.http.post(f"{stack.url}/api/v1/imports", data={
        "account_id": account["id"], "mapping": '{"date_column": "Date", "date_format": "%Y-%m-%d", '
                                                '"payee_column": "Payee", "amount_column": "Amount"}'},
        files={"file": ("s.csv", b"Date,Payee,Amount\n2026-10-01,Cafe,-3.50\n2026-10-02,Shop,-9.00\n", "text/csv")},
        timeout=15)
    assert r.status_code == 202, r.text
    mail = wait_for(lambda: sendgrid.emails(me["email"], "Import finished"), timeout=20, what="the import email")
    assert "2 of 2 rows imported" in mail[0]["text"]

    anomaly = Event("AnomalyDetected", {"transaction_id": str(uuid.uuid4()), "account_id": account["id"],
                                        "kind": "outlier", "reason": "Ten times what you usually spend there.",
                                        "payee": "Electronics Inc", "amount": "1999.00", "currency": "EUR",
                                        "occurred_on": "2026-10-03"}, me["household_id"], None, "anomaly", None)
    wiring.publish(anomaly)
    mail = wait_for(lambda: sendgrid.emails(me["email"], "Unusual transaction"), timeout=20, what="the alert")
    assert "€1,999.00" in mail[0]["text"] and "Electronics Inc" in mail[0]["text"]

    before = client.post_transaction(account["id"], "4.20", "Bakery")
    assert before.status_code == 202
    wait_for(lambda: client.get(f"/api/v1/transactions/{before.json()['id']}").json()["status"] == "recorded",
             timeout=20, what="the first transaction recorded")
    assert client.request("PUT", PREFS, json={"preferences": {"transaction": {"in_app": True}}}).status_code == 200
    assert client.post_transaction(account["id"], "7.30", "Florist").status_code == 202
    found = wait_for(lambda: [n for n in notes(client, "in_app") if n["kind"] == "transaction"], timeout=20,
                     what="the opted-in transaction's notification")
    quiet_until_marker(client, me["id"], me["household_id"])
    assert [n["title"] for n in notes(client, "in_app") if n["kind"] == "transaction"] == ["Transaction: €7.30"]
    assert found


def test_the_inbox_pages_by_keyset_and_marks_read(stack: Stack) -> None:
    """GET /notifications pages newest first with a cursor; PATCH marks read and unread; `unread` filters."""
    client, me = register(stack.url)
    for _ in range(4):
        wiring.publish(Event("PasswordChanged", {"user_id": me["id"]}, me["household_id"], me["id"], "page", None))
    wait_for(lambda: len(notes(client, "in_app")) == 5, timeout=20, what="five inbox notifications (welcome and 4)")
    first = client.get(NOTES, params={"limit": 2}).json()
    second = client.get(NOTES, params={"limit": 2, "cursor": first["next_cursor"]}).json()
    third = client.get(NOTES, params={"limit": 2, "cursor": second["next_cursor"]}).json()
    ids = [n["id"] for page in (first, second, third) for n in page["items"]]
    assert len(ids) == len(set(ids)) == 5 and third["next_cursor"] is None
    stamps = [n["created_at"] for page in (first, second, third) for n in page["items"]]
    assert stamps == sorted(stamps, reverse=True)
    r = client.request("PATCH", f"{NOTES}/{ids[0]}", json={"read": True})
    assert r.status_code == 200 and r.json()["read_at"]
    assert [n["id"] for n in notes(client, "in_app", unread="false")] == [ids[0]]
    assert ids[0] not in [n["id"] for n in notes(client, "in_app", unread="true")]
    assert client.request("PATCH", f"{NOTES}/{ids[0]}", json={"read": False}).json()["read_at"] is None
    other, _ = register(stack.url)
    assert other.request("PATCH", f"{NOTES}/{ids[1]}", json={"read": True}).status_code == 404
    assert client.request("PATCH", f"{NOTES}/{ids[1]}", json={"read": "yes"}).status_code == 422
    assert client.get(NOTES, params={"cursor": "garbage"}).status_code == 422
