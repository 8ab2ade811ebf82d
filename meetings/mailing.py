"""The emails of meetups, each a row with a state: what a sign-up became (``RSVPMail``) and the
reminders before a meeting (``Reminder``, planned by meetings.reminders), both ``MeetingMail``.

- ``_claim`` locks the row and moves it ``pending → sending`` in a transaction of its own,
  committed before the SMTP conversation: a second run, a task delivered twice or two
  workers find it claimed and send nothing.
- ``_send`` renders and sends, then marks the row ``sent`` with its Message-ID. A refusal or
  a dropped connection puts it back to ``pending`` until ``next_attempt_at`` (doubling from a
  minute, up to an hour), ``failed`` after MAX_ATTEMPTS or at once for a permanent refusal.
- ``mails_sweep`` marks rows stuck in ``sending`` (the worker died mid-send) ``failed``:
  whether that email left is unknown, and sending it again could send it twice.
- ``mails_due`` lists the pending rows whose time has come, for the periodic task to enqueue
  again: a lost task or a broker that was down delays an email, never loses it.
"""

from __future__ import annotations

import smtplib
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import models, transaction
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone

from core.mail import mail_send, site_url

from .links import rsvp_link_token
from .models import RSVP, MeetingMail, Reminder, RSVPMail

STUCK_SENDING = timedelta(minutes=30)
MAX_ATTEMPTS = 8
State = MeetingMail.State


@dataclass(frozen=True)
class Outcome:
    sent: bool = False
    # When to try again (a transient failure), or None.
    retry_at: datetime | None = None


def retry_delay(attempts: int) -> timedelta:
    """Wait after ``attempts`` failed tries: 1, 2, 4 … minutes, at most an hour."""
    return timedelta(seconds=min(60 * 2 ** max(attempts - 1, 0), 3600))


def meeting_context(rsvp: RSVP) -> dict:
    """What every meetup email shows: the meeting, the sign-up and its two links."""
    return {
        "rsvp": rsvp,
        "meeting": rsvp.meeting,
        "manage_url": site_url(reverse("meetings:rsvp-manage", args=[rsvp_link_token(rsvp)])),
        "meeting_url": site_url(reverse("meetings:meeting-public", args=[rsvp.meeting_id])),
    }


def _claim(rows: models.QuerySet, pk: int) -> MeetingMail | None:
    with transaction.atomic():
        # of=("self",): lock the mail row only; PostgreSQL cannot lock the nullable side of
        # the outer joins (a meeting's series, its host library).
        row = rows.select_for_update(of=("self",)).filter(pk=pk).first()
        if row is None or row.state != State.PENDING:
            return None
        row.state, row.state_changed_at = State.SENDING, timezone.now()
        row.attempts += 1
        row.save(update_fields=["state", "state_changed_at", "attempts"])
    # Committed: from here on, a second run or a restarted worker leaves this row alone.
    return row


def _permanent(error: Exception) -> bool:
    """A 5xx refusal of the recipient or the message: trying again cannot help (RFC 5321)."""
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _reason in error.recipients.values()]
        return bool(codes) and all(code >= 500 for code in codes)
    return isinstance(error, smtplib.SMTPResponseException) and error.smtp_code >= 500


def _send(row: MeetingMail, *, connection=None, **message) -> Outcome:
    rows = type(row).objects.filter(pk=row.pk, state=State.SENDING)
    try:
        message_id = mail_send(connection=connection, **message)
    except (OSError, smtplib.SMTPException) as error:
        now = timezone.now()
        if _permanent(error) or row.attempts >= MAX_ATTEMPTS:
            rows.update(state=State.FAILED, state_changed_at=now, error=str(error)[:500])
            return Outcome()
        retry_at = now + retry_delay(row.attempts)
        rows.update(
            state=State.PENDING,
            state_changed_at=now,
            next_attempt_at=retry_at,
            error=str(error)[:500],
        )
        return Outcome(retry_at=retry_at)
    except Exception as error:
        # Not the server: this email cannot be made (a bug). Recorded, and raised to be seen.
        rows.update(state=State.FAILED, state_changed_at=timezone.now(), error=repr(error)[:500])
        raise
    rows.update(
        state=State.SENT,
        state_changed_at=timezone.now(),
        message_id=message_id,
        next_attempt_at=None,
        error="",
    )
    return Outcome(sent=True)


