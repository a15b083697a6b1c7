"""Every error answers in one JSON shape: {code, status, message, errors: {field: [reasons]}}."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

import redis
from dramatiq.errors import BrokerConnectionError
from flask import Flask, jsonify
from flask.typing import ResponseReturnValue
from marshmallow import ValidationError
from sqlalchemy import exc as sql
from werkzeug.exceptions import HTTPException

from services.errors import ServiceError, TooManyRequests

#: Seconds a client should wait before retrying when RabbitMQ is unreachable.
RETRY_AFTER_SECONDS = 5


def error_body(code: int, message: str, errors: dict[str, list[str]] | None = None) -> dict[str, Any]:
    """The one error shape of the API."""
    return {"code": code, "status": HTTPStatus(code).phrase, "message": message, "errors": errors or {}}


def _reasons(messages: Any) -> list[str]:
    """Marshmallow's reasons for one field as a flat list of strings (list items as "item 0: ...")."""
    if isinstance(messages, dict):
        return [f"item {key}: {reason}" if isinstance(key, int) else f"{key}: {reason}"
                for key, nested in messages.items() for reason in _reasons(nested)]
    if isinstance(messages, list | tuple):
        return [reason for message in messages for reason in _reasons(message)]
    return [str(messages)]


def _fields(messages: Any) -> dict[str, list[str]]:
    """Marshmallow's messages as {field: [reasons]}; errors about the whole body go under "_schema"."""
    if not isinstance(messages, dict):
        return {"_schema": _reasons(messages)}
    return {str(field): _reasons(reasons) for field, reasons in messages.items()}


def _flatten(messages: Any) -> dict[str, list[str]]:
    """webargs nests errors by location ({"json": {"amount": [...]}}); clients want fields."""
    flat: dict[str, list[str]] = {}
    for location, fields in (messages or {}).items():
        if isinstance(fields, dict):
            flat.update(_fields(fields))
        else:
            flat[location] = _reasons(fields)
    return flat


def _http_error(error: HTTPException) -> ResponseReturnValue:
    data = getattr(error, "data", {}) or {}
    errors = _flatten(data.get("messages"))
    fallback = "invalid input" if errors else (error.description or HTTPStatus(error.code).phrase)
    message = data.get("message") or fallback
    response = jsonify(error_body(error.code or 500, message, errors))
    return response, error.code, dict(data.get("headers") or {})


def _service_error(error: ServiceError) -> ResponseReturnValue:
    errors = {error.field: [error.message]} if error.field else {}
    headers = {"Retry-After": str(RETRY_AFTER_SECONDS)} if error.status == 503 else {}
    if isinstance(error, TooManyRequests):
        headers = {"Retry-After": str(error.retry_after)}
    return jsonify(error_body(error.status, error.message, errors)), error.status, headers


def _invalid(error: ValidationError) -> ResponseReturnValue:
    """A field refused by a view after parsing (e.g. an amount checked against its currency)."""
    return jsonify(error_body(422, "invalid input", _fields(error.messages))), 422


def _unavailable(message: str) -> ResponseReturnValue:
    return jsonify(error_body(503, message)), 503, {"Retry-After": str(RETRY_AFTER_SECONDS)}


def _broker_down(error: BrokerConnectionError) -> ResponseReturnValue:
    return _unavailable("the message broker (RabbitMQ) is unreachable; nothing was done, retry later")


def _database_busy(error: sql.TimeoutError) -> ResponseReturnValue:
    """Every database connection of this process stayed in use for the pool's whole timeout (overload)."""
    return _unavailable("the server is too busy to reach its database now; retry later "
                        "(with the same Idempotency-Key, a retried POST creates nothing twice)")


def _database_down(error: sql.OperationalError) -> ResponseReturnValue:
    return _unavailable("the database (PostgreSQL) could not complete the request (unreachable or in conflict); "
                        "retry later")


def _redis_down(error: redis.ConnectionError | redis.TimeoutError) -> ResponseReturnValue:
    return _unavailable("the cache (Redis) is unreachable; retry later")


def register_error_handlers(app: Flask) -> None:
    """Answer every error in the one shape."""
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(ServiceError, _service_error)
    app.register_error_handler(ValidationError, _invalid)
    app.register_error_handler(BrokerConnectionError, _broker_down)
    # A dependency that is down or saturated is a temporary condition (503 with Retry-After), not a bug (500).
    app.register_error_handler(sql.TimeoutError, _database_busy)
    app.register_error_handler(sql.OperationalError, _database_down)
    app.register_error_handler(redis.ConnectionError, _redis_down)
    app.register_error_handler(redis.TimeoutError, _redis_down)
