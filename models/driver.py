"""Hot statements run on the driver's own cursor: compiled once, without SQLAlchemy's per-execution work.

A Core statement executed through a Connection costs a cache lookup, parameter processing and a result wrapper on
every call, which is most of the CPU of a one-row read on a web request. For the few statements on every
request's path the SQL is compiled once (with the dialect's casts, so psycopg's own adaptation of UUIDs, dates and
Decimals gives the same values) and run on the connection's psycopg cursor, inside whatever transaction the
Connection holds. Errors come out as SQLAlchemy's (IntegrityError, OperationalError, ...), a connection lost
midway is invalidated, and the engine's cursor events fire, as with Connection.execute.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import psycopg
from psycopg.rows import namedtuple_row
from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql import Executable


class DriverStatement:
    """A Core statement whose bound values are all given by name (no literals bound at build time)."""

    def __init__(self, statement: Executable) -> None:
        self._statement = statement
        self._sql: str | None = None
        self._defaults: dict[str, Any] = {}

    def _compiled(self, connection: Connection) -> str:
        if self._sql is None:
            compiled = self._statement.compile(dialect=connection.dialect)
            self._defaults = dict(compiled.params)  # every name, so an omitted optional one binds NULL
            self._sql = str(compiled)
        return self._sql

    def rows(self, connection: Connection, params: Mapping[str, Any]) -> list[Any]:
        """Run on `connection` (in its transaction, if any); the rows as named tuples."""
        sql = self._compiled(connection)
        bound = {**self._defaults, **params}
        driver = connection.connection.driver_connection
        try:
            with driver.cursor(row_factory=namedtuple_row) as cursor:  # type: ignore[union-attr]
                # The engine's cursor events still see the statement (tracing, statement counts in tests).
                connection.dispatch.before_cursor_execute(connection, cursor, sql, bound, None, False)
                cursor.execute(sql, bound)
                connection.dispatch.after_cursor_execute(connection, cursor, sql, bound, None, False)
                return cursor.fetchall() if cursor.description else []
        except psycopg.Error as error:
            if connection.dialect.is_disconnect(error, driver, None):
                connection.invalidate(error)
            raise DBAPIError.instance(sql, None, error, psycopg.Error, hide_parameters=True,
                                      dialect=connection.dialect) from error

    def first(self, connection: Connection, params: Mapping[str, Any]) -> Any | None:
        """The first row, or None."""
        found = self.rows(connection, params)
        return found[0] if found else None
