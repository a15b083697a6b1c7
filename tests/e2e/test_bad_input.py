"""Bad input on every endpoint of the first slice answers 4xx in the one error shape, names the field, changes nothing.

One set of users is shared by the module: alice (base EUR) makes the bad requests, bob owns the foreign ids she
must not see, carol (base JPY) has a zero-decimal base currency. Every test takes a snapshot of what exists
(users, households, alice's accounts and budgets as the API lists them, and straight from SQL each household's
count of accounts, budgets, transactions and idempotency keys, its balances and last login) before and after
the bad request and asserts it did not move.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

import pytest
import requests
from sqlalchemy import func, select

from config import wiring
from models.budgets import Budget
from models.identity import Household, User
from models.ledger import Account, Category, IdempotencyKey, Transaction
from tests.support.client import PASSWORD, ApiClient, register
from tests.support.stack import Stack, wait_for

pytestmark = pytest.mark.e2e

ACCOUNTS = "/api/v1/accounts"
BUDGETS = "/api/v1/budgets"
TRANSACTIONS = "/api/v1/transactions"
REGISTER = "/api/v1/auth/register"
LOGIN = "/api/v1/auth/login"

#: Marks a key to leave out of a request body.
DROP = object()
#: An id nobody has.
UNKNOWN_ID = "00000000-0000-4000-8000-000000000000"
#: More than a year from today: outside the accepted window for occurred_on.
FAR_FUTURE = (dt.date.today() + dt.timedelta(days=400)).isoformat()


@dataclass(frozen=True)
class Ref:
    """A placeholder for an id known only once the module's users exist (e.g. Ref("bob_account"))."""

    name: str


@dataclass
class World:
    """The module's users and the ids of what they own."""

    alice: ApiClient
    bob: ApiClient
    carol: ApiClient
    anonymous: ApiClient
    users: dict[str, dict]
    ids: dict[str, str]


# --- set-up -------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def world(stack: Stack) -> World:
    """Alice with EUR and JPY accounts and budgets of each period; bob with an account, budget and transaction."""
    tag = uuid.uuid4().hex[:8]
    alice, alice_me = register(stack.url, email=f"alice-{tag}@example.com")
    bob, bob_me = register(stack.url, email=f"bob-{tag}@example.com")
    carol, carol_me = register(stack.url, email=f"carol-{tag}@example.com", base_currency="JPY")
    ids = {
        "alice_email": alice_me["email"],
        "account": alice.open_account("EUR")["id"],
        "jpy_account": alice.open_account("JPY", "100000")["id"],
        "budget": alice.create_budget("Groceries", "100.00")["id"],
        "weekly_budget": alice.create_budget("Dining", "50.00", period="weekly")["id"],
        "yearly_budget": alice.create_budget("Travel", "2000.00", period="yearly")["id"],
        "bob_account": bob.open_account("EUR")["id"],
        "bob_budget": bob.create_budget("Groceries", "100.00")["id"],
        "bob_category": str(_category_id(uuid.UUID(bob_me["household_id"]), "Groceries")),
    }
    r = bob.post_transaction(ids["bob_account"], "12.50")
    assert r.status_code == 202, r.text
    ids["bob_txn"] = r.json()["id"]
    wait_for(lambda: bob.get(f"{TRANSACTIONS}/{ids['bob_txn']}").json()["status"] == "recorded", timeout=10,
             what="bob's transaction recorded")
    users = {"alice": alice_me, "bob": bob_me, "carol": carol_me}
    return World(alice, bob, carol, ApiClient(stack.url), users, ids)


def _category_id(household_id: uuid.UUID, name: str) -> uuid.UUID:
    with wiring.session_factory()() as session:
        return session.scalar(select(Category.id).where(Category.household_id == household_id,
                                                         Category.name == name))


# --- what "changes nothing" and "the one error shape" mean ----------------------------------------------------


