"""Access control on every endpoint: who may call what, and what a stranger learns (nothing).

The endpoints are read from the running stack's OpenAPI document, so every case below walks a new endpoint the
moment it exists. What the document cannot say -- may a viewer write to it, is it for administrators, may a
personal access token call it, which ids fill its path, what a valid body is -- lives in the tables below; an
endpoint missing from them fails with a message asking its author to classify it.

One world per module: alice owns a household (an account, a budget, a transaction, a read and a read_write personal
access token); carol is a viewer there and acts in it with X-Household-ID; bob owns another household with the same
kinds of objects, which alice must never reach (404: not 403, not 200); dave is an administrator made by the
operator CLI; erin is a bystander (invited, logged out everywhere).

Decorator-level refusals (401, the read-only token, viewers on the household's data, non-admins, tokens on
login-only endpoints) are probed with a body that would NOT validate: authorization answers before the body is
parsed, so a 422 there means some view parses its body before checking who is asking.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

import jwt
import pytest
import requests

from tests.support.cli import run_cli
from tests.support.client import PASSWORD, register
from tests.support.stack import Stack, wait_for

pytestmark = pytest.mark.e2e

PREFIX = "/api/v1"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
REGISTER = ("POST", "/api/v1/auth/register")
LOGIN = ("POST", "/api/v1/auth/login")
REFRESH = ("POST", "/api/v1/auth/refresh")
#: Anyone may call these (refresh takes a refresh token: test_refresh_takes_only_a_live_refresh_token).
#: The link at the bottom of every email: a signed token, no login.
UNSUBSCRIBE = ("GET", "/api/v1/notification-preferences/unsubscribe")
PUBLIC = frozenset({REGISTER, LOGIN, REFRESH, UNSUBSCRIBE})
#: A body no endpoint accepts: a refusal that answers 422 to it parsed the body before authorizing.
PROBE_BODY = {"__not_a_field__": "authorization must answer before the body is parsed"}
#: Fields a client must never set through a body (unless the endpoint's schema names them on purpose).
PROTECTED_FIELDS = ("role", "household_id", "id", "created_at", "user_id")


@dataclass(frozen=True)
class Policy:
    """How an endpoint is guarded beyond authentication.

    kind: "household" -- the household's data: viewers and read-only tokens may only read;
          "owners"    -- household management: any member may read, only owners may write (checked in the service);
          "personal"  -- the caller's own things: a viewer may write them (a read-only token still may not);
          "admin"     -- platform administrators only.
    jwt_only: personal access tokens are refused (403): sessions and tokens are managed with a login.
    """

    kind: str
    jwt_only: bool = False


HOUSEHOLD = Policy("household")
OWNERS = Policy("owners")
PERSONAL = Policy("personal")
LOGIN_ONLY = Policy("personal", jwt_only=True)
ADMIN = Policy("admin")

#: Every authenticated endpoint and how it is guarded. A new endpoint fails test_every_endpoint_is_classified
#: until it is added here (and, if it writes, to valid_bodies; if it has a new path parameter, to the id tables).
ENDPOINTS: dict[tuple[str, str], Policy] = {
    ("POST", "/api/v1/auth/logout"): LOGIN_ONLY,
    ("POST", "/api/v1/auth/logout-all"): LOGIN_ONLY,
    ("GET", "/api/v1/users/me"): PERSONAL,
    ("PATCH", "/api/v1/users/me"): PERSONAL,
    ("GET", "/api/v1/households"): PERSONAL,
    ("GET", "/api/v1/households/{household_id}"): OWNERS,
    ("POST", "/api/v1/households/{household_id}/members"): OWNERS,
    ("PATCH", "/api/v1/households/{household_id}/members/{user_id}"): OWNERS,
    ("DELETE", "/api/v1/households/{household_id}/members/{user_id}"): OWNERS,
    ("GET", "/api/v1/tokens"): LOGIN_ONLY,
    ("POST", "/api/v1/tokens"): LOGIN_ONLY,
    ("DELETE", "/api/v1/tokens/{token_id}"): LOGIN_ONLY,
    ("GET", "/api/v1/accounts"): HOUSEHOLD,
    ("POST", "/api/v1/accounts"): HOUSEHOLD,
    ("GET", "/api/v1/accounts/{account_id}"): HOUSEHOLD,
    ("GET", "/api/v1/categories"): HOUSEHOLD,
    ("POST", "/api/v1/categories"): HOUSEHOLD,
    ("PATCH", "/api/v1/categories/{category_id}"): HOUSEHOLD,
    ("DELETE", "/api/v1/categories/{category_id}"): HOUSEHOLD,
    ("GET", "/api/v1/rules"): HOUSEHOLD,
    ("POST", "/api/v1/rules"): HOUSEHOLD,
    ("GET", "/api/v1/rules/{rule_id}"): HOUSEHOLD,
    ("PATCH", "/api/v1/rules/{rule_id}"): HOUSEHOLD,
    ("DELETE", "/api/v1/rules/{rule_id}"): HOUSEHOLD,
    ("POST", "/api/v1/rules/{rule_id}/apply"): HOUSEHOLD,
    ("POST", "/api/v1/imports"): HOUSEHOLD,
    ("GET", "/api/v1/imports/{import_id}"): HOUSEHOLD,
    ("DELETE", "/api/v1/imports/{import_id}"): HOUSEHOLD,
    ("POST", "/api/v1/transactions"): HOUSEHOLD,
    ("GET", "/api/v1/transactions"): HOUSEHOLD,
    ("GET", "/api/v1/transactions/{transaction_id}"): HOUSEHOLD,
    ("PATCH", "/api/v1/transactions/{transaction_id}"): HOUSEHOLD,
    ("DELETE", "/api/v1/transactions/{transaction_id}"): HOUSEHOLD,
    ("GET", "/api/v1/budgets"): HOUSEHOLD,
    ("POST", "/api/v1/budgets"): HOUSEHOLD,
    ("GET", "/api/v1/budgets/{budget_id}"): HOUSEHOLD,
    ("GET", "/api/v1/budgets/{budget_id}/status"): HOUSEHOLD,
    # Rates are global, but a household's own (manual) rates override them for it: reads answer for the household.
    ("GET", "/api/v1/fx/rates"): HOUSEHOLD,
    ("GET", "/api/v1/fx/manual-rates"): HOUSEHOLD,
    ("POST", "/api/v1/fx/manual-rates"): HOUSEHOLD,
    ("GET", "/api/v1/goals"): HOUSEHOLD,
    ("POST", "/api/v1/goals"): HOUSEHOLD,
    ("GET", "/api/v1/goals/{goal_id}"): HOUSEHOLD,
    ("PATCH", "/api/v1/goals/{goal_id}"): HOUSEHOLD,
    ("DELETE", "/api/v1/goals/{goal_id}"): HOUSEHOLD,
    ("GET", "/api/v1/goals/{goal_id}/contributions"): HOUSEHOLD,
    ("POST", "/api/v1/goals/{goal_id}/contributions"): HOUSEHOLD,
    ("POST", "/api/v1/goals/{goal_id}/withdrawals"): HOUSEHOLD,
    # Groups belong to people, not households: members of any household see them, nobody else does (404).
    ("GET", "/api/v1/groups"): PERSONAL,
    ("POST", "/api/v1/groups"): PERSONAL,
    ("GET", "/api/v1/groups/{group_id}"): PERSONAL,
    ("POST", "/api/v1/groups/{group_id}/members"): PERSONAL,
    ("DELETE", "/api/v1/groups/{group_id}/members/{user_id}"): PERSONAL,
    ("POST", "/api/v1/groups/{group_id}/contributions"): PERSONAL,
    ("GET", "/api/v1/notifications"): HOUSEHOLD,
    # Your own notifications and preferences: a viewer may mark hers read and choose her channels.
    ("PATCH", "/api/v1/notifications/{notification_id}"): PERSONAL,
    ("GET", "/api/v1/notification-preferences"): PERSONAL,
    ("PUT", "/api/v1/notification-preferences"): PERSONAL,
    ("POST", "/api/v1/auth/password"): LOGIN_ONLY,
    # Webhooks are the household's integrations: members manage them, viewers see them and their log.
    ("GET", "/api/v1/webhooks"): HOUSEHOLD,
    ("POST", "/api/v1/webhooks"): HOUSEHOLD,
    ("DELETE", "/api/v1/webhooks/{webhook_id}"): HOUSEHOLD,
    ("GET", "/api/v1/webhooks/{webhook_id}/deliveries"): HOUSEHOLD,
    ("GET", "/api/v1/insights/recurring"): HOUSEHOLD,
    ("GET", "/api/v1/insights/anomalies"): HOUSEHOLD,
    ("GET", "/api/v1/insights/forecast"): HOUSEHOLD,
    ("GET", "/api/v1/insights/forecast.png"): HOUSEHOLD,
    ("GET", "/api/v1/insights/forecast.svg"): HOUSEHOLD,
    ("GET", "/api/v1/reports/monthly"): HOUSEHOLD,
    ("GET", "/api/v1/reports/monthly.png"): HOUSEHOLD,
    ("GET", "/api/v1/reports/monthly.svg"): HOUSEHOLD,
    ("GET", "/api/v1/reports/yearly"): HOUSEHOLD,
    ("GET", "/api/v1/insights/trends"): HOUSEHOLD,
    ("GET", "/api/v1/insights/trends.png"): HOUSEHOLD,
    ("GET", "/api/v1/insights/trends.svg"): HOUSEHOLD,
    ("GET", "/api/v1/audit"): HOUSEHOLD,
    ("GET", "/api/v1/admin/audit"): ADMIN,
    ("GET", "/api/v1/admin/users"): ADMIN,
    ("PUT", "/api/v1/admin/users/{user_id}/roles"): ADMIN,
    ("POST", "/api/v1/admin/roles"): ADMIN,
}


#: A CSV mapping for the probe statement each household imports.
CSV_MAPPING = {"date_column": "Date", "date_format": "%Y-%m-%d", "payee_column": "Payee", "amount_column": "Amount"}
#: A rule every household can hold.
RULE = {"name": "Probe rule", "conditions": {"field": "payee", "op": "contains", "value": "probe"},
        "actions": [{"add_tag": "probe"}]}
#: A savings goal and a group savings challenge every household can hold.
GOAL = {"name": "Probe goal", "target": {"amount": "100.00"},
        "target_date": (dt.date.today() + dt.timedelta(days=365)).isoformat()}
GROUP = {"name": "Probe group", "target": {"amount": "100.00"}}
#: A webhook every household can hold (for goals reached, which the probes never reach).
WEBHOOK = {"url": "http://127.0.0.1:9/probe", "kinds": ["goal_reached"]}


class Unclassified(Exception):
    """The tables do not say what this endpoint should answer: its author must classify it."""


# --- the endpoints, as the running stack documents them ---------------------------------------------------------


@dataclass(frozen=True)
class Endpoint:
    """One (method, path) under /api/v1."""

    method: str
    path: str
    params: tuple[str, ...]
    #: The JSON body's fields, or None when the endpoint takes no JSON body.
    body_fields: frozenset[str] | None

    @property
    def key(self) -> tuple[str, str]:
        """(method, path) as in ENDPOINTS."""
        return self.method, self.path

    @property
    def writes(self) -> bool:
        """Any method but GET/HEAD/OPTIONS."""
        return self.method not in SAFE_METHODS

    @property
    def policy(self) -> Policy:
        """Its row in ENDPOINTS."""
        try:
            return ENDPOINTS[self.key]
        except KeyError:
            raise Unclassified(f"{self.method} {self.path} is not classified: add it to ENDPOINTS in "
                               f"{__file__} (household, owners, personal or admin; login-only?)") from None

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


def _resolve(spec: dict, schema: dict) -> dict:
    while "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        schema = spec["components"]["schemas"][name]
    return schema


def discover(base_url: str) -> list[Endpoint]:
    """Every (method, path) under /api/v1 in the running stack's OpenAPI document."""
    r = requests.get(f"{base_url}/openapi.json", timeout=15)
    assert r.status_code == 200, r.text
    spec = r.json()
    found = []
    for path, item in spec["paths"].items():
        if not path.startswith(PREFIX + "/"):
            continue
        shared = item.get("parameters", [])
        for method, op in item.items():
            if method == "parameters":
                continue
            params = tuple(p["name"] for p in shared + op.get("parameters", []) if p["in"] == "path")
            body = op.get("requestBody", {}).get("content", {}).get("application/json")
            fields = None if body is None else frozenset(_resolve(spec, body["schema"]).get("properties", {}))
            found.append(Endpoint(method.upper(), path, params, fields))
    assert found, "the OpenAPI document lists no endpoint under /api/v1"
    return found


