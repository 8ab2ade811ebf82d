"""Participants the directory does not know: found by the pulls, listed as leads, linked to a
librarian (or added to the directory, or dismissed); a linked lead's edits count for their
library."""

from datetime import UTC, date, datetime, timedelta

import pytest
from django.urls import reverse

from drives.models import Contribution, Drive, Lead
from drives.pulls import contributions_pull
from drives.selectors import drive_leaderboard
from libraries.models import ActivitySignal, Librarian, Library
from tests.factories import LibrarianFactory, LibraryFactory, RegionFactory, drive_contribution

pytestmark = pytest.mark.django_db
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


@pytest.fixture
def drive(db):
    return Drive.objects.create(
        title="#1lib1ref",
        hashtags="#1lib1ref #1bib1ref",
        wikis="demo",
        starts_on=date(2026, 11, 1),
        ends_on=date(2026, 11, 30),
    )


@pytest.fixture
def stranger(demo):
    """Élise, a librarian who edits with the hashtag but is in no directory."""
    demo.now = NOW
    demo.add_user("Élise Bibliothécaire", 70)
    for revid, days in ((71, 3), (72, 2)):
        demo.add_revision(
            revid=revid,
            parentid=0,
            pageid=300 + revid,
            ns=0,
            title=f"Bibliothèque de Renens {revid}",
            user="Élise Bibliothécaire",
            timestamp=(NOW - timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            comment="Source ajoutée #1bib1ref",
            text="Texte.<ref>Une source.</ref>",
        )
    return "Élise Bibliothécaire"


def test_a_pull_lists_a_participant_the_directory_does_not_know_as_a_lead(
    drive, stranger, coordinator_client
):
    contributions_pull(drive=drive, now=NOW)
    lead = Lead.objects.get(username=stranger)
    assert (lead.wiki, lead.username, lead.status) == ("demo", stranger, "new")
    page = coordinator_client.get(reverse("drives:lead-list"))
    [row] = [row for row in page.context["object_list"] if row.username == stranger]
    assert (row.edits, row.references) == (2, 2)
    assert "Bibliothèque de Renens 72" in page.content.decode()  # their pages
    drive_page = coordinator_client.get(drive.get_absolute_url()).content.decode()
    assert stranger in drive_page and lead.get_absolute_url() in drive_page
    # No library yet: nothing in any library's activity, nor on the leaderboard.
    assert not ActivitySignal.objects.filter(source__startswith="demo:7").exists()
    assert drive_leaderboard(drive) == []
    # The recorded wiki's editors are in no directory here either: leads too.
    assert Lead.objects.count() == 4


def test_linking_a_lead_counts_their_edits_for_the_library_now_and_later(
    drive, stranger, coordinator_client, demo
):
    contributions_pull(drive=drive, now=NOW)
    lead = Lead.objects.get(username=stranger)
    renens = LibrarianFactory(
        name="Élise Favre",
        email="elise@renens.example.org",
        library=LibraryFactory(name="Bibliothèque de Renens"),
    )
    response = coordinator_client.post(
        reverse("drives:lead-link", args=[lead.pk]), {"email": "ELISE@renens.example.org"}
    )
    assert response.status_code == 302
    lead.refresh_from_db()
    renens.refresh_from_db()
    assert (lead.status, lead.librarian) == ("linked", renens)
    assert renens.wiki_username == stranger and renens.home_wiki == "demo"
    assert set(Contribution.objects.filter(librarian=renens).values_list("revid", flat=True)) == {
        71,
        72,
    }
    assert ActivitySignal.objects.filter(library=renens.library, kind="tagged_edit").count() == 2
    assert [row["library__name"] for row in drive_leaderboard(drive)] == ["Bibliothèque de Renens"]
    # A later edit of theirs counts for the library at once.
    demo.add_revision(
        revid=73,
        parentid=0,
        pageid=373,
        ns=0,
        title="Renens",
        user=stranger,
        timestamp=(NOW + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        comment="#1bib1ref",
        text="<ref>x</ref>",
    )
    contributions_pull(drive=drive, now=NOW + timedelta(hours=2))
    assert Contribution.objects.get(revid=73).library == renens.library


def test_a_lead_becomes_a_librarian_and_library_by_the_imports_rules(
    drive, stranger, coordinator_client, vaud
):
    contributions_pull(drive=drive, now=NOW)
    lead = Lead.objects.get(username=stranger)
    url = reverse("drives:lead-librarian-create", args=[lead.pk])
    bad = coordinator_client.post(url, {"library": "Bibliothèque de Renens", "email": "x"})
    assert bad.status_code == 400 and not Librarian.objects.exists()
    assert {"city", "region", "name", "email"} <= set(bad.context["librarian_form"].errors)
    response = coordinator_client.post(
        url,
        {
            "library": "Bibliothèque de Renens",
            "city": "Renens",
            "region": vaud.pk,
            "name": "Élise Favre",
            "email": "elise@renens.example.org",
            "role": "Bibliothécaire",
            "language": "fr",
        },
    )
    assert response.status_code == 302
    elise = Librarian.objects.get()
    assert (elise.library.name, elise.library.region, elise.wiki_username) == (
        "Bibliothèque de Renens",
        vaud,
        stranger,
    )
    assert elise.consent_source.startswith("#1lib1ref participant")
    lead.refresh_from_db()
    assert lead.librarian == elise
    assert Library.objects.get().status_changes.get().source == "import"


def test_a_dismissed_lead_is_no_longer_listed_and_its_edits_still_count(
    drive, stranger, coordinator_client
):
    contributions_pull(drive=drive, now=NOW)
    lead = Lead.objects.get(username=stranger)
    coordinator_client.post(reverse("drives:lead-dismiss", args=[lead.pk]))
    listed = coordinator_client.get(reverse("drives:lead-list")).context["object_list"]
    assert stranger not in [row.username for row in listed]
    assert Contribution.objects.in_drive(drive, counted=True).filter(username=stranger).count() == 2


def test_an_ambassador_sees_the_leads_of_their_regions_languages_and_links(
    client, make_ambassador, vaud, geneve
):
    drive = Drive.objects.create(title="#1lib1ref", hashtags="#1lib1ref", wikis="frwiki")
    for name, wiki in (("Anne", "frwiki"), ("Jonas", "dewiki")):
        drive_contribution(
            drive, wiki=wiki, revid=1 + len(name), page="P", username=name, tagged=True
        )
        Lead.objects.create(wiki=wiki, username=name, language=wiki[:2])
    zurich = RegionFactory(name="Zürich", slug="zurich", language="de")
    linked = Lead.objects.create(
        wiki="dewiki",
        username="Linked",
        language="de",
        status=Lead.Status.LINKED,
        librarian=LibrarianFactory(library=LibraryFactory(region=vaud)),
    )
    ambassador = make_ambassador(vaud)  # a French-speaking region
    client.force_login(ambassador)
    visible = set(Lead.objects.visible_to(ambassador).values_list("username", flat=True))
    assert visible == {"Anne", "Linked"}
    jonas = Lead.objects.get(username="Jonas")
    assert client.get(reverse("drives:lead-detail", args=[jonas.pk])).status_code == 404
    assert client.get(reverse("drives:lead-detail", args=[linked.pk])).status_code == 200
    client.force_login(make_ambassador(zurich, username="zurich"))
    page = client.get(reverse("drives:lead-list")).content.decode()
    assert "Jonas" in page and "Anne" not in page


def test_the_list_of_leads_is_per_region(coordinator_client, vaud):
    zurich = RegionFactory(name="Zürich", slug="zurich", language="de")
    Lead.objects.create(wiki="frwiki", username="Anne", language="fr")
    Lead.objects.create(wiki="dewiki", username="Jonas", language="de")
    page = coordinator_client.get(reverse("drives:lead-list"), {"region": zurich.slug})
    assert [lead.username for lead in page.context["object_list"]] == ["Jonas"]
    page = coordinator_client.get(reverse("drives:lead-list"), {"region": vaud.slug})
    assert [lead.username for lead in page.context["object_list"]] == ["Anne"]
