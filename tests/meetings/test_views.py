"""The coordinator's series pages: a rule in plain words, the next dates before saving."""

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.urls import reverse
from django.utils import timezone

from meetings.models import MeetupSeries
from meetings.services import meetings_materialise
from tests.factories import LibraryFactory, MeetupSeriesFactory

pytestmark = pytest.mark.django_db

ZURICH = ZoneInfo("Europe/Zurich")


def _form(library, **overrides):
    data = {
        "title": "Wikipermanence de Morges",
        "host_library": library.pk,
        "pattern": "monthly",
        "ordinal": "1",
        "weekday": "TH",
        "interval": "1",
        "start_date": "2026-01-01",
        "start_time": "12:00",
        "duration_minutes": "120",
        "time_zone": "Europe/Zurich",
        "language": "fr",
        "capacity": "12",
        "status": "active",
    }
    return {**data, **overrides}


def test_a_coordinator_creates_every_first_thursday_at_noon(coordinator_client):
    library = LibraryFactory()
    response = coordinator_client.post(reverse("meetings:series-create"), _form(library))
    series = MeetupSeries.objects.get()
    assert response["Location"] == series.get_absolute_url()
    assert (series.rrule, series.duration) == ("FREQ=MONTHLY;BYDAY=+1TH", timedelta(hours=2))
    meetings = list(series.meetings.order_by("start"))
    assert meetings, "saving materialises the coming meetings"
    for meeting in meetings:
        local = meeting.start.astimezone(ZURICH)
        assert (local.weekday(), local.day <= 7, local.hour, local.minute) == (3, True, 12, 0)
    page = coordinator_client.get(series.get_absolute_url()).content.decode()
    assert "Every first Thursday of the month at 12:00" in page


def test_the_next_dates_are_shown_before_saving(coordinator_client):
    library = LibraryFactory()
    response = coordinator_client.post(
        reverse("meetings:series-create"), _form(library, ordinal="-1", weekday="FR", preview="1")
    )
    assert response.status_code == 200
    dates = response.context["next_dates"]
    assert len(dates) == 6
    assert all(d.weekday() == 4 and (d + timedelta(days=7)).month != d.month for d in dates)
    assert not MeetupSeries.objects.exists()


def test_htmx_asks_for_the_next_dates_alone(coordinator_client):
    response = coordinator_client.post(
        reverse("meetings:series-create"),
        _form(LibraryFactory(), pattern="weekly", interval="2"),
        HTTP_HX_REQUEST="true",
    )
    page = response.content.decode()
    assert page.lstrip().startswith('<section id="next-dates"')
    assert "<form" not in page
    assert not MeetupSeries.objects.exists()


def test_an_invalid_rule_shows_field_errors_and_no_dates(coordinator_client):
    response = coordinator_client.post(
        reverse("meetings:series-create"),
        _form(LibraryFactory(), weekday="XX", time_zone="Europe/Lausanne", preview="1"),
    )
    assert {"weekday", "time_zone"} <= set(response.context["form"].errors)
    assert response.context["next_dates"] == []


def test_editing_a_series_shows_its_rule_in_words(coordinator_client):
    series = MeetupSeriesFactory(rrule="FREQ=WEEKLY;INTERVAL=3;BYDAY=TU")
    form = coordinator_client.get(reverse("meetings:series-update", args=[series.slug])).context[
        "form"
    ]
    assert (form.initial["pattern"], form.initial["interval"], form.initial["weekday"]) == (
        "weekly",
        3,
        "TU",
    )