# --- the world -------------------------------------------------------------------------------------------------


@dataclass
class World:
    """Who exists, their credentials (as request headers) and the ids of what they own."""

    url: str
    http: requests.Session
    endpoints: list[Endpoint]
    #: Credential name -> request headers.
    creds: dict[str, dict[str, str]]
    #: alice's own ids per path parameter name (user_id: carol, a member of alice's household).
    own: dict[str, str]
    #: bob's ids per path parameter name: another household's, never reachable by alice.
    foreign: dict[str, str]
    users: dict[str, dict]
    #: Refresh tokens of sessions that ended: "logged_out" (alice's), "everywhere" (erin's, by logout-all).
    dead_refresh: dict[str, str]
    sent: list[str] = field(default_factory=list)

    def send(self, method: str, path: str, headers: dict[str, str], body: Any = None) -> requests.Response:
        """One request; counted."""
        self.sent.append(f"{method} {path}")
        kwargs: dict[str, Any] = {"headers": headers, "timeout": 15}
        if body is not None:
            kwargs["json"] = body
        return self.http.request(method, self.url + path, **kwargs)


def bearer(token: str, household_id: str | None = None) -> dict[str, str]:
    """Headers that authenticate with a token (acting in another household when given)."""
    headers = {"Authorization": f"Bearer {token}"}
    if household_id:
        headers["X-Household-ID"] = household_id
    return headers


