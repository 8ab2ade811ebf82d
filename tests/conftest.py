"""Shared fixtures, and the guard that keeps CI on the real services.

In CI (CI=true) the suite must run on PostgreSQL with a Celery broker: if the settings fell
back to SQLite or to in-process tasks, the run stops at once instead of passing on the
wrong parts. Outside CI, tests marked ``postgres`` or ``broker`` are skipped with the reason.
"""

import os

import pytest
from django.conf import settings
from django.utils import translation

from core.roles import COORDINATORS, ambassadors_group

from .factories import RegionFactory, UserFactory
from .smtp import SMTPServer

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def _database_vendor() -> str:
    return settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1]


def pytest_configure(config):
    if IN_CI:
        problems = []
        if "postgresql" not in _database_vendor():
            problems.append(f"DATABASE_URL is not PostgreSQL ({_database_vendor()})")
        if not settings.CELERY_BROKER_URL:
            problems.append("CELERY_BROKER_URL is not set")
        if problems:
            raise pytest.UsageError("CI must run on the real services: " + "; ".join(problems))


def pytest_collection_modifyitems(config, items):
    if IN_CI:
        return
    no_postgres = pytest.mark.skip(reason="needs PostgreSQL: set DATABASE_URL=postgres://…")
    no_broker = pytest.mark.skip(reason="needs a Celery broker: set CELERY_BROKER_URL=redis://…")
    for item in items:
        if "postgres" in item.keywords and "postgresql" not in _database_vendor():
            item.add_marker(no_postgres)
        if "broker" in item.keywords and not settings.CELERY_BROKER_URL:
            item.add_marker(no_broker)


@pytest.fixture(autouse=True)
def default_language():
    """Each test starts in the default language: a request with Accept-Language leaves its
    language active in the thread (LocaleMiddleware does not reset it)."""
    yield
    translation.activate(settings.LANGUAGE_CODE)


@pytest.fixture
def vaud(db):
    return RegionFactory(name="Vaud", slug="vaud")


@pytest.fixture
def geneve(db):
    return RegionFactory(name="Genève", slug="geneve")


@pytest.fixture
def coordinator(db):
    """A user in the Coordinators group."""
    from django.contrib.auth.models import Group

    user = UserFactory(username="coordinator")
    user.groups.add(Group.objects.get(name=COORDINATORS))
    return user


@pytest.fixture
def coordinator_client(client, coordinator):
    client.force_login(coordinator)
    return client


@pytest.fixture
def smtp(settings):
    """A real SMTP server on loopback, and the app's email pointed at it."""
    server = SMTPServer().start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", server.port
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    settings.EMAIL_TIMEOUT = 5
    yield server
    server.stop()


@pytest.fixture
def make_ambassador(db):
    """make_ambassador(region, …, username=…): a user in the Ambassadors group, ambassador of
    the regions given (and of no other)."""

    def make(*regions, username="ambassador"):
        user = UserFactory(username=username)
        user.groups.add(ambassadors_group())
        for region in regions:
            region.ambassadors.add(user)
        return user

    return make


@pytest.fixture(autouse=True)
def celery_tasks_in_process():
    """Run tasks in-process, as `make run` does, even when CI configures a broker.

    Tests of a path that must go through the broker to a real worker process start one
    themselves and turn this off.
    """
    from celery._state import _set_task_join_will_block

    from outreach.celery import app

    # Celery marks "inside a task" in a process-wide flag, saved and restored around each
    # eager run: two runs at once in the live server's threads (the browser journeys) can
    # leave it set, and every later .get() would fail. Each test starts outside any task.
    _set_task_join_will_block(False)
    previous = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = previous


@pytest.fixture(autouse=True)
def no_cache(settings):
    """Every test reads what it just wrote: the caches of pages and feeds are off.

    Tests of the caching itself turn them on again (a LocMemCache in ``settings.CACHES``).
    """
    from meetings import feeds

    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.dummy.DummyCache"}}
    feeds._recent_files.clear()
