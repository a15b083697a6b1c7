"""The whole stack as real processes (web + every pool), started from the same commands as the Procfile."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import requests

from actors.pools import POOLS

ROOT = Path(__file__).resolve().parents[2]
T = TypeVar("T")


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(check: Callable[[], T], timeout: float = 10.0, every: float = 0.1, what: str = "condition") -> T:
    """Poll until `check` returns something truthy; fail with `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


def pool_command(pool: str) -> list[str]:
    """The command that runs one pool (the Procfile's)."""
    return [str(ROOT / ".venv/bin/python") if (ROOT / ".venv").exists() else "python", "-m", "actors.run", pool]


def web_command(port: int, workers: int = 1, threads: int = 8) -> list[str]:
    """The command that runs the web process (the Procfile's, with one worker of 8 threads unless told)."""
    return [str(ROOT / ".venv/bin/gunicorn"), "api:create_app()", "--config", "python:config.gunicorn",
            "--bind", f"127.0.0.1:{port}",
            "--worker-class", "gthread", "--workers", str(workers), "--threads", str(threads),
            "--graceful-timeout", "5"]


class Stack:
    """Web and pool processes with their logs; pools can be killed and restarted."""

    def __init__(self, logdir: Path, env: dict[str, str]) -> None:
        self.logdir = logdir
        self.env = {**os.environ, **env}
        #: The web's gunicorn workers and threads (WEB_CONCURRENCY, WEB_THREADS as the Procfile reads them), when the
        #: stack is given them.
        self.web_size = (int(env.get("WEB_CONCURRENCY", 1)), int(env.get("WEB_THREADS", 8)))
        self.procs: dict[str, subprocess.Popen] = {}
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"

    def _spawn(self, name: str, command: list[str], env: dict[str, str] | None = None) -> subprocess.Popen:
        with open(self.logdir / f"{name}.log", "ab") as log:  # the child keeps its own descriptor
            proc = subprocess.Popen(command, cwd=ROOT, env={**self.env, **(env or {})}, stdout=log,
                                    stderr=subprocess.STDOUT, start_new_session=True)
        self.procs[name] = proc
        return proc

    def start(self) -> Stack:
        """Start web and every pool; return once the API answers and every pool consumes."""
        self._spawn("web", web_command(self.port, *self.web_size))
        for pool in POOLS:
            self.start_pool(pool)
        wait_for(self._web_up, timeout=30, what="the web process")
        return self

    def start_pool(self, pool: str, name: str | None = None, env: dict[str, str] | None = None) -> subprocess.Popen:
        """Start (or restart) one pool process; `name` runs another process of the same pool, `env` adds settings."""
        return self._spawn(name or pool, pool_command(pool), env)

    def start_web(self, name: str, port: int, env: dict[str, str]) -> str:
        """Start another web process (e.g. one that reaches RabbitMQ through a proxy)."""
        self._spawn(name, web_command(port), env)
        url = f"http://127.0.0.1:{port}"
        wait_for(lambda: self._answers(url), timeout=30, what=f"{name} on {url}")
        return url

    def signal(self, name: str, sig: int) -> None:
        """Send a signal to one process."""
        self.procs[name].send_signal(sig)

    def wait_exit(self, name: str, timeout: float = 30) -> int:
        """Wait for a process to exit; its exit code."""
        return self.procs[name].wait(timeout=timeout)

    def log(self, name: str) -> str:
        """What a process logged so far."""
        path = self.logdir / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def _web_up(self) -> bool:
        return self._answers(self.url)

    @staticmethod
    def _answers(url: str) -> bool:
        try:
            return requests.get(f"{url}/healthz", timeout=1).status_code == 200
        except requests.RequestException:
            return False

    def stop(self) -> None:
        """Stop every process (SIGTERM, then SIGKILL)."""
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
