"""Calendar feeds: what a calendar app reads back is what the meetups really are.

Every file is parsed back with vobject, a library independent of the icalendar package that
writes them: vobject reads our VTIMEZONE and expands RRULE and EXDATE with dateutil, then
applies the RECURRENCE-ID overrides the way a client does.
"""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import vobject
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from meetings import calendar
from meetings.models import RSVP, Meeting, MeetupSeries
from meetings.services import meeting_cancel, meeting_move, meetings_materialise
from tests.factories import (
    LibrarianFactory,
    LibraryFactory,
    MeetupSeriesFactory,
    RegionFactory,
)

pytestmark = pytest.mark.django_db

ZURICH = ZoneInfo("Europe/Zurich")
HOUR = timedelta(hours=1)
SECOND = timedelta(seconds=1)
HOST = "outreach.example.org"
# Two windows across daylight-saving changes: October 2026 (CEST -> CET on the 25th) and
# March 2027 (CET -> CEST on the 28th).
AUTUMN = (datetime(2026, 9, 1, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC))
SPRING = (datetime(2027, 2, 1, tzinfo=UTC), datetime(2027, 7, 1, tzinfo=UTC))


@pytest.fixture(autouse=True)
def site_url(settings):
    settings.SITE_URL = f"https://{HOST}"


def _materialised(series, *windows):
    for after, before in windows:
        meetings_materialise(series=series, now=after, horizon=before - after)
    return list(series.meetings.order_by("start"))


def _parse(content: bytes):
    return vobject.readOne(content.decode())


def _events(cal, uid=None):
    return [event for event in cal.vevent_list if uid is None or event.uid.value == uid]


def _instances(cal, uid, after, before):
    """The starts a client shows for ``uid`` in [after, before): the rule's, without the
    EXDATEs, each replaced by its RECURRENCE-ID override if there is one."""
    events = _events(cal, uid)
    (master,) = [event for event in events if not hasattr(event, "recurrence_id")]
    overrides = {
        event.recurrence_id.value: event.dtstart.value
        for event in events
        if hasattr(event, "recurrence_id")
    }
    starts = master.getrruleset(addRDate=True).between(after, before, inc=True)
    return sorted(overrides.get(start, start) for start in starts)


def _local(starts):
    return [start.astimezone(ZURICH).strftime("%a %Y-%m-%d %H:%M") for start in starts]


def _series_feed(client, series):
    response = client.get(reverse("calendar:series", args=[series.slug]))
    assert response.status_code == 200
    return response


# The file ----------------------------------------------------------------------------------


def test_a_series_is_one_event_whose_rule_gives_the_materialised_noons_across_dst(client):
    series = MeetupSeriesFactory(rrule="FREQ=MONTHLY;BYDAY=+1TH", duration=timedelta(hours=2))
    meetings = _materialised(series, AUTUMN, SPRING)
    content = _series_feed(client, series).content
    assert b"\r\nDTSTART;TZID=Europe/Zurich:20260101T120000\r\n" in content
    cal = _parse(content)
    uid = f"series-{series.pk}@{HOST}"
    assert [event.uid.value for event in cal.vevent_list] == [uid]
    (event,) = cal.vevent_list
    assert event.rrule.value == "FREQ=MONTHLY;BYDAY=+1TH"
    assert event.duration.value == timedelta(hours=2)
    shown = _instances(cal, uid, AUTUMN[0], AUTUMN[1]) + _instances(cal, uid, *SPRING)
    assert shown == [meeting.start for meeting in meetings]
    assert _local(shown) == [
        "Thu 2026-09-03 12:00",
        "Thu 2026-10-01 12:00",
        "Thu 2026-11-05 12:00",
        "Thu 2027-02-04 12:00",
        "Thu 2027-03-04 12:00",
        "Thu 2027-04-01 12:00",
        "Thu 2027-05-06 12:00",
        "Thu 2027-06-03 12:00",
    ]


def test_the_rule_starts_on_its_first_date_not_on_the_series_first_day(client):
    # 2026-01-02 is a Friday: the first Thursday of the rule is 2026-02-05.
    series = MeetupSeriesFactory(start_date=datetime(2026, 1, 2, tzinfo=UTC).date())
    (event,) = _parse(_series_feed(client, series).content).vevent_list
    assert event.dtstart.value.replace(tzinfo=None) == datetime(2026, 2, 5, 12, 0)  # noqa: DTZ001


