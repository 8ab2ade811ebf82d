"""A real Celery worker process against Redis and PostgreSQL, killed with SIGKILL mid-campaign.

The campaign must still be finished by the next worker: nobody lost, and at most the messages
in flight at the moment of the kill (one per worker process) sent twice.
"""

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from django.conf import settings
from django.utils import timezone

from campaigns import services
from campaigns.models import Campaign, Delivery, Message
from tests.factories import LibrarianFactory, LibraryFactory, RegionFactory

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.broker,
    pytest.mark.django_db(transaction=True),
]

BASE_DIR = Path(settings.BASE_DIR)
RECIPIENTS = 60
CONCURRENCY = 2


def _database_url() -> str:
    db = settings.DATABASES["default"]
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    return f"postgres://{db['USER']}{password}@{db['HOST']}:{db['PORT'] or 5432}/{db['NAME']}"


def _start_worker(queue: str, smtp_port: int) -> subprocess.Popen:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "outreach.settings",
        "DATABASE_URL": _database_url(),
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        "CELERY_TASK_DEFAULT_QUEUE": queue,
        "EMAIL_URL": f"smtp://127.0.0.1:{smtp_port}",
        "SITE_URL": "https://outreach.example.org",
        # 20 messages a second in batches of 5: about three seconds for the campaign.
        "CAMPAIGNS_RATE_PER_SECOND": "20",
        "CAMPAIGNS_BATCH_SIZE": "5",
        "CAMPAIGNS_WORKER_CHAINS": str(CONCURRENCY),
        "CAMPAIGNS_CLAIM_LEASE_SECONDS": "4",
    }
    env.pop("CI", None)
    command = [
        sys.executable, "-m", "celery", "-A", "outreach", "worker",
        "--pool=prefork", f"--concurrency={CONCURRENCY}", "--loglevel=INFO",
        "-Q", queue, "-n", f"{queue}-{uuid.uuid4().hex[:6]}@%h",
        "--without-gossip", "--without-mingle", "--without-heartbeat",
    ]  # fmt: skip
    return subprocess.Popen(
        command,
        cwd=BASE_DIR,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # its own process group: killed with its pool processes
    )


def _wait(condition, *, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def _stop(worker: subprocess.Popen, sig=signal.SIGTERM) -> None:
    if worker.poll() is None:
        os.killpg(worker.pid, sig)
        try:
            worker.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait()


def test_a_worker_killed_mid_campaign_leaves_nobody_out(smtp, monkeypatch):
    region = RegionFactory(name="Vaud", slug="vaud")
    libraries = [LibraryFactory(region=region) for _ in range(10)]
    addresses = [f"librarian{n}@bibliotheque.example.org" for n in range(RECIPIENTS)]
    for n, address in enumerate(addresses):
        LibrarianFactory(email=address, library=libraries[n % 10])
    campaign = Campaign.objects.create(title="Invitation", filter_librarians=True)
    Message.objects.create(
        campaign=campaign, language="fr", subject="Wikipédia", body="Bonjour {{ recipient }}"
    )
    # Launch without enqueuing anything from here: the worker picks up the campaign being
    # sent as it starts, as it would after a crash.
    monkeypatch.setattr(services, "_dispatch_after_commit", lambda campaign: None)
    services.campaign_launch(campaign=campaign)
    assert Delivery.objects.filter(state="queued").count() == RECIPIENTS

    queue = f"test-kill-{uuid.uuid4().hex[:8]}"
    first = _start_worker(queue, smtp.port)
    try:
        _wait(
            lambda: sum(smtp.recorder.count_by_address().values()) >= RECIPIENTS // 4,
            timeout=60,
            what="the first worker to send a quarter of the campaign",
        )
        _stop(first, signal.SIGKILL)
        received_at_kill = sum(smtp.recorder.count_by_address().values())
        assert received_at_kill < RECIPIENTS, "the worker finished before it could be killed"
        assert Delivery.objects.filter(state="sending").exists()  # it died holding claims

        second = _start_worker(queue, smtp.port)
        try:
            _wait(
                lambda: Campaign.objects.get(pk=campaign.pk).status == Campaign.Status.SENT,
                timeout=90,
                what="the second worker to finish the campaign",
            )
        finally:
            _stop(second)
    finally:
        _stop(first, signal.SIGKILL)
        import redis

        redis.Redis.from_url(settings.CELERY_BROKER_URL).delete(queue)

    counts = smtp.recorder.count_by_address()
    lost = [address for address in addresses if counts[address] == 0]
    twice = {address: n for address, n in counts.items() if n > 1}
    assert lost == []
    assert sum(n - 1 for n in twice.values()) <= CONCURRENCY, twice
    assert set(Delivery.objects.values_list("state", flat=True)) == {"sent"}
    assert Campaign.objects.get(pk=campaign.pk).finished_at <= timezone.now()
