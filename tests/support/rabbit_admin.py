"""Small helpers over the local RabbitMQ management HTTP API for test isolation and inspection."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import quote

import pika
import pika.exceptions
import requests

API_BASE = "http://127.0.0.1:15672/api"
AMQP_HOST = "127.0.0.1"
AMQP_PORT = 5672
USER = "guest"
PASSWORD = "guest"
TIMEOUT_SECONDS = 10.0
FULL_PERMISSIONS: dict[str, str] = {"configure": ".*", "write": ".*", "read": ".*"}


def quote_vhost(vhost: str) -> str:
    """Return the vhost name quoted for use as one URL path segment ("/" becomes "%2F")."""
    return quote(vhost, safe="")


def create_vhost(name: str, wait_seconds: float = 15.0) -> None:
    """Create the vhost (idempotent), grant guest full permissions, and wait until it accepts connections."""
    vhost = quote_vhost(name)
    _request("PUT", f"/vhosts/{vhost}")
    _request("PUT", f"/permissions/{vhost}/{quote(USER, safe='')}", json=FULL_PERMISSIONS)
    _wait_until_open(name, wait_seconds)


def _wait_until_open(name: str, wait_seconds: float) -> None:
    """RabbitMQ starts a vhost asynchronously: a connection may be refused for a moment after the PUT."""
    deadline = time.monotonic() + wait_seconds
    while True:
        try:
            pika.BlockingConnection(pika.URLParameters(amqp_url(name))).close()
            return
        except pika.exceptions.AMQPError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def delete_vhost(name: str) -> None:
    """Delete the vhost and everything in it; a missing vhost is not an error."""
    _request("DELETE", f"/vhosts/{quote_vhost(name)}", allow_missing=True)


def list_exchanges(vhost: str) -> list[dict[str, Any]]:
    """Return the exchanges of the vhost as the management API describes them."""
    return _get_list(f"/exchanges/{quote_vhost(vhost)}")


def list_queues(vhost: str) -> list[dict[str, Any]]:
    """Return the queues of the vhost as the management API describes them."""
    return _get_list(f"/queues/{quote_vhost(vhost)}")


def list_bindings(vhost: str) -> list[dict[str, Any]]:
    """Return the bindings of the vhost as the management API describes them."""
    return _get_list(f"/bindings/{quote_vhost(vhost)}")


def amqp_url(vhost: str, port: int = AMQP_PORT) -> str:
    """Return the guest AMQP URL for the vhost on the loopback broker (or a proxy port)."""
    return f"amqp://{USER}:{PASSWORD}@{AMQP_HOST}:{port}/{quote_vhost(vhost)}"


def _get_list(path: str) -> list[dict[str, Any]]:
    """GET a management API path that answers with a JSON list."""
    body = _request("GET", path).json()
    if not isinstance(body, list):
        raise TypeError(f"expected a JSON list from {path}, got {type(body).__name__}")
    return body


def _request(method: str, path: str, *, allow_missing: bool = False, **kwargs: Any) -> requests.Response:
    """Send one authenticated request to the management API and raise on HTTP errors."""
    response = requests.request(
        method, f"{API_BASE}{path}", auth=(USER, PASSWORD), timeout=TIMEOUT_SECONDS, **kwargs
    )
    if allow_missing and response.status_code == 404:
        return response
    response.raise_for_status()
    return response
