"""End-to-end fixtures: the whole stack running as processes, and fresh users on it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.client import ApiClient, register
from tests.support.stack import Stack


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """Web and every pool, started once for the session."""
    logdir: Path = tmp_path_factory.mktemp("stack-logs")
    running = Stack(logdir, env={}).start()
    yield running
    running.stop()


@pytest.fixture
def user(stack: Stack) -> ApiClient:
    """A freshly registered, logged-in user with their own household."""
    client, _ = register(stack.url)
    return client
