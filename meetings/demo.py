"""Demo meetups on top of the demo network (see libraries.demo): three series at partner
libraries with their history of sign-ups and attendance, and one online office hour.

Idempotent like the rest of the demo: a series found by its slug is left as it is.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

from django.utils.text import slugify

from libraries.demo import DemoContext
from libraries.models import ActivitySignal, Library

from .models import RSVP, Meeting, MeetupSeries
from .services import attendance_record, meetings_materialise

SERIES = [
    # (slug, rule, start time, capacity, what it is)
    ("first-thursday", "FREQ=MONTHLY;BYDAY=+1TH", time(12, 0), 12),
    ("last-friday", "FREQ=MONTHLY;BYDAY=-1FR", time(17, 30), 10),
    ("every-other-tuesday", "FREQ=WEEKLY;INTERVAL=2;BYDAY=TU", time(18, 0), None),
]
VOLUNTEERS = [
    ("Camille Rey", "mentor"),
    ("Jonas Perret", "greeter"),
    ("Inès Bovet", "attendee"),
    ("Noé Chappuis", "attendee"),
    ("Zoé Monnier", "attendee"),
    ("Luca Bernasconi", "host"),
]
OFFICE_HOUR = "#1lib1ref office hour (online)"


def load(ctx: DemoContext) -> None:
    hosts = list(Library.objects.filter(status=Library.Status.PARTNER).select_related("region")[:3])
    for (slug_part, rule, at, capacity), library in zip(SERIES, hosts, strict=False):
        slug = f"wikipermanence-{library.slug}-{slug_part}"
        if MeetupSeries.objects.filter(slug=slug).exists():
            continue
        series = _series_create(ctx, library, slug, rule, at, capacity)
        _history(ctx, series)
    _office_hour(ctx)


def _series_create(ctx, library, slug, rule, at, capacity) -> MeetupSeries:
    first = (ctx.now - timedelta(days=240)).date().replace(day=1)
    series = MeetupSeries.objects.create(
        title=f"Wikipermanence — {library.name}",
        slug=slug,
        host_library=library,
        venue="Salle de lecture, rez-de-chaussée",
        language="fr",
        time_zone="Europe/Zurich",
        rrule=rule,
        start_date=first,
        start_time=at,
        duration=timedelta(hours=2),
        capacity=capacity,
        description=(
            "Découvrez Wikipédia et Wikimedia Commons avec des contributrices et contributeurs "
            "bénévoles : créer un compte, corriger un article, ajouter une source, verser une "
            "photo. Gratuit et ouvert à toutes et tous."
        ),
        audience="Toute personne curieuse, débutante ou non ; le personnel de la bibliothèque.",
        what_to_bring="Votre ordinateur portable si vous en avez un (des postes sont prêtés).",
    )
    since = datetime.combine(first, time(0), tzinfo=UTC)
    meetings_materialise(series=series, now=since, horizon=ctx.now - since + timedelta(days=120))
    ctx.created["meetup series"] += 1
    ctx.created["meetings"] += series.meetings.count()
    return series


def _history(ctx: DemoContext, series: MeetupSeries) -> None:
    """Sign-ups for every meeting, and attendance for the past ones."""
    librarians = list(series.host_library.librarians.reachable()[:2])
    for meeting in series.meetings.order_by("start"):
        rng = ctx.rng("meetup", series.slug, meeting.start.isoformat())
        people = [(lib.name, lib.email, "attendee", lib) for lib in librarians]
        people += [
            (name, _volunteer_email(name), role, None)
            for name, role in rng.sample(VOLUNTEERS, rng.randint(2, len(VOLUNTEERS)))
        ]
        rsvps = RSVP.objects.bulk_create(
            RSVP(
                meeting=meeting,
                name=name,
                email=email,
                role=role,
                librarian=librarian,
                answer=RSVP.Answer.YES if rng.random() < 0.85 else RSVP.Answer.MAYBE,
            )
            for name, email, role, librarian in people
        )
        ctx.created["RSVPs"] += len(rsvps)
        if meeting.end < ctx.now:
            came = {r.pk for r in rsvps if r.answer == RSVP.Answer.YES and rng.random() < 0.8}
            before = ActivitySignal.objects.count()
            attendance_record(meeting=meeting, present=came)
            ctx.created["activity signals"] += ActivitySignal.objects.count() - before


def _volunteer_email(name: str) -> str:
    ascii_name = slugify(name).replace("-", ".")
    return f"{ascii_name}@benevoles.example.org"


def _office_hour(ctx: DemoContext) -> None:
    if Meeting.objects.filter(series__isnull=True, title=OFFICE_HOUR).exists():
        return
    day = (ctx.now + timedelta(days=21)).date()
    start = datetime.combine(day, time(9, 0), tzinfo=UTC)
    Meeting.objects.create(
        title=OFFICE_HOUR,
        start=start,
        end=start + timedelta(hours=1),
        time_zone="UTC",
        online_url="https://meet.example.org/1lib1ref-office-hour",
        display_time_zones="Australia/Sydney,America/Los_Angeles,Europe/London,Europe/Zurich",
        agenda=(
            "Questions about #1lib1ref: how to add a reference, how to tag your edits, "
            "how to run an edit-a-thon in your library."
        ),
    )
    ctx.created["office hours"] += 1
