"""Reminders before meetings: at most one email per person, meeting and offset.

``reminders_plan`` creates a ``pending`` Reminder row for every confirmed attendee or helper
whose meeting enters a reminder window (by default 7 days and 1 day before; setting
MEETUPS_REMINDER_DAYS). ``reminder_send`` claims one row (pending → sending, committed),
sends, and records the outcome; an SMTP error puts the row back to pending for a retry. Each
run enqueues every pending row again (a claimed row is skipped, so that is harmless), and
``reminders_sweep`` marks rows stuck in ``sending`` as failed: whether that email left is
unknown (the worker died mid-send), and sending it again could send it twice.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.urls import reverse
from django.utils import timezone

from core.mail import mail_send, site_url

from .links import rsvp_link_token
from .models import RSVP, Reminder

STUCK_SENDING = timedelta(minutes=30)


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


def reminders_pending() -> list[int]:
    """Pending reminders to (re)enqueue: new ones, and those whose task was lost."""
    return list(Reminder.objects.filter(state=Reminder.State.PENDING).values_list("pk", flat=True))


def reminders_sweep(*, now: datetime | None = None) -> int:
    """Mark reminders stuck in ``sending`` as failed rather than risk sending them twice."""
    now = now or timezone.now()
    return Reminder.objects.filter(
        state=Reminder.State.SENDING, state_changed_at__lt=now - STUCK_SENDING
    ).update(
        state=Reminder.State.FAILED,
        state_changed_at=now,
        error="Interrupted while sending; not sent again so that nobody gets it twice.",
    )


def reminder_send(*, reminder_id: int, connection=None) -> bool:
    """Send one reminder if nobody has claimed it yet; return whether it was sent now."""
    with transaction.atomic():
        reminder = (
            # of=("self",): lock the reminder row only; PostgreSQL cannot lock the nullable
            # side of the outer joins (meeting series, host library).
            Reminder.objects.select_for_update(of=("self",))
            .select_related("rsvp__meeting__series", "rsvp__meeting__host_library")
            .get(pk=reminder_id)
        )
        if reminder.state != Reminder.State.PENDING:
            return False
        reminder.state, reminder.state_changed_at = Reminder.State.SENDING, timezone.now()
        reminder.save(update_fields=["state", "state_changed_at"])
    # Committed: from here on, a second run or a restarted worker leaves this row alone.
    rsvp = reminder.rsvp
    try:
        mail_send(
            to=rsvp.email,
            name="meetings/reminder",
            context={
                "rsvp": rsvp,
                "meeting": rsvp.meeting,
                "days_before": reminder.days_before,
                "manage_url": site_url(
                    reverse("meetings:rsvp-manage", args=[rsvp_link_token(rsvp)])
                ),
                "meeting_url": site_url(reverse("meetings:meeting-public", args=[rsvp.meeting_id])),
            },
            language=rsvp.meeting.series.language if rsvp.meeting.series else "en",
            connection=connection,
        )
    except Exception as error:
        # The server refused or could not be reached: nothing was delivered, so the row goes
        # back to pending and the task retries it.
        Reminder.objects.filter(pk=reminder.pk).update(
            state=Reminder.State.PENDING, state_changed_at=timezone.now(), error=str(error)[:500]
        )
        raise
    Reminder.objects.filter(pk=reminder.pk).update(
        state=Reminder.State.SENT, state_changed_at=timezone.now()
    )
    return True
