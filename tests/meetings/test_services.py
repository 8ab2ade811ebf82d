"""Series materialise into meetings; single meetings are cancelled or moved without breaking it."""

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.core.exceptions import ValidationError

from meetings.models import Meeting, MeetupSeries
from meetings.services import meeting_cancel, meeting_move, meetings_materialise, series_create
from meetings.tasks import meetings_materialise_task
from outreach.celery import app as celery_app
from tests.factories import LibraryFactory, MeetupSeriesFactory

pytestmark = pytest.mark.django_db

ZURICH = ZoneInfo("Europe/Zurich")
NOW = datetime(2027, 2, 15, 8, 0, tzinfo=UTC)
HORIZON = timedelta(days=120)


def _local(meetings):
    return [m.start.astimezone(ZURICH).strftime("%Y-%m-%d %H:%M") for m in meetings]


def test_a_series_materialises_its_coming_months_at_local_noon():
    series = MeetupSeriesFactory(duration=timedelta(hours=2), capacity=12)
    created = meetings_materialise(series=series, now=NOW, horizon=HORIZON)
    meetings = list(series.meetings.order_by("start"))
    assert created == 4
    assert _local(meetings) == [
        "2027-03-04 12:00",
        "2027-04-01 12:00",
        "2027-05-06 12:00",
        "2027-06-03 12:00",
    ]
    first = meetings[0]
    assert (first.end - first.start, first.capacity, first.host_library) == (
        timedelta(hours=2),
        12,
        series.host_library,
    )


def test_materialising_twice_creates_nothing_new():
    series = MeetupSeriesFactory()
    assert meetings_materialise(series=series, now=NOW, horizon=HORIZON) == 4
    assert meetings_materialise(series=series, now=NOW, horizon=HORIZON) == 0
    assert series.meetings.count() == 4


def test_a_later_run_adds_only_the_months_that_came_into_the_horizon():
    series = MeetupSeriesFactory()
    meetings_materialise(series=series, now=NOW, horizon=HORIZON)
    assert meetings_materialise(series=series, now=NOW + timedelta(days=31), horizon=HORIZON) == 1
    assert _local(series.meetings.order_by("start"))[-1] == "2027-07-01 12:00"


def test_a_cancelled_meeting_is_not_recreated_and_the_others_stay():
    series = MeetupSeriesFactory()
    meetings_materialise(series=series, now=NOW, horizon=HORIZON)
    april = series.meetings.order_by("start")[1]
    meeting_cancel(meeting=april, reason="Library closed for Easter")
    assert meetings_materialise(series=series, now=NOW, horizon=HORIZON) == 0
    assert series.meetings.count() == 4
    assert list(Meeting.objects.upcoming().filter(series=series).exclude(pk=april.pk)) == list(
        series.meetings.exclude(pk=april.pk).order_by("start")
    )
    assert april not in Meeting.objects.upcoming()


def test_a_moved_meeting_keeps_its_rule_start_and_is_not_recreated():
    series = MeetupSeriesFactory()
    meetings_materialise(series=series, now=NOW, horizon=HORIZON)
    may = series.meetings.order_by("start")[2]
    rule_start = may.start
    meeting_move(meeting=may, start=datetime(2027, 5, 7, 14, 0, tzinfo=ZURICH))
    may.refresh_from_db()
    assert may.is_moved and may.original_start == rule_start
    assert may.end - may.start == timedelta(hours=2)
    assert meetings_materialise(series=series, now=NOW, horizon=HORIZON) == 0
    assert series.meetings.count() == 4


def test_a_meeting_cannot_be_moved_to_a_naive_time_or_end_before_it_starts():
    series = MeetupSeriesFactory()
    meetings_materialise(series=series, now=NOW, horizon=HORIZON)
    meeting = series.meetings.first()
    with pytest.raises(ValueError):
        meeting_move(meeting=meeting, start=datetime(2027, 5, 7, 14, 0))  # noqa: DTZ001
    start = datetime(2027, 5, 7, 14, 0, tzinfo=ZURICH)
    with pytest.raises(ValidationError):
        meeting_move(meeting=meeting, start=start, end=start - timedelta(hours=1))


def test_a_draft_or_ended_series_materialises_nothing():
    for status in (MeetupSeries.Status.DRAFT, MeetupSeries.Status.ENDED):
        series = MeetupSeriesFactory(status=status)
        assert meetings_materialise(series=series, now=NOW, horizon=HORIZON) == 0
        assert not series.meetings.exists()


def test_creating_a_series_gives_it_a_slug_and_its_meetings():
    library = LibraryFactory()
    series = series_create(
        title="Wikipermanence de Morges",
        rrule="FREQ=MONTHLY;BYDAY=+1TH",
        host_library=library,
        start_date=date(2026, 1, 1),
        start_time=time(12, 0),
        time_zone="Europe/Zurich",
    )
    assert series.slug == "wikipermanence-de-morges"
    assert series.meetings.exists()
    assert series.describe_rule() == "every first Thursday of the month at 12:00"


def test_a_series_with_an_unknown_time_zone_is_refused():
    with pytest.raises(ValidationError):
        series_create(
            title="Wikipermanence",
            rrule="FREQ=MONTHLY;BYDAY=+1TH",
            host_library=LibraryFactory(),
            start_date=date(2026, 1, 1),
            start_time=time(12, 0),
            time_zone="Europe/Lausanne",
        )
    assert not MeetupSeries.objects.exists()


def test_a_one_off_meeting_exists_without_a_series():
    start = datetime(2027, 1, 20, 9, 0, tzinfo=UTC)
    meeting = Meeting.objects.create(
        title="#1lib1ref office hour",
        start=start,
        end=start + timedelta(hours=1),
        time_zone="UTC",
        online_url="https://meet.example.org/1lib1ref",
        display_time_zones="Australia/Sydney,America/Los_Angeles",
    )
    assert meeting.display_title == "#1lib1ref office hour"
    assert meeting in Meeting.objects.public()


def test_the_nightly_task_materialises_every_active_series():
    active = MeetupSeriesFactory()
    MeetupSeriesFactory(status=MeetupSeries.Status.DRAFT)
    created = meetings_materialise_task.apply().get()
    assert created == active.meetings.count() > 0
    assert meetings_materialise_task.apply().get() == 0


def test_every_beat_schedule_points_at_a_registered_task():
    celery_app.loader.import_default_modules()
    for name, entry in celery_app.conf.beat_schedule.items():
        assert entry["task"] in celery_app.tasks, name
