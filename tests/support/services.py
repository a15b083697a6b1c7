"""Probe the local backing services and start any that are down before tests rely on them."""

from __future__ import annotations

import os
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterable

import pytest
import requests

LOOPBACK = "127.0.0.1"
DEFAULT_SERVICES: tuple[str, ...] = ("postgres", "redis", "rabbitmq", "rabbitmq_management")
START_COMMANDS: dict[str, str] = {
    "postgres": "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start",
    "redis": (
        'redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no'
        " --dir /var/lib/redis --logfile /var/log/redis/ci.log"
    ),
    "rabbitmq": "rabbitmq-server -detached",
    "rabbitmq_management": "rabbitmq-plugins enable rabbitmq_management",
}
TCP_PORTS: dict[str, int] = {"postgres": 5432, "redis": 6379, "rabbitmq": 5672}
MANAGEMENT_OVERVIEW_URL = f"http://{LOOPBACK}:15672/api/overview"
MANAGEMENT_AUTH = ("guest", "guest")
PROBE_TIMEOUT_SECONDS = 2.0
COMMAND_TIMEOUT_SECONDS = 120.0
WAIT_SECONDS = 60.0
POLL_SECONDS = 0.5
_PREREQUISITES: dict[str, tuple[str, ...]] = {"rabbitmq_management": ("rabbitmq",)}
_OUTPUT_TAIL_CHARS = 1500


def is_up(name: str) -> bool:
    """Return True when the named service answers on its loopback endpoint."""
    _check_known(name)
    if name == "rabbitmq_management":
        return _management_answers()
    return _tcp_accepts(TCP_PORTS[name])


def ensure_services(names: Iterable[str] = DEFAULT_SERVICES) -> None:
    """Make every named service reachable, starting it if needed; fail (CI) or skip otherwise."""
    for name in _with_prerequisites(names):
        _ensure(name)


def describe(name: str) -> str:
    """Return where the named service is expected to listen, for messages."""
    _check_known(name)
    if name == "rabbitmq_management":
        return MANAGEMENT_OVERVIEW_URL
    return f"{LOOPBACK}:{TCP_PORTS[name]}"


def _check_known(name: str) -> None:
    """Reject service names that have no start command."""
    if name not in START_COMMANDS:
        raise ValueError(f"unknown service {name!r}; expected one of {sorted(START_COMMANDS)}")


def _with_prerequisites(names: Iterable[str]) -> list[str]:
    """Order the names so that prerequisites come first, without duplicates."""
    ordered: list[str] = []
    for name in names:
        _check_known(name)
        for needed in (*_PREREQUISITES.get(name, ()), name):
            if needed not in ordered:
                ordered.append(needed)
    return ordered


def _tcp_accepts(port: int) -> bool:
    """Return True when a TCP connect to the loopback port succeeds quickly."""
    try:
        with socket.create_connection((LOOPBACK, port), timeout=PROBE_TIMEOUT_SECONDS):
            return True
    except OSError:
        return False


def _management_answers() -> bool:
    """Return True when the RabbitMQ management API answers the overview request."""
    try:
        response = requests.get(MANAGEMENT_OVERVIEW_URL, auth=MANAGEMENT_AUTH, timeout=PROBE_TIMEOUT_SECONDS)
    except requests.RequestException:
        return False
    return response.status_code == 200


def _ensure(name: str) -> None:
    """Start one service if it is down and wait for it; give up through pytest if it stays down."""
    if is_up(name):
        return
    output = _run_start_command(START_COMMANDS[name])
    if _wait_until_up(name, WAIT_SECONDS):
        return
    _give_up(name, output)


def _run_start_command(command: str) -> str:
    """Run a start command through the shell and return its exit status and output tail."""
    with tempfile.TemporaryFile() as log:
        try:
            completed = subprocess.run(
                command,
                shell=True,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                timeout=COMMAND_TIMEOUT_SECONDS,
                check=False,
            )
            status = f"exit status {completed.returncode}"
        except subprocess.TimeoutExpired:
            status = f"timed out after {COMMAND_TIMEOUT_SECONDS:.0f} s"
        except OSError as error:
            status = f"could not run: {error}"
        log.seek(0)
        output = log.read().decode(errors="replace")[-_OUTPUT_TAIL_CHARS:]
    return f"{status}; output: {output.strip() or '(none)'}"


def _wait_until_up(name: str, seconds: float) -> bool:
    """Poll the service until it answers or the time runs out."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if is_up(name):
            return True
        time.sleep(POLL_SECONDS)
    return is_up(name)


def _give_up(name: str, output: str) -> None:
    """Fail the test under CI, otherwise skip it, naming the service and its start command."""
    message = (
        f"service {name!r} is not reachable at {describe(name)} (waited {WAIT_SECONDS:.0f} s after trying "
        f"to start it: {output}); start it with: {START_COMMANDS[name]}"
    )
    if os.environ.get("CI"):
        pytest.fail(message, pytrace=False)
    pytest.skip(message)