def test_the_vtimezone_of_zurich_is_in_the_file_with_its_summer_and_winter_offsets(client):
    series = MeetupSeriesFactory()
    cal = _parse(_series_feed(client, series).content)
    (vtimezone,) = cal.vtimezone_list
    assert vtimezone.tzid.value == "Europe/Zurich"
    # The VTIMEZONE itself, as vobject reads it, not the IANA database of the test machine.
    zone = vtimezone.gettzinfo()
    winter, summer = datetime(2027, 3, 4, 12, tzinfo=zone), datetime(2027, 4, 1, 12, tzinfo=zone)
    assert (winter.utcoffset(), summer.utcoffset()) == (timedelta(hours=1), timedelta(hours=2))


def test_a_cancelled_occurrence_is_an_exdate_and_disappears(client):
    series = MeetupSeriesFactory()
    meetings = _materialised(series, SPRING)
    march = meetings[1]
    meeting_cancel(meeting=march, reason="Library closed")
    cal = _parse(_series_feed(client, series).content)
    (master,) = cal.vevent_list
    assert [value for line in master.exdate_list for value in line.value] == [march.start]
    shown = _instances(cal, f"series-{series.pk}@{HOST}", *SPRING)
    assert shown == [meeting.start for meeting in meetings if meeting != march]


def test_a_moved_occurrence_is_an_override_at_its_new_time(client):
    series = MeetupSeriesFactory()
    meetings = _materialised(series, SPRING)
    may = meetings[3]
    rule_start = may.start
    new_start = datetime(2027, 5, 7, 14, 0, tzinfo=ZURICH)
    meeting_move(meeting=may, start=new_start)
    cal = _parse(_series_feed(client, series).content)
    uid = f"series-{series.pk}@{HOST}"
    (override,) = [event for event in _events(cal, uid) if hasattr(event, "recurrence_id")]
    assert override.recurrence_id.value == rule_start
    assert (override.dtstart.value, override.dtend.value) == (new_start, new_start + (2 * HOUR))
    shown = _instances(cal, uid, *SPRING)
    assert new_start in shown and rule_start not in shown
    assert shown == sorted(meeting.start for meeting in series.meetings.all())


def test_an_occurrence_that_only_ends_later_is_an_override_too(client):
    series = MeetupSeriesFactory()
    june = _materialised(series, SPRING)[-1]
    meeting_move(meeting=june, start=june.start, end=june.start + 3 * HOUR)
    cal = _parse(_series_feed(client, series).content)
    (override,) = [event for event in cal.vevent_list if hasattr(event, "recurrence_id")]
    assert (override.recurrence_id.value, override.dtend.value) == (june.start, june.end)


def test_uids_are_stable_between_two_exports(client):
    series = MeetupSeriesFactory()
    meetings = _materialised(series, SPRING)
    meeting_move(meeting=meetings[0], start=meetings[0].start + HOUR)
    one_off = _one_off(LibraryFactory())
    url = reverse("calendar:all")
    first, second = (_parse(client.get(url).content) for _ in range(2))
    uids = [event.uid.value for event in first.vevent_list]
    assert uids == [event.uid.value for event in second.vevent_list]
    assert sorted(set(uids)) == [f"meeting-{one_off.pk}@{HOST}", f"series-{series.pk}@{HOST}"]


def test_the_series_event_says_what_where_and_links_to_its_public_page(client):
    library = LibraryFactory(name="Bibliothèque de Morges", address="Rue de Couvaloup 10")
    library.city = "Morges"
    library.save()
    series = MeetupSeriesFactory(
        title="Wikipermanence de Morges",
        host_library=library,
        description="Venez écrire sur Wikipédia.",
        venue="Salle du 1er étage",
    )
    (event,) = _parse(_series_feed(client, series).content).vevent_list
    page = f"https://{HOST}/meetups/{series.slug}/"
    assert event.summary.value == "Wikipermanence de Morges"
    assert event.location.value == "Bibliothèque de Morges, Rue de Couvaloup 10, Morges"
    assert event.description.value == f"Venez écrire sur Wikipédia.\n\nSalle du 1er étage\n\n{page}"
    assert event.url.value == page