def login(http: requests.Session, url: str, email: str) -> dict:
    """A fresh login session: {access_token, refresh_token, ...}."""
    r = http.post(f"{url}/api/v1/auth/login", json={"email": email, "password": PASSWORD}, timeout=15)
    assert r.status_code == 200, r.text
    return r.json()


def forge(access_token: str, *, secret: str | None = None, algorithm: str = "HS256", **changes: Any) -> str:
    """A copy of a real access token with some claims changed, signed with the test secret (or another)."""
    claims = jwt.decode(access_token, options={"verify_signature": False})
    claims.update(changes)
    key = None if algorithm == "none" else (secret or os.environ["JWT_SECRET_KEY"])
    return jwt.encode(claims, key, algorithm=algorithm)


def valid_bodies(world: World) -> dict[tuple[str, str], dict]:
    """A body each writing endpoint would accept (in alice's household, with alice's ids)."""
    own = world.own
    return {
        ("POST", "/api/v1/auth/register"): {"email": f"new-{uuid.uuid4().hex[:10]}@example.com",
                                            "password": PASSWORD, "name": "New"},
        ("POST", "/api/v1/auth/login"): {"email": world.users["erin"]["email"], "password": PASSWORD},
        ("PATCH", "/api/v1/users/me"): {"name": "Renamed"},
        ("POST", "/api/v1/households/{household_id}/members"): {"email": world.users["erin"]["email"],
                                                                "role": "viewer"},
        ("PATCH", "/api/v1/households/{household_id}/members/{user_id}"): {"role": "owner"},
        ("POST", "/api/v1/tokens"): {"name": "script", "scope": "read_write"},
        ("POST", "/api/v1/accounts"): {"name": "Savings", "type": "savings", "currency": "EUR",
                                       "opening_balance": "10.00"},
        ("POST", "/api/v1/transactions"): {"account_id": own["account_id"], "type": "expense", "amount": "1.00",
                                           "occurred_on": "2026-10-15", "payee": "Probe"},
        ("PATCH", "/api/v1/transactions/{transaction_id}"): {"payee": "Renamed"},
        ("POST", "/api/v1/budgets"): {"category": "Dining", "amount": "10.00"},
        ("POST", "/api/v1/categories"): {"name": f"Probe {uuid.uuid4().hex[:8]}"},
        ("PATCH", "/api/v1/categories/{category_id}"): {"name": f"Renamed {uuid.uuid4().hex[:8]}"},
        ("POST", "/api/v1/rules"): RULE,
        ("PATCH", "/api/v1/rules/{rule_id}"): {"name": "Renamed rule"},
        ("POST", "/api/v1/fx/manual-rates"): {"base": "USD", "quote": "EUR", "rate": "0.9", "date": "2026-01-15"},
        ("POST", "/api/v1/goals"): GOAL,
        ("PATCH", "/api/v1/goals/{goal_id}"): {"name": "Renamed goal"},
        ("POST", "/api/v1/goals/{goal_id}/contributions"): {"amount": "1.00"},
        ("POST", "/api/v1/goals/{goal_id}/withdrawals"): {"amount": "1.00"},
        ("POST", "/api/v1/groups"): GROUP,
        ("POST", "/api/v1/groups/{group_id}/members"): {"email": world.users["erin"]["email"]},
        ("POST", "/api/v1/groups/{group_id}/contributions"): {"amount": "1.00"},
        ("PUT", "/api/v1/admin/users/{user_id}/roles"): {"roles": ["user"]},
        ("POST", "/api/v1/admin/roles"): {"user_id": own["user_id"], "role": "user"},
        ("PATCH", "/api/v1/notifications/{notification_id}"): {"read": True},
        ("PUT", "/api/v1/notification-preferences"): {"preferences": {"transaction": {"in_app": False}}},
        # Never the current password: should it ever go through, it changes nothing.
        ("POST", "/api/v1/auth/password"): {"current_password": "not the password", "new_password": "x" * 12},
        ("POST", "/api/v1/webhooks"): WEBHOOK,
    }


