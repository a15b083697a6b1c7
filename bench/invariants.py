"""The invariants of DESIGN.md, checked after a chaos run once the system is quiet: each a list of violations.

SQL is the truth; what the load generator was told (2xx answers) is what must be there, once.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from decimal import Decimal
from typing import Any

import redis
from sqlalchemy import text
from sqlalchemy.engine import Engine

from bench.workload import IMPORT_ROWS, User
from domain.money import from_minor_units
from services.budget_totals import TOTAL, key
from tests.support import rabbit_admin
from tests.support.cli import run_cli


@dataclass(frozen=True)
class Violation:
    """One invariant broken, with what shows it."""

    invariant: str
    detail: str


def _rows(engine: Engine, sql: str, **params: Any) -> list[Any]:
    with engine.connect() as conn:
        return list(conn.execute(text(sql), params))


def accepted_recorded_once(engine: Engine, users: list[User]) -> list[Violation]:
    """Every accepted transaction is recorded; no household holds a transaction nobody's key accounts for."""
    found = []
    for u in users:
        rows = dict(_rows(engine, "SELECT id::text, status FROM transactions WHERE household_id = :h "
                                  "AND import_id IS NULL", h=u.household_id))
        lost = [t for t in u.transactions if t not in rows]
        unrecorded = [f"{t}={rows[t]}" for t in u.transactions if rows.get(t, "recorded") != "recorded"]
        unkeyed = _rows(engine, "SELECT t.id FROM transactions t LEFT JOIN idempotency_keys k "
                                "ON k.transaction_id = t.id WHERE t.household_id = :h AND t.import_id IS NULL "
                                "AND k.key IS NULL", h=u.household_id)
        found += [Violation("accepted transaction recorded", f"lost {t}") for t in lost]
        found += [Violation("accepted transaction recorded", f"not recorded {t}") for t in unrecorded]
        found += [Violation("recorded once", f"transaction {r[0]} without a client key (a duplicate)") for r in unkeyed]
    return found


def landed_unacknowledged(engine: Engine, users: list[User]) -> int:
    """Transactions recorded whose client gave up before hearing 2xx (their request did land): explained."""
    count = 0
    for u in users:
        count += len(_rows(engine, "SELECT id FROM transactions WHERE household_id = :h AND import_id IS NULL "
                                   "AND NOT (id::text = ANY(:ids))", h=u.household_id, ids=list(u.transactions)))
    return count


def balances_match(engine: Engine, users: list[User]) -> list[Violation]:
    """Each account's balance is its opening balance plus what its recorded transactions moved."""
    found = []
    for u in users:
        [(balance, expected, unconverted)] = _rows(engine, """
            SELECT a.balance, a.opening_balance + coalesce(sum(CASE WHEN t.type = 'income' THEN t.account_amount
                                                                    ELSE -t.account_amount END), 0),
                   count(t.id) FILTER (WHERE t.account_amount IS NULL)
            FROM accounts a LEFT JOIN transactions t ON t.account_id = a.id AND t.status = 'recorded'
                                                    AND t.deleted_at IS NULL
            WHERE a.id = :a GROUP BY a.id""", a=u.account_id)
        if balance != expected:
            found.append(Violation("balance equals SQL sum", f"account {u.account_id}: {balance} != {expected}"))
        if unconverted:
            found.append(Violation("converted, never 1:1", f"account {u.account_id}: {unconverted} not converted"))
    return found


def _budget_periods(engine: Engine, u: User) -> list[Any]:
    return _rows(engine, """
        SELECT b.id::text, b.amount, b.currency, b.thresholds, e.period_start, sum(e.amount), count(*)
        FROM budgets b JOIN budget_entries e ON e.budget_id = b.id WHERE b.id = :b
        GROUP BY b.id, e.period_start""", b=u.budget_id)


