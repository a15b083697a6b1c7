"""The audit trail end to end: every published event once (also redelivered, also with the audit pool killed),
who sees which records over HTTP, request origins carried into the pools' events, and the operator's verify."""

from __future__ import annotations

import datetime as dt
import json
import signal
import threading
import time
import uuid

import pika
import pytest
import requests
from dramatiq.message import Message
from sqlalchemy import text

from actors.middleware import MESSAGES_KEY
from config import wiring
from domain.events import EXCHANGE_OF, Event
from services.outbox import relay_pending
from tests.support.cli import run_cli
from tests.support.client import PASSWORD, ApiClient, register
from tests.support.stack import Stack, wait_for

pytestmark = pytest.mark.e2e

AGENT = "audit-e2e/1.0"
#: The event types the activity below must produce (each through a different path: web, pools, follow-ups).
EXPECTED_TYPES = {"UserRegistered", "LoginSucceeded", "LoginFailed", "PersonalAccessTokenCreated", "AccountOpened",
                  "BudgetCreated", "TransactionRecorded", "CurrencyConverted", "BudgetThresholdCrossed",
                  "TransactionUpdated", "TransactionDeleted", "GoalCreated", "GoalContributed", "GroupCreated",
                  "GroupContributionAdded"}


def _ids(sql: str, households: list[str]) -> list[str]:
    with wiring.engine().connect() as conn:
        return [str(i) for i in conn.execute(text(sql), {"h": households}).scalars()]


def _outbox_ids(households: list[str]) -> list[str]:
    return _ids("SELECT event_id FROM outbox WHERE envelope->>'household_id' = ANY(:h)", households)


def _audited(households: list[str]) -> list[str]:
    return _ids("SELECT event_id FROM audit_events WHERE household_id::text = ANY(:h)", households)


def _processed() -> int:
    return int(wiring.redis_client().hget(MESSAGES_KEY, "audit.events|processed") or 0)


def _activity(stack: Stack, user: ApiClient, me: dict) -> str:
    """Security, ledger, budget, goal and group activity: events from the web and from the pools; the account id."""
    login = f"{stack.url}/api/v1/auth/login"
    assert requests.post(login, json={"email": me["email"], "password": "wrong"}, timeout=10).status_code == 401
    assert user.post("/api/v1/tokens", {"name": "ci", "scope": "read"}).status_code == 201
    account = user.open_account("EUR", opening="10000.00")
    user.create_budget("Groceries", "50.00")
    goal = user.post("/api/v1/goals", {"name": "Bike", "target": {"amount": "900.00"},
                                       "target_date": (dt.date.today() + dt.timedelta(days=400)).isoformat()}).json()
    assert user.post(f"/api/v1/goals/{goal['id']}/contributions", {"amount": "10.00"}).status_code == 202
    group = user.post("/api/v1/groups", {"name": "Trip", "target": {"amount": "500.00"}}).json()
    assert user.post(f"/api/v1/groups/{group['id']}/contributions", {"amount": "5.00"}).status_code == 202
    return account["id"]


def _purchases(user: ApiClient, account_id: str, count: int) -> list[str]:
    """Purchases (the first in USD), then one edited and one deleted once recorded; their ids."""
    ids = [user.post_transaction(account_id, f"{2 + i % 5}.{i:02d}", currency="USD" if i == 0 else "EUR"
                                 ).json()["id"] for i in range(count)]
    for txn in ids[1:3]:
        wait_for(lambda t=txn: user.get(f"/api/v1/transactions/{t}").json()["status"] == "recorded", timeout=60,
                 what="a purchase recorded")
    assert user.request("PATCH", f"/api/v1/transactions/{ids[1]}", json={"amount": "9.99"}).status_code == 202
    assert user.request("DELETE", f"/api/v1/transactions/{ids[2]}").status_code == 202
    return ids