def valid_body(world: World, endpoint: Endpoint) -> dict | None:
    """A valid body for a writing endpoint with a JSON body (None when it takes none)."""
    if endpoint.body_fields is None:
        return None
    try:
        return valid_bodies(world)[endpoint.key]
    except KeyError:
        raise Unclassified(f"{endpoint} takes a JSON body: add a valid one to valid_bodies in {__file__}") from None


def fill(path: str, ids: dict[str, str], *, fallback: bool = False) -> str:
    """The path with its parameters filled from ids (a random uuid for unknown names when `fallback`)."""
    def one(match: re.Match) -> str:
        name = match.group(1)
        if name in ids:
            return ids[name]
        if fallback:
            return str(uuid.uuid4())
        raise Unclassified(f"no id for path parameter {name!r} ({path}): add alice's and bob's to the world "
                           f"fixture in {__file__}")
    return re.sub(r"\{(\w+)\}", one, path)


@pytest.fixture(scope="module")
def world(stack: Stack) -> Iterator[World]:
    """Alice's and bob's households with one of everything, a viewer, an administrator, and every kind of token."""
    tag = uuid.uuid4().hex[:8]
    http = requests.Session()
    url = stack.url
    people = {}
    for name in ("alice", "bob", "carol", "dave", "erin"):
        _, people[name] = register(url, email=f"{name}-{tag}@example.com")
    sessions = {name: login(http, url, me["email"]) for name, me in people.items()}
    access = {name: s["access_token"] for name, s in sessions.items()}

    def post(who: str, path: str, body: dict, expected: int = 201, **headers: str) -> dict:
        r = http.post(url + path, json=body, headers={**bearer(access[who]), **headers}, timeout=15)
        assert r.status_code == expected, f"{who} POST {path}: {r.status_code} {r.text}"
        return r.json()

    ids: dict[str, dict[str, str]] = {}
    pats: dict[str, dict] = {}
    for who in ("alice", "bob"):
        account = post(who, "/api/v1/accounts", {"name": "Main", "type": "checking", "currency": "EUR",
                                                 "opening_balance": "100.00"})
        budget = post(who, "/api/v1/budgets", {"category": "Groceries", "amount": "100.00"})
        txn = post(who, "/api/v1/transactions", {"account_id": account["id"], "type": "expense", "amount": "12.50",
                                                 "occurred_on": "2026-10-15", "payee": "REWE"}, expected=202)
        category = post(who, "/api/v1/categories", {"name": f"{who} probe"})
        rule = post(who, "/api/v1/rules", RULE)
        goal, group = post(who, "/api/v1/goals", GOAL), post(who, "/api/v1/groups", GROUP)
        for scope in ("read", "read_write"):
            pats[f"{who}_{scope}"] = post(who, "/api/v1/tokens", {"name": f"{who} {scope}", "scope": scope})
        statement = http.post(url + "/api/v1/imports", headers=bearer(access[who]), timeout=15, data={
            "account_id": account["id"], "mapping": json.dumps(CSV_MAPPING)}, files={
            "file": ("probe.csv", b"Date,Payee,Amount\n2026-10-01,Probe,-1.00\n", "text/csv")})
        assert statement.status_code == 202, statement.text
        ids[who] = {"account_id": account["id"], "budget_id": budget["id"], "transaction_id": txn["id"],
                    "household_id": people[who]["household_id"], "token_id": pats[f"{who}_read"]["id"],
                    "category_id": str(category["id"]), "rule_id": rule["id"], "import_id": statement.json()["id"],
                    "goal_id": goal["id"], "group_id": group["id"],
                    "webhook_id": post(who, "/api/v1/webhooks", WEBHOOK)["id"],
                    "notification_id": wait_for(lambda who=who: http.get(
                        url + "/api/v1/notifications", headers=bearer(access[who]), timeout=15).json()["items"],
                        timeout=20, what=f"{who}'s welcome notification")[0]["id"]}
    alice_household = people["alice"]["household_id"]
    post("alice", f"/api/v1/households/{alice_household}/members", {"email": people["carol"]["email"],
                                                                    "role": "viewer"})
    post("alice", f"/api/v1/groups/{ids['alice']['group_id']}/members", {"email": people["carol"]["email"]})
    run_cli("create-admin", people["dave"]["email"])

    revoked_pat = post("alice", "/api/v1/tokens", {"name": "revoked", "scope": "read_write"})
    r = http.delete(f"{url}/api/v1/tokens/{revoked_pat['id']}", headers=bearer(access["alice"]), timeout=15)
    assert r.status_code == 204, r.text
    logged_out = login(http, url, people["alice"]["email"])
    r = http.post(f"{url}/api/v1/auth/logout", headers=bearer(logged_out["access_token"]), timeout=15)
    assert r.status_code == 204, r.text
    everywhere = login(http, url, people["erin"]["email"])
    r = http.post(f"{url}/api/v1/auth/logout-all", headers=bearer(everywhere["access_token"]), timeout=15)
    assert r.status_code == 204, r.text
    refresh_only = login(http, url, people["alice"]["email"])["refresh_token"]

    alice_token = access["alice"]
    hour = 3600
    now = int(dt.datetime.now(dt.UTC).timestamp())
    creds = {
        "anonymous": {},
        "alice": bearer(alice_token),
        "alice_read_pat": bearer(pats["alice_read"]["token"]),
        "alice_read_write_pat": bearer(pats["alice_read_write"]["token"]),
        "bob_read_write_pat": bearer(pats["bob_read_write"]["token"]),
        "carol_viewer": bearer(access["carol"], alice_household),
        "admin": bearer(access["dave"]),
        "expired": bearer(forge(alice_token, iat=now - 2 * hour, nbf=now - 2 * hour, exp=now - hour)),
        "wrong_signature": bearer(forge(alice_token, secret="not-the-secret-0123456789abcdef012345")),
        "unsigned": bearer(forge(alice_token, algorithm="none")),
        "malformed": bearer("not.a.jwt"),
        "not_bearer": {"Authorization": f"Basic {alice_token}"},
        "unknown_user": bearer(forge(alice_token, sub=str(uuid.uuid4()))),
        "logged_out": bearer(logged_out["access_token"]),
        "logged_out_everywhere": bearer(everywhere["access_token"]),
        "refresh_as_access": bearer(refresh_only),
        "revoked_pat": bearer(revoked_pat["token"]),
        "unknown_pat": bearer("pfp_" + uuid.uuid4().hex),
        "alice_in_bobs_household": bearer(alice_token, people["bob"]["household_id"]),
        "alice_pat_in_bobs_household": bearer(pats["alice_read_write"]["token"], people["bob"]["household_id"]),
    }
    own = {**ids["alice"], "user_id": people["carol"]["id"]}
    foreign = {**ids["bob"], "user_id": people["bob"]["id"]}
    dead_refresh = {"logged_out": logged_out["refresh_token"], "everywhere": everywhere["refresh_token"]}
    yield World(url, http, discover(url), creds, own, foreign, people, dead_refresh)
    http.close()