def test_a_change_to_the_series_raises_its_sequence(client):
    series = MeetupSeriesFactory()
    (before,) = _parse(_series_feed(client, series).content).vevent_list
    series.title = "Wikipermanence (nouvelle formule)"
    series.save()
    # As if edited a minute later: SEQUENCE counts seconds.
    MeetupSeries.objects.filter(pk=series.pk).update(updated_at=series.updated_at + 60 * SECOND)
    (after,) = _parse(_series_feed(client, series).content).vevent_list
    assert int(after.sequence.value) > int(before.sequence.value)
    assert after.dtstamp.value >= before.dtstamp.value


def test_the_calendar_has_a_name_and_a_time_zone(client):
    series = MeetupSeriesFactory(title="Wikipermanence de Nyon")
    cal = _parse(_series_feed(client, series).content)
    assert cal.x_wr_calname.value == "Wikipermanence de Nyon"
    assert cal.x_wr_timezone.value == "Europe/Zurich"
    assert not hasattr(cal, "method")


# One-off meetings ----------------------------------------------------------------------------


def _one_off(library, *, start=None, **fields):
    # Whole minutes, as a coordinator enters them (iCalendar has no fractions of seconds).
    start = (start or timezone.now() + timedelta(days=10)).replace(second=0, microsecond=0)
    return Meeting.objects.create(
        title=fields.pop("title", "Permanence en ligne"),
        host_library=library,
        start=start,
        end=start + HOUR,
        **fields,
    )


def test_a_one_off_meeting_is_a_plain_event_and_cancelled_says_so(client):
    library = LibraryFactory()
    office_hour = _one_off(None, online_url="https://meet.example.org/wiki")
    workshop = _one_off(library, title="Atelier")
    meeting_cancel(meeting=workshop)
    cal = _parse(client.get(reverse("calendar:all")).content)
    by_uid = {event.uid.value: event for event in cal.vevent_list}
    online = by_uid[f"meeting-{office_hour.pk}@{HOST}"]
    assert online.location.value == "https://meet.example.org/wiki"
    assert online.dtstart.value == office_hour.start and online.dtend.value == office_hour.end
    assert not hasattr(online, "rrule") and not hasattr(online, "status")
    assert by_uid[f"meeting-{workshop.pk}@{HOST}"].status.value == "CANCELLED"


def test_every_time_zone_used_has_its_vtimezone(client):
    MeetupSeriesFactory()
    new_york = ZoneInfo("America/New_York")
    office_hour = _one_off(
        None, start=datetime(2027, 3, 17, 12, 0, tzinfo=new_york), time_zone="America/New_York"
    )
    cal = _parse(client.get(reverse("calendar:all")).content)
    assert sorted(tz.tzid.value for tz in cal.vtimezone_list) == [
        "America/New_York",
        "Europe/Zurich",
    ]
    (event,) = _events(cal, f"meeting-{office_hour.pk}@{HOST}")
    assert event.dtstart.value == office_hour.start
    assert event.dtstart.value.utcoffset() == timedelta(hours=-4)  # EDT from 14 March 2027


def test_a_series_with_a_broken_rule_is_left_out_and_the_others_stay(client):
    kept = MeetupSeriesFactory()
    MeetupSeriesFactory(rrule="FREQ=SOMETIMES")
    assert _uids(client, reverse("calendar:all")) == {f"series-{kept.pk}"}


def test_one_offs_long_past_are_left_out(client):
    library = LibraryFactory()
    old = _one_off(library, start=timezone.now() - timedelta(days=120))
    recent = _one_off(library, start=timezone.now() - timedelta(days=30))
    uids = {e.uid.value for e in _parse(client.get(reverse("calendar:all")).content).vevent_list}
    assert uids == {f"meeting-{recent.pk}@{HOST}"}
    assert f"meeting-{old.pk}@{HOST}" not in uids


# Which feed holds what -------------------------------------------------------------------------


@pytest.fixture
def two_regions():
    vaud, geneva = RegionFactory(slug="vaud"), RegionFactory(slug="geneve")
    morges, nyon = LibraryFactory(region=vaud), LibraryFactory(region=vaud)
    carouge = LibraryFactory(region=geneva)
    return {
        "vaud": vaud,
        "geneva": geneva,
        "morges": morges,
        "nyon": nyon,
        "carouge": carouge,
        "series_morges": MeetupSeriesFactory(host_library=morges),
        "series_nyon": MeetupSeriesFactory(host_library=nyon),
        "series_carouge": MeetupSeriesFactory(host_library=carouge),
        "draft": MeetupSeriesFactory(host_library=morges, status=MeetupSeries.Status.DRAFT),
        "ended": MeetupSeriesFactory(host_library=morges, status=MeetupSeries.Status.ENDED),
        "one_off_morges": _one_off(morges),
        "one_off_carouge": _one_off(carouge),
        "one_off_online": _one_off(None),
    }


