"""Savings goals over HTTP with every pool: progress, the linear plan, the monthly suggestion, contributions counted
once (Idempotency-Key, redelivered commands), FX at the ECB rate of the contribution's day, and GoalReached once."""

from __future__ import annotations

import datetime as dt
import time
import uuid
from decimal import Decimal

import pytest
from sqlalchemy import func, select, update

from config import wiring
from domain.fx import convert
from domain.periods import add_months
from models.goals import Goal, GoalContribution
from models.messaging import OutboxEvent
from services.fx_rates import default_rates
from services.goals import goal_command
from tests.support.client import ApiClient, register
from tests.support.stack import Stack, wait_for

pytestmark = pytest.mark.e2e

GOALS = "/api/v1/goals"


def today() -> dt.date:
    """Today as the API counts it (UTC)."""
    return dt.datetime.now(dt.UTC).date()


def create_goal(client: ApiClient, amount: str, target_date: dt.date, currency: str | None = None,
                name: str = "Holiday") -> dict:
    """Create a goal; its JSON."""
    target = {"amount": amount, **({"currency": currency} if currency else {})}
    r = client.post(GOALS, {"name": name, "target": target, "target_date": target_date.isoformat()})
    assert r.status_code == 201, r.text
    return r.json()


def move(client: ApiClient, goal_id: str, kind: str, amount: str, key: str | None = None, **extra: str) -> str:
    """Put money into a goal or take it out (`kind`: contributions or withdrawals), 202; the movement's id."""
    headers = {"Idempotency-Key": key} if key else {}
    r = client.post(f"{GOALS}/{goal_id}/{kind}", {"amount": amount, **extra}, headers=headers)
    assert r.status_code == 202, r.text
    assert r.json()["status"] == "pending" and r.headers["Location"].endswith(f"{GOALS}/{goal_id}")
    return r.json()["id"]


def contribute(client: ApiClient, goal_id: str, amount: str, key: str | None = None, **extra: str) -> str:
    """Contribute to a goal (202); the contribution's id."""
    return move(client, goal_id, "contributions", amount, key, **extra)


def settled(client: ApiClient, goal_id: str, saved: str) -> dict:
    """The goal once nothing is pending (contributions or withdrawals) and it shows `saved`."""
    def check() -> dict | None:
        goal = client.get(f"{GOALS}/{goal_id}").json()
        idle = goal["pending_contributions"] == 0 and goal["pending_withdrawals"] == 0
        return goal if idle and goal["saved"]["amount"] == saved else None
    return wait_for(check, timeout=15, what=f"goal {goal_id} to show {saved} saved")


def reached_events(goal_id: str) -> int:
    """How many GoalReached events were ever emitted for a goal (the outbox keeps every event)."""
    with wiring.session_factory()() as session:
        return session.scalar(select(func.count()).select_from(OutboxEvent).where(
            OutboxEvent.envelope["type"].astext == "GoalReached",
            OutboxEvent.envelope["payload"]["goal_id"].astext == goal_id)) or 0


def goal_notes(client: ApiClient) -> list[dict]:
    """The caller's GoalReached notifications."""
    return [n for n in client.get("/api/v1/notifications").json()["items"] if n["event_type"] == "GoalReached"]


def redeliver(contribution_id: str) -> None:
    """Send a contribution's command again, as an at-least-once broker may."""
    with wiring.session_factory()() as session:
        row = session.get(GoalContribution, uuid.UUID(contribution_id))
        currency = session.scalar(select(Goal.currency).where(Goal.id == row.goal_id))
        command = goal_command(row, currency).to_dict()
    for _ in range(2):
        wiring.broker().send_command("categorization", "record_goal_contribution_command", command)