def _state(world: World) -> dict[str, Any]:
    """Everything a bad request could have changed, through the API and straight from SQL."""
    state: dict[str, Any] = {"alice's accounts": world.alice.get(ACCOUNTS).json()["items"],
                             "alice's budgets": world.alice.get(BUDGETS).json()["items"]}
    with wiring.session_factory()() as session:
        state["users"] = session.scalar(select(func.count()).select_from(User))
        state["households"] = session.scalar(select(func.count()).select_from(Household))
        for name, me in world.users.items():
            household = uuid.UUID(me["household_id"])
            for model in (Account, Budget, Transaction, IdempotencyKey):
                state[f"{name}'s {model.__tablename__}"] = session.scalar(
                    select(func.count()).select_from(model).where(model.household_id == household))
            state[f"{name}'s balances"] = session.scalar(
                select(func.sum(Account.balance)).where(Account.household_id == household))
            state[f"{name}'s last login"] = session.scalar(
                select(User.last_login_at).where(User.id == uuid.UUID(me["id"])))
    return state


def assert_refused(r: requests.Response, status: int, field: str | None = None) -> dict:
    """The answer is `status` in the one error shape and, when there is a field at fault, names it."""
    assert r.status_code == status, f"{r.request.method} {r.request.url} -> {r.status_code}: {r.text}"
    assert r.headers["Content-Type"].startswith("application/json"), r.headers["Content-Type"]
    body = r.json()
    assert set(body) == {"code", "status", "message", "errors"}, body
    assert body["code"] == status and body["status"] == HTTPStatus(status).phrase, body
    assert isinstance(body["message"], str) and body["message"], body
    assert isinstance(body["errors"], dict), body
    for key, reasons in body["errors"].items():
        assert isinstance(reasons, list) and reasons and all(isinstance(x, str) and x for x in reasons), (key, body)
    if field is not None:
        assert field in body["errors"], f"{field!r} not named in {body}"
    return body


def _resolve(value: Any, ids: dict[str, str]) -> Any:
    if isinstance(value, Ref):
        return ids[value.name]
    if isinstance(value, dict):
        return {k: _resolve(v, ids) for k, v in value.items() if v is not DROP}
    if isinstance(value, list):
        return [_resolve(v, ids) for v in value]
    return value


def _body(base: dict[str, Any], **change: Any) -> dict[str, Any]:
    return {**base, **change}


# --- the cases ----------------------------------------------------------------------------------------------

ACCOUNT = {"name": "Savings", "type": "savings", "currency": "EUR", "opening_balance": "10.00"}
BUDGET = {"category": "Health", "amount": "50.00"}
TXN = {"account_id": Ref("account"), "type": "expense", "amount": "12.50", "occurred_on": "2026-10-15",
       "payee": "REWE"}

#: Amounts no money field accepts, whatever its currency or sign rules.
BAD_AMOUNTS = [
    ("a JSON number", 12.5), ("a JSON integer", 12), ("a boolean", True), ("null", None), ("a list", ["12.50"]),
    ("an object", {"amount": "12.50"}), ("empty", ""), ("blank", "   "), ("letters", "twelve"),
    ("NaN", "NaN"), ("nan", "nan"), ("Infinity", "Infinity"), ("-Infinity", "-Infinity"), ("an exponent", "1e3"),
    ("a capital exponent", "1E3"), ("a decimal comma", "12,50"), ("a thousands separator", "1,000.00"),
    ("hex", "0x10"), ("a currency sign", "€12.50"), ("a trailing point", "12."), ("a leading point", ".50"),
    ("too many decimals for EUR", "12.345"), ("a million million", "1000000000000"),
    ("a negative million million", "-1000000000000"), ("absurdly long", "9" * 70), ("two signs", "--12.50"),
    ("arabic-indic digits", "\u0661\u0662"),
]
#: Currency codes that are not ISO 4217 codes as written.
BAD_CURRENCIES = [("lowercase", "usd"), ("unknown", "XYZ"), ("four letters", "EURO"), ("a number", 5),
                  ("empty", ""), ("a list", ["EUR"]), ("with spaces", " EUR ")]