# --- the cases: each turns an endpoint into requests with the status they must answer ---------------------------


@dataclass(frozen=True)
class Probe:
    """One request and the status it must answer."""

    who: str
    path: str
    body: Any
    expected: int


#: A case: (world, endpoint) -> the probes it makes of that endpoint (none when it does not apply).
Case = Callable[[World, Endpoint], list[Probe]]


def _probe_body(endpoint: Endpoint) -> Any:
    return PROBE_BODY if endpoint.writes else None


def refused_credentials(*names: str, expected: int) -> Case:
    """Every endpoint refuses these credentials with `expected`, before reading the body."""
    def case(world: World, endpoint: Endpoint) -> list[Probe]:
        path = fill(endpoint.path, world.own, fallback=True)
        return [Probe(name, path, _probe_body(endpoint), expected) for name in names]
    return case


def foreign_ids_in_path(world: World, endpoint: Endpoint) -> list[Probe]:
    """Alice naming another household's objects in the path: 404, one parameter at a time."""
    if not endpoint.params:
        return []
    if endpoint.policy.kind == "admin":  # administrators act on every user by design
        return []
    body = valid_body(world, endpoint)
    fill(endpoint.path, world.own)
    fill(endpoint.path, world.foreign)  # both tables know every parameter (or Unclassified)
    return [Probe("alice", fill(endpoint.path, {**world.own, name: world.foreign[name]}), body, 404)
            for name in endpoint.params]


def viewer_writing(world: World, endpoint: Endpoint) -> list[Probe]:
    """Carol, a viewer of alice's household, writing there: 403 unless the endpoint is her own things."""
    if not endpoint.writes:
        return []
    kind = endpoint.policy.kind
    if kind == "personal":
        return []
    # Household management is checked by the service (after parsing): it needs a body that would be accepted.
    body = valid_body(world, endpoint) if kind == "owners" else PROBE_BODY
    return [Probe("carol_viewer", fill(endpoint.path, world.own), body, 403)]


def non_admin(world: World, endpoint: Endpoint) -> list[Probe]:
    """Anyone but an administrator on an admin endpoint: 403."""
    if endpoint.policy.kind != "admin":
        return []
    path = fill(endpoint.path, world.own)
    return [Probe(who, path, _probe_body(endpoint), 403)
            for who in ("alice", "carol_viewer", "alice_read_write_pat")]


def read_token_writing(world: World, endpoint: Endpoint) -> list[Probe]:
    """A read-only personal access token writing anywhere: 403."""
    if not endpoint.writes:
        return []
    return [Probe("alice_read_pat", fill(endpoint.path, world.own, fallback=True), PROBE_BODY, 403)]


def token_on_login_only(world: World, endpoint: Endpoint) -> list[Probe]:
    """A read_write personal access token on an endpoint that needs a login: 403."""
    if not endpoint.policy.jwt_only:
        return []
    return [Probe("alice_read_write_pat", fill(endpoint.path, world.own), _probe_body(endpoint), 403)]


