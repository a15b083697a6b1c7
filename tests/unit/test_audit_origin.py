"""The request's origin reaches the events of that request only, and commands carry it to the pools."""

from __future__ import annotations

from types import SimpleNamespace

from actors.middleware import Correlation
from domain.events import Event
from services.uow import request_origin, with_origin

ORIGIN = {"client_address": "198.51.100.4", "user_agent": "ua/1"}


def _event(correlation: str) -> Event:
    return Event("AccountOpened", {}, None, None, correlation, None)


def test_an_event_of_the_request_gets_its_origin_and_others_do_not() -> None:
    """Given a request with an origin, its events carry it; an event of another correlation id does not."""
    token = request_origin.set(("req-1", ORIGIN))
    try:
        assert with_origin(_event("req-1")).origin == ORIGIN
        assert with_origin(_event("job-7")).origin is None
    finally:
        request_origin.reset(token)
    assert with_origin(_event("req-1")).origin is None
    assert "origin" not in _event("req-1").to_dict()


def test_a_command_sent_during_a_request_carries_its_origin_into_the_worker() -> None:
    """Given a command enqueued while handling a request, the worker handling it restores the request's origin."""
    middleware = Correlation()
    message = SimpleNamespace(args=({"correlation_id": "req-2"},), options={})
    token = request_origin.set(("req-2", ORIGIN))
    try:
        middleware.before_enqueue(None, message, None)
    finally:
        request_origin.reset(token)
    assert message.options["origin"] == ORIGIN
    middleware.before_process_message(None, message)
    assert request_origin.get() == ("req-2", ORIGIN)
    middleware.after_process_message(None, message)
    assert request_origin.get() is None
