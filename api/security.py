"""Authentication (JWT or personal access token) and authorization of every request, in one decorator."""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
import uuid
from collections.abc import Callable
from functools import lru_cache, wraps
from typing import Any

import redis
from flask import Flask, g, request
from flask_jwt_extended import JWTManager, get_jwt, verify_jwt_in_request

from api.errors import error_body
from config import wiring
from config.settings import Settings
from services.context import Caller
from services.errors import Forbidden, NotFound, Unauthorized
from services.identity import load_caller
from services.ratelimit import rate_limits
from services.tokens import PAT_PREFIX, find_pat

#: Methods that only read.
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
#: Redis key prefix of revoked access tokens (by jti); PostgreSQL holds the truth (token families).
BLOCKLIST_PREFIX = "blocklist:"


class VerifiedTokens(JWTManager):
    """flask-jwt-extended's manager that remembers, for a token's lifetime, that its signature checked out.

    Safe to cache: the key is the token's exact text, so only a token verified before (same secret, same
    claims) hits; its expiry is checked again on every use; tokens that fail are never remembered; and
    revocation (session, log out everywhere, user, membership, role) is still read from PostgreSQL on every
    request, after this (load_caller)."""

    #: Verified tokens remembered per process (least recently used go first).
    MAX_TOKENS = 4096

    def __init__(self, app: Flask) -> None:
        super().__init__(app)
        self._verified = lru_cache(maxsize=self.MAX_TOKENS)(super()._decode_jwt_from_config)

    def _decode_jwt_from_config(self, encoded_token: str, csrf_value: str | None = None,
                                allow_expired: bool = False) -> dict:
        if csrf_value is not None or allow_expired:
            return super()._decode_jwt_from_config(encoded_token, csrf_value, allow_expired)
        claims = self._verified(encoded_token)
        if claims.get("exp", 0) <= time.time():
            return super()._decode_jwt_from_config(encoded_token)  # the full check answers an expired token
        return dict(claims)


def install(app: Flask, settings: Settings) -> None:
    """Configure flask-jwt-extended; its errors answer in the API's one shape, always 401."""
    app.config.update(
        JWT_SECRET_KEY=settings.jwt_secret_key,
        JWT_ACCESS_TOKEN_EXPIRES=dt.timedelta(minutes=settings.access_token_minutes),
        JWT_REFRESH_TOKEN_EXPIRES=dt.timedelta(days=settings.refresh_token_days),
        JWT_ERROR_MESSAGE_KEY="message",
    )
    jwt = VerifiedTokens(app)

    def unauthorized(reason: str) -> tuple[dict, int]:
        return error_body(401, reason), 401

    jwt.unauthorized_loader(lambda reason: unauthorized(f"authentication required: {reason}"))
    jwt.invalid_token_loader(lambda reason: unauthorized(f"invalid token: {reason}"))
    jwt.expired_token_loader(lambda header, payload: unauthorized("the token has expired"))
    jwt.needs_fresh_token_loader(lambda header, payload: unauthorized("a fresh token is required"))
    jwt.revoked_token_loader(lambda header, payload: unauthorized("the token has been revoked"))
    jwt.user_lookup_error_loader(lambda header, payload: unauthorized("the user no longer exists"))
    jwt.token_in_blocklist_loader(lambda header, payload: is_blocklisted(payload["jti"]))


def is_blocklisted(jti: str) -> bool:
    """Fast check of a revoked access token; a Redis outage falls back to the SQL checks."""
    try:
        return bool(wiring.redis_client().exists(BLOCKLIST_PREFIX + jti))
    except redis.RedisError:
        return False


def blocklist(jti: str, expires_at: int) -> None:
    """Refuse this access token from now until it expires anyway."""
    ttl = max(1, expires_at - int(dt.datetime.now(dt.UTC).timestamp()))
    try:
        wiring.redis_client().setex(BLOCKLIST_PREFIX + jti, ttl, b"1")
    except redis.RedisError:
        pass  # the revoked token family in PostgreSQL refuses it all the same


def _household_asked() -> uuid.UUID | None:
    raw = request.headers.get("X-Household-ID")
    if raw is None:
        return None
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise NotFound("no such household", field="X-Household-ID") from None


def _pat_caller(secret: str) -> Caller:
    token = find_pat(secret, wiring.uow())
    if token is None:
        raise Unauthorized("invalid or revoked token")
    asked = _household_asked()
    if asked is not None and asked != token.household_id:
        raise NotFound("no such household", field="X-Household-ID")
    try:
        caller = load_caller(token.user_id, token.household_id, g.request_id, wiring.uow())
    except NotFound:
        raise Unauthorized("the token's household membership has ended") from None
    return dataclasses.replace(caller, scope=token.scope, token_id=token.id)


def _jwt_caller() -> Caller:
    # load_caller refuses a revoked token from PostgreSQL, the truth, on every request: the Redis blocklist
    # (a logout revokes the token's session there too) would only repeat it at the cost of a round trip.
    verify_jwt_in_request(skip_revocation_check=True)
    claims = get_jwt()
    return load_caller(uuid.UUID(claims["sub"]), _household_asked(), g.request_id, wiring.uow(),
                       family_id=uuid.UUID(claims["fam"]),
                       issued_at=dt.datetime.fromtimestamp(claims["iat"], dt.UTC))


def authenticate() -> Caller:
    """The caller of this request, by personal access token or JWT access token."""
    header = request.headers.get("Authorization", "")
    if header.startswith(f"Bearer {PAT_PREFIX}"):
        return _pat_caller(header.removeprefix("Bearer "))
    return _jwt_caller()


def _authorize(caller: Caller, *, personal: bool, admin: bool, jwt_only: bool) -> None:
    write = request.method not in SAFE_METHODS
    if jwt_only and caller.token_id is not None:
        raise Forbidden("personal access tokens cannot do this; log in")
    if admin and not caller.is_admin:
        raise Forbidden("administrators only")
    if write and caller.scope != "read_write":
        raise Forbidden("this token is read-only")
    if write and not personal and not caller.can_write:
        raise Forbidden("viewers cannot change the household's data")


def auth_required(*, personal: bool = False, admin: bool = False, jwt_only: bool = False
                  ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Authenticate, rate-limit and authorize a view. Writes (any method but GET/HEAD/OPTIONS) need a
    read_write caller who is an owner or member, unless `personal` (the caller's own things)."""
    def decorator(view: Callable[..., Any]) -> Callable[..., Any]:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            caller = authenticate()
            rate_limits().hit_token(str(caller.token_id or caller.family_id or caller.user_id))
            _authorize(caller, personal=personal, admin=admin, jwt_only=jwt_only)
            g.caller = caller
            return view(*args, **kwargs)
        wrapper.auth_required = True  # type: ignore[attr-defined]
        return wrapper
    return decorator


def current_caller() -> Caller:
    """The authenticated caller of this request (set by @auth_required)."""
    return g.caller
