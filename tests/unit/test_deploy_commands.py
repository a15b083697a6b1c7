"""The web's command is the same wherever it is deployed, and its gunicorn settings freeze the startup heap."""

from __future__ import annotations

import gc
import re
import shlex
from pathlib import Path

from actors.pools import POOLS
from config import gunicorn
from tests.support.stack import ROOT, web_command

#: The options after `gunicorn "api:create_app()"`, with the shell's variables as the Procfile writes them.
_OPTIONS = re.compile(r'gunicorn "api:create_app\(\)" (?P<options>[^\'\n]+)')


def _web_options(text: str) -> list[str]:
    match = _OPTIONS.search(text.replace("$${", "${"))  # docker compose escapes $ as $$
    assert match, "no gunicorn command"
    return shlex.split(match["options"].strip())


def test_procfile_dockerfile_and_compose_run_the_same_web_command() -> None:
    procfile = _web_options((ROOT / "Procfile").read_text())
    assert "python:config.gunicorn" in procfile
    assert _web_options((ROOT / "Dockerfile").read_text()) == procfile
    assert _web_options((ROOT / "docker-compose.yml").read_text()) == procfile


def test_the_test_stack_loads_the_same_gunicorn_settings() -> None:
    command = web_command(8000)
    assert command[command.index("--config") + 1] == "python:config.gunicorn"
    assert command[command.index("--worker-class") + 1] == "gthread"


def test_a_worker_freezes_what_it_built_at_start() -> None:
    try:
        gunicorn.post_worker_init(worker=None)
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()


def test_every_pool_process_type_runs_the_runner() -> None:
    lines = dict(line.split(": ", 1) for line in Path(ROOT / "Procfile").read_text().splitlines() if line.strip())
    pools = {name for name, command in lines.items() if "actors.run" in command}
    assert pools == set(POOLS)