def reads_allowed(*names: str, kinds: tuple[str, ...], tokens: bool = True) -> Case:
    """The positive side: these callers read endpoints of these kinds (200), so the refusals above mean something."""
    def case(world: World, endpoint: Endpoint) -> list[Probe]:
        if endpoint.writes:
            return []
        policy = endpoint.policy
        if policy.kind not in kinds or (policy.jwt_only and not tokens):
            return []
        return [Probe(name, fill(endpoint.path, world.own), None, 200) for name in names]
    return case


CASES: dict[str, Case] = {
    "no token": refused_credentials("anonymous", "not_bearer", expected=401),
    "expired access token": refused_credentials("expired", expected=401),
    "malformed token": refused_credentials("malformed", "unsigned", "wrong_signature", expected=401),
    "revoked access token": refused_credentials("logged_out", "logged_out_everywhere", expected=401),
    "refresh token instead of access": refused_credentials("refresh_as_access", expected=401),
    "token of a user who does not exist": refused_credentials("unknown_user", expected=401),
    "revoked or unknown personal access token": refused_credentials("revoked_pat", "unknown_pat", expected=401),
    "another household in X-Household-ID": refused_credentials("alice_in_bobs_household",
                                                               "alice_pat_in_bobs_household", expected=404),
    "another household's ids in the path": foreign_ids_in_path,
    "viewer writing": viewer_writing,
    "non-admin on an admin endpoint": non_admin,
    "read-only personal access token writing": read_token_writing,
    "personal access token on a login-only endpoint": token_on_login_only,
    "owner reads": reads_allowed("alice", kinds=("household", "owners", "personal")),
    "viewer reads": reads_allowed("carol_viewer", kinds=("household", "owners", "personal")),
    "read-only token reads": reads_allowed("alice_read_pat", kinds=("household", "owners", "personal"),
                                           tokens=False),
    "administrator reads": reads_allowed("admin", kinds=("admin",)),
}


def error_shape_problem(r: requests.Response) -> str | None:
    """What is wrong with an error answer's shape, if anything."""
    try:
        body = r.json()
    except ValueError:
        return f"not JSON: {r.text[:200]!r}"
    expected = {"code": r.status_code, "status": HTTPStatus(r.status_code).phrase}
    if not isinstance(body, dict) or {k: body.get(k) for k in expected} != expected:
        return f"not the one error shape with code {r.status_code}: {body}"
    if not isinstance(body.get("message"), str) or not isinstance(body.get("errors"), dict):
        return f"error without message or errors: {body}"
    return None


def run_probes(world: World, endpoint: Endpoint, probes: list[Probe]) -> list[str]:
    """The problems with each probe's answer."""
    problems = []
    for probe in probes:
        r = world.send(endpoint.method, probe.path, world.creds[probe.who], probe.body)
        where = f"{endpoint.method} {probe.path} as {probe.who}"
        if r.status_code != probe.expected:
            problems.append(f"{where}: {r.status_code} (expected {probe.expected}): {r.text[:300]}")
        elif r.status_code >= 400 and (shape := error_shape_problem(r)):
            problems.append(f"{where}: {shape}")
    return problems


def authenticated(world: World) -> list[Endpoint]:
    """Every discovered endpoint but the public ones."""
    return [e for e in world.endpoints if e.key not in PUBLIC]


@pytest.mark.parametrize("case", CASES)
def test_every_endpoint(world: World, case: str) -> None:
    """Each case walks every authenticated endpoint the stack documents and answers as the case says."""
    problems, walked = [], 0
    for endpoint in authenticated(world):
        try:
            probes = CASES[case](world, endpoint)
        except Unclassified as exc:
            problems.append(str(exc))
            continue
        walked += bool(probes)
        problems += run_probes(world, endpoint, probes)
    assert not problems, f"{case}: {len(problems)} problem(s):\n" + "\n".join(problems)
    assert walked, f"{case}: no endpoint to walk"


def test_head_is_guarded_like_get(world: World) -> None:
    """Flask answers HEAD for every GET endpoint: without a token 401, from another household 404, else 200."""
    problems = []
    for endpoint in authenticated(world):
        if endpoint.method != "GET":
            continue
        path = fill(endpoint.path, world.own, fallback=True)
        reader = "admin" if ENDPOINTS.get(endpoint.key) == ADMIN else "alice"
        for who, expected in (("anonymous", 401), ("alice_in_bobs_household", 404), (reader, 200)):
            r = world.send("HEAD", path, world.creds[who])
            if r.status_code != expected:
                problems.append(f"HEAD {path} as {who}: {r.status_code} (expected {expected})")
    assert not problems, "\n".join(problems)


def test_every_endpoint_is_classified(world: World) -> None:
    """Each endpoint under /api/v1 is public or in ENDPOINTS, and ENDPOINTS names no endpoint that is gone."""
    documented = {e.key for e in world.endpoints}
    unknown = sorted(documented - PUBLIC - ENDPOINTS.keys())
    gone = sorted(ENDPOINTS.keys() - documented)
    assert not unknown, (f"classify these endpoints in ENDPOINTS ({__file__}) so the access tests know what they "
                         f"must answer: {unknown}")
    assert not gone, f"ENDPOINTS lists endpoints the API no longer has: {gone}"
    assert PUBLIC <= documented, f"public endpoints missing: {sorted(PUBLIC - documented)}"


# --- refresh, escalation, ids in bodies ----------------------------------------------------------------------------