def budgets_match(engine: Engine, users: list[User], client: redis.Redis) -> list[Violation]:
    """Budget entries are exactly the recorded groceries; the Redis running total (where present) equals SQL."""
    found = []
    for u in users:
        [(should_count, should_sum)] = _rows(engine, """
            SELECT count(*), coalesce(sum(t.base_amount), 0)
            FROM transactions t JOIN categories c ON c.id = t.category_id
            WHERE t.household_id = :h AND c.name = 'Groceries' AND t.type = 'expense' AND t.status = 'recorded'
              AND t.deleted_at IS NULL AND t.occurred_on BETWEEN '2026-10-01' AND '2026-10-31'""", h=u.household_id)
        periods = _budget_periods(engine, u)
        counted = sum(p[6] for p in periods)
        total = sum((p[5] for p in periods), Decimal(0))
        if counted != should_count or total != should_sum:
            found.append(Violation("budget counts each transaction once",
                                   f"budget {u.budget_id}: {counted} entries {total} != {should_count} {should_sum}"))
        for budget_id, _, currency, _, start, sql_sum, _ in periods:
            raw = client.hget(key(budget_id, start), TOTAL)  # type: ignore[arg-type]
            if raw is not None and from_minor_units(int(raw), currency) != sql_sum:
                found.append(Violation("budget total (Redis) equals SQL",
                                       f"budget {budget_id} {start}: redis {from_minor_units(int(raw), currency)} "
                                       f"sql {sql_sum}"))
            spent = Decimal(u.client.budget_status(budget_id, start.strftime("%Y-%m"))["spent"])
            if spent != sql_sum:
                found.append(Violation("budget total (API) equals SQL", f"budget {budget_id}: {spent} != {sql_sum}"))
    return found


def reconcile_clean(env: dict[str, str]) -> list[Violation]:
    """`python -m config.cli reconcile` finds nothing to fix (run last: it repairs what it finds)."""
    for _ in range(5):  # PostgreSQL may refuse a connection for a moment on a busy machine ("too many clients")
        out = run_cli("reconcile", env=env, check=False)
        if out.returncode == 0 or "too many clients" not in out.stderr:
            break
        time.sleep(3)
    if out.returncode != 0:
        return [Violation("reconcile", f"exit {out.returncode}: {out.stderr.strip()[-300:]}")]
    found = [Violation("reconcile finds nothing", line) for line in out.stdout.splitlines() if "-> fixed" in line]
    if "outbox: published 0," not in out.stdout:
        found.append(Violation("reconcile finds nothing", out.stdout.strip().splitlines()[-1]))
    return found


def thresholds_alerted_once(engine: Engine, users: list[User]) -> list[Violation]:
    """Each threshold the SQL total crossed has one alert, one event and one in-app notification per member."""
    found = []
    for u in users:
        for budget_id, amount, _, thresholds, start, sql_sum, _ in _budget_periods(engine, u):
            crossed = sorted(t for t in thresholds if sql_sum * 100 >= amount * t)
            alerts = _rows(engine, "SELECT threshold, event_id::text FROM budget_alerts WHERE budget_id = :b "
                                   "AND period_start = :p ORDER BY threshold", b=budget_id, p=start)
            if [a[0] for a in alerts] != crossed:
                found.append(Violation("each threshold alerted once",
                                       f"budget {budget_id}: alerts {[a[0] for a in alerts]}, crossed {crossed}"))
            found += _notified_once(engine, u, [a[1] for a in alerts], "BudgetThresholdCrossed")
        [(events,)] = _rows(engine, "SELECT count(*) FROM outbox WHERE envelope->>'type' = 'BudgetThresholdCrossed' "
                                    "AND envelope->'payload'->>'budget_id' = :b", b=u.budget_id)
        [(alerts_total,)] = _rows(engine, "SELECT count(*) FROM budget_alerts WHERE budget_id = :b", b=u.budget_id)
        if events != alerts_total:
            found.append(Violation("each threshold alerted once",
                                   f"budget {u.budget_id}: {events} events for {alerts_total} alerts"))
    return found


def _notified_once(engine: Engine, u: User, event_ids: list[str], kind: str) -> list[Violation]:
    found = []
    members = _rows(engine, "SELECT user_id::text FROM household_members WHERE household_id = :h", h=u.household_id)
    for event_id in event_ids:
        got = _rows(engine, "SELECT user_id::text, count(*) FROM notifications WHERE event_id = :e AND "
                            "channel = 'in_app' GROUP BY user_id", e=event_id)
        if sorted(g[0] for g in got) != sorted(m[0] for m in members) or any(g[1] != 1 for g in got):
            found.append(Violation(f"{kind} notified once", f"event {event_id}: {got} for {len(members)} member(s)"))
    return found


