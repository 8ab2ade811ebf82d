"""A pull whose worker dies is closed as interrupted, and the next one resumes where it
stopped: a real Celery worker against Redis and PostgreSQL, killed with SIGKILL mid-pull,
pulling from the MediaWiki server on loopback."""

import signal
import uuid
from datetime import date, timedelta

import pytest
from django.conf import settings
from django.urls import reverse
from django.utils import timezone

from drives.models import Contribution, Drive, PullCursor, PullRun
from drives.services import pull_runs_interrupt
from drives.tasks import contributions_pull_task
from tests.factories import LibrarianFactory, LibraryFactory
from tests.worker import start_worker, stop_worker, wait_for

ALL_TAGGED = {2, 3, 5, 6, 8, 9, 11, 13, 17}


@pytest.fixture
def drive(db):
    for username, library in [
        ("Demo Librarian", "Bibliothèque de Morges"),
        ("Exemple Bibliothécaire", "Bibliothèque de Nyon"),
        ("Sample Archivist", "Archives cantonales"),
    ]:
        LibrarianFactory(wiki_username=username, library=LibraryFactory(name=library))
    return Drive.objects.create(
        title="#1lib1ref",
        hashtags="#1lib1ref #1bib1ref",
        wikis="demo",
        starts_on=date(2023, 1, 1),
        ends_on=date(2026, 11, 30),
    )


def _kept(drive):
    return set(Contribution.objects.in_drive(drive).values_list("revid", flat=True))


@pytest.mark.django_db
def test_a_run_whose_worker_died_is_closed_and_the_button_pulls_again(
    demo, drive, coordinator_client
):
    now = timezone.now()
    dead = PullRun.objects.create(drive=drive, heartbeat_at=now - timedelta(hours=2))
    fresh = PullRun.objects.create(drive=Drive.objects.create(title="Other"), heartbeat_at=now)
    assert pull_runs_interrupt() == 1
    dead.refresh_from_db()
    fresh.refresh_from_db()
    assert (dead.status, fresh.status) == ("interrupted", "running")
    assert "the next pull resumes where it stopped" in dead.errors and dead.finished_at

    # Another dead run: the button closes it and pulls, instead of "already running".
    PullRun.objects.create(drive=drive, heartbeat_at=now - timedelta(hours=2))
    response = coordinator_client.post(reverse("drives:drive-pull", args=[drive.pk]), follow=True)
    assert "A pull is already running." not in response.content.decode()
    assert list(drive.pull_runs.values_list("status", flat=True)) == [
        "done", "interrupted", "interrupted"
    ]  # fmt: skip
    assert "Interrupted" in response.content.decode()
    assert _kept(drive) == ALL_TAGGED


@pytest.mark.django_db
def test_a_live_pull_is_not_started_twice(demo, drive, coordinator_client):
    running = PullRun.objects.create(drive=drive, heartbeat_at=timezone.now())
    response = coordinator_client.post(reverse("drives:drive-pull", args=[drive.pk]), follow=True)
    assert "A pull is already running." in response.content.decode()
    assert contributions_pull_task.delay(drive.pk).get()["status"] == "running"
    assert list(drive.pull_runs.all()) == [running]


@pytest.mark.postgres
@pytest.mark.broker
@pytest.mark.django_db(transaction=True)
def test_a_pull_killed_mid_way_with_its_worker_resumes_from_the_button(
    demo, drive, coordinator_client, smtp, tmp_path
):
    from outreach.celery import app

    demo.delay = 0.4  # a slow wiki: the pull takes seconds, page after page
    queue = f"test-pull-{uuid.uuid4().hex[:8]}"
    worker = start_worker(
        queue,
        smtp.port,
        concurrency=1,
        WIKIS=f"demo={demo.api_url}",
        WIKI_CACHE_DIR=str(tmp_path / "worker-pywikibot"),
        WIKI_CONTRIBUTIONS_PER_REQUEST="3",
        WIKI_USER_AGENT_CONTACT="outreach@example.org",
        WIKI_TIMEOUT="5",
        log=tmp_path / "worker.log",
    )
    try:
        app.conf.task_always_eager = False  # to the worker (celery_tasks_in_process restores it)
        contributions_pull_task.apply_async((drive.pk,), queue=queue)
        wait_for(
            lambda: PullCursor.objects.filter(drive=drive).exclude(token="").exists(),
            timeout=60,
            what="the worker to store a first page of edits",
            log=tmp_path / "worker.log",
        )
        stop_worker(worker, signal.SIGKILL)
    finally:
        stop_worker(worker, signal.SIGKILL)
        import redis

        redis.Redis.from_url(settings.CELERY_BROKER_URL).delete(queue)
    app.conf.task_always_eager = True  # the button's pull runs here, as `make run` does
    run = PullRun.objects.get()
    assert run.status == "running"  # nobody closed it: the worker is dead
    assert _kept(drive) < ALL_TAGGED
    stored = _kept(drive)

    # The lease runs out (its worker is not heard of again)…
    PullRun.objects.update(heartbeat_at=timezone.now() - timedelta(hours=1))
    demo.delay = 0
    demo.requests.clear()
    page = coordinator_client.post(reverse("drives:drive-pull", args=[drive.pk]), follow=True)

    run.refresh_from_db()
    assert run.status == "interrupted" and "last heard of" in run.errors
    latest = drive.pull_runs.first()
    assert latest.status == "done", latest.errors
    # …and the button's pull went on from the page after the last one stored.
    first = next(r for r in demo.requests if r.get("list") == "usercontribs")
    assert first.get("uccontinue")
    assert _kept(drive) == ALL_TAGGED and stored <= _kept(drive)
    assert "Interrupted" in page.content.decode()