def test_refresh_takes_only_a_live_refresh_token(world: World) -> None:
    """POST /auth/refresh: no token, an access token, a PAT, a forged, revoked or reused refresh token -> 401."""
    session = login(world.http, world.url, world.users["alice"]["email"])
    refresh = session["refresh_token"]
    now = int(dt.datetime.now(dt.UTC).timestamp())
    refused = {
        "no token": {},
        "an access token": bearer(session["access_token"]),
        "a personal access token": world.creds["alice_read_write_pat"],
        "an expired refresh token": bearer(forge(refresh, iat=now - 7200, nbf=now - 7200, exp=now - 3600)),
        "a refresh token with a wrong signature": bearer(forge(refresh, secret="not-the-secret-0123456789abcdef01")),
        "a logged-out session's refresh token": bearer(world.dead_refresh["logged_out"]),
        "a refresh token from before logout-all": bearer(world.dead_refresh["everywhere"]),
    }
    for what, headers in refused.items():
        r = world.send("POST", "/api/v1/auth/refresh", headers)
        assert r.status_code == 401, f"{what}: {r.status_code} {r.text}"
        assert error_shape_problem(r) is None, f"{what}: {error_shape_problem(r)}"
    r = world.send("POST", "/api/v1/auth/refresh", bearer(refresh))
    assert r.status_code == 200, r.text
    rotated = r.json()
    r = world.send("POST", "/api/v1/auth/refresh", bearer(refresh))
    assert r.status_code == 401, f"reused refresh token: {r.status_code} {r.text}"
    r = world.send("GET", "/api/v1/users/me", bearer(rotated["access_token"]))
    assert r.status_code == 401, f"reuse revokes the whole session: {r.status_code} {r.text}"


def test_nobody_grants_themselves_more(world: World) -> None:
    """Alice cannot make herself an admin; carol cannot make herself an owner; the roles stay as they were."""
    alice, carol = world.users["alice"], world.users["carol"]
    household = alice["household_id"]
    attempts = [
        ("alice", "PUT", f"/api/v1/admin/users/{alice['id']}/roles", {"roles": ["admin"]}),
        ("alice", "POST", "/api/v1/admin/roles", {"user_id": alice["id"], "role": "admin"}),
        ("alice_read_write_pat", "POST", "/api/v1/admin/roles", {"user_id": alice["id"], "role": "admin"}),
        ("carol_viewer", "PATCH", f"/api/v1/households/{household}/members/{carol['id']}", {"role": "owner"}),
        ("carol_viewer", "POST", f"/api/v1/households/{household}/members",
         {"email": world.users["erin"]["email"], "role": "owner"}),
        ("alice_read_pat", "PATCH", f"/api/v1/households/{household}/members/{carol['id']}", {"role": "member"}),
    ]
    for who, method, path, body in attempts:
        r = world.send(method, path, world.creds[who], body)
        assert r.status_code == 403, f"{who} {method} {path}: {r.status_code} {r.text}"
    # Someone else's token is not found, even for a member of the same household.
    r = world.send("DELETE", f"/api/v1/tokens/{world.own['token_id']}", world.creds["carol_viewer"])
    assert r.status_code == 404, f"carol revoking alice's token: {r.status_code} {r.text}"
    assert world.send("GET", "/api/v1/users/me", world.creds["alice"]).json()["role"] == "user"
    assert world.send("GET", "/api/v1/admin/users", world.creds["alice"]).status_code == 403
    r = world.send("GET", f"/api/v1/households/{household}", world.creds["alice"])
    assert {m["email"]: m["role"] for m in r.json()["members"]} == {alice["email"]: "owner", carol["email"]: "viewer"}


def test_a_removed_members_tokens_die_with_the_membership(world: World) -> None:
    """Frank, a member of alice's household, may write its data but not manage it; once removed, his token for it is
    refused (401) and stays refused when he is added again; his login then answers 404 for that household."""
    household = world.users["alice"]["household_id"]
    members = f"/api/v1/households/{household}/members"
    _, frank = register(world.url)
    r = world.send("POST", members, world.creds["alice"], {"email": frank["email"], "role": "member"})
    assert r.status_code == 201, r.text
    frank_login = bearer(login(world.http, world.url, frank["email"])["access_token"], household)
    r = world.send("POST", "/api/v1/tokens", frank_login, {"name": "frank's script", "scope": "read_write"})
    assert r.status_code == 201, r.text
    frank_pat = bearer(r.json()["token"])
    assert world.send("GET", f"/api/v1/accounts/{world.own['account_id']}", frank_pat).status_code == 200
    r = world.send("POST", "/api/v1/budgets", frank_pat, {"category": "Travel", "amount": "10.00"})
    assert r.status_code == 201, f"a member writes the household's data: {r.status_code} {r.text}"
    for method, path, body in (("PATCH", f"{members}/{frank['id']}", {"role": "owner"}),
                               ("POST", members, {"email": world.users["erin"]["email"], "role": "viewer"}),
                               ("DELETE", f"{members}/{world.own['user_id']}", None)):
        r = world.send(method, path, frank_pat, body)
        assert r.status_code == 403, f"a member managing the household: {method} {path}: {r.status_code} {r.text}"

    r = world.send("DELETE", f"{members}/{frank['id']}", world.creds["alice"])
    assert r.status_code == 204, r.text
    r = world.send("GET", "/api/v1/accounts", frank_pat)
    assert r.status_code == 401, f"a removed member's token: {r.status_code} {r.text}"
    assert error_shape_problem(r) is None
    assert world.send("GET", "/api/v1/accounts", frank_login).status_code == 404
    r = world.send("POST", members, world.creds["alice"], {"email": frank["email"], "role": "member"})
    assert r.status_code == 201, r.text
    r = world.send("POST", "/api/v1/budgets", frank_pat, {"category": "Dining", "amount": "10.00"})
    assert r.status_code == 401, f"re-adding a member revived their old token: {r.status_code} {r.text}"
    r = world.send("DELETE", f"{members}/{frank['id']}", world.creds["alice"])
    assert r.status_code == 204, r.text


