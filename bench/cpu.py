"""CPU spent by each part of the stack (web, every pool, PostgreSQL, RabbitMQ, Redis) over a stretch of load.

Reads utime + stime of every process from /proc (Linux), grouped by what the process runs, so a benchmark can say
how many milliseconds of CPU one transaction costs in each part.
"""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

from actors.pools import POOLS

#: Clock ticks per second, the unit of /proc/<pid>/stat's utime and stime.
TICKS = os.sysconf("SC_CLK_TCK")
#: A part of the stack by a word of its command line (the pools by their `actors.run POOL`).
PARTS = (("web", "gunicorn"), ("postgresql", "postgres"), ("rabbitmq", "beam.smp"), ("redis", "redis-server"))


def part_of(cmdline: list[str]) -> str | None:
    """Which part of the stack a command line runs, or None for anything else."""
    if "actors.run" in cmdline:
        index = cmdline.index("actors.run") + 1
        return cmdline[index] if index < len(cmdline) and cmdline[index] in POOLS else None
    joined = " ".join(cmdline)
    return next((part for part, word in PARTS if word in joined), None)


def _seconds(pid: str) -> float:
    # Fields 14 and 15 (utime, stime) follow the command name, which may itself hold spaces: split after ")".
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def _clients_of_backends() -> dict[str, str]:
    """PostgreSQL backend pid -> the part it serves, by the application_name each process gives its connections
    (`finance-web`, `finance-budgets`, ...)."""
    import psycopg

    url = os.environ.get("DATABASE_URL", "").replace("postgresql+psycopg://", "postgresql://")
    if not url:
        return {}
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute("SELECT pid, application_name FROM pg_stat_activity "
                            "WHERE application_name LIKE 'finance-%'").fetchall()
    return {str(pid): name.removeprefix("finance-") for pid, name in rows}


def snapshot() -> Counter[str]:
    """CPU seconds used so far by each part's live processes; PostgreSQL's backends are counted as `pg:<part>` for
    the part they serve (what is left, background work and other clients, as `postgresql`)."""
    used: Counter[str] = Counter()
    clients = _clients_of_backends()
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
            part = part_of(cmdline)
            if part == "postgresql" and pid in clients:
                part = f"pg:{clients[pid]}"
            if part:
                used[part] += _seconds(pid)
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue  # the process ended meanwhile
    return used


def ms_per(before: Counter[str], after: Counter[str], count: int) -> dict[str, float]:
    """Milliseconds of CPU per unit of work (e.g. per transaction) by part, with the total, between two snapshots.
    A part whose process restarted meanwhile may read low."""
    spent = {part: max(after[part] - before.get(part, 0.0), 0.0) for part in after}
    figures = {part: round(seconds * 1000 / max(count, 1), 2) for part, seconds in sorted(spent.items())}
    figures["total"] = round(sum(spent.values()) * 1000 / max(count, 1), 2)
    return figures