def test_a_goal_shows_saved_percent_status_and_the_monthly_suggestion(stack: Stack, user: ApiClient) -> None:
    """A 1200.00 EUR goal a year out (the household's base currency by default) suggests 100.00 a month; after
    300.00 it shows 300.00 saved, 25.00 percent, on track, and 900.00 spread over 12 months: 75.00."""
    goal = create_goal(user, "1200.00", add_months(today(), 12))
    assert goal["target"] == {"amount": "1200.00", "currency": "EUR"}
    assert goal["saved"] == {"amount": "0.00", "currency": "EUR"} and goal["percent"] == "0.00"
    assert goal["status"] == "on_track" and goal["months_left"] == 12
    assert goal["suggested_monthly_contribution"] == {"amount": "100.00", "currency": "EUR"}

    contribute(user, goal["id"], "300.00")
    shown = settled(user, goal["id"], "300.00")
    assert shown["percent"] == "25.00" and shown["status"] == "on_track"
    assert shown["remaining"] == {"amount": "900.00", "currency": "EUR"}
    assert shown["suggested_monthly_contribution"] == {"amount": "75.00", "currency": "EUR"}
    assert [g["id"] for g in user.get(GOALS).json()["items"]] == [goal["id"]]
    assert [c["status"] for c in user.get(f"{GOALS}/{goal['id']}/contributions").json()["items"]] == ["recorded"]


def test_the_monthly_suggestion_counts_whole_months_at_least_one_rounded_half_even(stack: Stack,
                                                                                   user: ApiClient) -> None:
    """JPY has no decimals: 5 JPY over 2 months is 2.5, rounded half-even to 2; 7 over 2 is 3.5, to 4. A date
    one month and a day out still counts one whole month; tomorrow counts as one month too."""
    cases = [("5", add_months(today(), 2), 2, "2"), ("7", add_months(today(), 2), 2, "4"),
             ("100", add_months(today(), 1) + dt.timedelta(days=1), 1, "100"),
             ("100", today() + dt.timedelta(days=1), 1, "100")]
    for amount, target_date, months, monthly in cases:
        goal = create_goal(user, amount, target_date, currency="JPY")
        assert (goal["months_left"], goal["suggested_monthly_contribution"]) == (
            months, {"amount": monthly, "currency": "JPY"}), (amount, target_date, goal)


def test_a_goal_is_behind_or_on_track_against_a_linear_plan(stack: Stack, user: ApiClient) -> None:
    """Half-way from creation to the target date the plan expects half the target: nothing saved is behind, more
    than planned is on track, the whole target is reached."""
    goal = create_goal(user, "1000.00", today() + dt.timedelta(days=50))
    with wiring.session_factory()() as session, session.begin():  # as if it had been created 50 days ago
        session.execute(update(Goal).where(Goal.id == uuid.UUID(goal["id"])).values(
            created_at=dt.datetime.now(dt.UTC) - dt.timedelta(days=50)))
    shown = user.get(f"{GOALS}/{goal['id']}").json()
    assert shown["planned"] == {"amount": "500.00", "currency": "EUR"} and shown["status"] == "behind"
    contribute(user, goal["id"], "499.99")
    assert settled(user, goal["id"], "499.99")["status"] == "behind"
    contribute(user, goal["id"], "0.01")
    assert settled(user, goal["id"], "500.00")["status"] == "on_track"
    contribute(user, goal["id"], "500.00")
    shown = settled(user, goal["id"], "1000.00")
    assert (shown["status"], shown["percent"], shown["remaining"]["amount"]) == ("reached", "100.00", "0.00")
    assert shown["suggested_monthly_contribution"]["amount"] == "0.00" and shown["reached_at"]