def goals_match(engine: Engine, users: list[User]) -> list[Violation]:
    """Every accepted contribution and withdrawal counted once (a withdrawal taken out); a goal reached is announced
    once."""
    found = []
    for u in users:
        rows = dict(_rows(engine, "SELECT id::text, status FROM goal_contributions WHERE goal_id = :g", g=u.goal_id))
        if set(u.contributions) - set(rows) or any(rows[c] != "recorded" for c in u.contributions if c in rows):
            found.append(Violation("accepted contribution recorded", f"goal {u.goal_id}: {rows} vs {u.contributions}"))
        if len(rows) != len(u.contributions):
            found.append(Violation("contribution recorded once", f"goal {u.goal_id}: {len(rows)} rows for "
                                                                 f"{len(u.contributions)} accepted"))
        [(saved, target, event)] = _rows(engine, """
            SELECT coalesce(sum(CASE WHEN c.kind = 'withdrawal' THEN -c.amount ELSE c.amount END)
                            FILTER (WHERE c.status = 'recorded'), 0), g.target_amount,
                   g.reached_event_id::text
            FROM goals g LEFT JOIN goal_contributions c ON c.goal_id = g.id WHERE g.id = :g
            GROUP BY g.id""", g=u.goal_id)
        accepted = sum((Decimal(amount) for amount in u.contributions.values()), Decimal(0))
        shown = Decimal(u.client.get(f"/api/v1/goals/{u.goal_id}").json()["saved"]["amount"])
        if not shown == saved == accepted:
            found.append(Violation("goal saved (API) equals what was accepted",
                                   f"goal {u.goal_id}: API {shown}, SQL {saved}, accepted {accepted}"))
        [(announced,)] = _rows(engine, "SELECT count(*) FROM outbox WHERE envelope->>'type' = 'GoalReached' "
                                       "AND envelope->'payload'->>'goal_id' = :g", g=u.goal_id)
        if announced != (1 if saved >= target else 0) or (event is None) != (saved < target):
            found.append(Violation("goal reached announced once",
                                   f"goal {u.goal_id}: saved {saved} of {target}, {announced} GoalReached"))
        if event:
            found += _notified_once(engine, u, [event], "GoalReached")
    return found


def imports_complete(engine: Engine, users: list[User]) -> list[Violation]:
    """Each accepted import finished with every row imported once."""
    found = []
    for u in users:
        for import_id in u.imports:
            [(status, imported, duplicates, landed)] = _rows(engine, """
                SELECT i.status, i.imported, i.duplicates,
                       (SELECT count(*) FROM transactions t WHERE t.import_id = i.id)
                FROM imports i WHERE i.id = :i""", i=import_id)
            if status != "finished" or imported + duplicates != IMPORT_ROWS or landed != imported:
                found.append(Violation("import rows recorded once", f"import {import_id}: {status}, imported "
                                       f"{imported}, duplicates {duplicates}, {landed} transactions"))
    return found


def emails_at_most_once(engine: Engine, mails: dict[str, int]) -> list[Violation]:
    """Every email was delivered once, or failed with its outcome unknown (a worker died during the provider call:
    never sent twice, by design); none is left queued. `mails`: notification id -> 2xx answers the provider gave."""
    found = []
    rows = _rows(engine, "SELECT id::text, status, coalesce(reason, '') FROM notifications WHERE channel = 'email'")
    for notification_id, status, reason in rows:
        sent = mails.get(notification_id, 0)
        if sent > 1:
            found.append(Violation("email sent at most once", f"notification {notification_id}: {sent} emails"))
        if status == "sent" and sent == 0:
            found.append(Violation("email delivered", f"notification {notification_id}: sent, provider got none"))
        if status not in ("sent", "failed") or (status == "failed" and "outcome unknown" not in reason):
            found.append(Violation("email delivered", f"notification {notification_id}: {status} {reason}"))
    return found