def _cases() -> list[Any]:
    """(method, path, body, expected status, field at fault), one pytest.param each."""
    cases: list[Any] = []

    def add(id_: str, method: str, path: str, body: Any = None, status: int = 422, field: str | None = None,
            **request: Any) -> None:
        cases.append(pytest.param(method, path, body, status, field, request, id=id_))

    # POST /accounts
    for key in ("name", "type", "currency"):
        add(f"account without {key}", "POST", ACCOUNTS, _body(ACCOUNT, **{key: DROP}), field=key)
    for what, name in [("empty", ""), ("a number", 5), ("null", None), ("too long", "x" * 201), ("a list", ["a"]),
                       ("with a NUL byte", "Main\x00")]:
        add(f"account name {what}", "POST", ACCOUNTS, _body(ACCOUNT, name=name), field="name")
    for what, kind in [("unknown", "piggy_bank"), ("capitalised", "Checking"), ("a list", ["checking"]),
                       ("a boolean", True), ("null", None)]:
        add(f"account type {what}", "POST", ACCOUNTS, _body(ACCOUNT, type=kind), field="type")
    for what, code in [*BAD_CURRENCIES, ("null", None)]:
        add(f"account currency {what}", "POST", ACCOUNTS, _body(ACCOUNT, currency=code), field="currency")
    for what, amount in BAD_AMOUNTS:
        add(f"account opening balance {what}", "POST", ACCOUNTS, _body(ACCOUNT, opening_balance=amount),
            field="opening_balance")
    add("account JPY opening balance with decimals", "POST", ACCOUNTS,
        _body(ACCOUNT, currency="JPY", opening_balance="100.5"), field="opening_balance")
    add("account BHD opening balance with four decimals", "POST", ACCOUNTS,
        _body(ACCOUNT, currency="BHD", opening_balance="1.2345"), field="opening_balance")
    add("account with an unknown field", "POST", ACCOUNTS, _body(ACCOUNT, balance="5.00"), field="balance")

    # GET /accounts/{id}
    add("unknown account", "GET", f"{ACCOUNTS}/{UNKNOWN_ID}", status=404)
    add("another user's account", "GET", f"{ACCOUNTS}/{{bob_account}}", status=404)
    add("malformed account id", "GET", f"{ACCOUNTS}/not-a-uuid", status=404)

    # POST /budgets
    for key in ("category", "amount"):
        add(f"budget without {key}", "POST", BUDGETS, _body(BUDGET, **{key: DROP}), field=key)
    for what, category in [("unknown", "Yachts"), ("empty", ""), ("a number", 5), ("null", None),
                           ("a list", ["Health"]), ("too long", "x" * 101), ("an unknown id", UNKNOWN_ID),
                           ("another user's category id", Ref("bob_category")), ("with a NUL byte", "Health\x00")]:
        add(f"budget category {what}", "POST", BUDGETS, _body(BUDGET, category=category), field="category")
    for what, amount in [*BAD_AMOUNTS, ("negative", "-50.00"), ("zero", "0"), ("zero with decimals", "0.00")]:
        add(f"budget amount {what}", "POST", BUDGETS, _body(BUDGET, amount=amount), field="amount")
    for what, code in BAD_CURRENCIES:
        add(f"budget currency {what}", "POST", BUDGETS, _body(BUDGET, currency=code), field="currency")
    add("budget currency other than the base currency", "POST", BUDGETS, _body(BUDGET, currency="USD"),
        field="currency")
    for what, period in [("unknown", "daily"), ("capitalised", "Monthly"), ("a number", 30), ("null", None)]:
        add(f"budget period {what}", "POST", BUDGETS, _body(BUDGET, period=period), field="period")
    for what, thresholds in [("zero", [0]), ("negative", [-5]), ("above 1000", [1001]), ("a fraction", [50.5]),
                             ("a float", [50.0]), ("a string item", ["50"]), ("a boolean item", [True]),
                             ("a null item", [None]), ("a string", "50,80"), ("a number", 50), ("null", None),
                             ("empty", []), ("too many", list(range(1, 12))), ("absurd", [10**20])]:
        add(f"budget thresholds {what}", "POST", BUDGETS, _body(BUDGET, thresholds=thresholds), field="thresholds")
    for what, rollover in [("unknown", "sometimes"), ("a boolean", True)]:
        add(f"budget rollover {what}", "POST", BUDGETS, _body(BUDGET, rollover=rollover), field="rollover")

    # GET /budgets/{id} and /budgets/{id}/status
    for path in ("", "/status"):
        add(f"unknown budget{path}", "GET", f"{BUDGETS}/{UNKNOWN_ID}{path}", status=404)
        add(f"another user's budget{path}", "GET", f"{BUDGETS}/{{bob_budget}}{path}", status=404)
        add(f"malformed budget id{path}", "GET", f"{BUDGETS}/not-a-uuid{path}", status=404)
    for budget, labels in [
        ("budget", ["2026-13", "2026-00", "2026-1", "26-10", "2026-10-01", "2026", "yesterday", "2026-W44", "0000-01",
                    "9999-12", "1899-12", "2026-10\n", " 2026-10", "２０２６-10"]),
        ("weekly_budget", ["2026-W54", "2026-W00", "2026-W1", "2026-10", "9999-W52", "2026-w44"]),
        ("yearly_budget", ["9999", "0000", "1899", "26", "2026-10", "+2026"]),
    ]:
        for label in labels:
            add(f"{budget} status period {label!r}", "GET", f"{BUDGETS}/{{{budget}}}/status", field="period",
                params={"period": label})

    # POST /transactions
    for key in ("account_id", "type", "amount", "occurred_on"):
        add(f"transaction without {key}", "POST", TRANSACTIONS, _body(TXN, **{key: DROP}), field=key)
    for what, account in [("malformed", "not-a-uuid"), ("a number", 5), ("null", None), ("a list", [UNKNOWN_ID])]:
        add(f"transaction account id {what}", "POST", TRANSACTIONS, _body(TXN, account_id=account),
            field="account_id")
    add("transaction on an unknown account", "POST", TRANSACTIONS, _body(TXN, account_id=UNKNOWN_ID), status=404,
        field="account_id")
    add("transaction on another user's account", "POST", TRANSACTIONS, _body(TXN, account_id=Ref("bob_account")),
        status=404, field="account_id")
    for what, kind in [("unknown", "refund"), ("a number", 1), ("null", None), ("capitalised", "Expense")]:
        add(f"transaction type {what}", "POST", TRANSACTIONS, _body(TXN, type=kind), field="type")
    add("transfer without counter account", "POST", TRANSACTIONS, _body(TXN, type="transfer"),
        field="counter_account_id")
    add("expense with a counter account", "POST", TRANSACTIONS,
        _body(TXN, counter_account_id=Ref("jpy_account")), field="counter_account_id")
    add("transfer to another user's account", "POST", TRANSACTIONS,
        _body(TXN, type="transfer", counter_account_id=Ref("bob_account")), status=404, field="counter_account_id")
    for what, amount in [*BAD_AMOUNTS, ("negative", "-12.50"), ("zero", "0"), ("zero with decimals", "0.00"),
                         ("negative zero", "-0.00")]:
        add(f"transaction amount {what}", "POST", TRANSACTIONS, _body(TXN, amount=amount), field="amount")
    add("transaction JPY amount with decimals on a JPY account", "POST", TRANSACTIONS,
        _body(TXN, account_id=Ref("jpy_account"), amount="100.5"), field="amount")
    add("transaction JPY amount with decimals on a EUR account", "POST", TRANSACTIONS,
        _body(TXN, currency="JPY", amount="100.5"), field="amount")
    add("transaction EUR amount with three decimals on a JPY account", "POST", TRANSACTIONS,
        _body(TXN, account_id=Ref("jpy_account"), currency="EUR", amount="12.345"), field="amount")
    for what, code in BAD_CURRENCIES:
        add(f"transaction currency {what}", "POST", TRANSACTIONS, _body(TXN, currency=code), field="currency")
    for what, day in [("month 13", "2026-13-01"), ("February 30", "2026-02-30"), ("a word", "yesterday"),
                      ("before 1900", "1899-12-31"), ("far future", FAR_FUTURE), ("year 9999", "9999-12-31"),
                      ("German style", "15.10.2026"), ("a number", 20261015), ("null", None), ("empty", ""),
                      ("a datetime", "2026-10-15T10:00:00"), ("a list", ["2026-10-15"])]:
        add(f"transaction date {what}", "POST", TRANSACTIONS, _body(TXN, occurred_on=day), field="occurred_on")
    for key, limit in (("payee", 200), ("description", 2000), ("notes", 2000)):
        for what, value in [("a number", 5), ("a list", ["a"]), ("too long", "x" * (limit + 1)),
                            ("with a NUL byte", "a\x00b")]:
            add(f"transaction {key} {what}", "POST", TRANSACTIONS, _body(TXN, **{key: value}), field=key)
    add("transaction payee on two lines", "POST", TRANSACTIONS, _body(TXN, payee="REWE\nLidl"), field="payee")
    for what, category in [("unknown", "Yachts"), ("empty", ""), ("a number", 5), ("too long", "x" * 101),
                           ("an unknown id", UNKNOWN_ID), ("another user's category id", Ref("bob_category")),
                           ("with a NUL byte", "Groceries\x00")]:
        add(f"transaction category {what}", "POST", TRANSACTIONS, _body(TXN, category=category), field="category")
    add("transaction with an unknown field", "POST", TRANSACTIONS, _body(TXN, amout="12.50"), field="amout")
    add("transaction with an over-long Idempotency-Key", "POST", TRANSACTIONS, TXN, field="Idempotency-Key",
        headers={"Idempotency-Key": "k" * 201})

    # GET /transactions/{id}
    add("unknown transaction", "GET", f"{TRANSACTIONS}/{UNKNOWN_ID}", status=404)
    add("another user's transaction", "GET", f"{TRANSACTIONS}/{{bob_txn}}", status=404)
    add("malformed transaction id", "GET", f"{TRANSACTIONS}/12345", status=404)
    return cases


