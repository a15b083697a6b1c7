"""Who is calling, read from the run's PostgreSQL in one statement on every request: a revoked session, a token
from before "log out everywhere" or a deleted user answers 401; a household the user is no member of answers 404;
a role changed a moment ago counts at once."""

from __future__ import annotations

import datetime as dt
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import event, update
from sqlalchemy.engine import Engine

from config import wiring
from models.identity import Household, HouseholdMember, TokenFamily, User
from services.context import Caller
from services.errors import NotFound, Unauthorized
from services.identity import load_caller
from services.uow import UnitOfWork

NOW = dt.datetime(2026, 10, 15, 12, 0, tzinfo=dt.UTC)


def _uow() -> UnitOfWork:
    return UnitOfWork(wiring.session_factory(), lambda event: None, lambda ids: None)


class Person:
    """A user, their own household (owner, USD), a shared one (viewer, EUR) and a login session."""

    def __init__(self) -> None:
        self.user_id, self.home, self.shared, self.family = uuid.uuid4(), uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
        with wiring.session_factory()() as session, session.begin():
            session.add_all([Household(id=self.home, name="Home", base_currency="USD"),
                             Household(id=self.shared, name="Shared", base_currency="EUR")])
            session.flush()
            session.add(User(id=self.user_id, email=f"{self.user_id.hex}@example.com", password_hash="x", name="P",
                             household_id=self.home, role="admin", timezone="Europe/Berlin"))
            session.flush()
            session.add_all([HouseholdMember(household_id=self.home, user_id=self.user_id, role="owner"),
                             HouseholdMember(household_id=self.shared, user_id=self.user_id, role="viewer"),
                             TokenFamily(id=self.family, user_id=self.user_id)])

    def change(self, model: Any, *where: Any, **values: Any) -> None:
        """Update rows of `model` as another request would."""
        with wiring.session_factory()() as session, session.begin():
            session.execute(update(model).where(*where).values(**values))

    def load(self, household_id: uuid.UUID | None = None, **token: Any) -> Caller:
        """The caller for a JWT of this session issued at NOW (unless `token` says otherwise)."""
        return load_caller(self.user_id, household_id, "req-1", _uow(),
                           **{"family_id": self.family, "issued_at": NOW, **token})


@pytest.fixture
def person() -> Person:
    return Person()


def test_the_caller_of_their_own_household(person: Person) -> None:
    assert person.load() == Caller(person.user_id, person.home, "USD", "req-1", role="owner", user_role="admin",
                                   family_id=person.family, timezone="Europe/Berlin")


def test_the_caller_of_a_household_they_were_invited_to(person: Person) -> None:
    caller = person.load(person.shared)
    assert (caller.household_id, caller.base_currency, caller.role, caller.can_write) == (
        person.shared, "EUR", "viewer", False)


def test_a_personal_access_token_has_no_session_or_issue_time(person: Person) -> None:
    caller = load_caller(person.user_id, person.shared, "req-1", _uow())
    assert (caller.household_id, caller.family_id) == (person.shared, None)


def test_a_role_changed_a_moment_ago_counts_at_once(person: Person) -> None:
    person.load(person.shared)
    person.change(HouseholdMember, HouseholdMember.household_id == person.shared, role="member")
    assert person.load(person.shared).role == "member"


def test_a_household_the_user_is_no_member_of_is_not_found(person: Person) -> None:
    for household_id in (Person().home, uuid.uuid4()):
        with pytest.raises(NotFound) as caught:
            person.load(household_id)
        assert caught.value.field == "X-Household-ID"


def test_a_removed_member_is_not_found_at_once(person: Person) -> None:
    person.load(person.shared)
    with wiring.session_factory()() as session, session.begin():
        session.delete(session.get(HouseholdMember, (person.shared, person.user_id)))
    with pytest.raises(NotFound):
        person.load(person.shared)


def test_a_revoked_session_is_refused(person: Person) -> None:
    person.change(TokenFamily, TokenFamily.id == person.family, revoked_at=NOW)
    with pytest.raises(Unauthorized, match="the token has been revoked"):
        person.load()
    assert person.load(family_id=uuid.uuid4()).user_id == person.user_id  # another session is fine


def test_tokens_issued_before_log_out_everywhere_are_refused(person: Person) -> None:
    person.change(User, User.id == person.user_id, tokens_valid_after=NOW)
    with pytest.raises(Unauthorized, match="the token has been revoked"):
        person.load(issued_at=NOW - dt.timedelta(seconds=1))
    assert person.load(issued_at=NOW).user_id == person.user_id


def test_a_user_who_no_longer_exists_is_refused() -> None:
    with pytest.raises(Unauthorized, match="the user no longer exists"):
        load_caller(uuid.uuid4(), None, "req-1", _uow(), family_id=uuid.uuid4(), issued_at=NOW)


@pytest.fixture
def statements() -> Iterator[list[tuple[str, bool]]]:
    """Every statement sent to PostgreSQL meanwhile: its first word, and whether it ran in autocommit."""
    sent: list[tuple[str, bool]] = []
    me = threading.get_ident()  # not another thread's statements (an outbox marker's, say)

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if threading.get_ident() != me:
            return
        sent.append((statement.split(None, 1)[0], conn.connection.driver_connection.autocommit))

    event.listen(Engine, "before_cursor_execute", record)  # whichever engine the units of work use
    yield sent
    event.remove(Engine, "before_cursor_execute", record)


def test_the_caller_is_one_statement_outside_any_transaction(person: Person,
                                                             statements: list[tuple[str, bool]]) -> None:
    """No BEGIN and ROLLBACK around the read: one round trip."""
    person.load(person.shared)
    assert statements == [("SELECT", True)]