def outbox_audited_once(engine: Engine) -> list[Violation]:
    """Every event committed to the outbox was published and archived by the audit pool exactly once."""
    [(events, unpublished, audited)] = _rows(engine, """
        SELECT count(*), count(*) FILTER (WHERE o.published_at IS NULL), count(a.event_id)
        FROM outbox o LEFT JOIN audit_events a ON a.event_id = o.event_id""")
    found = []
    if unpublished:
        found.append(Violation("every event published", f"{unpublished} of {events} outbox events unpublished"))
    if audited != events:
        missing = _rows(engine, "SELECT o.envelope->>'type', count(*) FROM outbox o LEFT JOIN audit_events a "
                                "ON a.event_id = o.event_id WHERE a.event_id IS NULL GROUP BY 1")
        found.append(Violation("each event audited once", f"{events - audited} of {events} not audited: {missing}"))
    return found


def dead_letters(vhost: str, env: dict[str, str]) -> list[Violation]:
    """Nothing waits in a dead-letter queue (each one is listed with its reason)."""
    if not _dead_lettered(vhost):
        return []
    out = run_cli("dlq", "list", env=env, check=False).stdout.splitlines()
    return [Violation("nothing dead-lettered", line) for line in out if "\t" in line]


def _dead_lettered(vhost: str) -> int:
    """Messages in the dead-letter queues, counted by RabbitMQ now (the management API's figures lag seconds)."""
    import pika

    names = [q["name"] for q in rabbit_admin.list_queues(vhost) if q["name"].endswith(".XQ")]
    connection = pika.BlockingConnection(pika.URLParameters(rabbit_admin.amqp_url(vhost)))
    try:
        channel = connection.channel()
        return sum(channel.queue_declare(name, passive=True).method.message_count for name in names)
    finally:
        connection.close()


def outbox_unpublished(engine: Engine) -> int:
    """How many outbox events still wait to be published."""
    return _rows(engine, "SELECT count(*) FROM outbox WHERE published_at IS NULL")[0][0]


def queued(vhost: str) -> int:
    """Messages ready, unacked or delayed in every queue but the dead-letter ones."""
    return sum(q.get("messages", 0) for q in rabbit_admin.list_queues(vhost) if not q["name"].endswith(".XQ"))


def settled(engine: Engine, users: list[User]) -> bool:
    """Nothing accepted is still pending (transactions, contributions, imports)."""
    ids = [t for u in users for t in u.transactions]
    [(pending,)] = _rows(engine, "SELECT count(*) FROM transactions WHERE status = 'pending' "
                                 "OR (status = 'recorded' AND account_amount IS NULL) "
                                 "OR id::text = ANY(:ids) AND status <> 'recorded'", ids=ids)
    [(contributions,)] = _rows(engine, "SELECT count(*) FROM goal_contributions WHERE status = 'pending'")
    [(imports,)] = _rows(engine, "SELECT count(*) FROM imports WHERE status NOT IN ('finished', 'failed')")
    [(notifications,)] = _rows(engine, "SELECT count(*) FROM notifications WHERE status IN ('queued', 'sending')")
    return pending == 0 and contributions == 0 and imports == 0 and notifications == 0


def wait_quiet(engine: Engine, users: list[User], vhost: str, timeout: float = 240,
               watchdog: Callable[[], None] = lambda: None) -> float:
    """Wait until nothing is pending, queued or unpublished for 7 polls in a row (the management API's queue
    figures lag up to 5 s); the seconds it took."""
    start = time.monotonic()
    quiet = 0
    while time.monotonic() - start < timeout:
        watchdog()
        try:
            calm = settled(engine, users) and queued(vhost) == 0 and outbox_unpublished(engine) == 0
        except Exception:  # noqa: BLE001 - a service still coming back: not quiet yet
            calm = False
        quiet = quiet + 1 if calm else 0
        if quiet >= 7:
            break
        time.sleep(1.0)
    return round(time.monotonic() - start, 1)


def check_all(engine: Engine, users: list[User], client: redis.Redis, vhost: str, env: dict[str, str],
              mails: dict[str, int]) -> list[Violation]:
    """Every invariant, reconcile last (it repairs what it finds); `env` points the operator CLI at the run."""
    return (accepted_recorded_once(engine, users) + balances_match(engine, users) + emails_at_most_once(engine, mails)
            + budgets_match(engine, users, client) + thresholds_alerted_once(engine, users)
            + goals_match(engine, users) + imports_complete(engine, users) + outbox_audited_once(engine)
            + dead_letters(vhost, env) + reconcile_clean(env))


