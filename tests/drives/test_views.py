"""The coordinator's drive pages through the test client: the list, the form, a campaign that
invites to a drive, and the addresses of the time when drives were campaigns."""

from datetime import UTC, date, datetime

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse

from campaigns.models import Campaign
from drives.models import Drive
from tests.factories import LibrarianFactory, drive_contribution

pytestmark = pytest.mark.django_db


def _drive(**fields) -> Drive:
    return Drive.objects.create(
        **{
            "title": "#1lib1ref 2026",
            "hashtags": "#1lib1ref #1bib1ref",
            "wikis": "frwiki",
            "starts_on": date(2026, 1, 15),
            "ends_on": date(2026, 2, 5),
            **fields,
        }
    )


def _form(**fields) -> dict:
    return {
        "title": "#1lib1ref 2027",
        "hashtags": "#1lib1ref #1bib1ref",
        "wikis": "frwiki dewiki",
        "starts_on": "2027-01-15",
        "ends_on": "2027-02-05",
        **fields,
    }


def test_a_coordinator_creates_a_drive_and_lands_on_its_page(coordinator_client, coordinator):
    response = coordinator_client.post(reverse("drives:drive-create"), _form())
    drive = Drive.objects.get()
    assert response.status_code == 302 and response["Location"] == drive.get_absolute_url()
    assert (drive.hashtags, drive.wikis, drive.ends_on) == (
        "#1lib1ref #1bib1ref",
        "frwiki dewiki",
        date(2027, 2, 5),
    )
    assert drive.created_by == coordinator
    assert [str(m) for m in get_messages(response.wsgi_request)] == [
        "Drive “#1lib1ref 2027” saved."
    ]
    assert coordinator_client.get(drive.get_absolute_url()).status_code == 200


def test_a_drive_ending_before_it_starts_is_refused(coordinator_client):
    response = coordinator_client.post(
        reverse("drives:drive-create"), _form(starts_on="2027-02-15", ends_on="2027-01-15")
    )
    assert response.status_code == 200
    assert "ends_on" in response.context["form"].errors
    assert not Drive.objects.exists()


def test_a_drive_needs_its_hashtags_wikis_and_window(coordinator_client):
    response = coordinator_client.post(reverse("drives:drive-create"), {"title": "#1lib1ref"})
    assert set(response.context["form"].errors) == {"hashtags", "wikis", "starts_on", "ends_on"}
    assert not Drive.objects.exists()


def test_an_ambassadors_drive_names_their_regions_only(client, make_ambassador, vaud, geneve):
    client.force_login(make_ambassador(vaud))
    refused = client.post(reverse("drives:drive-create"), _form())
    assert "regions" in refused.context["form"].errors
    elsewhere = client.post(reverse("drives:drive-create"), _form(regions=[geneve.pk]))
    assert "regions" in elsewhere.context["form"].errors
    client.post(reverse("drives:drive-create"), _form(regions=[vaud.pk]))
    drive = Drive.objects.get()
    assert list(drive.regions.all()) == [vaud]
    assert client.get(drive.get_absolute_url()).status_code == 200


def test_the_list_shows_each_drive_with_the_edits_that_count(coordinator_client):
    drive = _drive()
    librarian = LibrarianFactory()
    for revid, tagged in ((1, True), (2, True), (3, False)):
        drive_contribution(
            drive,
            librarian=librarian,
            library=librarian.library,
            wiki="frwiki",
            revid=revid,
            page="Morges",
            username="Demo",
            timestamp=datetime(2026, 1, 20, tzinfo=UTC),
            tagged=tagged,
        )
    _drive(title="#1lib1ref mai", starts_on=date(2026, 5, 1), ends_on=date(2026, 5, 31))
    response = coordinator_client.get(reverse("drives:drive-list"))
    counts = {row.title: row.counted_edits for row in response.context["object_list"]}
    assert counts == {"#1lib1ref 2026": 2, "#1lib1ref mai": 0}
    assert "#1lib1ref mai" in response.content.decode()


def test_a_campaign_inviting_to_a_drive_names_it_and_links_to_it(coordinator_client):
    drive = _drive()
    form = {"title": "Invitation #1lib1ref", "kind": "contribution_drive", "default_language": "fr"}
    refused = coordinator_client.post(reverse("campaigns:campaign-create"), form)
    assert "drive" in refused.context["form"].errors
    coordinator_client.post(reverse("campaigns:campaign-create"), {**form, "drive": drive.pk})
    campaign = Campaign.objects.get()
    assert campaign.drive == drive
    page = coordinator_client.get(campaign.get_absolute_url()).content.decode()
    assert f'href="{drive.get_absolute_url()}"' in page


def test_the_addresses_of_drives_as_campaigns_redirect_for_good(coordinator_client):
    drive = _drive()
    page = coordinator_client.get(f"/campaigns/{drive.pk}/drive/?show=untagged&page=2")
    assert page.status_code == 301
    assert page["Location"] == f"/drives/{drive.pk}/?show=untagged&page=2"
    runs = coordinator_client.get(f"/campaigns/{drive.pk}/drive/runs/")
    assert (runs.status_code, runs["Location"]) == (301, f"/drives/{drive.pk}/runs/")
    # A form posted from a page opened before the move: the same method, at the new address.
    pull = coordinator_client.post(f"/campaigns/{drive.pk}/drive/pull/")
    assert (pull.status_code, pull["Location"]) == (308, f"/drives/{drive.pk}/pull/")
    count_in = coordinator_client.post("/campaigns/contributions/7/count-in/")
    assert (count_in.status_code, count_in["Location"]) == (
        308,
        "/drives/contributions/7/count-in/",
    )
    followed = coordinator_client.get(f"/campaigns/{drive.pk}/drive/", follow=True)
    assert followed.status_code == 200 and followed.context["drive"] == drive


def test_the_old_addresses_still_ask_for_a_login(client):
    response = client.get("/campaigns/1/drive/")
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


def test_a_drive_on_a_public_wiki_is_not_pulled_with_a_placeholder_contact(
    coordinator_client, settings
):
    settings.WIKIS = {"frwiki": "https://fr.wikipedia.org/w/api.php"}
    settings.WIKI_USER_AGENT_CONTACT = "outreach@localhost"
    drive = _drive()
    response = coordinator_client.post(reverse("drives:drive-pull", args=[drive.pk]), follow=True)
    assert "WIKI_USER_AGENT_CONTACT" in response.content.decode()
    assert not drive.pull_runs.exists()  # nothing asked of Wikipedia
    # The hourly task's pull says the same on the run.
    from drives.pulls import contributions_pull

    run = contributions_pull(drive=drive)
    assert run.status == "failed" and "User-Agent" in run.errors
    settings.WIKI_USER_AGENT_CONTACT = "outreach@wikimedia.ch"
    from drives.wiki import contact_problem

    assert contact_problem(["frwiki"]) == ""
