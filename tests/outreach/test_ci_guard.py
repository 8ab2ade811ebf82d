"""CI runs on the real services or not at all."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _collect(env):
    base = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "CELERY_BROKER_URL"}}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "tests/outreach/test_ci_guard.py"],
        cwd=ROOT,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_in_ci_the_suite_refuses_to_run_on_sqlite_and_without_a_broker():
    result = _collect({"CI": "true", "DATABASE_URL": "", "CELERY_BROKER_URL": ""})
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "CI must run on the real services" in output
    assert "not PostgreSQL" in output
    assert "CELERY_BROKER_URL is not set" in output


def test_outside_ci_the_embedded_defaults_are_accepted():
    result = _collect({"CI": "", "DATABASE_URL": "", "CELERY_BROKER_URL": ""})
    assert result.returncode == 0, result.stdout + result.stderr
