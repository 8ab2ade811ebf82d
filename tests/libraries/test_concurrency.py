"""Concurrent writers on PostgreSQL (SQLite serialises whole transactions, so there is nothing to
race there)."""

import threading

import pytest
from django.db import connection

from libraries.models import Library
from libraries.services import library_status_change
from tests.factories import LibraryFactory


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("attempt", range(3))
def test_simultaneous_status_changes_leave_a_history_that_chains_to_the_final_status(attempt):
    library = LibraryFactory()
    start = threading.Barrier(2)
    failures = []

    def move(status):
        try:
            stale = Library.objects.get(pk=library.pk)  # both read "prospect"
            start.wait(timeout=10)
            library_status_change(library=stale, status=status, source="test")
        except Exception as error:  # pragma: no cover - reported below
            failures.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=move, args=(s,)) for s in ("contacted", "interested")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not failures

    library.refresh_from_db()
    history = list(library.status_changes.order_by("changed_at", "id"))
    assert len(history) == 2
    assert history[0].from_status == "prospect"
    assert history[1].from_status == history[0].to_status
    assert history[1].to_status == library.status
