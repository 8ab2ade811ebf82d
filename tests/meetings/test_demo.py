from io import StringIO
from zoneinfo import ZoneInfo

import pytest
from django.core.management import call_command
from django.utils import timezone

from meetings.models import RSVP, Meeting, MeetupSeries

pytestmark = pytest.mark.django_db


def test_the_demo_has_three_series_with_history_and_an_online_office_hour():
    call_command("load_demo", stdout=StringIO())
    assert MeetupSeries.objects.count() == 3
    first_thursday = MeetupSeries.objects.get(rrule="FREQ=MONTHLY;BYDAY=+1TH")
    assert (first_thursday.time_zone, first_thursday.start_time.hour) == ("Europe/Zurich", 12)
    assert first_thursday.host_library.status == "partner"
    for meeting in first_thursday.meetings.all():
        local = meeting.start.astimezone(ZoneInfo("Europe/Zurich"))
        assert (local.weekday(), local.day <= 7, local.hour) == (3, True, 12)
    now = timezone.now()
    assert first_thursday.meetings.filter(start__gt=now).exists()
    assert RSVP.objects.filter(meeting__end__lt=now, attended=True).exists()
    assert not RSVP.objects.filter(meeting__start__gt=now, attended=True).exists()
    office_hour = Meeting.objects.get(series__isnull=True)
    assert office_hour.online_url and "Australia/Sydney" in office_hour.display_time_zones
    assert not RSVP.objects.exclude(email__endswith=".example.org").exists()
