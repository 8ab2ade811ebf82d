"""Calendar feeds of the public meetups: iCalendar (RFC 5545) files that clients subscribe to.

Flow: a view picks a ``Feed`` (everything public, one series, one library, one region) and
asks ``feed_version`` for its validators, two aggregate queries, so that a client polling
with If-None-Match gets a 304 without anything being built. Otherwise ``feed_to_calendar``
loads the active series with their exceptions and the one-off meetings in a fixed number of
queries, whatever their count, and writes them with icalendar:

- a series is ONE VEVENT: DTSTART in local time with the series' TZID (the first date of
  its rule), DURATION, the series' RRULE, and an EXDATE for each cancelled occurrence; a
  moved occurrence is a second VEVENT with the same UID whose RECURRENCE-ID is the start the
  rule gave it (``Meeting.original_start``) and whose DTSTART/DTEND are the new ones;
- a one-off meeting is a plain VEVENT, with STATUS:CANCELLED once cancelled;
- a VTIMEZONE is added for every zone used, so that a client recurs the rule in local time
  and a noon meetup stays at noon across daylight-saving changes (RFC 5545 §3.3.10).

``meeting_to_calendar`` writes the file of one meeting for "add to my calendar".

Feeds are public and hold public content only: titles, descriptions, the host library's
name and address, links. Never a person's name or email address (RSVPs, librarians).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from dateutil.rrule import rrulestr
from django.conf import settings
from django.db.models import Count, F, Max, Prefetch, Q, QuerySet
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import get_language
from django.utils.translation import gettext as _
from icalendar import Calendar, Event, vDuration, vRecur

from core.mail import site_url
from libraries.models import Library, Region

from .models import Meeting, MeetupSeries

logger = logging.getLogger(__name__)

# One-off meetings that ended longer ago than this are left out of the feeds.
ONE_OFF_HISTORY = timedelta(days=90)
# VTIMEZONE components are written with every transition up to this many years ahead: the
# rules of the series have no end, and a client that reads our VTIMEZONE rather than its own
# copy of the IANA database needs the transitions of the years it shows.
TIME_ZONE_YEARS_AHEAD = 10
# SEQUENCE is an INTEGER (RFC 5545 §3.3.8: 32 bits, signed); seconds since this epoch fit
# until 2092, where seconds since 1970 would overflow in 2038.
SEQUENCE_EPOCH = datetime(2024, 1, 1, tzinfo=UTC)
# Bump to change every ETag when the shape of the files changes.
FORMAT_VERSION = 1
# How often a subscribed client should poll.
REFRESH_INTERVAL = timedelta(hours=1)


@dataclass(frozen=True)
class Feed:
    """What one feed holds: filters on series (any status) and on one-off meetings."""

    name: str
    slug: str
    time_zone: str
    series: Q  # on MeetupSeries; only the active ones are written
    meetings: Q  # on Meeting: every meeting whose change can change the feed
    one_offs: Q | None  # on Meeting (series is None); None: no one-offs in this feed


def feed_all() -> Feed:
    return Feed(
        # Translators: the name of the calendar of every public meetup, in calendar apps.
        name=_("%(site)s: all meetups") % {"site": settings.SITE_NAME},
        slug="meetups",
        time_zone=settings.TIME_ZONE,
        series=Q(),
        meetings=Q(),
        one_offs=Q(series__isnull=True),
    )


def feed_series(series: MeetupSeries) -> Feed:
    return Feed(
        name=series.title,
        slug=series.slug,
        time_zone=series.time_zone,
        series=Q(pk=series.pk),
        meetings=Q(series=series),
        one_offs=None,
    )


def feed_library(library: Library) -> Feed:
    return Feed(
        # Translators: the name of a library's calendar in calendar apps.
        name=_("Meetups at %(library)s") % {"library": library.name},
        slug=library.slug,
        time_zone=library.region.time_zone,
        series=Q(host_library=library),
        meetings=Q(series__host_library=library) | Q(series__isnull=True, host_library=library),
        one_offs=Q(series__isnull=True, host_library=library),
    )


def feed_region(region: Region) -> Feed:
    return Feed(
        # Translators: the name of a region's calendar in calendar apps.
        name=_("Meetups in %(region)s") % {"region": region.name},
        slug=region.slug,
        time_zone=region.time_zone,
        series=Q(host_library__region=region),
        meetings=(
            Q(series__host_library__region=region)
            | Q(series__isnull=True, host_library__region=region)
        ),
        one_offs=Q(series__isnull=True, host_library__region=region),
    )


# Validators ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Version:
    """HTTP validators of a feed: a strong ETag and the time of the last change."""

    etag: str
    last_modified: datetime


def feed_version(feed: Feed, *, now: datetime | None = None) -> Version:
    """The validators of ``feed``, from two aggregate queries and without building it.

    Series of any status count, so that a series turning to draft or ended changes them too,
    and counts catch deletions. Today's date is part of them because the file also changes with
    time (one-offs leave it after ``ONE_OFF_HISTORY``, VTIMEZONEs reach further ahead), and
    so is the language, which the calendar's name is written in.
    """
    now = now or timezone.now()
    series = MeetupSeries.objects.filter(feed.series).aggregate(
        count=Count("pk"),
        # A bulk update (an admin action) changes a status without touching updated_at.
        active=Count("pk", filter=Q(status=MeetupSeries.Status.ACTIVE)),
        changed=Max("updated_at"),
        library=Max("host_library__updated_at"),
    )
    meetings = Meeting.objects.filter(feed.meetings).aggregate(
        count=Count("pk"), changed=Max("updated_at"), library=Max("host_library__updated_at")
    )
    return _version(
        now,
        feed.slug,
        series["count"],
        series["active"],
        meetings["count"],
        series["changed"],
        series["library"],
        meetings["changed"],
        meetings["library"],
    )


def meeting_version(meeting: Meeting, *, now: datetime | None = None) -> Version:
    """The validators of one meeting's file; ``meeting`` comes from ``meetings_public()``."""
    library = _meeting_library(meeting)
    return _version(
        now or timezone.now(),
        meeting.pk,
        meeting.updated_at,
        meeting.series.updated_at if meeting.series_id else None,
        library.updated_at if library else None,
    )