def test_goal_reached_reaches_every_member_once(stack: Stack) -> None:
    """Ann and Bo share a household. Ann's contribution sent twice with one Idempotency-Key and its command
    redelivered twice counts once; crossing the target notifies both once; raising the target and crossing it
    again does not notify again."""
    ann, ann_me = register(stack.url)
    bo, bo_me = register(stack.url)
    r = ann.post(f"/api/v1/households/{ann_me['household_id']}/members", {"email": bo_me["email"], "role": "member"})
    assert r.status_code == 201, r.text
    bo.http.headers["X-Household-ID"] = ann_me["household_id"]
    goal = create_goal(ann, "100.00", add_months(today(), 6), name="New bike")

    first = contribute(ann, goal["id"], "60.00", key="bike-1")
    assert contribute(ann, goal["id"], "60.00", key="bike-1") == first
    settled(ann, goal["id"], "60.00")
    redeliver(first)
    contribute(bo, goal["id"], "10.00")
    settled(ann, goal["id"], "70.00")  # the redelivered commands (sent before) changed nothing

    contribute(bo, goal["id"], "40.00")
    shown = settled(ann, goal["id"], "110.00")
    assert (shown["status"], shown["percent"]) == ("reached", "110.00")
    for client in (ann, bo):
        notes = wait_for(lambda c=client: goal_notes(c), timeout=10, what="a GoalReached notification")
        assert len(notes) == 1 and notes[0]["title"] == "Goal reached: New bike", notes

    r = ann.request("PATCH", f"{GOALS}/{goal['id']}", json={"target": {"amount": "200.00"}})
    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.json()["percent"]) == ("on_track", "55.00")
    contribute(ann, goal["id"], "100.00")
    assert settled(ann, goal["id"], "210.00")["status"] == "reached"
    redeliver(first)
    time.sleep(1.5)  # long enough for the pools to have announced and notified a second crossing, if any
    assert reached_events(goal["id"]) == 1
    assert [len(goal_notes(c)) for c in (ann, bo)] == [1, 1]
    assert ann.get(f"{GOALS}/{goal['id']}").json()["saved"]["amount"] == "210.00"


def test_a_target_lowered_to_what_is_saved_reaches_the_goal_once(stack: Stack, user: ApiClient) -> None:
    """Changing the target to what is already saved reaches the goal (announced once, by the change)."""
    goal = create_goal(user, "100.00", add_months(today(), 3))
    contribute(user, goal["id"], "80.00")
    settled(user, goal["id"], "80.00")
    for _ in range(2):
        r = user.request("PATCH", f"{GOALS}/{goal['id']}", json={"target": {"amount": "80.00", "currency": "EUR"}})
        assert r.status_code == 200 and r.json()["status"] == "reached", r.text
    wait_for(lambda: goal_notes(user), timeout=10, what="a GoalReached notification")
    assert reached_events(goal["id"]) == 1


def test_a_contribution_in_another_currency_is_converted_at_the_ecb_rate_of_its_day(stack: Stack,
                                                                                    user: ApiClient) -> None:
    """100.00 USD on 2026-10-15 counts at that day's ECB rate, rounded half-even to cents, and shows the rate; a
    currency the ECB does not quote is refused (422 on currency), never taken 1:1."""
    goal = create_goal(user, "1000.00", add_months(today(), 12))
    rate = default_rates().rate("USD", "EUR", dt.date(2026, 10, 15))
    expected = convert(Decimal("100.00"), rate.value, "EUR")
    contribute(user, goal["id"], "100.00", currency="USD", contributed_on="2026-10-15")
    settled(user, goal["id"], f"{expected:f}")
    [item] = user.get(f"{GOALS}/{goal['id']}/contributions").json()["items"]
    assert item["original"] == {"amount": "100.00", "currency": "USD"}
    assert item["amount"] == {"amount": f"{expected:f}", "currency": "EUR"}
    assert (Decimal(item["rate"]), item["rate_date"]) == (rate.value, rate.on.isoformat())

    r = user.post(f"{GOALS}/{goal['id']}/contributions", {"amount": "100.00", "currency": "ARS",
                                                         "contributed_on": "2026-10-15"})
    assert r.status_code == 422 and set(r.json()["errors"]) == {"currency"}, r.text
    assert user.get(f"{GOALS}/{goal['id']}").json()["saved"]["amount"] == f"{expected:f}"


def test_a_deleted_goal_is_gone_with_its_contributions(stack: Stack, user: ApiClient) -> None:
    """DELETE answers 204; the goal then answers 404 and its contributions are gone from SQL."""
    goal = create_goal(user, "100.00", add_months(today(), 2))
    contribute(user, goal["id"], "10.00")
    settled(user, goal["id"], "10.00")
    assert user.request("DELETE", f"{GOALS}/{goal['id']}").status_code == 204
    assert user.get(f"{GOALS}/{goal['id']}").status_code == 404
    with wiring.session_factory()() as session:
        assert session.scalar(select(func.count()).select_from(GoalContribution).where(
            GoalContribution.goal_id == uuid.UUID(goal["id"]))) == 0
