"""JSON log lines, each with the correlation id of the request or message being handled."""

from __future__ import annotations

import logging
import sys
from contextvars import ContextVar

from pythonjsonlogger.json import JsonFormatter

#: The correlation id of the request or message this thread is handling.
correlation_id: ContextVar[str] = ContextVar("correlation_id", default="")


class _CorrelationFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.correlation_id = correlation_id.get()
        return True


def configure_logging(level: str = "INFO", process_type: str = "web") -> None:
    """Send JSON lines to stdout (12-factor: the platform collects them)."""
    handler = logging.StreamHandler(sys.stdout)
    handler.addFilter(_CorrelationFilter())
    handler.setFormatter(JsonFormatter(
        "%(asctime)s %(levelname)s %(name)s %(message)s %(correlation_id)s",
        rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
        static_fields={"process_type": process_type},
    ))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("pika").setLevel(logging.WARNING)