def _version(now: datetime, *parts) -> Version:
    today = now.astimezone(UTC).date()
    key = repr((FORMAT_VERSION, get_language(), today.isoformat(), *parts))
    changes = [part for part in parts if isinstance(part, datetime)]
    start_of_day = datetime.combine(today, datetime.min.time(), tzinfo=UTC)
    return Version(
        etag=f'"{hashlib.sha256(key.encode()).hexdigest()[:32]}"',
        last_modified=max([start_of_day, *changes]),
    )


# Reads --------------------------------------------------------------------------------------


def series_public() -> QuerySet[MeetupSeries]:
    """Active series with their host library and their exceptions (``series.exceptions``).

    An exception is an occurrence that is cancelled, or moved (its start, or only its end,
    is no longer what the rule gave it). Two queries for any number of series.
    """
    exceptions = (
        Meeting.objects.filter(original_start__isnull=False)
        .filter(
            Q(cancelled_at__isnull=False)
            | ~Q(start=F("original_start"))
            | ~Q(end=F("original_start") + F("series__duration"))
        )
        .order_by("original_start")
    )
    return (
        MeetupSeries.objects.filter(status=MeetupSeries.Status.ACTIVE)
        .select_related("host_library")
        .prefetch_related(Prefetch("meetings", queryset=exceptions, to_attr="exceptions"))
        .order_by("pk")
    )


def meetings_public() -> QuerySet[Meeting]:
    """Meetings that may be shown: one-offs, and occurrences of active series."""
    return Meeting.objects.public().select_related("host_library", "series__host_library")


# Writing ------------------------------------------------------------------------------------


