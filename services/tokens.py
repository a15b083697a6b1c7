"""Token state: login sessions (families), refresh rotation with reuse detection, personal access tokens."""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
import uuid
from dataclasses import dataclass

from sqlalchemy import select, update

from domain.events import Event
from models.identity import PersonalAccessToken, RefreshToken, TokenFamily, User
from services.context import Caller
from services.errors import Invalid, NotFound, Unauthorized
from services.uow import UnitOfWork

#: Personal access tokens start with this, so they are recognisable (and scannable) at a glance.
PAT_PREFIX = "pfp_"
#: Scopes a personal access token can have.
PAT_SCOPES = ("read", "read_write")


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def security_event(type: str, payload: dict, user_id: uuid.UUID | None, household_id: uuid.UUID | None,
                   correlation_id: str) -> Event:
    """A security event for the audit trail."""
    return Event(type, payload, str(household_id) if household_id else None, str(user_id) if user_id else None,
                 correlation_id, None)


def _household_of(user_id: uuid.UUID, uow: UnitOfWork) -> uuid.UUID | None:
    return uow.session.scalar(select(User.household_id).where(User.id == user_id))


def open_family(user_id: uuid.UUID, uow: UnitOfWork) -> uuid.UUID:
    """Start a login session; returns its family id."""
    with uow:
        family = TokenFamily(id=uuid.uuid4(), user_id=user_id)
        uow.session.add(family)
        uow.commit()
        return family.id


def remember_refresh(family_id: uuid.UUID, jti: str, expires_at: dt.datetime, uow: UnitOfWork) -> None:
    """Record a refresh token issued in a family."""
    with uow:
        uow.session.add(RefreshToken(jti=jti, family_id=family_id, expires_at=expires_at))
        uow.commit()


def use_refresh(jti: str, family_id: uuid.UUID, user_id: uuid.UUID, correlation_id: str, uow: UnitOfWork) -> None:
    """Spend a refresh token once. A token used before means it was stolen: the whole family is revoked."""
    with uow:
        token = uow.session.get(RefreshToken, jti, with_for_update=True)
        family = uow.session.get(TokenFamily, family_id, with_for_update=True)
        if token is None or family is None or family.user_id != user_id or token.family_id != family_id:
            raise Unauthorized("unknown refresh token")
        if family.revoked_at is not None:
            raise Unauthorized("the session was revoked")
        if token.used_at is not None:
            family.revoked_at, family.revoke_reason = _now(), "refresh token reused"
            uow.emit(security_event("TokenRevoked", {"family_id": str(family_id), "reason": "refresh token reused"},
                                    user_id, _household_of(user_id, uow), correlation_id))
            uow.commit()
            raise Unauthorized("refresh token reuse detected: the session was revoked")
        token.used_at = _now()
        uow.commit()


def revoke_family(family_id: uuid.UUID, user_id: uuid.UUID, reason: str, correlation_id: str,
                  uow: UnitOfWork) -> None:
    """End one login session: its refresh and access tokens stop working."""
    with uow:
        uow.session.execute(update(TokenFamily).where(
            TokenFamily.id == family_id, TokenFamily.user_id == user_id, TokenFamily.revoked_at.is_(None))
            .values(revoked_at=_now(), revoke_reason=reason))
        uow.emit(security_event("TokenRevoked", {"family_id": str(family_id), "reason": reason}, user_id,
                                _household_of(user_id, uow), correlation_id))
        uow.commit()


def revoke_everywhere(user_id: uuid.UUID, correlation_id: str, uow: UnitOfWork) -> None:
    """Log out everywhere: every token issued so far stops working."""
    with uow:
        now = _now().replace(microsecond=0)  # token iat has whole seconds
        uow.session.execute(update(User).where(User.id == user_id).values(tokens_valid_after=now))
        uow.session.execute(update(TokenFamily).where(
            TokenFamily.user_id == user_id, TokenFamily.revoked_at.is_(None))
            .values(revoked_at=now, revoke_reason="logged out everywhere"))
        uow.emit(security_event("TokenRevoked", {"reason": "logged out everywhere"}, user_id,
                                _household_of(user_id, uow), correlation_id))
        uow.commit()


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class NewToken:
    """A personal access token as created: the only time its secret is shown."""

    record: PersonalAccessToken
    secret: str


def create_pat(caller: Caller, name: str, scope: str, uow: UnitOfWork) -> NewToken:
    """Create a personal access token for the caller's current household."""
    if scope not in PAT_SCOPES:
        raise Invalid(f"scope must be one of {', '.join(PAT_SCOPES)}", field="scope")
    secret = PAT_PREFIX + secrets.token_urlsafe(32)
    with uow:
        record = PersonalAccessToken(id=uuid.uuid4(), user_id=caller.user_id, household_id=caller.household_id,
                                     name=name, scope=scope, token_hash=_digest(secret), prefix=secret[:12])
        uow.session.add(record)
        uow.emit(security_event("PersonalAccessTokenCreated", {"token_id": str(record.id), "name": name,
                                                               "scope": scope}, caller.user_id,
                                caller.household_id, caller.correlation_id))
        uow.commit()
        return NewToken(record, secret)


def list_pats(caller: Caller, uow: UnitOfWork) -> list[PersonalAccessToken]:
    """The caller's personal access tokens (never their secrets)."""
    with uow:
        return list(uow.session.scalars(select(PersonalAccessToken).where(
            PersonalAccessToken.user_id == caller.user_id).order_by(PersonalAccessToken.created_at)))


def revoke_pat(caller: Caller, token_id: uuid.UUID, uow: UnitOfWork) -> None:
    """Revoke one of the caller's personal access tokens."""
    with uow:
        record = uow.session.get(PersonalAccessToken, token_id)
        if record is None or record.user_id != caller.user_id:
            raise NotFound("no such token")
        if record.revoked_at is None:
            record.revoked_at = _now()
            uow.emit(security_event("TokenRevoked", {"token_id": str(token_id), "reason": "revoked by its owner"},
                                    caller.user_id, caller.household_id, caller.correlation_id))
        uow.commit()


def revoke_household_pats(user_id: uuid.UUID, household_id: uuid.UUID, reason: str, by: uuid.UUID,
                          correlation_id: str, uow: UnitOfWork) -> None:
    """Revoke a user's live personal access tokens for one household, inside the caller's open unit of work."""
    revoked = list(uow.session.scalars(update(PersonalAccessToken).where(
        PersonalAccessToken.user_id == user_id, PersonalAccessToken.household_id == household_id,
        PersonalAccessToken.revoked_at.is_(None)).values(revoked_at=_now()).returning(PersonalAccessToken.id)))
    for token_id in revoked:
        uow.emit(security_event("TokenRevoked", {"token_id": str(token_id), "reason": reason, "by": str(by)},
                                user_id, household_id, correlation_id))


def find_pat(secret: str, uow: UnitOfWork) -> PersonalAccessToken | None:
    """The live token with this secret; marks it used (at most once a minute)."""
    with uow:
        record = uow.session.scalar(select(PersonalAccessToken).where(
            PersonalAccessToken.token_hash == _digest(secret), PersonalAccessToken.revoked_at.is_(None)))
        if record is not None and (record.last_used_at is None or _now() - record.last_used_at > dt.timedelta(
                minutes=1)):
            record.last_used_at = _now()
            uow.commit()
        return record