def as_json(violations: list[Violation]) -> list[dict[str, str]]:
    """The violations as JSON."""
    return [asdict(v) for v in violations]


def prove_checks_fail(engine: Engine, users: list[User], client: redis.Redis, vhost: str,
                      env: dict[str, str]) -> dict[str, bool]:
    """Break each kind of invariant on purpose, one at a time, and see its check report it (then repair it):
    a check that cannot fail proves nothing. Run after the verdict."""
    u = users[0]
    caught: dict[str, bool] = {}

    def flags(name: str, check: Callable[[], list[Violation]]) -> None:
        caught[name] = any(v.invariant == name for v in check())

    lost = "00000000-0000-4000-8000-000000000000"
    u.transactions[lost] = "1.00"
    flags("accepted transaction recorded", lambda: accepted_recorded_once(engine, [u]))
    del u.transactions[lost]
    _sabotage(engine, "UPDATE accounts SET balance = balance + 1 WHERE id = :a", a=u.account_id)
    flags("balance equals SQL sum", lambda: balances_match(engine, [u]))
    _sabotage(engine, "UPDATE accounts SET balance = balance - 1 WHERE id = :a", a=u.account_id)
    twin = "00000000-0000-4000-8000-000000000001"
    _sabotage(engine, "INSERT INTO transactions SELECT (jsonb_populate_record(t, jsonb_build_object('id', (:id)::text, "
                      "'dedupe_key', null))).* FROM transactions t WHERE t.id = (:t)::uuid",
              id=twin, t=next(iter(u.transactions)))
    flags("recorded once", lambda: accepted_recorded_once(engine, [u]))
    _sabotage(engine, "DELETE FROM transactions WHERE id = (:id)::uuid", id=twin)
    [(budget_id, _, _, _, start, _, _)] = _budget_periods(engine, u)[:1]
    client.hincrby(key(budget_id, start), TOTAL, 100)  # type: ignore[arg-type]
    flags("budget total (Redis) equals SQL", lambda: budgets_match(engine, [u], client))
    client.delete(key(budget_id, start))  # type: ignore[arg-type]  (rebuilt from SQL on the next read)
    _sabotage(engine, "INSERT INTO budget_alerts (budget_id, period_start, threshold, event_id) "
                      "VALUES (:b, :p, 1, gen_random_uuid())", b=budget_id, p=start)
    flags("each threshold alerted once", lambda: thresholds_alerted_once(engine, [u]))
    _sabotage(engine, "DELETE FROM budget_alerts WHERE budget_id = :b AND threshold = 1", b=budget_id)
    _sabotage(engine, "INSERT INTO outbox (event_id, exchange, envelope, published_at) VALUES (gen_random_uuid(), "
                      "'finance.transactions', '{\"type\": \"Sabotage\"}', now())")
    flags("each event audited once", lambda: outbox_audited_once(engine))
    _sabotage(engine, "DELETE FROM outbox WHERE envelope->>'type' = 'Sabotage'")
    with _dead_letter(vhost):
        flags("nothing dead-lettered", lambda: dead_letters(vhost, env))
    return caught


@contextmanager
def _dead_letter(vhost: str) -> Iterator[None]:
    """A message planted in the budgets pool's dead-letter queue while the block runs."""
    import pika
    from dramatiq.message import Message

    connection = pika.BlockingConnection(pika.URLParameters(rabbit_admin.amqp_url(vhost)))
    channel = connection.channel()
    body = Message(queue_name="budgets.events", actor_name="sabotage", args=(), kwargs={}, options={}).encode()
    channel.basic_publish("", "budgets.events.XQ", body)
    try:
        yield
    finally:
        channel.basic_get("budgets.events.XQ", auto_ack=True)
        connection.close()


def _sabotage(engine: Engine, sql: str, **params: Any) -> None:
    with engine.begin() as conn:
        conn.execute(text(sql), params)
