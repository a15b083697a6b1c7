"""Withdrawals from savings goals over HTTP with every pool: saved goes down by what is taken out, never below zero;
a withdrawal counts once (Idempotency-Key, redelivered commands); a reached goal keeps its history while its
progress follows the savings; the contributions list tells withdrawals apart; audit sees GoalWithdrawalRecorded."""

from __future__ import annotations

import datetime as dt
import time
import uuid
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from config import wiring
from domain.fx import convert
from domain.periods import add_months
from models.goals import Goal, GoalContribution
from models.messaging import OutboxEvent
from services.fx_rates import default_rates
from services.goals import goal_command
from tests.e2e.test_bad_input import assert_refused
from tests.e2e.test_goals import GOALS, contribute, create_goal, move, reached_events, settled, today
from tests.support.client import ApiClient
from tests.support.stack import Stack, wait_for

pytestmark = pytest.mark.e2e


def withdraw(client: ApiClient, goal_id: str, amount: str, key: str | None = None, **extra: str) -> str:
    """Withdraw from a goal (202); the withdrawal's id."""
    return move(client, goal_id, "withdrawals", amount, key, **extra)


def events_of(goal_id: str, type_: str) -> list[dict]:
    """The payloads of a goal's events of one type (the outbox keeps every event)."""
    with wiring.session_factory()() as session:
        return list(session.scalars(select(OutboxEvent.envelope["payload"]).where(
            OutboxEvent.envelope["type"].astext == type_,
            OutboxEvent.envelope["payload"]["goal_id"].astext == goal_id)))


def movements(client: ApiClient, goal_id: str) -> list[tuple[str, str, str]]:
    """(kind, status, amount) of a goal's contributions and withdrawals, newest first."""
    items = client.get(f"{GOALS}/{goal_id}/contributions").json()["items"]
    return [(i["kind"], i["status"], i["amount"]["amount"]) for i in items]


def test_a_withdrawal_takes_saved_down_and_is_listed_as_one(stack: Stack, user: ApiClient) -> None:
    """Contribute 100.00 toward 400.00, withdraw 30.00: saved 70.00, 17.50 percent, 330.00 remaining; the list
    shows the withdrawal as such, and GoalWithdrawalRecorded (audited) says where the goal stands."""
    goal = create_goal(user, "400.00", add_months(today(), 10))
    contribute(user, goal["id"], "100.00")
    settled(user, goal["id"], "100.00")
    withdrawal = withdraw(user, goal["id"], "30.00")
    shown = settled(user, goal["id"], "70.00")
    assert (shown["percent"], shown["remaining"]["amount"]) == ("17.50", "330.00")
    assert shown["suggested_monthly_contribution"]["amount"] == "33.00"
    assert movements(user, goal["id"]) == [("withdrawal", "recorded", "30.00"), ("contribution", "recorded", "100.00")]
    [event] = events_of(goal["id"], "GoalWithdrawalRecorded")
    assert (event["contribution_id"], event["amount"], event["saved"], event["percent"]) == (
        withdrawal, "30.00", "70.00", "17.50")
    def audited() -> list[dict]:
        return user.get("/api/v1/audit", params={"type": "GoalWithdrawalRecorded"}).json()["items"]
    [record] = wait_for(audited, timeout=15, what="the withdrawal audited")
    assert record["payload"]["contribution_id"] == withdrawal, record


def test_more_than_is_saved_is_refused_and_changes_nothing(stack: Stack, user: ApiClient) -> None:
    """With 50.00 saved, 50.01 is refused (422 on amount) and nothing changes; with 40.00 on its way out, 10.01 more
    is refused too; what is left can be withdrawn to exactly zero."""
    goal = create_goal(user, "100.00", add_months(today(), 6))
    contribute(user, goal["id"], "50.00")
    settled(user, goal["id"], "50.00")
    r = user.post(f"{GOALS}/{goal['id']}/withdrawals", {"amount": "50.01"})
    assert "50.00 EUR" in assert_refused(r, 422, "amount")["message"]
    assert settled(user, goal["id"], "50.00")["percent"] == "50.00"
    assert movements(user, goal["id"]) == [("contribution", "recorded", "50.00")]

    withdraw(user, goal["id"], "40.00")
    assert_refused(user.post(f"{GOALS}/{goal['id']}/withdrawals", {"amount": "10.01"}), 422, "amount")
    withdraw(user, goal["id"], "10.00")
    shown = settled(user, goal["id"], "0.00")
    assert (shown["percent"], shown["remaining"]["amount"]) == ("0.00", "100.00")
    assert_refused(user.post(f"{GOALS}/{goal['id']}/withdrawals", {"amount": "0.01"}), 422, "amount")


