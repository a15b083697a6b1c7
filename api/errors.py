"""Every error answers in one JSON shape: {code, status, message, errors: {field: [reasons]}}."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from dramatiq.errors import ConnectionError as BrokerConnectionError
from flask import Flask, jsonify
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import HTTPException

from services.errors import ServiceError

#: Seconds a client should wait before retrying when RabbitMQ is unreachable.
RETRY_AFTER_SECONDS = 5


def error_body(code: int, message: str, errors: dict[str, list[str]] | None = None) -> dict[str, Any]:
    """The one error shape of the API."""
    return {"code": code, "status": HTTPStatus(code).phrase, "message": message, "errors": errors or {}}


def _flatten(messages: Any) -> dict[str, list[str]]:
    """webargs nests errors by location ({"json": {"amount": [...]}}); clients want fields."""
    flat: dict[str, list[str]] = {}
    for location, fields in (messages or {}).items():
        if not isinstance(fields, dict):
            flat[location] = fields if isinstance(fields, list) else [str(fields)]
            continue
        for field, reasons in fields.items():
            flat[field] = reasons if isinstance(reasons, list) else [str(reasons)]
    return flat


def _http_error(error: HTTPException) -> ResponseReturnValue:
    data = getattr(error, "data", {}) or {}
    errors = _flatten(data.get("messages"))
    message = "invalid input" if errors else (error.description or HTTPStatus(error.code).phrase)
    response = jsonify(error_body(error.code or 500, message, errors))
    return response, error.code, dict(data.get("headers") or {})


def _service_error(error: ServiceError) -> ResponseReturnValue:
    errors = {error.field: [error.message]} if error.field else {}
    headers = {"Retry-After": str(RETRY_AFTER_SECONDS)} if error.status == 503 else {}
    return jsonify(error_body(error.status, error.message, errors)), error.status, headers


def _broker_down(error: BrokerConnectionError) -> ResponseReturnValue:
    body = error_body(503, "the message broker (RabbitMQ) is unreachable; nothing was done, retry later")
    return jsonify(body), 503, {"Retry-After": str(RETRY_AFTER_SECONDS)}


def register_error_handlers(app: Flask) -> None:
    """Answer every error in the one shape."""
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(ServiceError, _service_error)
    app.register_error_handler(BrokerConnectionError, _broker_down)
