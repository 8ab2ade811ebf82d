"""Periodic work on meetups: keeping every active series materialised for the coming months."""

from celery import shared_task

from .models import MeetupSeries
from .services import meetings_materialise


@shared_task(acks_late=True)
def meetings_materialise_task() -> int:
    """Materialise every active series; idempotent, so running late or twice is harmless."""
    return sum(
        meetings_materialise(series=series)
        for series in MeetupSeries.objects.filter(status=MeetupSeries.Status.ACTIVE)
    )
