"""Writes to meetups: series, their occurrences, and one-off meetings.

A series is a rule; its meetings are materialised from the rule for the coming months by
``meetings_materialise`` (run daily by celery beat and right after a series is saved). Each
occurrence is keyed by the start its rule gave it, so materialising again creates nothing,
and a cancelled or moved occurrence keeps its row instead of coming back.

Visitors sign up with ``rsvp_signup`` (the meeting row locked while seats are counted, so
the last seat goes to one person only; the others wait in order) and cancel with
``rsvp_cancel``, which seats the head of the waiting list. Each outcome is an email row
written with the sign-up (meetings.mailing) and sent after commit, with a signed link to
change or cancel.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from core.text import normalize_email, unique_slug
from libraries.models import ActivitySignal, Librarian
from libraries.services import signal_record

from .mailing import rsvp_mail_queue
from .models import RSVP, Meeting, MeetupSeries, RSVPMail
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


# Sign-ups -----------------------------------------------------------------------------------


class SignupError(Exception):
    """A sign-up that cannot be taken; ``str(error)`` tells the visitor why."""


@transaction.atomic
def rsvp_signup(
    *,
    meeting: Meeting,
    name: str,
    email: str,
    role: str = RSVP.Role.ATTENDEE,
    guests: int = 0,
    librarian: Librarian | None = None,
    language: str = "fr",
) -> RSVP:
    """Sign ``email`` up for ``meeting``, or change their sign-up; email them the outcome.

    The meeting row is locked for the whole decision, so concurrent sign-ups for the last
    seat are served one after the other: the first gets it, the next goes to the waiting
    list. Signing up again with the same address changes the existing RSVP.
    """
    meeting = Meeting.objects.select_for_update().get(pk=meeting.pk)
    if meeting.is_cancelled:
        raise SignupError(_("This meeting is cancelled."))
    if meeting.end <= timezone.now():
        raise SignupError(_("This meeting is over."))
    email = normalize_email(email)
    rsvp = meeting.rsvps.filter(email__iexact=email).first() or RSVP(meeting=meeting, email=email)
    was_seated = rsvp.pk is not None and rsvp.holds_seat
    own_seats = rsvp.guests + 1 if was_seated else 0
    rsvp.name, rsvp.role, rsvp.guests = name, role, guests
    rsvp.answer = RSVP.Answer.YES
    rsvp.librarian = librarian or rsvp.librarian
    if role != RSVP.Role.ATTENDEE or meeting.capacity is None:
        rsvp.waitlisted_at = None
    else:
        free = meeting.capacity - (meeting.rsvps.seats() - own_seats)
        if guests + 1 <= free:
            rsvp.waitlisted_at = None
        elif was_seated:
            raise SignupError(
                _("Only %(free)d seats are left: you cannot bring that many guests.")
                % {"free": free}
            )
        else:
            rsvp.waitlisted_at = rsvp.waitlisted_at or timezone.now()
    rsvp.full_clean(validate_unique=False)
    rsvp.save()
    kind = RSVPMail.Kind.WAITLISTED if rsvp.waitlisted_at else RSVPMail.Kind.CONFIRMED
    _mail_after_commit(rsvp, kind, language)
    seats_freed = was_seated and (not rsvp.holds_seat or own_seats > rsvp.guests + 1)
    if seats_freed:
        _waitlist_promote(meeting, language=language)
    return rsvp


@transaction.atomic
def rsvp_cancel(*, rsvp: RSVP, language: str = "fr") -> RSVP:
    """Cancel a sign-up (the answer becomes no) and give the seat to the waiting list."""
    meeting = Meeting.objects.select_for_update().get(pk=rsvp.meeting_id)
    rsvp = RSVP.objects.get(pk=rsvp.pk)
    was_seated = rsvp.holds_seat
    rsvp.answer, rsvp.waitlisted_at = RSVP.Answer.NO, None
    rsvp.save(update_fields=["answer", "waitlisted_at", "updated_at"])
    if was_seated:
        _waitlist_promote(meeting, language=language)
    return rsvp


def _waitlist_promote(meeting: Meeting, *, language: str) -> list[RSVP]:
    """Seat the waiting list in order while seats remain; the caller holds the meeting lock."""
    if meeting.capacity is None:
        waiting = list(meeting.rsvps.filter(waitlisted_at__isnull=False))
    else:
        waiting = []
        free = meeting.capacity - meeting.rsvps.seats()
        for rsvp in meeting.rsvps.filter(waitlisted_at__isnull=False).order_by(
            "waitlisted_at", "id"
        ):
            if rsvp.guests + 1 > free:
                break  # first come, first served: nobody overtakes the head of the list
            free -= rsvp.guests + 1
            waiting.append(rsvp)
    for rsvp in waiting:
        rsvp.waitlisted_at = None
        rsvp.save(update_fields=["waitlisted_at", "updated_at"])
        _mail_after_commit(rsvp, RSVPMail.Kind.PROMOTED, language)
    return waiting


def _mail_after_commit(rsvp: RSVP, kind: str, language: str) -> None:
    """The outcome's email, as a row written with the sign-up and sent once it commits."""
    from .tasks import rsvp_mail_send_task

    mail = rsvp_mail_queue(rsvp=rsvp, kind=kind, language=language)
    if mail is not None:
        transaction.on_commit(lambda: rsvp_mail_send_task.delay(mail.pk))


