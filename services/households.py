"""Households and their members: owners invite members and viewers (read-only)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import func, select

from domain.events import Event
from models.identity import MEMBER_ROLES, Household, HouseholdMember, User
from services.context import Caller
from services.errors import Conflict, Forbidden, Invalid, NotFound
from services.identity import normalize_email
from services.tokens import revoke_household_pats
from services.uow import UnitOfWork


@dataclass(frozen=True)
class Membership:
    """A household as one of its members sees it."""

    household: Household
    role: str


@dataclass(frozen=True)
class Member:
    """A person in a household."""

    user_id: uuid.UUID
    name: str
    email: str
    role: str


def memberships(caller: Caller, uow: UnitOfWork) -> list[Membership]:
    """Every household the caller belongs to."""
    with uow:
        rows = uow.session.execute(select(Household, HouseholdMember.role).join(HouseholdMember).where(
            HouseholdMember.user_id == caller.user_id).order_by(Household.created_at))
        return [Membership(h, role) for h, role in rows]


def _role_in(household_id: uuid.UUID, user_id: uuid.UUID, uow: UnitOfWork) -> str:
    role = uow.session.scalar(select(HouseholdMember.role).where(
        HouseholdMember.household_id == household_id, HouseholdMember.user_id == user_id))
    if role is None:
        raise NotFound("no such household")
    return role


def members(caller: Caller, household_id: uuid.UUID, uow: UnitOfWork) -> tuple[Household, str, list[Member]]:
    """A household the caller belongs to, the caller's role, and its members."""
    with uow:
        role = _role_in(household_id, caller.user_id, uow)
        household = uow.session.get(Household, household_id)
        rows = uow.session.execute(select(User.id, User.name, User.email, HouseholdMember.role).join(
            HouseholdMember, HouseholdMember.user_id == User.id).where(HouseholdMember.household_id == household_id)
            .order_by(HouseholdMember.created_at))
        return household, role, [Member(*row) for row in rows]


def _require_owner(caller: Caller, household_id: uuid.UUID, uow: UnitOfWork) -> None:
    if _role_in(household_id, caller.user_id, uow) != "owner" or not caller.can_write:
        raise Forbidden("only an owner can change who belongs to a household")


def _check_role(role: str) -> None:
    if role not in MEMBER_ROLES:
        raise Invalid(f"must be one of {', '.join(MEMBER_ROLES)}", field="role")


def add_member(caller: Caller, household_id: uuid.UUID, email: str, role: str, uow: UnitOfWork) -> Member:
    """Add an existing user to a household as owner, member or viewer."""
    _check_role(role)
    with uow:
        _require_owner(caller, household_id, uow)
        user = uow.session.scalar(select(User).where(User.email == normalize_email(email)))
        if user is None:
            raise NotFound("no user with this email", field="email")
        if uow.session.get(HouseholdMember, (household_id, user.id)) is not None:
            raise Conflict("already a member of this household", field="email")
        uow.session.add(HouseholdMember(household_id=household_id, user_id=user.id, role=role))
        uow.emit(Event("HouseholdMemberAdded", {"member_id": str(user.id), "name": user.name, "role": role},
                       str(household_id), str(caller.user_id), caller.correlation_id, None))
        uow.commit()
        return Member(user.id, user.name, user.email, role)


def change_role(caller: Caller, household_id: uuid.UUID, user_id: uuid.UUID, role: str, uow: UnitOfWork) -> None:
    """Change a member's role; a household always keeps an owner."""
    _check_role(role)
    with uow:
        _require_owner(caller, household_id, uow)
        member = _member(household_id, user_id, uow)
        if role != "owner" and uow.session.scalar(select(User.household_id).where(User.id == user_id)) == household_id:
            raise Conflict("a personal household always keeps its own person as owner")
        if member.role == "owner" and role != "owner":
            _keep_an_owner(household_id, uow)
        member.role = role
        uow.emit(Event("HouseholdMemberRoleChanged", {"member_id": str(user_id), "role": role},
                       str(household_id), str(caller.user_id), caller.correlation_id, None))
        uow.commit()


def remove_member(caller: Caller, household_id: uuid.UUID, user_id: uuid.UUID, uow: UnitOfWork) -> None:
    """Remove someone from a household (not the last owner, not from their personal household)."""
    with uow:
        _require_owner(caller, household_id, uow)
        member = _member(household_id, user_id, uow)
        if uow.session.scalar(select(User.household_id).where(User.id == user_id)) == household_id:
            raise Conflict("nobody can be removed from their personal household")
        if member.role == "owner":
            _keep_an_owner(household_id, uow)
        uow.session.delete(member)
        # Their tokens for this household die with the membership (and stay dead if they are added again).
        revoke_household_pats(user_id, household_id, "removed from the household", caller.user_id,
                              caller.correlation_id, uow)
        uow.emit(Event("HouseholdMemberRemoved", {"member_id": str(user_id)}, str(household_id),
                       str(caller.user_id), caller.correlation_id, None))
        uow.commit()


def _member(household_id: uuid.UUID, user_id: uuid.UUID, uow: UnitOfWork) -> HouseholdMember:
    member = uow.session.get(HouseholdMember, (household_id, user_id), with_for_update=True)
    if member is None:
        raise NotFound("no such member")
    return member


def _keep_an_owner(household_id: uuid.UUID, uow: UnitOfWork) -> None:
    owners = uow.session.scalar(select(func.count()).select_from(HouseholdMember).where(
        HouseholdMember.household_id == household_id, HouseholdMember.role == "owner"))
    if (owners or 0) <= 1:
        raise Conflict("a household must keep at least one owner")
