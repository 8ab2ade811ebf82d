"""Background work of drives: thin adapters around ``drives.pulls`` and ``drives.services``.

Each pull is a ``PullRun`` row that records what it did; a failed pull is resumed by the next
one from the stored cursors, so running late, twice or once not at all is harmless.
"""

from celery import shared_task
from django.utils import timezone

from .models import Drive
from .pulls import contributions_pull
from .selectors import drives_due, drives_to_reread
from .services import contribution_tallies_refresh, pull_runs_interrupt


@shared_task(acks_late=True)
def contributions_pull_task(drive_id: int, whole: bool = False) -> dict:
    """Pull one drive's edits (``whole``: its whole window again); a failed pull is recorded
    and resumed by the next one."""
    drive = Drive.objects.filter(pk=drive_id).first()
    if drive is None:
        return {}
    run = contributions_pull(drive=drive, whole=whole)
    return {"status": run.status, "kept": run.edits_kept, "requests": run.requests}


@shared_task(acks_late=True)
def contributions_pull_due_task() -> list[int]:
    """Every hour: pull the drives whose window is open; at night, also those that ended in
    the last week (a pull that failed during the window is made up)."""
    pull_runs_interrupt()  # a pull whose worker died is closed, and its drive is due again
    now = timezone.now()
    due = drives_due(now=now)
    reread = set(drives_to_reread(now=now))
    for drive_id in due:
        contributions_pull_task.delay(drive_id, whole=drive_id in reread)
    return due


@shared_task(acks_late=True)
def contribution_tallies_refresh_task() -> int:
    """Every night: the dashboard's year of #1lib1ref tallies moves on with the calendar."""
    return contribution_tallies_refresh()
