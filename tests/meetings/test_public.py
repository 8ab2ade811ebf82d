"""Public meetup pages: find a meetup, sign up, change or cancel from the email's link."""

import re
from datetime import timedelta

import pytest
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from core.links import link_token
from meetings.links import RSVP_LINK_PURPOSE
from meetings.models import RSVP
from meetings.services import meetings_materialise
from tests.factories import LibrarianFactory, LibraryFactory, MeetupSeriesFactory, RegionFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def meeting(db):
    series = MeetupSeriesFactory(
        title="Wikipermanence de Morges",
        start_date=timezone.localdate(),
        capacity=2,
        host_library=LibraryFactory(name="Bibliothèque de Morges", city="Morges"),
    )
    meetings_materialise(series=series)
    return series.meetings.order_by("start").first()


def _sign_up(client, meeting, name, email, captured, **extra):
    with captured(execute=True):
        return client.post(
            reverse("meetings:meeting-public", args=[meeting.pk]),
            {"name": name, "email": email, "role": "attendee", "guests": 0, **extra},
        )


def _manage_url(message):
    return re.search(r"https?://[^\s]+/meetups/rsvp/[^\s/]+/", message.body).group(0)


def test_a_visitor_signs_up_and_receives_a_confirmation_with_a_manage_link(
    client, meeting, django_capture_on_commit_callbacks
):
    response = _sign_up(
        client, meeting, "Léa Martin", "lea@example.org", django_capture_on_commit_callbacks
    )
    assert response.status_code == 302
    rsvp = RSVP.objects.get()
    assert (rsvp.name, rsvp.answer, rsvp.holds_seat) == ("Léa Martin", "yes", True)
    (message,) = mail.outbox
    assert message.to == ["lea@example.org"]
    assert "Wikipermanence de Morges" in message.subject
    assert "12:00" in message.body
    assert message.alternatives[0][1] == "text/html"
    assert message.extra_headers["Message-ID"].endswith("@127.0.0.1>")
    manage = client.get(_manage_url(message).split("8000", 1)[-1])
    assert manage.status_code == 200
    assert "Léa Martin" in manage.content.decode()


def test_when_full_new_sign_ups_wait_and_are_promoted_in_order_with_an_email(
    client, meeting, django_capture_on_commit_callbacks
):
    capture = django_capture_on_commit_callbacks
    for n in range(4):
        _sign_up(client, meeting, f"Person {n}", f"p{n}@example.org", capture)
    seated = [r.email for r in RSVP.objects.order_by("id") if r.holds_seat]
    waiting = [r.email for r in RSVP.objects.filter(waitlisted_at__isnull=False).order_by("id")]
    assert seated == ["p0@example.org", "p1@example.org"]
    assert waiting == ["p2@example.org", "p3@example.org"]
    assert "waiting list" in mail.outbox[2].subject.lower()

    cancel_url = _manage_url(mail.outbox[0]).split("8000", 1)[-1]
    mail.outbox.clear()
    with capture(execute=True):
        client.post(cancel_url, {"cancel": "1"})
    assert RSVP.objects.get(email="p0@example.org").answer == "no"
    assert RSVP.objects.get(email="p2@example.org").holds_seat
    assert RSVP.objects.get(email="p3@example.org").waitlisted_at is not None
    (promotion,) = mail.outbox
    assert promotion.to == ["p2@example.org"] and "seat" in promotion.subject.lower()


def test_helpers_do_not_take_the_seats_of_attendees(
    client, meeting, django_capture_on_commit_callbacks
):
    for n, role in enumerate(["mentor", "greeter", "host", "attendee", "attendee"]):
        _sign_up(
            client,
            meeting,
            f"P{n}",
            f"p{n}@example.org",
            django_capture_on_commit_callbacks,
            role=role,
        )
    assert RSVP.objects.filter(waitlisted_at__isnull=True).count() == 5


def test_guests_count_against_capacity(client, meeting, django_capture_on_commit_callbacks):
    _sign_up(
        client, meeting, "Ana", "ana@example.org", django_capture_on_commit_callbacks, guests=1
    )
    _sign_up(client, meeting, "Bo", "bo@example.org", django_capture_on_commit_callbacks)
    assert RSVP.objects.get(email="bo@example.org").waitlisted_at is not None


