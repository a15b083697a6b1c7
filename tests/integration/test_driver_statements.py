"""A statement run on the driver's cursor behaves as Connection.execute: the same rows, inside the Connection's
transaction, SQLAlchemy's errors, a lost connection invalidated, and the engine's cursor events fired."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, bindparam, column, create_engine, event, literal_column, select, table, text
from sqlalchemy import exc as sql

from models.base import make_engine
from models.driver import DriverStatement
from tests.support.isolation import TEST_ENV

SCRATCH = table("driver_scratch", column("id"), column("name"))
PAIR = DriverStatement(select(bindparam("a", type_=None).label("a"), literal_column("'x'").label("b")))
INSERT = DriverStatement(SCRATCH.insert().values(id=bindparam("id"), name=bindparam("name")))
BY_ID = DriverStatement(select(SCRATCH.c.name).where(SCRATCH.c.id == bindparam("id")))


@pytest.fixture
def engine() -> Iterator[Engine]:
    built = make_engine(TEST_ENV["DATABASE_URL"], pool_size=1, max_overflow=0)
    with built.begin() as conn:
        conn.execute(text("CREATE TABLE IF NOT EXISTS driver_scratch (id int PRIMARY KEY, name text)"))
        conn.execute(text("TRUNCATE driver_scratch"))
    yield built
    built.dispose()


def test_rows_come_back_as_named_tuples(engine: Engine) -> None:
    with engine.connect() as conn:
        row = PAIR.first(conn, {"a": 41})
    assert (row.a, row.b) == (41, "x")


def test_it_runs_inside_the_connections_transaction(engine: Engine) -> None:
    with engine.connect() as conn:
        conn.begin()
        INSERT.rows(conn, {"id": 1, "name": "kept?"})
        assert BY_ID.first(conn, {"id": 1}).name == "kept?"
        conn.rollback()
    with engine.connect() as conn:
        assert BY_ID.first(conn, {"id": 1}) is None


def test_a_unique_violation_is_sqlalchemys_integrity_error(engine: Engine) -> None:
    with engine.begin() as conn:
        INSERT.rows(conn, {"id": 1, "name": "first"})
    with engine.connect() as conn, pytest.raises(sql.IntegrityError):
        INSERT.rows(conn, {"id": 1, "name": "again"})


def test_a_lost_connection_is_invalidated_and_replaced(engine: Engine) -> None:
    with engine.connect() as conn:
        pid = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
        admin = create_engine(TEST_ENV["DATABASE_URL"], isolation_level="AUTOCOMMIT")
        with admin.connect() as other:
            other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        admin.dispose()
        with pytest.raises(sql.OperationalError):
            PAIR.first(conn, {"a": 1})
        assert conn.invalidated
    with engine.connect() as conn:
        assert conn.execute(text("SELECT pg_backend_pid()")).scalar_one() != pid


def test_the_engines_cursor_events_see_the_statement(engine: Engine) -> None:
    seen: list[str] = []
    event.listen(engine, "before_cursor_execute", lambda *args: seen.append(args[2].split()[0]))
    with engine.connect() as conn:
        PAIR.first(conn, {"a": 1})
    assert seen == ["SELECT"]
