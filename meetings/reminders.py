"""Reminders before meetings: at most one email per person, meeting and offset.

``reminders_plan`` creates a ``pending`` Reminder row for every confirmed attendee or helper
whose meeting enters a reminder window (by default 7 days and 1 day before; setting
MEETUPS_REMINDER_DAYS); meetings.mailing sends it as every meetup email (claimed before
sending, retried after an SMTP failure, never sent twice by a worker that died).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import F
from django.utils import timezone

from .models import RSVP, Reminder


def reminders_plan(*, now: datetime | None = None) -> int:
    """Create the reminders that are due now; return how many were new.

    A reminder ``d`` days before is due during the day that ends ``d`` days before the
    start. Someone who signed up after that window opened just got a confirmation and gets
    no such reminder. Idempotent: one row per RSVP and offset, by a unique constraint.
    """
    now = now or timezone.now()
    created = 0
    for days in settings.MEETUPS_REMINDER_DAYS:
        offset = timedelta(days=days)
        due = RSVP.objects.filter(
            answer=RSVP.Answer.YES,
            waitlisted_at__isnull=True,
            meeting__cancelled_at__isnull=True,
            meeting__start__gt=max(now, now + offset - timedelta(days=1)),
            meeting__start__lte=now + offset,
            created_at__lte=F("meeting__start") - offset,
        ).exclude(reminders__days_before=days)
        rows = [Reminder(rsvp_id=pk, days_before=days) for pk in due.values_list("pk", flat=True)]
        Reminder.objects.bulk_create(rows, ignore_conflicts=True)
        created += len(rows)
    return created
