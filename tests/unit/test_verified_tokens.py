"""Remembering verified access tokens: only the very token verified before is spared the check, never after it
expires, and a token that fails is never remembered."""

from __future__ import annotations

import datetime as dt
import time
import warnings

import pytest
from flask import Flask
from flask_jwt_extended import create_access_token, decode_token
from jwt import ExpiredSignatureError, InvalidSignatureError

with warnings.catch_warnings():
    # api.errors still imports dramatiq's old name ConnectionError (now BrokerConnectionError).
    warnings.filterwarnings("ignore", "The class 'ConnectionError' has been renamed", DeprecationWarning)
    from api.security import VerifiedTokens


def _app(secret: str = "unit-secret-0123456789abcdef0123456789") -> tuple[Flask, VerifiedTokens]:
    app = Flask(__name__)
    app.config.update(JWT_SECRET_KEY=secret, JWT_ACCESS_TOKEN_EXPIRES=dt.timedelta(minutes=5))
    return app, VerifiedTokens(app)


@pytest.fixture
def app() -> Flask:
    return _app()[0]


def _token(app: Flask, **kwargs: object) -> str:
    with app.app_context():
        return create_access_token("someone", additional_claims={"fam": "family"}, **kwargs)


def test_a_token_is_verified_once_then_remembered() -> None:
    app, manager = _app()
    token = _token(app)
    with app.app_context():
        first, second = decode_token(token), decode_token(token)
    assert first == second and first["sub"] == "someone" and first["fam"] == "family"
    assert manager._verified.cache_info().hits == 1


def test_callers_get_their_own_copy_of_the_claims(app: Flask) -> None:
    token = _token(app)
    with app.app_context():
        decode_token(token)["sub"] = "someone else"
        assert decode_token(token)["sub"] == "someone"


def test_a_remembered_token_is_refused_once_it_expires(app: Flask) -> None:
    token = _token(app, expires_delta=dt.timedelta(seconds=3))
    with app.app_context():
        expires = decode_token(token)["exp"]
        time.sleep(max(0.0, expires - time.time()) + 0.1)
        with pytest.raises(ExpiredSignatureError):
            decode_token(token)
        assert decode_token(token, allow_expired=True)["sub"] == "someone"


def test_a_tampered_token_is_refused_every_time(app: Flask) -> None:
    header, payload, signature = _token(app).split(".")
    forged = ".".join((header, payload, signature[:5] + ("A" if signature[5] != "A" else "B") + signature[6:]))
    with app.app_context():
        for _ in range(2):
            with pytest.raises(InvalidSignatureError):
                decode_token(forged)


def test_a_token_of_another_secret_is_refused_even_if_another_app_remembers_it() -> None:
    theirs, _ = _app("another-secret-0123456789abcdef0123456")
    ours, _ = _app()
    token = _token(theirs)
    with theirs.app_context():
        decode_token(token)
    with ours.app_context(), pytest.raises(InvalidSignatureError):
        decode_token(token)