# Librarians' answers from email links ------------------------------------------------------


@transaction.atomic
def librarian_answer(
    *, librarian: Librarian, meeting: Meeting, answer: str, language: str = "fr"
) -> RSVP:
    """Record a librarian's yes / maybe / no for ``meeting``; answering again changes it.

    A yes takes a seat like any sign-up (or a place on the waiting list) and is recorded as
    an ``rsvp_yes`` signal of the librarian's library, once per librarian and meeting.
    """
    if answer == RSVP.Answer.YES:
        rsvp = rsvp_signup(
            meeting=meeting,
            name=librarian.name,
            email=librarian.email,
            librarian=librarian,
            guests=0,
            language=language,
        )
        source = f"meeting {meeting.pk}"
        if not librarian.signals.filter(kind=ActivitySignal.Kind.RSVP_YES, source=source).exists():
            signal_record(
                library=librarian.library,
                librarian=librarian,
                kind=ActivitySignal.Kind.RSVP_YES,
                source=source,
            )
        return rsvp
    Meeting.objects.select_for_update().get(pk=meeting.pk)
    rsvp = meeting.rsvps.filter(email__iexact=librarian.email).first()
    if rsvp is not None and rsvp.holds_seat:
        rsvp = rsvp_cancel(rsvp=rsvp, language=language)
    rsvp = rsvp or RSVP(meeting=meeting, email=librarian.email, name=librarian.name)
    rsvp.librarian, rsvp.answer, rsvp.waitlisted_at = librarian, answer, None
    rsvp.save()
    return rsvp


# Attendance ---------------------------------------------------------------------------------


@transaction.atomic
def attendance_record(*, meeting: Meeting, present: set[int], recorded_by=None) -> None:
    """Mark who came (RSVP ids in ``present``) and turn it into activity signals.

    Each librarian who came gets one ``attended`` signal for this meeting and the host
    library one ``hosted_meetup``; correcting the list later removes the signals of those
    unticked, so recording twice never counts twice.
    """
    rsvps = meeting.rsvps.select_related("librarian")
    rsvps.filter(pk__in=present).update(attended=True, updated_at=timezone.now())
    rsvps.exclude(pk__in=present).update(attended=False, updated_at=timezone.now())
    source = f"meeting {meeting.pk}"
    came = {r.librarian_id: r.librarian for r in rsvps.filter(pk__in=present) if r.librarian_id}
    signals = ActivitySignal.objects.filter(source=source)
    signals.filter(kind=ActivitySignal.Kind.ATTENDED).exclude(librarian_id__in=came).delete()
    already = set(
        signals.filter(kind=ActivitySignal.Kind.ATTENDED).values_list("librarian_id", flat=True)
    )
    for librarian_id, librarian in came.items():
        if librarian_id not in already:
            signal_record(
                library=librarian.library,
                librarian=librarian,
                kind=ActivitySignal.Kind.ATTENDED,
                occurred_at=meeting.start,
                source=source,
                recorded_by=recorded_by,
            )
    if (
        meeting.host_library_id
        and not signals.filter(kind=ActivitySignal.Kind.HOSTED_MEETUP).exists()
    ):
        signal_record(
            library=meeting.host_library,
            kind=ActivitySignal.Kind.HOSTED_MEETUP,
            occurred_at=meeting.start,
            source=source,
            recorded_by=recorded_by,
        )