def feed_to_calendar(feed: Feed, *, now: datetime | None = None) -> bytes:
    """The .ics file of ``feed``: its active series and its recent one-off meetings."""
    now = now or timezone.now()
    one_offs = Meeting.objects.none()
    if feed.one_offs is not None:
        one_offs = Meeting.objects.filter(feed.one_offs, end__gte=now - ONE_OFF_HISTORY)
    return series_to_calendar(
        MeetupSeries.objects.filter(feed.series),
        one_offs=one_offs,
        name=feed.name,
        time_zone=feed.time_zone,
        now=now,
    )


def series_to_calendar(
    series_qs: QuerySet[MeetupSeries],
    *,
    one_offs: QuerySet[Meeting] | None = None,
    name: str,
    time_zone: str | None = None,
    now: datetime | None = None,
) -> bytes:
    """A calendar of the active series in ``series_qs`` and of the one-offs in ``one_offs``.

    Three queries: the series, their exceptions, the one-offs. ``time_zone`` is the
    calendar's X-WR-TIMEZONE (the project's by default); each event has its own.
    """
    now = now or timezone.now()
    time_zone = time_zone or settings.TIME_ZONE
    events: list[Event] = []
    for series in series_public().filter(pk__in=series_qs.values("pk")):
        events.extend(_series_events(series))
    if one_offs is not None:
        for meeting in one_offs.filter(series__isnull=True).select_related("host_library"):
            events.append(_meeting_event(meeting))
    return _calendar(events, name=name, time_zone=time_zone, now=now)


def meeting_to_calendar(meeting: Meeting, *, now: datetime | None = None) -> bytes:
    """The .ics file of one meeting, to add it to one's calendar.

    An occurrence of a series is written on its own, with a UID of its own: a client that
    imports it has no master event to attach a RECURRENCE-ID to.
    """
    return _calendar(
        [_meeting_event(meeting)],
        name=meeting.display_title,
        time_zone=meeting.time_zone,
        now=now or timezone.now(),
    )


def _series_events(series: MeetupSeries) -> list[Event]:
    zone = ZoneInfo(series.time_zone)
    try:
        rule = rrulestr(
            series.rrule, dtstart=datetime.combine(series.start_date, series.start_time)
        )
        recur = vRecur.from_ical(series.rrule)
    except ValueError:
        # A rule typed by hand in the admin: one broken series must not take every other
        # series out of the feeds their subscribers poll.
        logger.warning(
            "Series %s left out of the calendar feeds: bad rule %r", series.pk, series.rrule
        )
        return []
    # DTSTART is the first date of the rule, on or after the first date of the series: a
    # DTSTART the rule does not give would be an extra occurrence (RFC 5545 §3.8.5.3).
    first = next(iter(rule), None)
    if first is None:
        return []
    exceptions: list[Meeting] = series.exceptions
    changed = max([series.updated_at, *(meeting.updated_at for meeting in exceptions)])
    master = _event(
        uid=_uid("series", series.pk),
        summary=series.title,
        changed=changed,
        location=_library_location(series.host_library),
        description=_description(
            series.description, series.venue, series.online_url, _series_url(series)
        ),
        url=_series_url(series),
    )
    # A naive local time, then placed in the zone: icalendar writes DTSTART;TZID=<zone>.
    master.add("dtstart", first.replace(tzinfo=zone))
    master.add("duration", series.duration)
    master.add("rrule", recur)
    cancelled = [m.original_start.astimezone(zone) for m in exceptions if m.is_cancelled]
    if cancelled:
        master.add("exdate", cancelled)
    events = [master]
    for meeting in exceptions:
        if meeting.is_cancelled:
            continue
        override = _event(
            uid=_uid("series", series.pk),
            summary=meeting.display_title,
            changed=meeting.updated_at,
            location=_library_location(series.host_library),
            description=_description(
                meeting.agenda,
                series.description,
                series.venue,
                meeting.online_url or series.online_url,
                _series_url(series),
            ),
            url=_series_url(series),
        )
        override.add("recurrence-id", meeting.original_start.astimezone(zone))
        override.add("dtstart", meeting.start.astimezone(meeting.zone))
        override.add("dtend", meeting.end.astimezone(meeting.zone))
        events.append(override)
    return events


