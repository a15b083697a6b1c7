"""Running the operator CLI the way an operator does, against the test run's resources."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run_cli(*args: str, env: dict[str, str] | None = None, check: bool = True) -> subprocess.CompletedProcess:
    """Run the operator CLI the way an operator does, against the test resources."""
    return subprocess.run([sys.executable, "-m", "config.cli", *args], cwd=ROOT, env={**os.environ, **(env or {})},
                          capture_output=True, text=True, timeout=120, check=check)