@pytest.mark.parametrize(("method", "path", "body", "status", "field", "request_kwargs"), _cases())
def test_bad_input_is_refused_naming_the_field_and_changes_nothing(
        world: World, method: str, path: str, body: Any, status: int, field: str | None,
        request_kwargs: dict[str, Any]) -> None:
    """Alice's bad request answers 4xx in the one error shape naming the field at fault; nothing changes."""
    before = _state(world)
    kwargs = dict(request_kwargs)
    if body is not None:
        kwargs["json"] = _resolve(body, world.ids)
    r = world.alice.request(method, path.format(**world.ids), **kwargs)
    assert_refused(r, status, field)
    assert _state(world) == before


def test_a_foreign_id_answers_exactly_like_an_unknown_one(world: World) -> None:
    """Another household's ids are indistinguishable from ids that never existed: same 404, same message."""
    for kind, foreign in ((ACCOUNTS, "bob_account"), (BUDGETS, "bob_budget"), (TRANSACTIONS, "bob_txn")):
        mine = assert_refused(world.alice.get(f"{kind}/{world.ids[foreign]}"), 404)
        never = assert_refused(world.alice.get(f"{kind}/{UNKNOWN_ID}"), 404)
        assert mine == never
    assert world.bob.get(f"{ACCOUNTS}/{world.ids['bob_account']}").status_code == 200


