"""The unit of work against the run's PostgreSQL: nested blocks are savepoints of one transaction, events and
after-commit callbacks follow their block, and events committed together are published together."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest
from sqlalchemy import select

from config import wiring
from domain.events import Event
from models.identity import Household
from models.messaging import OutboxEvent
from services.uow import UnitOfWork, each_in_one_transaction


class Published:
    """What the unit of work published, message by message."""

    def __init__(self) -> None:
        self.messages: list[list[str]] = []

    def __call__(self, events: list[Event]) -> None:
        self.messages.append([e.payload["name"] for e in events])


@pytest.fixture
def published() -> Published:
    """The messages published."""
    return Published()


@pytest.fixture
def uow(published: Published) -> UnitOfWork:
    """A unit of work on the run's database that records what it publishes."""
    return UnitOfWork(wiring.session_factory(), lambda e: published([e]), lambda ids: None, published)


def _create(name: str, *, fail: bool = False) -> Callable[[UnitOfWork], None]:
    """Work that adds a household and emits AccountOpened, then fails if told to."""
    def work(uow: UnitOfWork) -> None:
        with uow:
            household = Household(id=uuid.uuid4(), name=name, base_currency="EUR")
            uow.session.add(household)
            uow.emit(Event("AccountOpened", {"name": name}, str(household.id), None, "c", None))
            uow.session.flush()
            if fail:
                raise ValueError(name)
            uow.commit()
    return work


def _stored(*names: str) -> set[str]:
    with wiring.session_factory()() as session:
        found = set(session.scalars(select(Household.name).where(Household.name.in_(names))))
        outbox = {row.envelope["payload"].get("name") for row in session.scalars(
            select(OutboxEvent).where(OutboxEvent.envelope["type"].astext == "AccountOpened"))}
    return found | {f"outbox:{n}" for n in outbox & set(names)}


def test_a_failing_piece_leaves_the_others_to_commit_and_only_theirs_are_published(uow, published):
    """Given three pieces in one transaction, the middle one failing, the other two commit with their events,
    published as ONE message; the failure is handed back with its piece."""
    names = [f"batch-{uuid.uuid4().hex[:6]}-{n}" for n in range(3)]
    errors = each_in_one_transaction(uow, [_create(names[0]), _create(names[1], fail=True), _create(names[2])])
    assert [type(e) for e in errors] == [type(None), ValueError, type(None)]
    assert _stored(*names) == {names[0], names[2], f"outbox:{names[0]}", f"outbox:{names[2]}"}
    assert published.messages == [[names[0], names[2]]]


def test_a_nested_block_left_without_commit_rolls_back_only_itself(uow, published):
    """Given an inner block that returns without committing, its change and its event vanish; the outer one's
    stay."""
    outer, inner = f"outer-{uuid.uuid4().hex[:6]}", f"inner-{uuid.uuid4().hex[:6]}"
    with uow:
        _create(outer)(uow)
        with uow:
            uow.session.add(Household(id=uuid.uuid4(), name=inner, base_currency="EUR"))
            uow.emit(Event("AccountOpened", {"name": inner}, None, None, "c", None))
        uow.commit()
    assert _stored(outer, inner) == {outer, f"outbox:{outer}"}
    assert published.messages == [[outer]]


def test_after_commit_callbacks_run_once_committed_and_never_for_a_rolled_back_block(uow):
    """Given callbacks registered in a committed and in a rolled-back block, only the first runs, and only after
    the outer commit."""
    ran: list[str] = []
    with uow:
        with uow:
            uow.after_commit(lambda: ran.append("kept"))
            uow.commit()
        with uow:
            uow.after_commit(lambda: ran.append("dropped"))
        assert ran == []
        uow.commit()
    assert ran == ["kept"]


def test_nothing_is_published_when_the_outer_transaction_is_not_committed(uow, published):
    """Given nested commits but no outer commit, nothing is stored or published."""
    name = f"never-{uuid.uuid4().hex[:6]}"
    with uow:
        _create(name)(uow)
    assert _stored(name) == set()
    assert published.messages == []


def test_one_piece_alone_runs_without_a_savepoint_and_its_error_is_handed_back(uow):
    """Given a single piece that fails, nothing of it stays and its error comes back."""
    name = f"alone-{uuid.uuid4().hex[:6]}"
    errors = each_in_one_transaction(uow, [_create(name, fail=True)])
    assert isinstance(errors[0], ValueError) and _stored(name) == set()
