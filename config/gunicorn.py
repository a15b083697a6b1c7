"""Settings of the web process's gunicorn, loaded with `--config python:config.gunicorn` (Procfile, Dockerfile,
docker-compose.yml); the command line gives the rest."""

from __future__ import annotations

from typing import Any

from config.heap import freeze_startup_objects


def post_worker_init(worker: Any) -> None:
    """Once a worker has loaded the app: keep the collector off what it built."""
    freeze_startup_objects()
