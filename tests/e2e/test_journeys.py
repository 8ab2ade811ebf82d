"""The main journeys, in a real browser against the live server.

A coordinator imports the directory and finds a library; plans a first-Thursday series and
invites libraries, whose librarian answers yes from the email; a volunteer signs up to a
meetup and takes it home in their calendar; an ambassador stays within their region.
"""

import re
from datetime import time

import icalendar
import pytest
from django.urls import reverse
from django.utils import timezone
from playwright.sync_api import Page, expect

from libraries.models import Library
from meetings.models import MeetupSeries
from meetings.services import meetings_materialise
from tests.factories import (
    LibrarianFactory,
    LibraryFactory,
    MailingListFactory,
    MeetupSeriesFactory,
    RegionFactory,
)

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

# UserFactory's password.
PASSWORD = "correct horse battery staple"
# The regions and mailing lists that libraries/import_example.csv names.
EXAMPLE_REGIONS = [
    ("vaud", "Vaud"),
    ("neuchatel", "Neuchâtel"),
    ("fribourg", "Fribourg"),
    ("valais", "Valais"),
    ("jura", "Jura"),
]
EXAMPLE_LISTS = [
    ("biblio-vaud", "Biblio-Vaud"),
    ("bibliromandie", "BiblioRomandie"),
    ("arc-jurassien", "Réseau Arc jurassien"),
]
INVITATION_BODY = (
    "Bonjour {{ recipient }},\n\n"
    "Nous offrons à {{ library }} des Wikipermanences gratuites, chaque premier jeudi à midi.\n\n"
    "{{ answer_links }}\n"
)


def log_in(page: Page, username: str) -> None:
    """Through the login form, as a person would: the dashboard asks for it."""
    page.goto("/")
    expect(page.get_by_role("heading", name="Log in")).to_be_visible()
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("button", name=username)).to_be_visible()  # the account menu


def test_a_coordinator_imports_the_example_file_and_finds_a_library_by_searching(
    new_page, coordinator, tmp_path
):
    for slug, name in EXAMPLE_REGIONS:
        RegionFactory(slug=slug, name=name)
    for slug, name in EXAMPLE_LISTS:
        MailingListFactory(slug=slug, name=name)
    page = new_page()
    log_in(page, coordinator.username)

    page.goto(reverse("libraries:library-import"))
    expect(page.get_by_role("heading", name="Import libraries and librarians")).to_be_visible()
    with page.expect_download() as download_info:
        page.get_by_role("link", name="Download an example file").click()
    download = download_info.value
    example = tmp_path / download.suggested_filename
    download.save_as(example)

    page.get_by_label("CSV file").set_input_files(example)
    page.get_by_role("button", name="Check the file").click()
    expect(page.get_by_role("heading", name=f"Preview of {example.name}")).to_be_visible()
    expect(page.get_by_text("No errors found: the file is ready to import.")).to_be_visible()
    assert not Library.objects.exists()  # the preview writes nothing
    page.get_by_role("button", name="Import", exact=True).click()
    expect(page.get_by_text(f"Imported {example.name}.")).to_be_visible()
    assert Library.objects.count() == 8

    # The navbar's search box, not the library list's own filter form.
    search = page.get_by_role("navigation", name="Main navigation").get_by_role("search")
    search.locator('input[name="q"]').fill("Agaune")
    search.locator('input[name="q"]').press("Enter")
    page.wait_for_url(re.compile(r"/search/\?"))
    page.get_by_role("main").get_by_role("link", name="Médiathèque d'Agaune").first.click()
    expect(page.get_by_role("heading", level=1, name="Médiathèque d'Agaune")).to_be_visible()
    expect(page.get_by_role("main")).to_contain_text("Saint-Maurice")