def test_every_published_event_is_audited_exactly_once_despite_a_killed_worker_and_redelivery(stack: Stack) -> None:
    """Given activity that publishes events of many types while the audit pool is SIGKILLed mid-stream and restarted,
    and then every one of those events published a second time, each event is in the audit exactly once, in
    unbroken chains with no seq taken twice."""
    user, me = register(stack.url)
    other, them = register(stack.url)
    households = [me["household_id"], them["household_id"]]
    other.open_account("EUR")
    account_id = _activity(stack, user, me)
    streaming = threading.Thread(target=_purchases, args=(user, account_id, 40))
    streaming.start()
    wait_for(lambda: len(_audited(households)) >= 20, timeout=60, what="the audit pool under way")
    stack.signal("audit", signal.SIGKILL)  # mid-stream: batches in hand, messages unacked
    assert stack.wait_exit("audit") == -signal.SIGKILL
    stack.start_pool("audit")
    streaming.join(timeout=150)
    try:
        wait_for(lambda: set(_outbox_ids(households)) == set(_audited(households)) and EXPECTED_TYPES <= _types(me),
                 timeout=60, what="every event of the activity audited")
    except AssertionError:
        missing = set(_outbox_ids(households)) - set(_audited(households))
        raise AssertionError(f"not audited: {len(missing)}; types missing: {EXPECTED_TYPES - _types(me)}; "
                             f"audit log: {stack.log('audit')[-3000:]}") from None

    # Redelivery: publish every one of those events again; the pool processes each and stores none.
    with wiring.engine().begin() as conn:
        again = conn.execute(text("UPDATE outbox SET published_at = NULL WHERE envelope->>'household_id' = ANY(:h)"),
                             {"h": households}).rowcount
    before = _processed()
    relay_pending(wiring.session_factory(), wiring.publish, older_than_seconds=0, limit=100_000)
    wait_for(lambda: _processed() >= before + again, timeout=60, what=f"{again} redelivered events processed")

    outbox = wait_for(lambda: (o := _outbox_ids(households)) and sorted(o) == sorted(_audited(households)) and o,
                      timeout=30, what="the audit to hold exactly the outbox's events")
    assert len(outbox) == len(set(outbox)) >= again
    for household in households:
        with wiring.engine().connect() as conn:
            seqs = list(conn.execute(text("SELECT seq FROM audit_events WHERE chain_id = :c ORDER BY seq"),
                                     {"c": household}).scalars())
        assert seqs == list(range(1, len(seqs) + 1))
        result = run_cli("audit", "verify", "--household", household, check=False)
        assert result.returncode == 0, result.stdout + result.stderr
        assert f"{len(seqs)} record(s) ok" in result.stdout


def test_every_event_type_reaches_the_audit_once_even_published_twice(stack: Stack) -> None:
    """Given one event of every type in EXCHANGE_OF, each delivered twice to the audit queue (only there: the other
    pools would rightly refuse these made-up payloads), the running audit pool stores each exactly once in one
    unbroken chain. (test_topology proves audit.events is bound to every exchange.)"""
    household = str(uuid.uuid4())
    events = [Event(t, {"n": i}, household, None, f"types-{household}", None) for i, t in enumerate(EXCHANGE_OF)]
    for event in events + events:
        body = Message(queue_name="audit.events", actor_name="audit_on_event", args=(event.to_dict(),), kwargs={},
                       options={}).encode()
        wiring.broker().channel.basic_publish("", "audit.events", body, pika.BasicProperties(delivery_mode=2))
    wait_for(lambda: len(_audited([household])) == len(EXCHANGE_OF), timeout=30, what="one record per event type")
    time.sleep(1)  # a late duplicate would land now
    with wiring.engine().connect() as conn:
        rows = conn.execute(text("SELECT type, seq FROM audit_events WHERE chain_id = :c"), {"c": household}).all()
    assert sorted(t for t, _ in rows) == sorted(EXCHANGE_OF)
    assert sorted(s for _, s in rows) == list(range(1, len(EXCHANGE_OF) + 1))
    assert run_cli("audit", "verify", "--household", household, check=False).returncode == 0


def _types(me: dict) -> set[str]:
    with wiring.engine().connect() as conn:
        return set(conn.execute(text("SELECT DISTINCT type FROM audit_events WHERE household_id = CAST(:h AS uuid)"),
                                {"h": me["household_id"]}).scalars())


def _walk(client: ApiClient, path: str, **params: object) -> list[dict]:
    items, cursor = [], None
    while True:
        page = client.get(path, params={**params, **({"cursor": cursor} if cursor else {})})
        assert page.status_code == 200, page.text
        items += page.json()["items"]
        cursor = page.json()["next_cursor"]
        if not cursor:
            return items


