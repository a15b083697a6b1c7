"""The chaos run's load: users posting transactions, contributing to goals (and withdrawing from them) and
importing a statement over HTTP.

Every write carries an Idempotency-Key and is retried with the same key until it is accepted (or the run gives
up on it), as a careful client does through an outage; what was accepted (2xx) is recorded for the checks.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal

import requests

from tests.support.client import ApiClient, register

#: The day every transaction happens on (a date with an ECB rate, so a failing provider has a fallback).
DAY = "2026-10-15"
GOAL_TARGET = Decimal("300.00")
CONTRIBUTION = Decimal("100.00")
#: Taken out of each goal once it holds at least that much (its contributions then bring it to the target anyway).
WITHDRAWAL = Decimal("50.00")
IMPORT_ROWS = 40
#: How long one write is retried before the client gives up on it.
GIVE_UP_SECONDS = 90.0


@dataclass
class User:
    """One user (and household) of the run, with what was accepted for them."""

    client: ApiClient
    household_id: str
    account_id: str
    budget_id: str
    goal_id: str
    transactions: dict[str, str] = field(default_factory=dict)  # id -> amount, accepted
    contributions: dict[str, str] = field(default_factory=dict)  # id -> amount (a withdrawal's negative), accepted
    imports: list[str] = field(default_factory=list)


@dataclass
class Tally:
    """What the load generator saw, thread-safe."""

    attempts: int = 0
    accepted: int = 0
    refused: dict[str, int] = field(default_factory=dict)  # status (or exception) -> count
    given_up: list[str] = field(default_factory=list)  # idempotency keys never accepted
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def saw(self, outcome: str) -> None:
        """Count one answer."""
        with self._lock:
            self.attempts += 1
            if outcome.startswith("2"):
                self.accepted += 1
            else:
                self.refused[outcome] = self.refused.get(outcome, 0) + 1

    def gave_up(self, key: str) -> None:
        """Remember a write that never got a 2xx."""
        with self._lock:
            self.given_up.append(key)


def setup_users(url: str, count: int, budget: Decimal) -> list[User]:
    """Register `count` users, each with an account, a monthly grocery budget of `budget` (thresholds 50, 80,
    100 percent) and a savings goal."""
    users = []
    target_date = (dt.date.today() + dt.timedelta(days=400)).isoformat()
    for _ in range(count):
        client, me = register(url)
        account = client.open_account("EUR", opening="100000.00")
        made = client.create_budget("Groceries", str(budget), thresholds=[50, 80, 100])
        r = client.post("/api/v1/goals", {"name": "Bike", "target": {"amount": str(GOAL_TARGET)},
                                           "target_date": target_date})
        assert r.status_code == 201, r.text
        users.append(User(client, me["household_id"], account["id"], made["id"], r.json()["id"]))
    return users


def _attempt(send: Callable[[], requests.Response], tally: Tally, key: str, deadline: float) -> dict | None:
    """Send until a 2xx (its JSON) or the deadline (None); the same request each time."""
    pause = 0.2
    while time.monotonic() < deadline:
        try:
            r = send()
            outcome = str(r.status_code)
        except requests.RequestException as error:
            r, outcome = None, type(error).__name__
        tally.saw(outcome)
        if r is not None and r.ok:
            return r.json()
        if r is not None and 400 <= r.status_code < 500 and r.status_code != 429:
            raise AssertionError(f"the API refused a valid request: {r.status_code} {r.text}")
        time.sleep(pause)
        pause = min(pause * 2, 2.0)
    tally.gave_up(key)
    return None


def post_transaction(user: User, n: int, tally: Tally) -> None:
    """One grocery purchase (every tenth in USD), retried with its key until accepted."""
    key = uuid.uuid4().hex
    amount = f"{3 + n % 9}.{n * 7 % 100:02d}"
    extra = {"currency": "USD"} if n % 10 == 9 else {}
    body = {"account_id": user.account_id, "type": "expense", "amount": amount, "occurred_on": DAY,
            "payee": "REWE", **extra}
    answer = _attempt(lambda: user.client.post("/api/v1/transactions", body, headers={"Idempotency-Key": key},
                                               timeout=10), tally, key, time.monotonic() + GIVE_UP_SECONDS)
    if answer is not None:
        user.transactions[answer["id"]] = amount


def contribute(user: User, tally: Tally) -> None:
    """One contribution to the user's goal, retried with its key until accepted."""
    key = uuid.uuid4().hex
    path = f"/api/v1/goals/{user.goal_id}/contributions"
    answer = _attempt(lambda: user.client.post(path, {"amount": str(CONTRIBUTION)}, headers={"Idempotency-Key": key},
                                               timeout=10), tally, key, time.monotonic() + GIVE_UP_SECONDS)
    if answer is not None:
        user.contributions[answer["id"]] = str(CONTRIBUTION)


