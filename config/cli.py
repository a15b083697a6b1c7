"""The operator CLI: `python -m config.cli release|migrate|topology|dlq list|dlq replay Q|reconcile|audit ...`."""

from __future__ import annotations

import datetime as dt
import re
import sys
import uuid

import click
import pika
from dramatiq.common import xq_name
from dramatiq.message import Message
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from actors.pools import load_all
from config import wiring
from config.logs import configure_logging
from config.settings import get_settings
from domain.events import EXCHANGES
from services.outbox import relay_pending, unpublished_count


@click.group()
def cli() -> None:
    """Operate the finance platform."""
    configure_logging(get_settings().log_level, process_type="cli")
    wiring.identify("cli")


def ensure_database() -> None:
    """In development, create the configured database if it does not exist yet."""
    url = make_url(get_settings().database_url)
    admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        if not conn.scalar(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": url.database}):
            conn.execute(text(f'CREATE DATABASE "{url.database}"'))
    admin.dispose()


def run_migrations() -> None:
    """Upgrade the database schema to the newest migration."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", "models:migrations")
    config.set_main_option("sqlalchemy.url", get_settings().database_url.replace("%", "%%"))
    command.upgrade(config, "head")


def declare_topology() -> None:
    """Declare every exchange, pool queue (with .DQ and .XQ) and binding."""
    load_all()
    wiring.broker().declare_topology(EXCHANGES)


@cli.command()
def migrate() -> None:
    """Apply database migrations."""
    run_migrations()
    click.echo("database migrated")


@cli.command()
def topology() -> None:
    """Declare exchanges, queues and bindings on RabbitMQ."""
    declare_topology()
    click.echo(f"declared {len(EXCHANGES)} exchanges and {len(wiring.broker().queues)} queues")


@cli.command()
def release() -> None:
    """The release phase: database, migrations, broker topology."""
    if not get_settings().is_production:
        ensure_database()
    run_migrations()
    declare_topology()
    click.echo("release done: database migrated, broker topology declared")


@cli.group()
def dlq() -> None:
    """Dead-letter queues: list and replay."""


def _peek(channel: pika.adapters.blocking_connection.BlockingChannel, queue: str) -> list[Message]:
    """Every message in a queue, left in place (unacked, requeued when the channel closes)."""
    messages = []
    while True:
        method, _, body = channel.basic_get(queue, auto_ack=False)
        if method is None:
            return messages
        messages.append(Message.decode(body))


#: A traceback line that names the exception: "package.SomeError: what went wrong".
_EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*: ")


def failure_reason(message: Message) -> str:
    """The exception line of the last failure's traceback, cut to one readable line."""
    lines = (message.options.get("traceback") or "").strip().splitlines()
    named = [line for line in lines if _EXCEPTION_LINE.match(line)]
    return (named or lines or ["(no traceback recorded)"])[-1][:300]


@dlq.command("list")
def dlq_list() -> None:
    """Show every dead-lettered message per pool queue."""
    load_all()
    broker = wiring.broker()
    total = 0
    for queue in sorted(broker.queues):
        channel = broker.connection.channel()
        for message in _peek(channel, xq_name(queue)):
            total += 1
            click.echo(f"{queue}\t{message.message_id}\t{message.actor_name}\t"
                       f"retries={message.options.get('retries', 0)}\t{failure_reason(message)}")
        channel.close()
    click.echo(f"{total} dead-lettered message(s)")


@dlq.command("replay")
@click.argument("queue")
def dlq_replay(queue: str) -> None:
    """Send every dead-lettered message of QUEUE back to QUEUE, with fresh retries."""
    load_all()
    broker = wiring.broker()
    if queue not in broker.queues:
        raise click.BadParameter(f"unknown queue; one of {', '.join(sorted(broker.queues))}")
    channel = broker.connection.channel()
    replayed = 0
    while True:
        method, _, body = channel.basic_get(xq_name(queue), auto_ack=False)
        if method is None:
            break
        message = Message.decode(body)
        options = {k: v for k, v in message.options.items() if k not in ("retries", "traceback", "eta")}
        broker.enqueue(message.copy(queue_name=queue, options=options))
        channel.basic_ack(method.delivery_tag)
        replayed += 1
    channel.close()
    click.echo(f"replayed {replayed} message(s) to {queue}")


@cli.command("create-admin")
@click.argument("email")
def create_admin(email: str) -> None:
    """Make the registered user with EMAIL a platform administrator (how the first admin is made)."""
    from services.users import find_user, set_role

    user = find_user(email, wiring.uow())
    if user is None:
        raise click.BadParameter("no registered user has this email", param_hint="EMAIL")
    set_role(None, user.id, "admin", wiring.uow(), correlation_id="cli:create-admin")
    click.echo(f"{user.email} is now an administrator")


@cli.command()
def reconcile() -> None:
    """Prove Redis can be rebuilt from SQL: fix every budget total that differs; publish the outbox backlog."""
    from services.budget_totals import reconcile as reconcile_totals

    differences = reconcile_totals(wiring.redis_client(), wiring.uow())
    for d in differences:
        click.echo(f"budget {d.budget_id} period {d.period_start}: redis {d.redis_total} sql {d.sql_total} -> fixed")
    click.echo(f"budget totals: {len(differences)} fixed")
    sent = relay_pending(wiring.session_factory(), wiring.publish, older_than_seconds=0, limit=100_000)
    click.echo(f"outbox: published {sent}, still waiting {unpublished_count(wiring.session_factory())}")


@cli.command("rebuild-aggregates")
@click.option("--household", type=click.UUID, help="Only this household; default: every household.")
def rebuild_aggregates(household: object | None) -> None:
    """Recompute the insights pool's daily and monthly aggregates from the transactions in SQL."""
    from services.insights_aggregates import rebuild_all, rebuild_household

    if household is not None:
        rebuild_household(household, wiring.uow())  # type: ignore[arg-type]
        click.echo(f"aggregates rebuilt for household {household}")
    else:
        click.echo(f"aggregates rebuilt for {rebuild_all(wiring.uow())} household(s)")


@cli.command("rotate-keys")
@click.option("--batch-size", default=500, type=click.IntRange(min=1), show_default=True, help="Rows per transaction.")
def rotate_keys(batch_size: int) -> None:
    """Re-encrypt every EncryptedText value under the primary key of ENCRYPTION_KEYS."""
    from config.crypto import install_keys
    from models.all import Base
    from models.crypto import DecryptionError, encrypted_columns, rotate_column

    install_keys()
    total = 0
    for column in encrypted_columns(Base.metadata):
        try:
            rotated, current = rotate_column(wiring.engine(), column, batch_size)
        except DecryptionError as error:
            raise click.ClickException(f"{error} (is every old key still listed in ENCRYPTION_KEYS?)") from error
        total += rotated
        click.echo(f"{column.table.name}.{column.name}: rotated {rotated}, already under the primary key {current}")
    click.echo(f"rotated {total} value(s)")


@cli.command("backfill-devices")
@click.option("--days", default=90, show_default=True, type=click.IntRange(min=1),
              help="Read the audit trail's sign-ups and sign-ins of this many days.")
def backfill_devices(days: int) -> None:
    """Remember the devices users signed up or in from before devices were kept (from the audit trail), so their
    next login from one of them is not announced as a new device. Safe to run twice."""
    from domain.devices import Device
    from services.audit import AuditQuery
    from services.identity import remember_seen_devices

    since = dt.datetime.now(dt.UTC) - dt.timedelta(days=days)
    records = wiring.audit_store().export(AuditQuery(types=("UserRegistered", "LoginSucceeded"), since=since))
    seen = ((uuid.UUID(r["user_id"]), Device(r["origin"].get("client_address") or "unknown",
                                             r["origin"].get("user_agent") or ""),
             dt.datetime.fromisoformat(r["occurred_at"])) for r in records if r.get("user_id") and r.get("origin"))
    click.echo(f"remembered {remember_seen_devices(seen, wiring.uow())} device(s) from {days} days of the audit trail")


@cli.group()
def audit() -> None:
    """The audit trail: verify its hash chains, export it, apply retention."""


@audit.command("verify")
@click.option("--household", help="Verify one household's chain (or 'platform'); default: every chain.")
def audit_verify(household: str | None) -> None:
    """Recompute every chain; name the first broken record (changed, deleted or reordered); exit 1 if any."""
    from services.audit import verify

    reports = verify(wiring.audit_store(), household)
    for report in reports:
        click.echo(str(report.broken) if report.broken else f"chain {report.chain_id}: {report.records} record(s) ok")
    if any(r.broken for r in reports):
        sys.exit(1)


@audit.command("export")
@click.option("--household", help="Only this household's records.")
@click.option("--type", "types", multiple=True, help="Only these event types (repeatable).")
@click.option("--from", "since", type=click.DateTime(), help="Occurred at or after (UTC).")
@click.option("--to", "until", type=click.DateTime(), help="Occurred before (UTC).")
def audit_export(household: str | None, types: tuple[str, ...], since: dt.datetime | None,
                 until: dt.datetime | None) -> None:
    """Write records as JSON lines, oldest first, with their chain fields (seq, prev_hash, hash)."""
    import json

    from services.audit import AuditQuery

    utc = [m.replace(tzinfo=dt.UTC) if m else None for m in (since, until)]
    for record in wiring.audit_store().export(AuditQuery(household_id=household, types=types, since=utc[0],
                                                         until=utc[1])):
        click.echo(json.dumps(record, sort_keys=True, ensure_ascii=False))


@audit.command("purge")
@click.option("--days", type=click.IntRange(min=1), help="Keep this many days (default: AUDIT_RETENTION_DAYS).")
def audit_purge(days: int | None) -> None:
    """Remove records older than the retention period; each chain keeps an anchor so it still verifies."""
    from actors.audit import purge_expired

    days = days or get_settings().audit_retention_days
    if not days:
        raise click.UsageError("AUDIT_RETENTION_DAYS is 0 (keep forever): pass --days to purge anyway")
    click.echo(f"removed {purge_expired(days)} audit record(s) older than {days} days")


if __name__ == "__main__":
    sys.exit(cli())