# Sign-ups -----------------------------------------------------------------------------------


def rsvp_mail_queue(*, rsvp: RSVP, kind: str, language: str) -> RSVPMail | None:
    """The email telling ``rsvp`` of ``kind``, to send once the sign-up commits; None when an
    unsent one of that kind already waits (it is sent as the sign-up stands then).

    Call it inside the sign-up's transaction, with the meeting locked: the row commits with
    the sign-up. An unsent email of another kind says what is no longer true: it is dropped.
    """
    now = timezone.now()
    RSVPMail.objects.filter(rsvp=rsvp, state=State.PENDING).exclude(kind=kind).update(
        state=State.FAILED,
        state_changed_at=now,
        error="Not sent: the sign-up changed before it left, and a later email tells it.",
    )
    mail, created = RSVPMail.objects.get_or_create(
        rsvp=rsvp, kind=kind, state=State.PENDING, defaults={"language": language}
    )
    if not created:
        RSVPMail.objects.filter(pk=mail.pk).update(language=language)
        return None
    return mail


def _still_true(mail: RSVPMail) -> bool:
    """Whether the email still says what the sign-up is (it is sent as the sign-up stands)."""
    rsvp = mail.rsvp
    if rsvp.answer != RSVP.Answer.YES:
        return False
    waiting = rsvp.waitlisted_at is not None
    return waiting if mail.kind == RSVPMail.Kind.WAITLISTED else not waiting


def rsvp_mail_send(*, mail_id: int, connection=None) -> Outcome:
    """Send one sign-up email if nobody has claimed it yet."""
    rows = RSVPMail.objects.select_related("rsvp__meeting__series", "rsvp__meeting__host_library")
    mail = _claim(rows, mail_id)
    if mail is None:
        return Outcome()
    if not _still_true(mail):
        RSVPMail.objects.filter(pk=mail.pk).update(
            state=State.FAILED,
            state_changed_at=timezone.now(),
            error="Not sent: the sign-up changed (or was cancelled) before it left.",
        )
        return Outcome()
    return _send(
        mail,
        to=mail.rsvp.email,
        name=f"meetings/{mail.kind}",
        context=meeting_context(mail.rsvp),
        language=mail.language,
        connection=connection,
    )


# Reminders ----------------------------------------------------------------------------------


def reminder_send(*, reminder_id: int, connection=None) -> Outcome:
    """Send one reminder if nobody has claimed it yet, in the language of the meetup."""
    rows = Reminder.objects.select_related("rsvp__meeting__series", "rsvp__meeting__host_library")
    reminder = _claim(rows, reminder_id)
    if reminder is None:
        return Outcome()
    rsvp = reminder.rsvp
    return _send(
        reminder,
        to=rsvp.email,
        name="meetings/reminder",
        context={**meeting_context(rsvp), "days_before": reminder.days_before},
        language=rsvp.meeting.series.language if rsvp.meeting.series else "en",
        connection=connection,
    )


# Every kind ---------------------------------------------------------------------------------


def mails_due(model: type[MeetingMail], *, now: datetime | None = None) -> list[int]:
    """Pending rows to (re)enqueue: new ones, those whose task was lost, retries now due."""
    now = now or timezone.now()
    return list(
        model.objects.filter(state=State.PENDING)
        .filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
        .values_list("pk", flat=True)
    )


def mails_sweep(model: type[MeetingMail], *, now: datetime | None = None) -> int:
    """Mark rows stuck in ``sending`` as failed rather than risk sending them twice."""
    now = now or timezone.now()
    return model.objects.filter(
        state=State.SENDING, state_changed_at__lt=now - STUCK_SENDING
    ).update(
        state=State.FAILED,
        state_changed_at=now,
        error="Interrupted while sending; not sent again so that nobody gets it twice.",
    )
