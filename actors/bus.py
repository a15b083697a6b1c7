"""Declaring actors: commands on a pool's own queue, and subscribers to fanout exchanges."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import dramatiq

from config.wiring import broker


def command(queue_name: str, **options: Any) -> Callable[[Callable[..., None]], dramatiq.Actor]:
    """An actor that consumes commands sent point-to-point to `queue_name`."""
    def decorate(fn: Callable[..., None]) -> dramatiq.Actor:
        return dramatiq.actor(fn, broker=broker(), queue_name=queue_name, **options)
    return decorate


def subscriber(queue_name: str, exchanges: tuple[str, ...], **options: Any
               ) -> Callable[[Callable[..., None]], dramatiq.Actor]:
    """An actor that receives every event of `exchanges` through its own durable queue."""
    def decorate(fn: Callable[..., None]) -> dramatiq.Actor:
        actor = dramatiq.actor(fn, broker=broker(), queue_name=queue_name, **options)
        broker().subscribe(queue_name, actor.actor_name, exchanges)
        return actor
    return decorate