# --- budgets in a zero-decimal base currency ----------------------------------------------------------------


@pytest.mark.parametrize("amount", ["100.5", "0.5", "-100", "0", "1e3", "1000000000000"])
def test_a_jpy_budget_refuses_amounts_jpy_cannot_have(world: World, amount: str) -> None:
    """Carol keeps her budgets in JPY: decimals, negatives, zero and exponents are refused, nothing is created."""
    before = _state(world)
    r = world.carol.post(BUDGETS, {"category": "Groceries", "amount": amount})
    assert_refused(r, 422, "amount")
    assert _state(world) == before


# --- bodies that are not JSON objects -----------------------------------------------------------------------

#: Every POST of the slice with a body that would be valid.
POSTS = {
    "register": (REGISTER, {"email": "nobody@example.com", "password": PASSWORD, "name": "Nobody"}),
    "login": (LOGIN, {"email": "nobody@example.com", "password": PASSWORD}),
    "account": (ACCOUNTS, ACCOUNT),
    "budget": (BUDGETS, BUDGET),
    "transaction": (TRANSACTIONS, TXN),
}


def _raw(world: World, endpoint: str, data: bytes, content_type: str | None) -> requests.Response:
    path, _ = POSTS[endpoint]
    client = world.anonymous if endpoint in ("register", "login") else world.alice
    headers = {"Content-Type": content_type} if content_type else {}
    return client.post(path, data=data, headers=headers)


def _valid_json(world: World, endpoint: str) -> bytes:
    return json.dumps(_resolve(POSTS[endpoint][1], world.ids)).encode()