def _uids(client, url):
    response = client.get(url)
    assert response.status_code == 200
    return {event.uid.value.split("@")[0] for event in _parse(response.content).vevent_list}


def _names(objects, *keys):
    return {
        f"{'series' if key.startswith('series') else 'meeting'}-{objects[key].pk}" for key in keys
    }


def test_each_feed_holds_only_its_own_active_series_and_one_offs(client, two_regions):
    o = two_regions
    everything = _names(o, "series_morges", "series_nyon", "series_carouge")
    everything |= _names(o, "one_off_morges", "one_off_carouge", "one_off_online")
    assert _uids(client, reverse("calendar:all")) == everything
    assert _uids(client, reverse("calendar:region", args=["vaud"])) == _names(
        o, "series_morges", "series_nyon", "one_off_morges"
    )
    assert _uids(client, reverse("calendar:region", args=["geneve"])) == _names(
        o, "series_carouge", "one_off_carouge"
    )
    assert _uids(client, reverse("calendar:library", args=[o["morges"].slug])) == _names(
        o, "series_morges", "one_off_morges"
    )
    assert _uids(client, reverse("calendar:library", args=[o["nyon"].slug])) == _names(
        o, "series_nyon"
    )
    assert _uids(client, reverse("calendar:series", args=[o["series_nyon"].slug])) == _names(
        o, "series_nyon"
    )


def test_draft_and_ended_series_have_no_feed_and_unknown_slugs_are_404(client, two_regions):
    o = two_regions
    for url in (
        reverse("calendar:series", args=[o["draft"].slug]),
        reverse("calendar:series", args=[o["ended"].slug]),
        reverse("calendar:series", args=["no-such-series"]),
        reverse("calendar:library", args=["no-such-library"]),
        reverse("calendar:region", args=["no-such-region"]),
        reverse("calendar:meeting", args=[999999]),
    ):
        assert client.get(url).status_code == 404, url


def test_a_meeting_of_a_draft_series_has_no_file(client):
    series = MeetupSeriesFactory()
    meeting = _materialised(series, SPRING)[0]
    series.status = MeetupSeries.Status.DRAFT
    series.save()
    assert client.get(reverse("calendar:meeting", args=[meeting.pk])).status_code == 404


# HTTP --------------------------------------------------------------------------------------


def test_feeds_are_public_calendars_cached_for_five_minutes(client, two_regions):
    response = client.get(reverse("calendar:all"))
    assert response.status_code == 200
    assert response["Content-Type"] == "text/calendar; charset=utf-8"
    assert response["Content-Disposition"] == 'inline; filename="meetups.ics"'
    assert set(response["Cache-Control"].split(", ")) == {"public", "max-age=300"}
    assert response["ETag"] and response["Last-Modified"]
    assert response.content.startswith(b"BEGIN:VCALENDAR\r\n")
    head = client.head(reverse("calendar:all"))
    assert (head.status_code, head.content, head["ETag"]) == (200, b"", response["ETag"])


def test_a_second_poll_gets_304_until_something_changes(client):
    series = MeetupSeriesFactory()
    meetings = _materialised(series, SPRING)
    url = reverse("calendar:series", args=[series.slug])
    first = client.get(url)
    not_modified = client.get(url, headers={"If-None-Match": first["ETag"]})
    assert not_modified.status_code == 304 and not_modified.content == b""
    assert not_modified["ETag"] == first["ETag"]
    assert "max-age=300" in not_modified["Cache-Control"]
    since = client.get(url, headers={"If-Modified-Since": first["Last-Modified"]})
    assert since.status_code == 304
    meeting_cancel(meeting=meetings[0])
    again = client.get(url, headers={"If-None-Match": first["ETag"]})
    assert again.status_code == 200 and again["ETag"] != first["ETag"]


def test_a_series_turning_to_draft_changes_the_all_feed_etag(client):
    kept, drafted = MeetupSeriesFactory(), MeetupSeriesFactory()
    url = reverse("calendar:all")
    etag = client.get(url)["ETag"]
    MeetupSeries.objects.filter(pk=drafted.pk).update(status=MeetupSeries.Status.DRAFT)
    response = client.get(url, headers={"If-None-Match": etag})
    assert response.status_code == 200
    assert _uids(client, url) == {f"series-{kept.pk}"}