def test_one_idempotency_key_is_one_withdrawal_and_a_redelivered_command_counts_once(stack: Stack,
                                                                                     user: ApiClient) -> None:
    """The same Idempotency-Key twice answers the same id and takes 25.00 out once; its command redelivered twice
    changes nothing; the key of a contribution cannot name a withdrawal (409)."""
    goal = create_goal(user, "100.00", add_months(today(), 6))
    contribute(user, goal["id"], "100.00", key="in-1")
    settled(user, goal["id"], "100.00")
    first = withdraw(user, goal["id"], "25.00", key="out-1")
    assert withdraw(user, goal["id"], "25.00", key="out-1") == first
    settled(user, goal["id"], "75.00")
    with wiring.session_factory()() as session:
        row = session.get(GoalContribution, uuid.UUID(first))
        command = goal_command(row, "EUR").to_dict()
    for _ in range(2):
        wiring.broker().send_command("categorization", "record_goal_withdrawal_command", command)
    time.sleep(1.5)  # long enough for the pool to have taken the redelivered commands out again, if it did
    assert settled(user, goal["id"], "75.00")["pending_withdrawals"] == 0
    assert len(events_of(goal["id"], "GoalWithdrawalRecorded")) == 1
    r = user.post(f"{GOALS}/{goal['id']}/withdrawals", {"amount": "1.00"}, headers={"Idempotency-Key": "in-1"})
    assert_refused(r, 409, "Idempotency-Key")
    assert movements(user, goal["id"]) == [("withdrawal", "recorded", "25.00"), ("contribution", "recorded", "100.00")]


def test_a_reached_goal_taken_below_its_target_keeps_its_history(stack: Stack, user: ApiClient) -> None:
    """A goal reached (announced once) then taken below its target shows the savings as they are (on track or
    behind, percent below 100) but keeps reached_at; reaching it again announces nothing new."""
    goal = create_goal(user, "100.00", add_months(today(), 6))
    contribute(user, goal["id"], "100.00")
    reached = settled(user, goal["id"], "100.00")
    assert reached["status"] == "reached" and reached["reached_at"]
    withdraw(user, goal["id"], "40.00")
    shown = settled(user, goal["id"], "60.00")
    assert shown["status"] in ("on_track", "behind") and shown["percent"] == "60.00"
    assert shown["reached_at"] == reached["reached_at"]
    assert shown["suggested_monthly_contribution"]["amount"] != "0.00"
    contribute(user, goal["id"], "40.00")
    assert settled(user, goal["id"], "100.00")["status"] == "reached"
    time.sleep(1.5)  # long enough for a second announcement, if there were one
    assert reached_events(goal["id"]) == 1


def test_a_withdrawal_in_another_currency_is_converted_at_the_ecb_rate_of_its_day(stack: Stack,
                                                                                 user: ApiClient) -> None:
    """50.00 USD withdrawn on 2026-10-15 comes out of an EUR goal at that day's ECB rate, rounded half-even, and
    shows the rate; a currency the ECB does not quote is refused (422 on currency), never taken 1:1."""
    goal = create_goal(user, "1000.00", add_months(today(), 12))
    contribute(user, goal["id"], "500.00")
    settled(user, goal["id"], "500.00")
    rate = default_rates().rate("USD", "EUR", dt.date(2026, 10, 15))
    expected = Decimal("500.00") - convert(Decimal("50.00"), rate.value, "EUR")
    withdraw(user, goal["id"], "50.00", currency="USD", withdrawn_on="2026-10-15")
    settled(user, goal["id"], f"{expected:f}")
    [item, _] = user.get(f"{GOALS}/{goal['id']}/contributions").json()["items"]
    assert item["kind"] == "withdrawal" and item["original"] == {"amount": "50.00", "currency": "USD"}
    assert (Decimal(item["rate"]), item["contributed_on"]) == (rate.value, "2026-10-15")
    r = user.post(f"{GOALS}/{goal['id']}/withdrawals", {"amount": "5.00", "currency": "ARS",
                                                        "withdrawn_on": "2026-10-15"})
    assert_refused(r, 422, "currency")
    assert settled(user, goal["id"], f"{expected:f}")


def test_a_goal_deleted_with_withdrawals_leaves_nothing(stack: Stack, user: ApiClient) -> None:
    """Deleting a goal removes its withdrawals with its contributions."""
    goal = create_goal(user, "100.00", add_months(today(), 2))
    contribute(user, goal["id"], "10.00")
    settled(user, goal["id"], "10.00")
    withdraw(user, goal["id"], "5.00")
    settled(user, goal["id"], "5.00")
    assert user.request("DELETE", f"{GOALS}/{goal['id']}").status_code == 204
    with wiring.session_factory()() as session:
        assert session.scalar(select(func.count()).select_from(GoalContribution).where(
            GoalContribution.goal_id == uuid.UUID(goal["id"]))) == 0
        assert session.get(Goal, uuid.UUID(goal["id"])) is None
