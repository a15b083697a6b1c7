"""A user's own profile, and what administrators may do with users."""

from __future__ import annotations

import uuid

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select

from domain.events import Event
from models.identity import USER_ROLES, Household, User
from services.context import Caller
from services.errors import Forbidden, Invalid, NotFound
from services.fx import start_reconversion
from services.identity import normalize_email
from services.passwords import check_password
from services.tokens import security_event
from services.uow import UnitOfWork


def profile(caller: Caller, uow: UnitOfWork) -> User:
    """The caller's own user."""
    with uow:
        return uow.session.get(User, caller.user_id)


def update_profile(caller: Caller, changes: dict, uow: UnitOfWork) -> User:
    """Change the caller's name, phone or base currency; the event names what changed, never the values of secrets.

    A new base currency is the household's (the one the caller acts in; owners only): the fx pool then re-converts
    its whole history in the background and budgets are rebuilt when it is done."""
    base = changes.pop("base_currency", caller.base_currency)
    if base != caller.base_currency and caller.role != "owner":
        raise Forbidden("only an owner of the household can change its base currency", field="base_currency")
    with uow:
        user = uow.session.get(User, caller.user_id)
        for name, value in changes.items():
            setattr(user, name, value)
        if base != caller.base_currency and _rebase(caller, base, uow):
            changes["base_currency"] = base
        if changes:
            uow.emit(Event("UserUpdated", {"user_id": str(user.id), "changed": sorted(changes)},
                           str(user.household_id), str(user.id), caller.correlation_id, None))
        uow.commit()
        return user


def _rebase(caller: Caller, base: str, uow: UnitOfWork) -> bool:
    """Give the household a new base currency and start re-converting its history; False if it already had it."""
    household = uow.session.get(Household, caller.household_id, with_for_update=True)
    if household.base_currency == base:
        return False
    old, household.base_currency = household.base_currency, base
    start_reconversion(household.id, caller.user_id, old, base, caller.correlation_id, uow)
    return True


def change_password(caller: Caller, current: str, new: str, uow: UnitOfWork) -> None:
    """Replace the caller's password after checking the current one; PasswordChanged tells them (and the audit)."""
    hasher = PasswordHasher()
    with uow:
        user = uow.session.get(User, caller.user_id, with_for_update=True)
        try:
            hasher.verify(user.password_hash, current)
        except (VerificationError, InvalidHashError):
            raise Invalid("is not your current password", field="current_password") from None
        try:
            check_password(new, user.email)
        except Invalid as exc:
            raise Invalid(exc.message, field="new_password") from None
        user.password_hash = hasher.hash(new)
        uow.emit(security_event("PasswordChanged", {"user_id": str(user.id)}, user.id, user.household_id,
                                caller.correlation_id))
        uow.commit()


def list_users(limit: int, uow: UnitOfWork) -> list[User]:
    """Every user, newest first (administrators only)."""
    with uow:
        return list(uow.session.scalars(select(User).order_by(User.created_at.desc()).limit(limit)))


def set_role(caller: Caller | None, user_id: uuid.UUID, role: str, uow: UnitOfWork, correlation_id: str = "") -> User:
    """Make a user an admin or a plain user; audited as RoleChanged."""
    if role not in USER_ROLES:
        raise Invalid(f"must be one of {', '.join(USER_ROLES)}", field="role")
    with uow:
        user = uow.session.get(User, user_id, with_for_update=True)
        if user is None:
            raise NotFound("no such user")
        before, user.role = user.role, role
        by = str(caller.user_id) if caller else "operator CLI"
        uow.emit(security_event("RoleChanged", {"user_id": str(user_id), "from": before, "to": role, "by": by},
                                user_id, user.household_id, caller.correlation_id if caller else correlation_id))
        uow.commit()
        return user


def find_user(email: str, uow: UnitOfWork) -> User | None:
    """A user by email."""
    with uow:
        return uow.session.scalar(select(User).where(User.email == normalize_email(email)))
