"""What the integration tests share: a unit of work on the run's database that keeps what it publishes."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from config import wiring
from domain.events import Event
from services.uow import UnitOfWork


@pytest.fixture
def published() -> list[Event]:
    """Events the units of work published."""
    return []


@pytest.fixture
def uow(published: list[Event]) -> Iterator[UnitOfWork]:
    """A unit of work on the run's database that keeps what it publishes."""
    yield UnitOfWork(wiring.session_factory(), published.append, lambda ids: None)
