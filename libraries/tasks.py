"""Background work on libraries: the nightly score refresh (scheduled in outreach/celery.py).

The refresh recomputes every score from the signals and overwrites the day's snapshot, so
running it late, twice or by hand in between is harmless.
"""

from celery import shared_task

from .scoring import scores_refresh


@shared_task(acks_late=True)
def scores_refresh_task() -> int:
    """Refresh every library's score and today's snapshot; return how many libraries."""
    return scores_refresh()