def test_signing_up_again_changes_the_sign_up_instead_of_adding_one(
    client, meeting, django_capture_on_commit_callbacks
):
    _sign_up(client, meeting, "Léa", "lea@example.org", django_capture_on_commit_callbacks)
    _sign_up(
        client,
        meeting,
        "Léa M.",
        "LEA@Example.org",
        django_capture_on_commit_callbacks,
        role="mentor",
    )
    rsvp = RSVP.objects.get()
    assert (rsvp.name, rsvp.role) == ("Léa M.", "mentor")


def test_a_bad_sign_up_shows_field_errors(client, meeting):
    response = client.post(
        reverse("meetings:meeting-public", args=[meeting.pk]),
        {
            "name": "Léa\nBcc: x@example.org",
            "email": "not-an-email",
            "role": "attendee",
            "guests": 0,
        },
    )
    assert response.status_code == 200
    assert {"name", "email"} <= set(response.context["form"].errors)
    assert not RSVP.objects.exists()


def test_opening_the_manage_link_changes_nothing(
    client, meeting, django_capture_on_commit_callbacks
):
    _sign_up(client, meeting, "Léa", "lea@example.org", django_capture_on_commit_callbacks)
    before = RSVP.objects.values().get()
    url = _manage_url(mail.outbox[0]).split("8000", 1)[-1]
    for _ in range(3):  # a mail scanner prefetching the link
        assert client.get(url).status_code == 200
    assert RSVP.objects.values().get() == before


@pytest.mark.parametrize("token", ["abc", "x" * 300, "eyJ.tampered:sig"])
def test_a_malformed_or_tampered_manage_link_gets_a_plain_400(client, token):
    response = client.get(reverse("meetings:rsvp-manage", args=[token]))
    assert response.status_code == 400
    assert "This link does not work" in response.content.decode()


def test_a_link_for_another_persons_rsvp_or_another_purpose_is_refused(
    client, meeting, django_capture_on_commit_callbacks
):
    _sign_up(client, meeting, "Léa", "lea@example.org", django_capture_on_commit_callbacks)
    rsvp = RSVP.objects.get()
    other_purpose = link_token(
        purpose="invitation", payload={"rsvp": rsvp.pk, "meeting": meeting.pk, "email": rsvp.email}
    )
    wrong_email = link_token(
        purpose=RSVP_LINK_PURPOSE,
        payload={"rsvp": rsvp.pk, "meeting": meeting.pk, "email": "eve@example.org"},
    )
    for token in (other_purpose, wrong_email):
        assert client.get(reverse("meetings:rsvp-manage", args=[token])).status_code == 400
        assert (
            client.post(reverse("meetings:rsvp-manage", args=[token]), {"cancel": "1"}).status_code
            == 400
        )
    assert RSVP.objects.get().answer == "yes"


def test_an_expired_manage_link_says_so(
    client, meeting, monkeypatch, django_capture_on_commit_callbacks
):
    _sign_up(client, meeting, "Léa", "lea@example.org", django_capture_on_commit_callbacks)
    url = _manage_url(mail.outbox[0]).split("8000", 1)[-1]
    monkeypatch.setattr("meetings.links.RSVP_LINK_MAX_AGE", timedelta(seconds=-1))
    response = client.get(url)
    assert response.status_code == 400
    assert "expired" in response.content.decode()


def test_public_pages_never_show_an_email_address(
    client, meeting, django_capture_on_commit_callbacks
):
    LibrarianFactory(library=meeting.host_library, email="librarian@morges.example.org")
    _sign_up(client, meeting, "Léa", "lea@example.org", django_capture_on_commit_callbacks)
    for url in (
        reverse("meetings:public-list"),
        reverse("meetings:series-public", args=[meeting.series.slug]),
        reverse("meetings:meeting-public", args=[meeting.pk]),
    ):
        page = client.get(url).content.decode()
        assert "lea@example.org" not in page and "librarian@morges.example.org" not in page
        assert "Léa" not in page


def test_the_public_list_filters_by_region_and_language(client, db):
    vaud, geneve = RegionFactory(slug="vaud"), RegionFactory(slug="geneve")
    for title, region, language in [("VD", vaud, "fr"), ("GE", geneve, "fr"), ("DE", vaud, "de")]:
        series = MeetupSeriesFactory(
            title=title,
            language=language,
            host_library=LibraryFactory(region=region),
            start_date=timezone.localdate(),
        )
        meetings_materialise(series=series)
    titles = lambda r: {m.display_title for m in r.context["object_list"]}  # noqa: E731
    url = reverse("meetings:public-list")
    assert titles(client.get(url, {"region": "vaud"})) == {"VD", "DE"}
    assert titles(client.get(url, {"region": "vaud", "language": "fr"})) == {"VD"}