def test_a_coordinator_plans_a_series_invites_and_sees_the_library_that_answered_yes(
    new_page, coordinator, smtp, site_url
):
    vaud = RegionFactory(slug="vaud", name="Vaud")
    morges = LibraryFactory(name="Bibliothèque de Morges", city="Morges", region=vaud)
    anne = LibrarianFactory(library=morges, name="Anne Dubois", email="anne@morges.example.org")
    page = new_page()
    log_in(page, coordinator.username)

    # A Wikipermanence on the first Thursday of every month, at noon.
    page.goto(reverse("meetings:series-create"))
    page.get_by_label("Title").fill("Wikipermanence de Morges")
    page.get_by_label("Host library").select_option(label=str(morges))
    page.get_by_label("Every month, on a given weekday").check()
    page.get_by_label("Which one in the month").select_option(label="first")
    page.get_by_role("combobox", name="Weekday").select_option(label="Thursday")
    page.get_by_label("Start time").fill("12:00")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_text("Series “Wikipermanence de Morges” saved.")).to_be_visible()
    series = MeetupSeries.objects.get(title="Wikipermanence de Morges")
    assert (series.rrule, series.start_time) == ("FREQ=MONTHLY;BYDAY=+1TH", time(12, 0))
    meetings = list(series.meetings.order_by("start"))
    assert meetings
    for meeting in meetings:
        start = timezone.localtime(meeting.start, meeting.zone)
        assert (start.isoweekday(), start.day <= 7, start.time()) == (4, True, time(12, 0))

    # The invitation to the librarians of Vaud, about the first meetup.
    page.goto(reverse("campaigns:campaign-create"))
    page.get_by_label("Title").fill("Wikipermanences à Morges")
    page.get_by_label("Kind").select_option(label="Invitation")
    page.get_by_label("Default language").select_option(label="French")
    page.get_by_label("Meetup").select_option(label=str(meetings[0]))
    page.get_by_label("Librarians matching the filters").check()
    page.get_by_label("Regions").select_option(label="Vaud")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_text("Now write its message.")).to_be_visible()
    page.get_by_role("link", name="Write in French").click()
    page.get_by_label("Subject").fill("Une Wikipermanence à {{ library }} ?")
    page.get_by_label("Body").fill(INVITATION_BODY)
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_text("Une Wikipermanence à {{ library }} ?")).to_be_visible()
    page.get_by_role("button", name="Send now").click()
    expect(page.get_by_text("Sending started.")).to_be_visible()

    # The librarian opens the answer link of the email that reached the SMTP server.
    [email] = smtp.recorder.to(anne.email)
    assert email["Subject"] == "Une Wikipermanence à Bibliothèque de Morges ?"
    text = email.get_body(("plain",)).get_content()
    yes = re.search(re.escape(site_url) + r"/email/answer/\S+answer=yes", text)
    assert yes, text
    librarian = new_page()
    librarian.goto(yes.group(0))
    expect(librarian.get_by_role("heading", name="Wikipermanences à Morges")).to_be_visible()
    expect(librarian.get_by_label("Yes", exact=True)).to_be_checked()
    assert Library.objects.get(pk=morges.pk).status == Library.Status.PROSPECT  # opening: nothing
    librarian.get_by_role("button", name="Send my answer").click()
    expect(librarian.get_by_text("Thank you: your answer is recorded.")).to_be_visible()
    assert Library.objects.get(pk=morges.pk).status == Library.Status.INTERESTED

    # The coordinator's dashboard shows the move.
    page.goto("/")
    main = page.get_by_role("main")
    expect(main).to_contain_text("Bibliothèque de Morges")
    expect(main).to_contain_text("Interested")


def test_a_volunteer_signs_up_to_a_meetup_and_downloads_it_for_their_calendar(
    new_page, smtp, site_url, tmp_path
):
    library = LibraryFactory(name="Bibliothèque de Morges", city="Morges")
    series = MeetupSeriesFactory(
        title="Wikipermanence de Morges",
        host_library=library,
        start_date=timezone.localdate(),
    )
    meetings_materialise(series=series)
    meeting = series.meetings.filter(start__gte=timezone.now()).order_by("start").first()
    page = new_page()

    page.goto(reverse("meetings:meeting-public", args=[meeting.pk]))
    expect(page.get_by_role("heading", level=1)).to_contain_text("Wikipermanence de Morges")
    page.get_by_label("Your name").fill("Marie Curie")
    page.get_by_label("Your email").fill("marie@example.org")
    page.get_by_label("to help: mentor newcomers").check()
    page.get_by_role("button", name="Sign up").click()
    expect(page.get_by_text("You are signed up.")).to_be_visible()
    rsvp = meeting.rsvps.get()
    assert (rsvp.name, rsvp.email, rsvp.role, rsvp.answer) == (
        "Marie Curie",
        "marie@example.org",
        "mentor",
        "yes",
    )
    assert smtp.recorder.to("marie@example.org"), "no confirmation email"

    with page.expect_download() as download_info:
        page.get_by_role("link", name="Add to my calendar").click()
    download = download_info.value
    assert download.suggested_filename == f"meeting-{meeting.pk}.ics"
    ics = tmp_path / download.suggested_filename
    download.save_as(ics)
    calendar = icalendar.Calendar.from_ical(ics.read_bytes())
    [event] = calendar.walk("VEVENT")
    assert "Wikipermanence de Morges" in str(event["SUMMARY"])
    assert event.decoded("DTSTART") == timezone.localtime(meeting.start, meeting.zone)
    assert event.decoded("DTEND") == timezone.localtime(meeting.end, meeting.zone)
    assert "Morges" in str(event["LOCATION"])


def test_an_ambassador_cannot_open_another_regions_library_by_its_address(
    new_page, make_ambassador
):
    vaud = RegionFactory(slug="vaud", name="Vaud")
    geneve = RegionFactory(slug="geneve", name="Genève")
    own = LibraryFactory(name="Bibliothèque de Morges", region=vaud)
    other = LibraryFactory(name="Bibliothèque de la Cité", region=geneve)
    ambassador = make_ambassador(vaud, username="ambassador-vaud")
    page = new_page()
    log_in(page, ambassador.username)

    response = page.goto(own.get_absolute_url())
    assert response.status == 200
    expect(page.get_by_role("heading", level=1)).to_contain_text(own.name)

    response = page.goto(other.get_absolute_url())
    assert response.status == 404
    expect(page.get_by_role("heading", name="Page not found")).to_be_visible()
    expect(page.get_by_role("main")).not_to_contain_text(other.name)
