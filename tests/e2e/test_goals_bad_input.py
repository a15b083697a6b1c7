"""Bad input on the goals and group challenge endpoints answers 4xx in the one error shape, names the field and
changes nothing: zero, negative, too many decimals and unknown currencies for targets, contributions and
withdrawals, a withdrawal of more than is saved, dates outside their window, another household's goal or a group
one is not a member of (404), a member who is not the creator inviting or removing someone else (403), a member
invited twice or the creator leaving (409).

Alice (base EUR) makes the requests; bob owns the foreign goal and group; carol (base JPY) is a member of
alice's group. Each case compares a snapshot of everything these requests could have changed, from SQL and
through the API, before and after.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import func, select

from config import wiring
from models.goals import Goal, GoalContribution, GroupContribution, GroupMember, SavingsGroup
from tests.e2e.test_bad_input import BAD_AMOUNTS, BAD_CURRENCIES, assert_refused
from tests.support.client import ApiClient, register
from tests.support.stack import Stack

pytestmark = pytest.mark.e2e

GOALS = "/api/v1/goals"
GROUPS = "/api/v1/groups"
UNKNOWN_ID = "00000000-0000-4000-8000-000000000000"
TODAY = dt.datetime.now(dt.UTC).date()
NEXT_YEAR = (TODAY + dt.timedelta(days=365)).isoformat()
#: Marks a key to leave out of a request body.
DROP = object()


@dataclass
class World:
    """The module's users and the ids of what they own."""

    clients: dict[str, ApiClient]
    users: dict[str, dict]
    ids: dict[str, str]


@pytest.fixture(scope="module")
def world(stack: Stack) -> World:
    """Alice with an EUR and a JPY goal and a group carol belongs to; bob with a goal and a group of his own."""
    tag = uuid.uuid4().hex[:8]
    clients, users = {}, {}
    for name, base in (("alice", "EUR"), ("bob", "EUR"), ("carol", "JPY")):
        clients[name], users[name] = register(stack.url, email=f"{name}-{tag}@example.com", base_currency=base)

    def post(who: str, path: str, body: dict) -> str:
        r = clients[who].post(path, body)
        assert r.status_code == 201, r.text
        return r.json()["id"]

    ids = {
        "goal": post("alice", GOALS, {"name": "Car", "target": {"amount": "1000.00"}, "target_date": NEXT_YEAR}),
        "jpy_goal": post("alice", GOALS, {"name": "Trip", "target": {"amount": "10000", "currency": "JPY"},
                                          "target_date": NEXT_YEAR}),
        "group": post("alice", GROUPS, {"name": "Team", "target": {"amount": "100.00"}}),
        "bob_goal": post("bob", GOALS, {"name": "Bob's", "target": {"amount": "50.00"}, "target_date": NEXT_YEAR}),
        "bob_group": post("bob", GROUPS, {"name": "Bob's group", "target": {"amount": "50.00"}}),
    }
    r = clients["alice"].post(f"{GROUPS}/{ids['group']}/members", {"email": users["carol"]["email"]})
    assert r.status_code == 201, r.text
    return World(clients, users, ids)


def _state(world: World) -> dict[str, Any]:
    """Everything a bad request could have changed, through the API and straight from SQL."""
    alice = world.clients["alice"]
    state: dict[str, Any] = {"alice's goals": alice.get(GOALS).json()["items"],
                             "alice's group": alice.get(f"{GROUPS}/{world.ids['group']}").json(),
                             "bob's group": world.clients["bob"].get(f"{GROUPS}/{world.ids['bob_group']}").json()}
    with wiring.session_factory()() as session:
        for name, me in world.users.items():
            household, user = uuid.UUID(me["household_id"]), uuid.UUID(me["id"])
            for model in (Goal, GoalContribution):
                state[f"{name}'s {model.__tablename__}"] = session.scalar(
                    select(func.count()).select_from(model).where(model.household_id == household))
            state[f"{name}'s groups"] = session.scalar(select(func.count()).where(SavingsGroup.creator_id == user))
            state[f"{name}'s memberships"] = session.scalar(select(func.count()).where(GroupMember.user_id == user))
            state[f"{name}'s group contributions"] = session.scalar(
                select(func.count()).where(GroupContribution.user_id == user))
        state["bob's goal"] = session.execute(select(Goal.name, Goal.target_amount, Goal.target_date).where(
            Goal.id == uuid.UUID(world.ids["bob_goal"]))).one()
    return state