def test_cancelling_and_moving_one_meeting_from_the_series_page(coordinator_client):
    series = MeetupSeriesFactory(start_date=timezone.localdate())
    meetings_materialise(series=series)
    first, second = series.meetings.order_by("start")[:2]
    coordinator_client.post(
        reverse("meetings:meeting-cancel", args=[first.pk]), {"reason": "Library closed"}
    )
    first.refresh_from_db()
    assert first.is_cancelled and first.cancel_reason == "Library closed"

    day = second.start.astimezone(ZURICH).date() + timedelta(days=1)
    coordinator_client.post(
        reverse("meetings:meeting-move", args=[second.pk]), {"start": f"{day}T14:30"}
    )
    second.refresh_from_db()
    # The coordinator typed Zurich time; it is stored as that instant whatever the server zone.
    assert second.start == datetime(day.year, day.month, day.day, 14, 30, tzinfo=ZURICH)
    assert second.start.astimezone(UTC) != second.original_start.astimezone(UTC)
    page = coordinator_client.get(series.get_absolute_url()).content.decode()
    assert "cancelled" in page and "moved" in page
    assert meetings_materialise(series=series) == 0


def test_the_next_dates_show_while_the_rest_of_the_form_is_still_empty(coordinator_client):
    response = coordinator_client.post(
        reverse("meetings:series-create"),
        _form(LibraryFactory(), title="", host_library="", capacity=""),
        HTTP_HX_REQUEST="true",
    )
    assert len(response.context["next_dates"]) == 6
    assert "Fix the highlighted fields" not in response.content.decode()


def test_ticking_who_came_records_attendance_and_signals_once(coordinator_client, coordinator):
    from libraries.models import ActivitySignal
    from meetings.models import RSVP
    from tests.factories import LibrarianFactory

    series = MeetupSeriesFactory()
    start = timezone.now() - timedelta(days=1)
    meeting = series.meetings.create(
        host_library=series.host_library, start=start, end=start + timedelta(hours=2)
    )
    anne = LibrarianFactory(name="Anne")
    came = RSVP.objects.create(
        meeting=meeting, name="Anne", email=anne.email, answer="yes", librarian=anne
    )
    absent = RSVP.objects.create(meeting=meeting, name="Bo", email="bo@example.org", answer="yes")
    url = reverse("meetings:meeting-attendance", args=[meeting.pk])
    assert "Anne" in coordinator_client.get(url).content.decode()
    for _ in range(2):
        coordinator_client.post(url, {"present": [came.pk]})
    came.refresh_from_db()
    absent.refresh_from_db()
    assert (came.attended, absent.attended) == (True, False)
    kinds = sorted(ActivitySignal.objects.values_list("kind", "library_id"))
    assert kinds == sorted(
        [("attended", anne.library_id), ("hosted_meetup", series.host_library_id)]
    )
    coordinator_client.post(url, {"present": []})  # a correction: Anne did not come after all
    assert not ActivitySignal.objects.filter(kind="attended").exists()


def test_the_moved_meeting_message_writes_the_date_as_the_coordinators_language_does(
    coordinator_client,
):
    series = MeetupSeriesFactory(start_date=timezone.localdate())
    meetings_materialise(series=series)
    meeting = series.meetings.order_by("start").first()
    day = meeting.start.astimezone(ZURICH).date() + timedelta(days=1)
    response = coordinator_client.post(
        reverse("meetings:meeting-move", args=[meeting.pk]),
        {"start": f"{day}T14:30"},
        HTTP_ACCEPT_LANGUAGE="fr",
        follow=True,
    )
    expected = f"La rencontre commence désormais le {day:%d/%m/%Y} 14:30."
    assert expected in response.content.decode()


@pytest.mark.parametrize(
    ("language", "expected"),
    [
        ("en", "Thursday 5 January 2040, 12:00"),
        ("fr", "jeudi 5 janvier 2040, 12:00"),
        ("de", "Donnerstag, 5. Januar 2040, 12:00"),
    ],
)
def test_meeting_dates_are_written_out_as_each_language_does(client, language, expected):
    series = MeetupSeriesFactory(start_date=date(2040, 1, 1), status="active")
    meetings_materialise(series=series, now=datetime(2040, 1, 1, tzinfo=ZURICH))
    meeting = series.meetings.order_by("start").first()
    page = client.get(
        reverse("meetings:meeting-public", args=[meeting.pk]), HTTP_ACCEPT_LANGUAGE=language
    )
    assert expected in page.content.decode()