def test_a_draft_series_has_no_public_page(client, db):
    series = MeetupSeriesFactory(status="draft")
    assert client.get(reverse("meetings:series-public", args=[series.slug])).status_code == 404


def test_a_cancelled_meeting_refuses_sign_ups(client, meeting, django_capture_on_commit_callbacks):
    meeting.cancelled_at = timezone.now()
    meeting.save()
    response = _sign_up(
        client, meeting, "Léa", "lea@example.org", django_capture_on_commit_callbacks
    )
    assert response.status_code == 404
    assert not RSVP.objects.exists()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_simultaneous_sign_ups_for_the_last_seats_never_exceed_capacity():
    import threading

    from django.db import connection
    from django.test import Client

    series = MeetupSeriesFactory(start_date=timezone.localdate(), capacity=3)
    meetings_materialise(series=series)
    meeting = series.meetings.order_by("start").first()
    url = reverse("meetings:meeting-public", args=[meeting.pk])
    people = 12
    start = threading.Barrier(people)
    statuses = []

    def sign_up(n):
        try:
            start.wait(timeout=10)
            response = Client().post(
                url,
                {"name": f"P{n}", "email": f"p{n}@example.org", "role": "attendee", "guests": 0},
            )
            statuses.append(response.status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=sign_up, args=(n,)) for n in range(people)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert statuses == [302] * people
    rsvps = RSVP.objects.filter(meeting=meeting)
    assert rsvps.count() == people
    assert sum(1 for r in rsvps if r.holds_seat) == 3
    assert rsvps.filter(waitlisted_at__isnull=False).count() == people - 3


def test_public_pages_link_to_their_calendar_files(client, meeting):
    page = client.get(reverse("meetings:meeting-public", args=[meeting.pk])).content.decode()
    assert reverse("calendar:meeting", args=[meeting.pk]) in page
    series_page = client.get(reverse("meetings:series-public", args=[meeting.series.slug]))
    assert reverse("calendar:series", args=[meeting.series.slug]) in series_page.content.decode()
    ics = client.get(reverse("calendar:meeting", args=[meeting.pk]))
    assert ics["Content-Type"].startswith("text/calendar")


def test_an_office_hour_is_shown_in_the_zones_the_coordinator_picked(client, coordinator_client):
    response = coordinator_client.post(
        reverse("meetings:meeting-create"),
        {
            "title": "#1lib1ref office hour",
            "start_local": "2027-01-20T09:00",
            "duration_minutes": "60",
            "time_zone": "UTC",
            "display_time_zones": "Australia/Sydney, America/Los_Angeles, Europe/London",
            "online_url": "https://meet.example.org/1lib1ref",
        },
    )
    from meetings.models import Meeting

    meeting = Meeting.objects.get(series__isnull=True)
    assert response["Location"] == reverse("meetings:meeting-public", args=[meeting.pk])
    assert meeting.start.isoformat() == "2027-01-20T09:00:00+00:00"
    page = client.get(response["Location"]).content.decode()
    # 09:00 UTC is 20:00 in Sydney (summer), 01:00 in Los Angeles, 09:00 in London.
    for zone, local in [
        ("Australia/Sydney", "Wednesday 20 January, 20:00"),
        ("America/Los_Angeles", "Wednesday 20 January, 01:00"),
        ("Europe/London", "Wednesday 20 January, 09:00"),
    ]:
        assert f'<th scope="row">{zone}</th><td>{local}</td>' in page
    assert 'class="local-time" datetime="2027-01-20T09:00:00+00:00"' in page


def test_a_one_off_meeting_needs_a_place_or_a_link_and_known_zones(coordinator_client):
    response = coordinator_client.post(
        reverse("meetings:meeting-create"),
        {
            "title": "Workshop",
            "start_local": "2027-01-20T09:00",
            "duration_minutes": "60",
            "time_zone": "UTC",
            "display_time_zones": "Mars/Olympus",
        },
    )
    assert {"online_url", "display_time_zones"} <= set(response.context["form"].errors)
