"""Errors the use cases raise; the API turns each into one HTTP answer."""

from __future__ import annotations


class ServiceError(Exception):
    """Base of every error a use case raises on purpose."""

    status = 400

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class NotFound(ServiceError):
    """The thing does not exist in the caller's household."""

    status = 404


class Conflict(ServiceError):
    """The request conflicts with what exists."""

    status = 409


class Invalid(ServiceError):
    """The request is well-formed but a field's value is not acceptable."""

    status = 422


class Unauthorized(ServiceError):
    """Credentials are missing or wrong."""

    status = 401


class Unavailable(ServiceError):
    """A dependency we need (RabbitMQ) did not answer; nothing was done."""

    status = 503


class Forbidden(ServiceError):
    """The caller is known but may not do this."""

    status = 403


class TooManyRequests(ServiceError):
    """A rate limit was reached; `retry_after` seconds until it frees up."""

    status = 429

    def __init__(self, message: str, *, retry_after: int, field: str | None = None) -> None:
        super().__init__(message, field=field)
        self.retry_after = max(1, retry_after)