def _resolve(value: Any, ids: dict[str, str]) -> Any:
    if isinstance(value, str) and value.startswith("{") and value.endswith("}") and value[1:-1] in ids:
        return ids[value[1:-1]]
    if isinstance(value, dict):
        return {k: _resolve(v, ids) for k, v in value.items() if v is not DROP}
    return value


GOAL = {"name": "Boat", "target": {"amount": "500.00"}, "target_date": NEXT_YEAR}
GROUP = {"name": "Club", "target": {"amount": "500.00"}}
CONTRIBUTION = {"amount": "10.00"}


def _cases() -> list[Any]:
    """(who, method, path, body, expected status, field at fault, headers), one pytest.param each."""
    cases: list[Any] = []

    def add(id_: str, method: str, path: str, body: Any = None, status: int = 422, field: str | None = None,
            who: str = "alice", headers: dict[str, str] | None = None) -> None:
        cases.append(pytest.param(who, method, path, body, status, field, headers or {}, id=id_))

    def body(base: dict, **change: Any) -> dict:
        return {**base, **change}

    target_amounts = [*BAD_AMOUNTS, ("zero", "0"), ("zero with decimals", "0.00"), ("negative", "-5.00")]
    # POST /goals and POST /groups: the target is money, the date a future date
    for kind, path, base in (("goal", GOALS, GOAL), ("group", GROUPS, GROUP)):
        for key in ("name", "target", *(("target_date",) if kind == "goal" else ())):
            add(f"{kind} without {key}", "POST", path, body(base, **{key: DROP}), field=key)
        for what, name in [("empty", ""), ("a number", 5), ("null", None), ("too long", "x" * 101),
                           ("with a NUL byte", "Boat\x00"), ("with a newline", "Boat\nparty")]:
            add(f"{kind} name {what}", "POST", path, body(base, name=name), field="name")
        for what, amount in target_amounts:
            add(f"{kind} target amount {what}", "POST", path, body(base, target={"amount": amount}), field="target")
        for what, code in BAD_CURRENCIES:
            add(f"{kind} target currency {what}", "POST", path,
                body(base, target={"amount": "500.00", "currency": code}), field="target")
        for what, target in [("a bare amount", "500.00"), ("without an amount", {"currency": "EUR"}),
                             ("with an unknown field", {"amount": "5.00", "saved": "5.00"}), ("null", None)]:
            add(f"{kind} target {what}", "POST", path, body(base, target=target), field="target")
        add(f"{kind} JPY target with decimals", "POST", path,
            body(base, target={"amount": "10.5", "currency": "JPY"}), field="target")
        add(f"{kind} target with decimals in a JPY household", "POST", path, body(base, target={"amount": "10.50"}),
            field="target", who="carol")
        add(f"{kind} BHD target with four decimals", "POST", path,
            body(base, target={"amount": "1.2345", "currency": "BHD"}), field="target")
        for what, day in [("today", TODAY.isoformat()), ("yesterday", (TODAY - dt.timedelta(days=1)).isoformat()),
                          ("two hundred years ahead", "2226-01-01"), ("not a date", "next spring"),
                          ("an impossible date", "2027-02-30"), ("a number", 20270101)]:
            add(f"{kind} target date {what}", "POST", path, body(base, target_date=day), field="target_date")
        add(f"{kind} with an unknown field", "POST", path, body(base, saved="5.00"), field="saved")

    # PATCH, GET, DELETE /goals/{id}
    goal = f"{GOALS}/{{goal}}"
    for what, amount in [("zero", "0"), ("negative", "-1.00"), ("too many decimals", "1.001"), ("letters", "abc"),
                         ("a JSON number", 5)]:
        add(f"goal change target {what}", "PATCH", goal, {"target": {"amount": amount}}, field="target")
    add("goal change target currency", "PATCH", goal, {"target": {"amount": "5.00", "currency": "USD"}},
        field="target")
    add("JPY goal change target with decimals", "PATCH", f"{GOALS}/{{jpy_goal}}", {"target": {"amount": "5.5"}},
        field="target")
    add("goal change name empty", "PATCH", goal, {"name": ""}, field="name")
    add("goal change date to the past", "PATCH", goal, {"target_date": "2020-01-01"}, field="target_date")
    add("goal change an unknown field", "PATCH", goal, {"saved": "5.00"}, field="saved")
    for method in ("GET", "PATCH", "DELETE"):
        payload = {"name": "Mine now"} if method == "PATCH" else None
        add(f"{method} another household's goal", method, f"{GOALS}/{{bob_goal}}", payload, status=404)
        add(f"{method} an unknown goal", method, f"{GOALS}/{UNKNOWN_ID}", payload, status=404)
        add(f"{method} a malformed goal id", method, f"{GOALS}/not-a-uuid", payload, status=404)
    add("GET another household's goal's contributions", "GET", f"{GOALS}/{{bob_goal}}/contributions", status=404)

    # POST /goals/{id}/contributions and /groups/{id}/contributions
    for kind, own, foreign in (("goal", f"{GOALS}/{{goal}}/contributions", f"{GOALS}/{{bob_goal}}/contributions"),
                               ("group", f"{GROUPS}/{{group}}/contributions",
                                f"{GROUPS}/{{bob_group}}/contributions")):
        add(f"{kind} contribution without amount", "POST", own, {}, field="amount")
        for what, amount in target_amounts:
            add(f"{kind} contribution amount {what}", "POST", own, {"amount": amount}, field="amount")
        for what, code in BAD_CURRENCIES:
            add(f"{kind} contribution currency {what}", "POST", own, {"amount": "10.00", "currency": code},
                field="currency")
        add(f"{kind} contribution in a currency without an ECB rate", "POST", own,
            {"amount": "10.00", "currency": "ARS", "contributed_on": "2026-10-15"}, field="currency")
        add(f"{kind} contribution in USD before the euro", "POST", own,
            {"amount": "10.00", "currency": "USD", "contributed_on": "1998-06-01"}, field="currency")
        add(f"{kind} contribution in JPY with decimals", "POST", own, {"amount": "10.5", "currency": "JPY"},
            field="amount")
        for what, day in [("tomorrow", (TODAY + dt.timedelta(days=1)).isoformat()), ("before 1900", "1899-12-31"),
                          ("not a date", "last week")]:
            add(f"{kind} contribution dated {what}", "POST", own, {"amount": "10.00", "contributed_on": day},
                field="contributed_on")
        for sneaked in ("user_id", "status", "id"):
            add(f"{kind} contribution setting {sneaked}", "POST", own, {"amount": "10.00", sneaked: UNKNOWN_ID},
                field=sneaked)
        add(f"{kind} contribution with a too long Idempotency-Key", "POST", own, CONTRIBUTION,
            field="Idempotency-Key", headers={"Idempotency-Key": "k" * 201})
        add(f"{kind} contribution to another household's {kind}", "POST", foreign, CONTRIBUTION, status=404)
        add(f"{kind} contribution to an unknown {kind}", "POST", own.replace(f"{{{kind}}}", UNKNOWN_ID),
            CONTRIBUTION, status=404)
    add("goal contribution by a stranger (bob to alice's goal)", "POST", f"{GOALS}/{{goal}}/contributions",
        CONTRIBUTION, status=404, who="bob")
    add("JPY goal contribution with decimals", "POST", f"{GOALS}/{{jpy_goal}}/contributions", {"amount": "10.5"},
        field="amount")

    # POST /goals/{id}/withdrawals (alice's goal has nothing saved: any valid amount is more than is saved)
    withdrawals = f"{GOALS}/{{goal}}/withdrawals"
    add("withdrawal without amount", "POST", withdrawals, {}, field="amount")
    for what, amount in target_amounts:
        add(f"withdrawal amount {what}", "POST", withdrawals, {"amount": amount}, field="amount")
    for what, code in BAD_CURRENCIES:
        add(f"withdrawal currency {what}", "POST", withdrawals, {"amount": "10.00", "currency": code},
            field="currency")
    add("withdrawal in a currency without an ECB rate", "POST", withdrawals,
        {"amount": "10.00", "currency": "ARS", "withdrawn_on": "2026-10-15"}, field="currency")
    add("withdrawal in JPY with decimals", "POST", withdrawals, {"amount": "10.5", "currency": "JPY"},
        field="amount")
    add("withdrawal of more than is saved", "POST", withdrawals, CONTRIBUTION, field="amount")
    add("JPY goal withdrawal of more than is saved", "POST", f"{GOALS}/{{jpy_goal}}/withdrawals", {"amount": "1"},
        field="amount")
    for what, day in [("tomorrow", (TODAY + dt.timedelta(days=1)).isoformat()), ("before 1900", "1899-12-31"),
                      ("not a date", "last week"), ("a number", 20260101)]:
        add(f"withdrawal dated {what}", "POST", withdrawals, {"amount": "10.00", "withdrawn_on": day},
            field="withdrawn_on")
    for sneaked in ("user_id", "status", "id", "kind", "contributed_on"):
        add(f"withdrawal setting {sneaked}", "POST", withdrawals, {"amount": "10.00", sneaked: "x"}, field=sneaked)
    add("withdrawal with a too long Idempotency-Key", "POST", withdrawals, CONTRIBUTION, field="Idempotency-Key",
        headers={"Idempotency-Key": "k" * 201})
    add("withdrawal from another household's goal", "POST", f"{GOALS}/{{bob_goal}}/withdrawals", CONTRIBUTION,
        status=404)
    add("withdrawal from an unknown goal", "POST", f"{GOALS}/{UNKNOWN_ID}/withdrawals", CONTRIBUTION, status=404)
    add("withdrawal from a malformed goal id", "POST", f"{GOALS}/not-a-uuid/withdrawals", CONTRIBUTION, status=404)
    add("withdrawal by a stranger (bob from alice's goal)", "POST", withdrawals, CONTRIBUTION, status=404, who="bob")

    # GET /groups/{id} and POST /groups/{id}/members
    members = f"{GROUPS}/{{group}}/members"
    add("GET a group one is no member of", "GET", f"{GROUPS}/{{bob_group}}", status=404)
    add("GET an unknown group", "GET", f"{GROUPS}/{UNKNOWN_ID}", status=404)
    add("invite without email", "POST", members, {}, field="email")
    for what, email in [("not an email", "carol"), ("a number", 5), ("null", None), ("too long", "a" * 320 + "@x.io")]:
        add(f"invite email {what}", "POST", members, {"email": email}, field="email")
    add("invite someone who is not registered", "POST", members, {"email": "nobody-here@example.com"}, status=404,
        field="email")
    add("invite a member again", "POST", members, {"email": "{carol_email}"}, status=409, field="email")
    add("invite with a role", "POST", members, {"email": "{bob_email}", "role": "creator"}, field="role")
    add("invite into another's group", "POST", f"{GROUPS}/{{bob_group}}/members", {"email": "{carol_email}"},
        status=404)
    add("invite by a member who is not the creator", "POST", members, {"email": "{bob_email}"}, status=403,
        who="carol")

    # DELETE /groups/{id}/members/{user_id}
    add("a member removing the creator", "DELETE", f"{members}/{{alice_id}}", status=403, who="carol")
    add("a member removing someone who is no member", "DELETE", f"{members}/{{bob_id}}", status=403, who="carol")
    add("the creator leaving", "DELETE", f"{members}/{{alice_id}}", status=409)
    add("removing someone who is no member", "DELETE", f"{members}/{{bob_id}}", status=404, field="user_id")
    add("removing an unknown user", "DELETE", f"{members}/{UNKNOWN_ID}", status=404, field="user_id")
    add("removing a malformed user id", "DELETE", f"{members}/not-a-uuid", status=404)
    add("removing from another's group", "DELETE", f"{GROUPS}/{{bob_group}}/members/{{bob_id}}", status=404)
    add("leaving another's group", "DELETE", f"{GROUPS}/{{bob_group}}/members/{{alice_id}}", status=404)
    add("removing from an unknown group", "DELETE", f"{GROUPS}/{UNKNOWN_ID}/members/{{carol_id}}", status=404)
    return cases


@pytest.mark.parametrize(("who", "method", "path", "body", "status", "field", "headers"), _cases())
def test_bad_input_is_refused_and_changes_nothing(world: World, who: str, method: str, path: str, body: Any,
                                                  status: int, field: str | None, headers: dict[str, str]) -> None:
    """The request answers `status` in the one error shape naming `field`, and nothing changed."""
    ids = {**world.ids, **{f"{name}_email": me["email"] for name, me in world.users.items()},
           **{f"{name}_id": me["id"] for name, me in world.users.items()}}
    before = _state(world)
    r = world.clients[who].request(method, path.format_map(ids), json=_resolve(body, ids), headers=headers)
    assert_refused(r, status, field)
    assert _state(world) == before
