"""Background work on libraries: the nightly score refresh (scheduled in outreach/celery.py).

The refresh carries the scores forward with the signals recorded since the last one (and
once a week checks them against a full count); it adds no signal twice and overwrites the
day's snapshots, so running it late, twice or by hand in between is harmless.
"""

from celery import shared_task

from .scoring import scores_nightly


@shared_task(acks_late=True)
def scores_refresh_task() -> int:
    """Refresh every library's score and today's snapshots; return how many libraries."""
    refreshed, _checked = scores_nightly()
    return refreshed.libraries
