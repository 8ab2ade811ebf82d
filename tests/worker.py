"""A real Celery worker process of the project, against the broker and the database the
tests use: started, waited on and stopped (or killed) by the tests of the sending paths."""

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

from django.conf import settings

BASE_DIR = Path(settings.BASE_DIR)


def _database_url() -> str:
    db = settings.DATABASES["default"]
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    return f"postgres://{db['USER']}{password}@{db['HOST']}:{db['PORT'] or 5432}/{db['NAME']}"


def start_worker(
    queue: str, smtp_port: int, *, concurrency: int = 2, log=None, **extra_env
) -> subprocess.Popen:
    """A worker process of the project consuming ``queue``, sending mail to the SMTP server
    on loopback at ``smtp_port``; ``extra_env`` adds settings; ``log`` (a path) keeps what it
    prints."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "outreach.settings",
        "DATABASE_URL": _database_url(),
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        "CELERY_TASK_DEFAULT_QUEUE": queue,
        "EMAIL_URL": f"smtp://127.0.0.1:{smtp_port}",
        "SITE_URL": "https://outreach.example.org",
        **extra_env,
    }
    env.pop("CI", None)
    command = [
        sys.executable, "-m", "celery", "-A", "outreach", "worker",
        "--pool=prefork", f"--concurrency={concurrency}", "--loglevel=INFO",
        "-Q", queue, "-n", f"{queue}-{uuid.uuid4().hex[:6]}@%h",
        "--without-gossip", "--without-mingle", "--without-heartbeat",
    ]  # fmt: skip
    return subprocess.Popen(
        command,
        cwd=BASE_DIR,
        env=env,
        stdout=open(log, "w") if log else subprocess.DEVNULL,  # noqa: SIM115 - the child's
        stderr=subprocess.STDOUT if log else subprocess.DEVNULL,
        start_new_session=True,  # its own process group: killed with its pool processes
    )


def wait_for(condition, *, timeout: float, what: str, log=None) -> None:
    """Poll ``condition`` until it holds; fail after ``timeout`` seconds (a bound on waiting,
    not an assertion on speed)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    printed = f"; the worker printed:\n{Path(log).read_text()[-3000:]}" if log else ""
    raise AssertionError(f"timed out waiting for {what}{printed}")


def stop_worker(worker: subprocess.Popen, sig=signal.SIGTERM) -> None:
    if worker.poll() is None:
        os.killpg(worker.pid, sig)
        try:
            worker.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait()