def test_a_meeting_file_is_an_attachment_with_one_event(client):
    series = MeetupSeriesFactory(description="Chaque premier jeudi.")
    meeting = _materialised(series, SPRING)[0]
    response = client.get(reverse("calendar:meeting", args=[meeting.pk]))
    assert response.status_code == 200
    assert response["Content-Type"] == "text/calendar; charset=utf-8"
    expected = f'attachment; filename="meeting-{meeting.pk}.ics"'
    assert response["Content-Disposition"] == expected
    cal = _parse(response.content)
    (event,) = cal.vevent_list
    assert event.uid.value == f"meeting-{meeting.pk}@{HOST}"
    assert (event.dtstart.value, event.dtend.value) == (meeting.start, meeting.end)
    assert not hasattr(event, "rrule")
    assert "Chaque premier jeudi." in event.description.value
    assert [tz.tzid.value for tz in cal.vtimezone_list] == ["Europe/Zurich"]
    url = reverse("calendar:meeting", args=[meeting.pk])
    repeat = client.get(url, headers={"If-None-Match": response["ETag"]})
    assert repeat.status_code == 304


# Privacy -----------------------------------------------------------------------------------


def test_no_feed_ever_holds_a_name_or_address_of_a_person(client, two_regions):
    o = two_regions
    series = o["series_morges"]
    meetings = _materialised(series, SPRING)
    meeting_move(meeting=meetings[1], start=meetings[1].start + HOUR)
    meeting_cancel(meeting=meetings[2])
    people = [("Ada Lovelace", "ada.lovelace@private.example.net")]
    for meeting in [meetings[0], meetings[1], o["one_off_morges"]]:
        RSVP.objects.create(
            meeting=meeting, name=people[0][0], email=people[0][1], answer=RSVP.Answer.YES
        )
    librarian = LibrarianFactory(
        library=o["morges"], name="Grace Hopper", email="grace.hopper@bibliotheque.example.ch"
    )
    people.append((librarian.name, librarian.email))
    RSVP.objects.create(
        meeting=meetings[0],
        librarian=librarian,
        name=librarian.name,
        email=librarian.email,
        answer=RSVP.Answer.YES,
        role=RSVP.Role.HOST,
    )
    urls = [
        reverse("calendar:all"),
        reverse("calendar:series", args=[series.slug]),
        reverse("calendar:library", args=[o["morges"].slug]),
        reverse("calendar:region", args=["vaud"]),
        reverse("calendar:meeting", args=[meetings[0].pk]),
        reverse("calendar:meeting", args=[o["one_off_morges"].pk]),
    ]
    for url in urls:
        response = client.get(url)
        assert response.status_code == 200, url
        # Unfolded, so that a name cut by line folding (RFC 5545 §3.1) is still found.
        text = response.content.decode().replace("\r\n ", "")
        for name, email in people:
            assert name not in text, url
            assert email not in text and email.split("@")[1] not in text, url
        # The only "@" are those of the UIDs.
        assert text.count("@") == text.count(f"@{HOST}"), url


# Queries -----------------------------------------------------------------------------------


def _all_feed_queries(client):
    with CaptureQueriesContext(connection) as queries:
        assert client.get(reverse("calendar:all")).status_code == 200
    return len(queries)


def _series_with_exceptions(count):
    for _ in range(count):
        series = MeetupSeriesFactory(host_library=LibraryFactory())
        meetings = _materialised(series, SPRING)
        meeting_cancel(meeting=meetings[0])
        meeting_move(meeting=meetings[1], start=meetings[1].start + HOUR)
        _one_off(series.host_library)


def test_the_all_feed_costs_the_same_queries_for_2_or_10_series(client):
    _series_with_exceptions(2)
    with_two = _all_feed_queries(client)
    _series_with_exceptions(8)
    assert MeetupSeries.objects.count() == 10
    assert _all_feed_queries(client) == with_two
    assert len(_parse(client.get(reverse("calendar:all")).content).vevent_list) == 10 * 3


def test_the_service_needs_no_request():
    series = MeetupSeriesFactory()
    content = calendar.series_to_calendar(MeetupSeries.objects.all(), name="Test")
    assert _parse(content).vevent.uid.value == f"series-{series.pk}@{HOST}"
