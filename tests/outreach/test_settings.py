"""The production configuration: read from the environment, and clean under check --deploy."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings

from outreach.celery import app as celery_app

ROOT = Path(__file__).resolve().parents[2]

PRODUCTION_ENV = {
    "DEBUG": "0",
    "SECRET_KEY": "q8Vt-3mZ0pX7rL2cN9wK5yB1hJ4gF6dS8aQ0eR2tY5uI7oP9lKjHgFdSaZxCvBnM",
    "ALLOWED_HOSTS": "outreach.example.org",
    "SITE_URL": "https://outreach.example.org",
    "DATABASE_URL": "postgres://outreach:secret@db.example.org:5432/outreach",
    "CELERY_BROKER_URL": "redis://redis.example.org:6379/0",
    "EMAIL_URL": "smtp+tls://outreach:secret@smtp.example.org:587",
    "DEFAULT_FROM_EMAIL": "Wikimedia CH <outreach@example.org>",
    "TIME_ZONE": "Europe/Zurich",
    # Where the wikis' operators can reach the chapter (Wikimedia User-Agent policy).
    "WIKI_USER_AGENT_CONTACT": "outreach@wikimedia.ch",
}


def _manage(*args, env):
    clean = {k: v for k, v in os.environ.items() if k not in PRODUCTION_ENV and k != "CI"}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_check_deploy_reports_nothing_with_production_values():
    result = _manage("check", "--deploy", "--fail-level", "DEBUG", env=PRODUCTION_ENV)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_check_warns_while_the_wikis_user_agent_contact_is_a_placeholder():
    env = {k: v for k, v in PRODUCTION_ENV.items() if k != "WIKI_USER_AGENT_CONTACT"}
    result = _manage("check", "--deploy", env=env)
    assert "drives.W001" in result.stdout + result.stderr
    assert "outreach@localhost" in result.stdout + result.stderr


def test_production_collects_the_static_files_with_their_manifest(tmp_path):
    """Whitenoise's manifest storage follows every url() and sourceMappingURL of the vendored
    assets: a file they name but that is missing stops the deployment."""
    result = _manage(
        "collectstatic", "--noinput", env={**PRODUCTION_ENV, "STATIC_ROOT": str(tmp_path)}
    )
    assert result.returncode == 0, result.stdout + result.stderr
    manifest = (tmp_path / "staticfiles.json").read_text()
    assert "vendor/chartjs-4.6.1/chart.umd.min.js" in manifest


def test_production_refuses_to_start_without_a_secret_key():
    env = {k: v for k, v in PRODUCTION_ENV.items() if k != "SECRET_KEY"}
    result = _manage("check", env=env)
    assert result.returncode != 0
    assert "Set SECRET_KEY" in result.stderr


def test_settings_come_from_the_environment():
    result = _manage(
        "shell",
        "--no-imports",
        "-c",
        "from django.conf import settings as s; "
        "print(s.SITE_URL, s.TIME_ZONE, s.EMAIL_HOST, s.EMAIL_PORT, s.EMAIL_USE_TLS, "
        "s.DATABASES['default']['HOST'], s.CELERY_BROKER_URL, s.CELERY_TASK_ALWAYS_EAGER, "
        "s.DEFAULT_FROM_EMAIL)",
        env=PRODUCTION_ENV,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [
        "https://outreach.example.org",
        "Europe/Zurich",
        "smtp.example.org",
        "587",
        "True",
        "db.example.org",
        "redis://redis.example.org:6379/0",
        "False",
        "Wikimedia",
        "CH",
        "<outreach@example.org>",
    ]


def test_without_a_broker_tasks_run_in_process():
    result = _manage(
        "shell",
        "--no-imports",
        "-c",
        "from django.conf import settings as s; print(s.CELERY_TASK_ALWAYS_EAGER, "
        "s.DATABASES['default']['ENGINE'], s.EMAIL_BACKEND)",
        env={"CELERY_BROKER_URL": "", "DATABASE_URL": "", "EMAIL_URL": "", "DEBUG": "1"},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [
        "True",
        "django.db.backends.sqlite3",
        "django.core.mail.backends.console.EmailBackend",
    ]


@pytest.mark.broker
def test_the_celery_app_reaches_the_configured_broker():
    assert celery_app.conf.broker_url == settings.CELERY_BROKER_URL
    with celery_app.connection_for_write() as connection:
        connection.ensure_connection(max_retries=2, timeout=5)
        assert connection.connected