def test_members_see_their_household_with_origins_and_admins_see_every_household(stack: Stack) -> None:
    """Given alice and bob in separate households, alice's trail holds her activity with the address and user agent
    of her requests (also on what the pools did for them), never bob's; the admin trail holds both."""
    alice, me = register(stack.url)
    bob, him = register(stack.url)
    alice.http.headers["User-Agent"] = AGENT
    account = alice.open_account("EUR")
    alice.create_budget("Groceries", "10.00")
    alice.post_transaction(account["id"], "12.00")
    bob.open_account("EUR")

    def alices(**params: object) -> list[dict]:
        return _walk(alice, "/api/v1/audit", limit=2, **params)

    wait_for(lambda: {"TransactionRecorded", "BudgetThresholdCrossed"} <= {e["type"] for e in alices()},
             timeout=30, what="the purchase and its budget alert audited")
    trail = alices()
    assert len({e["event_id"] for e in trail}) == len(trail)
    assert [e["occurred_at"] for e in trail] == sorted((e["occurred_at"] for e in trail), reverse=True)
    assert {e["household_id"] for e in trail} == {me["household_id"]}
    by_type = {e["type"]: e for e in trail}
    for kind in ("AccountOpened", "TransactionRecorded", "BudgetThresholdCrossed"):
        assert by_type[kind]["origin"] == {"client_address": "127.0.0.1", "user_agent": AGENT}, kind
    assert by_type["UserRegistered"]["origin"]["user_agent"].startswith("python-requests")
    assert {e["type"] for e in alices(type=["AccountOpened", "BudgetCreated"])} == {"AccountOpened", "BudgetCreated"}
    assert alices(**{"from": "2000-01-01", "to": "2000-12-31"}) == []

    bad = alice.get("/api/v1/audit", params={"type": "NoSuchEvent"})
    assert bad.status_code == 422 and any(k.startswith("type") for k in bad.json()["errors"]), bad.text
    assert alice.get("/api/v1/audit", params={"cursor": "bm9wZQ"}).status_code == 422
    assert alice.get("/api/v1/admin/audit").status_code == 403

    dave, dave_me = register(stack.url)
    assert run_cli("create-admin", dave_me["email"]).returncode == 0
    dave = ApiClient(stack.url, requests.post(f"{stack.url}/api/v1/auth/login", timeout=10, json={
        "email": dave_me["email"], "password": PASSWORD}).json()["access_token"])
    everyone = _walk(dave, "/api/v1/admin/audit", limit=200, type="AccountOpened",
                     **{"from": (dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)).isoformat()})
    assert {me["household_id"], him["household_id"]} <= {e["household_id"] for e in everyone}
    only_bob = _walk(dave, "/api/v1/admin/audit", household_id=him["household_id"])
    assert {e["household_id"] for e in only_bob} == {him["household_id"]} and only_bob


def test_verify_names_a_tampered_record_and_export_writes_json_lines(stack: Stack) -> None:
    """Given a household's trail, export writes it as JSON lines oldest first; after its second record is changed
    in the database, `audit verify` exits 1 naming that record."""
    user, me = register(stack.url)
    household = me["household_id"]
    user.open_account("EUR")
    user.create_budget("Groceries", "10.00")
    wait_for(lambda: len(_audited([household])) >= 4, timeout=30, what="four records audited")
    exported = run_cli("audit", "export", "--household", household)
    lines = [json.loads(line) for line in exported.stdout.splitlines() if line.startswith("{")]
    assert len(lines) == len(_audited([household])) and [r["seq"] for r in sorted(
        lines, key=lambda r: r["seq"])] == list(range(1, len(lines) + 1))
    assert {r["household_id"] for r in lines} == {household}

    second = next(r for r in lines if r["seq"] == 2)
    with wiring.engine().begin() as conn:
        conn.execute(text("UPDATE audit_events SET payload = payload || '{\"forged\": true}' "
                          "WHERE event_id = CAST(:e AS uuid)"), {"e": second["event_id"]})
    result = run_cli("audit", "verify", "--household", household, check=False)
    assert result.returncode == 1
    assert f"seq 2 (event {second['event_id']})" in result.stdout and "changed" in result.stdout
    with wiring.engine().begin() as conn:  # put it back: the chain verifies again
        conn.execute(text("UPDATE audit_events SET payload = payload - 'forged' WHERE event_id = CAST(:e AS uuid)"),
                     {"e": second["event_id"]})
    assert run_cli("audit", "verify", "--household", household, check=False).returncode == 0
