"""Registering users with their personal household, and checking credentials."""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import uuid
from collections.abc import Iterable
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Select, Uuid, bindparam, func, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from domain.categorize import DEFAULT_CATEGORIES
from domain.devices import Device
from domain.events import Event
from models.driver import DriverStatement
from models.identity import Household, HouseholdMember, KnownDevice, TokenFamily, User
from models.ledger import Category
from services.context import Caller
from services.errors import Conflict, NotFound, Unauthorized
from services.passwords import check_password
from services.tokens import security_event
from services.uow import UnitOfWork

_hasher = PasswordHasher()
#: Verified against when the email is unknown, so timing does not reveal which emails exist.
_DUMMY_HASH = _hasher.hash("not-a-real-password")


@dataclass(frozen=True)
class Registration:
    """What a person gives to register."""

    email: str
    password: str
    name: str
    base_currency: str
    phone: str | None
    correlation_id: str
    timezone: str = "UTC"
    #: The device registering: known from the start, so signing in from it right after is no news.
    device: Device | None = None


def normalize_email(email: str) -> str:
    """Emails compare case-insensitively and without surrounding spaces."""
    return email.strip().lower()


def register(reg: Registration, uow: UnitOfWork) -> User:
    """Create a user, their personal household (as its owner) and its default categories."""
    check_password(reg.password, reg.email)
    with uow:
        household = Household(id=uuid.uuid4(), name=f"{reg.name}'s household"[:200], base_currency=reg.base_currency)
        user = User(id=uuid.uuid4(), email=normalize_email(reg.email), password_hash=_hasher.hash(reg.password),
                    name=reg.name, phone=reg.phone, role="user", household_id=household.id, timezone=reg.timezone)
        uow.session.add(household)
        uow.session.flush()
        uow.session.add(user)
        try:
            uow.session.flush()
        except IntegrityError:
            raise Conflict("an account with this email exists", field="email") from None
        uow.session.add(HouseholdMember(household_id=household.id, user_id=user.id, role="owner"))
        uow.session.add_all(Category(household_id=household.id, name=name) for name in DEFAULT_CATEGORIES)
        if reg.device:
            remember_device(uow.session, user.id, reg.device)
        uow.emit(Event("UserRegistered", {"user_id": str(user.id), "name": user.name,
                                          "base_currency": household.base_currency},
                       str(household.id), str(user.id), reg.correlation_id, None))
        uow.commit()
        return user


def authenticate(email: str, password: str, uow: UnitOfWork) -> User:
    """The user with these credentials; Unauthorized otherwise (the same answer for unknown emails)."""
    with uow:
        user = uow.session.scalar(select(User).where(User.email == normalize_email(email)))
        try:
            _hasher.verify(user.password_hash if user else _DUMMY_HASH, password)
        except (VerificationError, InvalidHashError):
            raise Unauthorized("wrong email or password") from None
        if user is None:
            raise Unauthorized("wrong email or password")
        user.last_login_at = dt.datetime.now(dt.UTC)
        uow.commit()
        return user


def get_user(user_id: uuid.UUID, uow: UnitOfWork) -> User | None:
    """A user by id."""
    with uow:
        return uow.session.get(User, user_id)


def household_of(user_id: uuid.UUID, uow: UnitOfWork) -> Household | None:
    """The household a user belongs to."""
    with uow:
        return uow.session.scalar(select(Household).join(User).where(User.id == user_id))


def count_users(uow: UnitOfWork) -> int:
    """How many users exist."""
    with uow:
        return uow.session.scalar(select(func.count()).select_from(User)) or 0


def load_caller(user_id: uuid.UUID, household_id: uuid.UUID | None, correlation_id: str, uow: UnitOfWork, *,
                family_id: uuid.UUID | None = None, issued_at: dt.datetime | None = None) -> Caller:
    """The caller for a verified token, in one query; Unauthorized when the token is void, NotFound for a
    household the user is no member of."""
    # Read on every request: one Core statement in autocommit on the unit of work's engine (no BEGIN and ROLLBACK
    # round trips, no ORM objects).
    with uow, uow.session.get_bind().connect() as connection:
        row = _CALLER.first(connection.execution_options(isolation_level="AUTOCOMMIT"), {
            "user_id": user_id, "family_id": family_id, "household_id": household_id})
    if row is None:
        raise Unauthorized("the user no longer exists")
    if issued_at and row.tokens_valid_after and issued_at < row.tokens_valid_after:
        raise Unauthorized("the token has been revoked")
    if family_id and row.revoked_at:
        raise Unauthorized("the token has been revoked")
    if row.member_role is None:
        raise NotFound("no such household", field="X-Household-ID")
    return Caller(user_id, household_id or row.household_id, row.base_currency, correlation_id,
                  role=row.member_role, user_role=row.role, family_id=family_id, timezone=row.timezone or "UTC")


