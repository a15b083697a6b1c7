"""What every benchmark shares: an isolated stack, percentiles, and where results are written."""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import statistics
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.support.isolation import DATABASE, VHOST  # isort: skip  (first: sets the isolated environment)
from sqlalchemy import create_engine, text  # isort: skip

from tests.support import rabbit_admin  # isort: skip
from tests.support.cli import run_cli  # isort: skip
from tests.support.stack import Stack  # isort: skip

#: Where benchmark results are written.
OUT = Path(__file__).resolve().parent.parent / "docs" / "bench"


def machine() -> str:
    """A short description of this machine."""
    return f"{os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()}"


def pct(values: list[float], q: int) -> float:
    """The q-th percentile, to one decimal."""
    if not values:
        return float("nan")
    return round(statistics.quantiles(values, n=100, method="inclusive")[q - 1], 1)


@contextmanager
def stack(processes: dict[str, int] | None = None, **env: str) -> Iterator[Stack]:
    """The whole stack on a fresh database and vhost (with `processes` per pool where more than one), torn
    down afterwards."""
    rabbit_admin.create_vhost(VHOST)
    assert run_cli("release").returncode == 0
    running = Stack(Path(tempfile.mkdtemp(prefix="bench-")), env={"LOG_LEVEL": "WARNING", **env}).start()
    for pool, count in (processes or {}).items():
        for n in range(2, count + 1):
            running.start_pool(pool, f"{pool}-{n}")
    try:
        yield running
    finally:
        running.stop()


def drop() -> None:
    """Remove the benchmark's database and vhost."""
    rabbit_admin.delete_vhost(VHOST)
    admin = create_engine("postgresql+psycopg://postgres@127.0.0.1:5432/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)'))
    admin.dispose()


def write(name: str, figures: dict[str, Any]) -> None:
    """Store figures as docs/bench/<name>.json with the date, machine and command."""
    OUT.mkdir(parents=True, exist_ok=True)
    meta = {"date": dt.date.today().isoformat(), "machine": machine(), "command": "make bench"}
    (OUT / f"{name}.json").write_text(json.dumps({**meta, **figures}, indent=2))