def test_another_households_ids_in_a_body_are_not_found(world: World) -> None:
    """Alice recording a transaction on bob's account: 404 naming account_id, and nothing is recorded."""
    body = {**valid_bodies(world)[("POST", "/api/v1/transactions")], "account_id": world.foreign["account_id"]}
    r = world.send("POST", "/api/v1/transactions", world.creds["alice"], body)
    assert r.status_code == 404, r.text
    assert r.json()["errors"] == {"account_id": ["no such account"]}


def test_another_household_is_left_untouched(world: World) -> None:
    """After every probe, bob's household still has only bob, his token still works, his objects are all there."""
    bob_pat = world.creds["bob_read_write_pat"]
    me = world.send("GET", "/api/v1/users/me", bob_pat)
    assert me.status_code == 200, me.text
    assert me.json()["role"] == "user"
    r = world.send("GET", f"/api/v1/households/{world.foreign['household_id']}", bob_pat)
    assert [m["email"] for m in r.json()["members"]] == [world.users["bob"]["email"]]
    for name in ("account_id", "budget_id", "transaction_id"):
        resource = {"account_id": "accounts", "budget_id": "budgets", "transaction_id": "transactions"}[name]
        r = world.send("GET", f"/api/v1/{resource}/{world.foreign[name]}", bob_pat)
        assert r.status_code == 200, f"bob's {resource}: {r.status_code} {r.text}"
    assert [t["name"] for t in world.send("GET", "/api/v1/tokens", world.creds["alice"]).json()["items"]
            if t["revoked_at"] is None] == ["alice read", "alice read_write"]


# --- mass assignment -------------------------------------------------------------------------------------------------


#: Who sends the bodies of each kind of endpoint in the mass-assignment walk.
BODY_SENDER = {"admin": "admin", "public": "anonymous"}
#: What a client might try to sneak in.
SNEAKED = {"role": "admin", "household_id": None, "id": None, "created_at": "2000-01-01T00:00:00+00:00",
           "user_id": None}


@pytest.mark.parametrize("sneaked", PROTECTED_FIELDS)
def test_no_body_sets_protected_fields(world: World, sneaked: str) -> None:
    """Every body-taking endpoint refuses role, household_id, id, created_at and user_id as unknown fields (422 naming
    the field), unless its schema names the field on purpose (then the endpoint's authorization guards it)."""
    value = SNEAKED[sneaked] or {"household_id": world.foreign["household_id"], "id": str(uuid.uuid4()),
                                 "user_id": world.users["bob"]["id"]}[sneaked]
    problems, walked = [], 0
    for endpoint in world.endpoints:
        if endpoint.body_fields is None or sneaked in endpoint.body_fields:
            continue
        try:
            body = {**valid_body(world, endpoint), sneaked: value}
            kind = "public" if endpoint.key in PUBLIC else endpoint.policy.kind
            path = fill(endpoint.path, world.own)
        except Unclassified as exc:
            problems.append(str(exc))
            continue
        walked += 1
        r = world.send(endpoint.method, path, world.creds[BODY_SENDER.get(kind, "alice")], body)
        errors = r.json().get("errors") if r.headers.get("Content-Type", "").startswith("application/json") else None
        if r.status_code != 422 or not isinstance(errors, dict) or set(errors) != {sneaked}:
            problems.append(f"{endpoint.method} {path} with {sneaked}={value!r}: {r.status_code} {r.text[:300]} "
                            f"(expected 422 naming only {sneaked!r})")
    assert not problems, "\n".join(problems)
    assert walked


def test_registering_cannot_choose_a_role(world: World) -> None:
    """Registering with role admin (or an id, household or creation date) is refused and creates nobody."""
    for sneaked, value in (("role", "admin"), ("household_id", world.foreign["household_id"]),
                           ("id", world.users["bob"]["id"]), ("created_at", "2000-01-01T00:00:00+00:00")):
        email = f"sneaky-{uuid.uuid4().hex[:10]}@example.com"
        body = {"email": email, "password": PASSWORD, "name": "Sneaky", sneaked: value}
        r = world.send("POST", "/api/v1/auth/register", {}, body)
        assert r.status_code == 422, f"{sneaked}: {r.status_code} {r.text}"
        assert set(r.json()["errors"]) == {sneaked}, r.text
        r = world.send("POST", "/api/v1/auth/login", {}, {"email": email, "password": PASSWORD})
        assert r.status_code == 401, f"the refused registration created {email}: {r.status_code} {r.text}"
    # Registered the honest way, the user is a plain user in a household of their own.
    _, me = register(world.url)
    assert me["role"] == "user"
    assert me["household_id"] not in (world.own["household_id"], world.foreign["household_id"])


def test_profile_keeps_its_role_and_ids(world: World) -> None:
    """PATCH /users/me with role, household_id, id or created_at: 422, and the profile still shows the old values."""
    before = world.send("GET", "/api/v1/users/me", world.creds["alice"]).json()
    sneaky = {"role": "admin", "household_id": world.foreign["household_id"], "id": str(uuid.uuid4()),
              "created_at": "2000-01-01T00:00:00+00:00", "user_id": world.users["bob"]["id"]}
    for name, value in sneaky.items():
        r = world.send("PATCH", "/api/v1/users/me", world.creds["alice"], {"name": "Alice", name: value})
        assert r.status_code == 422, f"{name}: {r.status_code} {r.text}"
        assert set(r.json()["errors"]) == {name}, r.text
    after = world.send("GET", "/api/v1/users/me", world.creds["alice"]).json()
    assert after == before
    assert after["role"] == "user"
