"""Librarians answer a meetup invitation from a signed link in their email."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from libraries.models import ActivitySignal
from meetings.links import librarian_answer_token
from meetings.models import RSVP
from meetings.services import meetings_materialise
from tests.factories import LibrarianFactory, MeetupSeriesFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def meeting(db):
    series = MeetupSeriesFactory(start_date=timezone.localdate(), capacity=10)
    meetings_materialise(series=series)
    return series.meetings.order_by("start").first()


@pytest.fixture
def librarian(db):
    return LibrarianFactory(name="Anne Rochat", email="anne@morges.example.org")


def _url(librarian, meeting, answer=None):
    url = reverse(
        "meetings:librarian-answer",
        args=[librarian_answer_token(librarian=librarian, meeting=meeting)],
    )
    return f"{url}?answer={answer}" if answer else url


def test_opening_the_link_preselects_the_answer_and_records_nothing(client, librarian, meeting):
    for _ in range(3):  # a mail scanner prefetching it
        response = client.get(_url(librarian, meeting, "yes"))
        assert response.status_code == 200
    assert response.context["form"].initial == {"answer": "yes"}
    assert (
        'value="yes" checked' in response.content.decode() or "checked" in response.content.decode()
    )
    assert not RSVP.objects.exists()
    assert not ActivitySignal.objects.exists()


def test_posting_yes_seats_the_librarian_and_records_one_signal(
    client, librarian, meeting, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        client.post(_url(librarian, meeting), {"answer": "yes"})
        client.post(_url(librarian, meeting), {"answer": "yes"})
    rsvp = RSVP.objects.get()
    assert (rsvp.librarian, rsvp.answer, rsvp.holds_seat) == (librarian, "yes", True)
    signal = ActivitySignal.objects.get()
    assert (signal.kind, signal.library, signal.librarian) == (
        "rsvp_yes",
        librarian.library,
        librarian,
    )


def test_answering_again_changes_the_answer_and_frees_the_seat(
    client, librarian, meeting, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        client.post(_url(librarian, meeting), {"answer": "yes"})
        client.post(_url(librarian, meeting), {"answer": "no"})
    rsvp = RSVP.objects.get()
    assert (rsvp.answer, rsvp.holds_seat) == ("no", False)
    page = client.get(_url(librarian, meeting)).content.decode()
    assert "Your current answer: No" in page


def test_maybe_is_kept_without_taking_a_seat(client, librarian, meeting):
    client.post(_url(librarian, meeting), {"answer": "maybe"})
    rsvp = RSVP.objects.get()
    assert (rsvp.answer, rsvp.holds_seat) == ("maybe", False)


def test_an_altered_link_records_nothing(client, librarian, meeting):
    token = librarian_answer_token(librarian=librarian, meeting=meeting)
    flipped = "B" if token[3] == "A" else "A"
    tampered = token[:3] + flipped + token[4:]
    url = reverse("meetings:librarian-answer", args=[tampered])
    assert client.post(url, {"answer": "yes"}).status_code == 400
    assert not RSVP.objects.exists()


@pytest.mark.parametrize("token", ["", "garbage", "a" * 500, "e30:1tYb:abc"])
def test_a_malformed_link_gets_a_plain_400(client, token):
    url = reverse("meetings:librarian-answer", args=[token or "x"])
    response = client.get(url)
    assert response.status_code == 400
    assert "This link does not work" in response.content.decode()


def test_a_link_to_a_past_meeting_has_expired(client, librarian, meeting):
    meeting.start = timezone.now() - timedelta(days=2)
    meeting.end = meeting.start + timedelta(hours=2)
    meeting.save()
    response = client.get(_url(librarian, meeting))
    assert response.status_code == 400
    assert "expired" in response.content.decode()


def test_an_expired_link_says_so(client, librarian, meeting, monkeypatch):
    url = _url(librarian, meeting)
    monkeypatch.setattr("meetings.links.LIBRARIAN_LINK_MAX_AGE", timedelta(seconds=-1))
    response = client.post(url, {"answer": "yes"})
    assert response.status_code == 400
    assert not RSVP.objects.exists()
