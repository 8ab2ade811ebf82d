"""Writes to meetups: series, their occurrences, and one-off meetings.

A series is a rule; its meetings are materialised from the rule for the coming months by
``meetings_materialise`` (run daily by celery beat and right after a series is saved). Each
occurrence is keyed by the start its rule gave it, so materialising again creates nothing,
and a cancelled or moved occurrence keeps its row instead of coming back.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from libraries.services import unique_slug

from .models import Meeting, MeetupSeries
from .recurrence import occurrences


def series_create(*, title: str, rrule: str, **fields) -> MeetupSeries:
    """Create a series with a unique slug and materialise its coming meetings."""
    with transaction.atomic():
        series = MeetupSeries(title=title, rrule=rrule, **fields)
        series.slug = unique_slug(MeetupSeries, title)
        series.full_clean()
        series.save()
        meetings_materialise(series=series)
    return series


def meetings_materialise(
    *, series: MeetupSeries, now: datetime | None = None, horizon: timedelta | None = None
) -> int:
    """Create the meetings of ``series`` from now to the horizon; return how many were new.

    Idempotent: one bulk insert that skips the occurrences already there (unique on series
    and original start), whatever happened to them since (cancelled, moved).
    """
    if series.status != MeetupSeries.Status.ACTIVE:
        return 0
    now = now or timezone.now()
    horizon = horizon or timedelta(days=settings.MEETUPS_HORIZON_DAYS)
    starts = list(
        occurrences(
            rrule=series.rrule,
            start_date=series.start_date,
            start_time=series.start_time,
            time_zone=series.time_zone,
            after=now,
            before=now + horizon,
        )
    )
    if not starts:
        return 0
    existing = set(
        Meeting.objects.filter(series=series, original_start__in=starts).values_list(
            "original_start", flat=True
        )
    )
    new = [
        Meeting(
            series=series,
            host_library_id=series.host_library_id,
            original_start=start,
            start=start,
            end=start + series.duration,
            time_zone=series.time_zone,
            capacity=series.capacity,
            online_url=series.online_url,
        )
        for start in starts
        if start not in existing
    ]
    # ignore_conflicts: a second materialisation running at the same moment skips the same
    # rows instead of failing.
    Meeting.objects.bulk_create(new, ignore_conflicts=True)
    return len(new)


def meeting_cancel(*, meeting: Meeting, reason: str = "") -> Meeting:
    """Cancel one meeting; the series goes on (calendar feeds list it as an EXDATE)."""
    meeting.cancelled_at = timezone.now()
    meeting.cancel_reason = reason
    meeting.save(update_fields=["cancelled_at", "cancel_reason", "updated_at"])
    return meeting


def meeting_move(*, meeting: Meeting, start: datetime, end: datetime | None = None) -> Meeting:
    """Move one meeting to another time, keeping its length unless ``end`` is given."""
    if timezone.is_naive(start):
        raise ValueError("A meeting's start must be aware.")
    length = meeting.end - meeting.start
    meeting.start, meeting.end = start, end or start + length
    meeting.full_clean()
    meeting.save(update_fields=["start", "end", "updated_at"])
    return meeting