def _meeting_event(meeting: Meeting) -> Event:
    """One meeting on its own: a one-off, or one occurrence of a series."""
    series = meeting.series if meeting.series_id else None
    library = _meeting_library(meeting)
    online_url = meeting.online_url or (series.online_url if series else "")
    location = _library_location(library) if library else online_url
    event = _event(
        uid=_uid("meeting", meeting.pk),
        summary=meeting.display_title,
        changed=max([meeting.updated_at, *([series.updated_at] if series else [])]),
        location=location,
        description=_description(
            meeting.agenda,
            series.description if series else "",
            series.venue if series else "",
            online_url if location != online_url else "",
            _meeting_url(meeting),
        ),
        url=_meeting_url(meeting),
    )
    event.add("dtstart", meeting.start.astimezone(meeting.zone))
    event.add("dtend", meeting.end.astimezone(meeting.zone))
    if meeting.is_cancelled:
        event.add("status", "CANCELLED")
    return event


def _event(
    *, uid: str, summary: str, changed: datetime, location: str, description: str, url: str
) -> Event:
    event = Event()
    event.add("uid", uid)
    # Without METHOD (a subscription, not a scheduling message) DTSTAMP is when the event
    # was last changed (RFC 5545 §3.8.7.2); an unchanged event gives the same bytes.
    event.add("dtstamp", changed.astimezone(UTC))
    event.add("last-modified", changed.astimezone(UTC))
    event.add("sequence", _sequence(changed))
    event.add("summary", summary)
    if location:
        event.add("location", location)
    if description:
        event.add("description", description)
    if url:
        event.add("url", url)
    return event


def _calendar(events: Iterable[Event], *, name: str, time_zone: str, now: datetime) -> bytes:
    calendar = Calendar()
    calendar.add("prodid", f"-//{settings.SITE_NAME}//Outreach meetups//EN")
    calendar.add("version", "2.0")
    calendar.calendar_name = name  # NAME (RFC 7986) and X-WR-CALNAME
    calendar.add("x-wr-timezone", time_zone)
    # RFC 7986 §5.7 requires VALUE=DURATION; Outlook and Apple read X-PUBLISHED-TTL instead.
    calendar.add("refresh-interval", REFRESH_INTERVAL, parameters={"VALUE": "DURATION"})
    calendar.add("x-published-ttl", vDuration(REFRESH_INTERVAL))
    first_year = now.year
    for event in events:
        calendar.add_component(event)
        first_year = min(first_year, event.decoded("dtstart").year)
    # VTIMEZONEs computed from zoneinfo (and the tzdata package), one per TZID in use.
    calendar.add_missing_timezones(
        first_date=date(first_year, 1, 1),
        last_date=date(now.year + TIME_ZONE_YEARS_AHEAD, 1, 1),
    )
    return calendar.to_ical()


def _uid(kind: str, pk: int) -> str:
    """A UID that never changes for the same row (as long as SITE_URL keeps its host)."""
    host = urlsplit(settings.SITE_URL).hostname or "localhost"
    return f"{kind}-{pk}@{host}"


def _sequence(changed: datetime) -> int:
    return max(int((changed - SEQUENCE_EPOCH).total_seconds()), 0)


def _meeting_library(meeting: Meeting) -> Library | None:
    if meeting.series_id:
        return meeting.series.host_library
    return meeting.host_library


def _library_location(library: Library) -> str:
    """ "Name, address, city" on one line (calendar apps hand it to a map as is)."""
    address = ", ".join(line.strip() for line in library.address.splitlines() if line.strip())
    parts = [library.name, address]
    if library.city and library.city.lower() not in address.lower():
        parts.append(library.city)
    return ", ".join(part for part in parts if part)


def _description(*paragraphs: str) -> str:
    return "\n\n".join(text.strip() for text in paragraphs if text and text.strip())


# Absolute links on SITE_URL, as in emails: a feed is read by calendar servers, not by the
# visitor's browser.
def _series_url(series: MeetupSeries) -> str:
    return site_url(reverse("meetings:series-public", args=[series.slug]))


def _meeting_url(meeting: Meeting) -> str:
    return site_url(reverse("meetings:meeting-public", args=[meeting.pk]))