@pytest.mark.parametrize("endpoint", POSTS)
@pytest.mark.parametrize(("what", "data"), [
    ("truncated", b'{"name": "Savings", '), ("single quotes", b"{'name': 'Savings'}"), ("not JSON at all", b"hello"),
    ("trailing garbage", b'{"a": 1} x'), ("a bare NaN", b'{"amount": NaN}'), ("invalid UTF-8", b'{"a": "\xff\xfe"}'),
])
def test_an_unparseable_json_body_is_a_400_saying_so(world: World, endpoint: str, what: str, data: bytes) -> None:
    """A body declared as JSON that does not parse answers 400 with a message about the JSON; nothing changes."""
    before = _state(world)
    body = assert_refused(_raw(world, endpoint, data, "application/json"), 400)
    assert "json" in body["message"].lower(), body
    assert _state(world) == before


@pytest.mark.parametrize("endpoint", POSTS)
@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "application/xml"])
def test_a_body_that_is_not_declared_json_is_a_415(world: World, endpoint: str, content_type: str) -> None:
    """A valid JSON text sent with another Content-Type is refused as 415, not read as an empty body."""
    before = _state(world)
    body = assert_refused(_raw(world, endpoint, _valid_json(world, endpoint), content_type), 415)
    assert "application/json" in body["message"], body
    assert _state(world) == before


@pytest.mark.parametrize("endpoint", POSTS)
@pytest.mark.parametrize("data", [b"[]", b"null", b'"a string"', b"42", b"true"])
def test_a_json_body_that_is_not_an_object_is_a_422(world: World, endpoint: str, data: bytes) -> None:
    """Valid JSON that is not an object answers 422 in the one shape; nothing changes."""
    before = _state(world)
    assert_refused(_raw(world, endpoint, data, "application/json"), 422)
    assert _state(world) == before


@pytest.mark.parametrize("endpoint", POSTS)
def test_an_empty_body_names_the_missing_fields(world: World, endpoint: str) -> None:
    """No body at all answers 422 naming every required field; nothing changes."""
    before = _state(world)
    body = assert_refused(_raw(world, endpoint, b"", "application/json"), 422)
    required = {"register": {"email", "password", "name"}, "login": {"email", "password"},
                "account": {"name", "type", "currency"}, "budget": {"category", "amount"},
                "transaction": {"account_id", "type", "amount", "occurred_on"}}[endpoint]
    assert required <= set(body["errors"]), body
    assert _state(world) == before


# --- register and log in ------------------------------------------------------------------------------------

REGISTRATION = {"email": Ref("new_email"), "password": PASSWORD, "name": "New Person"}


@pytest.mark.parametrize(("change", "field"), [
    pytest.param({"email": DROP}, "email", id="without email"),
    pytest.param({"password": DROP}, "password", id="without password"),
    pytest.param({"name": DROP}, "name", id="without name"),
    pytest.param({"email": "not-an-email"}, "email", id="email without @"),
    pytest.param({"email": "a@"}, "email", id="email without domain"),
    pytest.param({"email": "a b@example.com"}, "email", id="email with a space"),
    pytest.param({"email": 5}, "email", id="email a number"),
    pytest.param({"email": None}, "email", id="email null"),
    pytest.param({"email": ["a@example.com"]}, "email", id="email a list"),
    pytest.param({"email": "x" * 320 + "@example.com"}, "email", id="email too long"),
    pytest.param({"email": "a\x00b@example.com"}, "email", id="email with a NUL byte"),
    pytest.param({"password": "short"}, "password", id="password too short"),
    pytest.param({"password": "123456789"}, "password", id="password of nine characters"),
    pytest.param({"password": 12345678901}, "password", id="password a number"),
    pytest.param({"password": None}, "password", id="password null"),
    pytest.param({"password": "x" * 201}, "password", id="password too long"),
    pytest.param({"name": ""}, "name", id="name empty"),
    pytest.param({"name": 5}, "name", id="name a number"),
    pytest.param({"name": None}, "name", id="name null"),
    pytest.param({"name": "x" * 101}, "name", id="name too long"),
    pytest.param({"name": "New\x00Person"}, "name", id="name with a NUL byte"),
    pytest.param({"name": "New\nPerson"}, "name", id="name with a newline"),
    pytest.param({"base_currency": "usd"}, "base_currency", id="base currency lowercase"),
    pytest.param({"base_currency": "XYZ"}, "base_currency", id="base currency unknown"),
    pytest.param({"base_currency": "EURO"}, "base_currency", id="base currency four letters"),
    pytest.param({"base_currency": 5}, "base_currency", id="base currency a number"),
    pytest.param({"base_currency": None}, "base_currency", id="base currency null"),
    pytest.param({"phone": "12345"}, "phone", id="phone not E.164"),
    pytest.param({"phone": "+0123456789"}, "phone", id="phone with a leading zero"),
    pytest.param({"phone": 4930123456}, "phone", id="phone a number"),
    pytest.param({"phone": "+4930123456\n"}, "phone", id="phone with a trailing newline"),
    pytest.param({"role": "admin"}, "role", id="asking for a role"),
])
def test_a_bad_registration_creates_no_user(world: World, change: dict[str, Any], field: str) -> None:
    """A registration with a bad field answers 422 naming it; no user or household appears."""
    email = f"new-{uuid.uuid4().hex[:10]}@example.com"
    before = _state(world)
    r = world.anonymous.post(REGISTER, _resolve(_body(REGISTRATION, **change), {**world.ids, "new_email": email}))
    assert_refused(r, 422, field)
    assert _state(world) == before
    assert world.anonymous.post(LOGIN, {"email": email, "password": PASSWORD}).status_code == 401