def withdraw(user: User, tally: Tally) -> None:
    """One withdrawal from the user's goal, once the goal shows that much saved (a valid request, not refused),
    retried with its key until accepted."""
    deadline = time.monotonic() + GIVE_UP_SECONDS
    while _saved(user) < WITHDRAWAL:
        if time.monotonic() > deadline:
            tally.gave_up(f"withdrawal from {user.goal_id}")
            return
        time.sleep(0.5)
    key = uuid.uuid4().hex
    path = f"/api/v1/goals/{user.goal_id}/withdrawals"
    answer = _attempt(lambda: user.client.post(path, {"amount": str(WITHDRAWAL)}, headers={"Idempotency-Key": key},
                                               timeout=10), tally, key, deadline)
    if answer is not None:
        user.contributions[answer["id"]] = str(-WITHDRAWAL)


def _saved(user: User) -> Decimal:
    """What the user's goal shows saved (0 while the API cannot say)."""
    try:
        r = user.client.get(f"/api/v1/goals/{user.goal_id}", timeout=10)
    except requests.RequestException:
        return Decimal(0)
    return Decimal(r.json()["saved"]["amount"]) if r.ok else Decimal(0)


def import_statement(user: User, tally: Tally) -> None:
    """A small CSV statement (recorded by the categorization pool); retried until accepted."""
    lines = ["Date,Payee,Description,Amount"] + [f"2026-09-{1 + i % 28:02d},Kiosk {i},row {i},-{1 + i}.25"
                                                 for i in range(IMPORT_ROWS)]
    mapping = {"date_column": "Date", "date_format": "%Y-%m-%d", "payee_column": "Payee",
               "description_column": "Description", "amount_column": "Amount"}
    data = ("\n".join(lines) + "\n").encode()
    key = f"import-{uuid.uuid4().hex}"

    def send() -> requests.Response:
        return user.client.request("POST", "/api/v1/imports", timeout=30,
                                   data={"account_id": user.account_id, "mapping": json.dumps(mapping)},
                                   files={"file": ("statement.csv", data, "text/csv")})

    # An import has no Idempotency-Key: only a request that got no answer at all may have landed; a re-sent
    # file is caught by the content hashes, so retrying is still safe.
    answer = _attempt(send, tally, key, time.monotonic() + GIVE_UP_SECONDS)
    if answer is not None:
        user.imports.append(answer["id"])


def look_at_budget(user: User) -> None:
    """Read where the budget stands, as people do (a read rebuilds a running total Redis lost); errors ignored."""
    try:
        user.client.get(f"/api/v1/budgets/{user.budget_id}/status", params={"period": DAY[:7]}, timeout=10)
    except requests.RequestException:
        pass


class Load:
    """Posts at `rate`/s spread over the users from `threads` client threads until stopped."""

    def __init__(self, users: list[User], rate: float, threads: int = 16) -> None:
        self.users, self.rate, self.threads = users, rate, threads
        self.tally = Tally()
        self._stop = threading.Event()
        self._next = 0
        self._lock = threading.Lock()
        self._workers: list[threading.Thread] = []
        self._start = 0.0

    def start(self) -> Load:
        """Start the client threads."""
        self._start = time.monotonic()
        self._workers = [threading.Thread(target=self._run, name=f"load-{i}", daemon=True)
                         for i in range(self.threads)]
        for worker in self._workers:
            worker.start()
        return self

    def _take(self) -> int | None:
        """The next request's number, once its time has come (None when stopped)."""
        with self._lock:
            n = self._next
            self._next += 1
        delay = self._start + n / self.rate - time.monotonic()
        if delay > 0 and self._stop.wait(delay):
            return None
        return None if self._stop.is_set() else n

    def _run(self) -> None:
        while (n := self._take()) is not None:
            user = self.users[n % len(self.users)]
            post_transaction(user, n // len(self.users), self.tally)
            if n % 10 == 0:
                look_at_budget(user)

    def stop(self) -> None:
        """Stop taking new requests and wait for those under way (they may still be retrying)."""
        self._stop.set()
        for worker in self._workers:
            worker.join(GIVE_UP_SECONDS + 15)
