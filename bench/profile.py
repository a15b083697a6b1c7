"""Profiles of the hot paths: py-spy samples the web process and every pool while the ingest load runs.

Writes one speedscope flame graph per process (open it at https://www.speedscope.app) and a table of the
functions with the most own time per process to docs/bench/profiles/, and prints the table.

Run: `make profile` (starts what it needs on its own database and vhost); `python -m bench.profile 60` samples
60 s; `python -m bench.profile --reread` prints the tables again from the files already recorded.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.common import OUT, drop, machine, stack  # isort: skip  (first: sets the isolated environment)
from bench.ingest import STACK_ENV, _load, _users  # isort: skip
from tests.support.stack import ROOT, Stack  # isort: skip

PROFILES = OUT / "profiles"
SECONDS = 30
TOP = 12
#: py-spy samples per second (its default; it samples without pausing the process).
RATE = 100


def _record(name: str, pid: int, seconds: int) -> subprocess.Popen:
    """Start py-spy on one process (and its children: gunicorn's worker) for `seconds`."""
    out = PROFILES / f"{name}.speedscope.json"
    return subprocess.Popen([str(ROOT / ".venv/bin/py-spy"), "record", "--nonblocking", "--subprocesses",
                             "--format", "speedscope", "--rate", str(RATE), "--duration", str(seconds),
                             "--output", str(out), "--pid", str(pid)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


#: Where a thread's innermost frame is, by the file it is in: waiting on a service, idle, or running Python.
WAITS = (("postgresql", ("psycopg/",)), ("rabbitmq", ("pika/",)), ("redis", ("redis/",)),
         ("idle", ("threading.py", "selectors.py", "gunicorn/arbiter.py", "dramatiq/middleware/time_limit.py",
                   "queue.py", "socketserver.py")))


def where(file: str) -> str:
    """The category of an innermost frame: postgresql, rabbitmq, redis, idle or python (CPU in our code and
    libraries)."""
    for category, markers in WAITS:
        if any(marker in file for marker in markers):
            return category
    return "python"


#: Our own packages: the innermost frame in one of them is the hot path that spends (or waits for) the time.
OURS = tuple(f"{ROOT}/{package}/" for package in ("api", "actors", "services", "models", "config", "domain"))


@dataclass
class Profile:
    """One process's samples, summed in thread-seconds."""

    total: float = 0.0
    categories: Counter[str] = field(default_factory=Counter)
    #: The innermost function (name file:line), idle waits left out.
    functions: Counter[str] = field(default_factory=Counter)
    #: The innermost function of our own code on the stack, idle waits left out.
    ours: Counter[str] = field(default_factory=Counter)


def _name(frame: dict[str, Any]) -> str:
    return f"{frame['name']} ({_short(frame.get('file', ''))}:{frame.get('line', '')})"


def own_time(path: Path) -> Profile:
    """Where the threads of one speedscope file spent their sampled time."""
    data = json.loads(path.read_text())
    frames = data["shared"]["frames"]
    found = Profile()
    for profile in data["profiles"]:
        for sample, weight in zip(profile["samples"], profile["weights"], strict=True):
            if not sample:
                continue
            category = where(frames[sample[-1]].get("file", ""))
            found.total += weight
            found.categories[category] += weight
            if category == "idle":
                continue
            found.functions[_name(frames[sample[-1]])] += weight
            ours = next((frames[i] for i in reversed(sample) if frames[i].get("file", "").startswith(OURS)), None)
            if ours is not None:
                found.ours[_name(ours)] += weight
    return found


def _short(file: str) -> str:
    for marker in ("site-packages/", str(ROOT) + "/", "lib/python3.11/"):
        if marker in file:
            return file.split(marker, 1)[1]
    return file


def profile(running: Stack, seconds: int) -> dict[str, Any]:
    """Sample every process of the stack under saturating ingest load; the top functions per process."""
    users = _users(running.url)
    load = threading.Thread(target=_load, args=("profile", users, None, seconds + 5, 32), daemon=True)
    load.start()
    spies = {name: _record(name, proc.pid, seconds) for name, proc in running.procs.items()}
    tops: dict[str, Any] = {}
    for name, spy in spies.items():
        _, err = spy.communicate(timeout=seconds + 60)
        path = PROFILES / f"{name}.speedscope.json"
        if spy.returncode != 0 or not path.exists():
            tops[name] = {"error": err.decode(errors="replace").strip()[-300:]}
            continue
        tops[name] = summarize(path)
    load.join(timeout=600)
    return tops


def summarize(path: Path) -> dict[str, Any]:
    """One process's figures from its speedscope file."""
    found = own_time(path)
    busy = found.total - found.categories["idle"] or 1.0
    return {"thread_seconds": round(found.total, 1),
            "share": {c: round(100 * n / found.total, 1) for c, n in found.categories.most_common()},
            "top": [{"function": f, "percent_of_busy": round(100 * n / busy, 1)}
                    for f, n in found.functions.most_common(TOP)],
            "our_code": [{"function": f, "percent_of_busy": round(100 * n / busy, 1)}
                         for f, n in found.ours.most_common(TOP)]}


def render(tops: dict[str, Any]) -> str:
    """The table: per process, the functions with the most own time."""
    lines = [f"profiles ({machine()}): py-spy at {RATE} Hz, ingest at saturation; where each process's threads were "
             "(waiting on a service, idle, or running Python), then the innermost functions by share of busy time"]
    for name, figures in tops.items():
        if "error" in figures:
            lines.append(f"\n{name}: py-spy failed: {figures['error']}")
            continue
        share = ", ".join(f"{c} {p}%" for c, p in figures["share"].items())
        lines.append(f"\n{name}: {figures['thread_seconds']} thread-seconds sampled: {share}; flame graph: "
                     f"docs/bench/profiles/{name}.speedscope.json")
        lines += [f"  {t['percent_of_busy']:>5}%  {t['function']}" for t in figures["top"]]
        lines.append("  our code under it:")
        lines += [f"  {t['percent_of_busy']:>5}%  {t['function']}" for t in figures["our_code"]]
    return "\n".join(lines)


def main() -> int:
    """Profile, print, write docs/bench/profiles/top.json."""
    PROFILES.mkdir(parents=True, exist_ok=True)
    if sys.argv[1:] == ["--reread"]:  # the tables again from the flame graphs already recorded
        seconds = json.loads((PROFILES / "top.json").read_text())["seconds"]
        tops = {p.name.split(".")[0]: summarize(p) for p in sorted(PROFILES.glob("*.speedscope.json"))}
    else:
        seconds = int(sys.argv[1]) if len(sys.argv) > 1 else SECONDS
        with stack(**STACK_ENV) as running:
            tops = profile(running, seconds)
        drop()
    (PROFILES / "top.json").write_text(json.dumps({"machine": machine(), "seconds": seconds, "processes": tops},
                                                  indent=2))
    print(render(tops))
    return 0


if __name__ == "__main__":
    sys.exit(main())