def test_the_longest_accepted_name_registers(world: World) -> None:
    """A name at the limit is accepted: the household named after it fits too."""
    r = world.anonymous.post(REGISTER, {"email": f"long-{uuid.uuid4().hex[:10]}@example.com", "password": PASSWORD,
                                        "name": "x" * 100})
    assert r.status_code == 201, r.text


@pytest.mark.parametrize("spelling", ["same", "upper", "title"])
def test_registering_an_existing_email_is_a_409_naming_email(world: World, spelling: str) -> None:
    """An email that exists, however it is capitalised, answers 409 on email; nothing is created."""
    email = world.ids["alice_email"]
    email = {"same": email, "upper": email.upper(), "title": email.title()}[spelling]
    before = _state(world)
    r = world.anonymous.post(REGISTER, {"email": email, "password": PASSWORD, "name": "Impostor"})
    assert_refused(r, 409, "email")
    assert _state(world) == before


@pytest.mark.parametrize(("change", "field"), [
    pytest.param({"email": DROP}, "email", id="without email"),
    pytest.param({"password": DROP}, "password", id="without password"),
    pytest.param({"email": 5}, "email", id="email a number"),
    pytest.param({"email": None}, "email", id="email null"),
    pytest.param({"password": None}, "password", id="password null"),
    pytest.param({"password": ["x"]}, "password", id="password a list"),
    pytest.param({"email": "alice\x00@example.com"}, "email", id="email with a NUL byte"),
    pytest.param({"password": "x" * 100_000}, "password", id="password absurdly long"),
    pytest.param({"email": "x" * 100_000}, "email", id="email absurdly long"),
])
def test_a_malformed_login_is_a_422_naming_the_field(world: World, change: dict[str, Any], field: str) -> None:
    """A login body with a bad field answers 422 naming it; alice's last login does not move."""
    before = _state(world)
    body = _resolve(_body({"email": world.ids["alice_email"], "password": PASSWORD}, **change), world.ids)
    r = world.anonymous.post(LOGIN, body)
    assert_refused(r, 422, field)
    assert _state(world) == before


@pytest.mark.parametrize(("email", "password"), [
    pytest.param("alice", "wrong password, long enough", id="wrong password"),
    pytest.param("alice", "", id="empty password"),
    pytest.param("alice", PASSWORD.upper(), id="password in the wrong case"),
    pytest.param("nobody-at-all@example.com", PASSWORD, id="unknown email"),
    pytest.param("not an email", PASSWORD, id="not an email"),
])
def test_wrong_credentials_are_a_401_that_says_nothing_about_which(world: World, email: str, password: str) -> None:
    """Wrong credentials answer 401 with one message whichever part was wrong; alice's last login does not move."""
    email = world.ids["alice_email"] if email == "alice" else email
    before = _state(world)
    body = assert_refused(world.anonymous.post(LOGIN, {"email": email, "password": password}), 401)
    assert body["message"] == "wrong email or password", body
    assert _state(world) == before