def _caller_query() -> Select:
    """The user, their session's revocation and their role in the household asked for (or their own), in one row."""
    users, families = User.__table__, TokenFamily.__table__
    members, households = HouseholdMember.__table__, Household.__table__
    asked = func.coalesce(bindparam("household_id", type_=Uuid), users.c.household_id)
    return (select(users.c.household_id, users.c.role, users.c.timezone, users.c.tokens_valid_after,
                   families.c.revoked_at, members.c.role.label("member_role"), households.c.base_currency)
            .select_from(users)
            .outerjoin(families, families.c.id == bindparam("family_id", type_=Uuid))
            .outerjoin(members, (members.c.user_id == users.c.id) & (members.c.household_id == asked))
            .outerjoin(households, households.c.id == members.c.household_id)
            .where(users.c.id == bindparam("user_id", type_=Uuid)))


#: Built and compiled once, and run on the driver's cursor: it is on every request's path.
_CALLER = DriverStatement(_caller_query())


def remember_device(session: Session, user_id: uuid.UUID, device: Device) -> bool:
    """Note that a user signs in from a device now; True when it was not known before."""
    key = {"user_id": user_id, "fingerprint": device.fingerprint()}
    # ON CONFLICT DO NOTHING waits for a concurrent sign-in adding the same device: only one of them finds it new.
    added = session.scalar(insert(KnownDevice).values(**key).on_conflict_do_nothing().returning(KnownDevice.user_id))
    if added is None:
        session.execute(update(KnownDevice).filter_by(**key).values(last_seen_at=func.now()))
    return added is not None


#: Devices seen before, into known_devices: users that no longer exist left out, a device already known kept as is.
_REMEMBER_SEEN = text("""
    INSERT INTO known_devices (user_id, fingerprint, first_seen_at, last_seen_at)
    SELECT d.user_id, d.fingerprint, min(d.seen_at), max(d.seen_at)
      FROM unnest(CAST(:users AS uuid[]), CAST(:fingerprints AS text[]), CAST(:seen AS timestamptz[]))
           AS d(user_id, fingerprint, seen_at)
      JOIN users u ON u.id = d.user_id
     GROUP BY d.user_id, d.fingerprint
    ON CONFLICT DO NOTHING""")


def remember_seen_devices(seen: Iterable[tuple[uuid.UUID, Device, dt.datetime]], uow: UnitOfWork,
                          batch: int = 5000) -> int:
    """Remember devices users signed in from before devices were kept (from the audit trail), a batch a
    transaction; how many were new."""
    added, pending = 0, iter(seen)
    while chunk := list(itertools.islice(pending, batch)):
        with uow:
            added += uow.session.execute(_REMEMBER_SEEN, {
                "users": [user for user, _, _ in chunk], "fingerprints": [d.fingerprint() for _, d, _ in chunk],
                "seen": [at for _, _, at in chunk]}).rowcount
            uow.commit()
    return added


def record_login(email: str, succeeded: bool, device: Device, correlation_id: str, uow: UnitOfWork) -> None:
    """Audit a login attempt (LoginSucceeded or LoginFailed) in the account's household; an email that
    belongs to nobody is kept only as a hash. A success also remembers the device, and says whether it is new."""
    with uow:
        user = uow.session.scalar(select(User).where(User.email == normalize_email(email)))
        payload: dict[str, object] = {"address": device.address}
        if user is None:
            payload["account"] = hashlib.sha256(normalize_email(email).encode()).hexdigest()[:32]
        elif succeeded:
            payload["new_device"] = remember_device(uow.session, user.id, device)
        uow.emit(security_event("LoginSucceeded" if succeeded else "LoginFailed", payload,
                                user.id if user else None, user.household_id if user else None, correlation_id))
        uow.commit()
