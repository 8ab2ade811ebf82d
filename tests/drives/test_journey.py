"""The issue's "done when": a coordinator opens the #1lib1ref drive, pulls, sees which
libraries' staff added how many references, and sends a follow-up to the top of the
shortlist — against the fake MediaWiki server and the SMTP server on loopback."""

from datetime import UTC, date, datetime

import pytest
from django.urls import reverse

from campaigns.models import Campaign, Message
from drives.models import Drive
from tests.factories import LibrarianFactory, LibraryFactory, RegionFactory

pytestmark = pytest.mark.django_db(transaction=True)


def test_pull_see_the_references_and_follow_up_the_top_of_the_shortlist(
    demo, coordinator_client, smtp, monkeypatch
):
    vaud = RegionFactory(name="Vaud", slug="vaud")
    morges = LibraryFactory(name="Bibliothèque de Morges", region=vaud)
    nyon = LibraryFactory(name="Bibliothèque de Nyon", region=vaud)
    anne = LibrarianFactory(
        library=morges, wiki_username="Demo Librarian", email="anne@morges.example.org"
    )
    LibrarianFactory(
        library=nyon, wiki_username="Exemple Bibliothécaire", email="eva@nyon.example.org"
    )
    drive = Drive.objects.create(
        title="#1lib1ref",
        hashtags="#1lib1ref #1bib1ref",
        wikis="demo",
        starts_on=date(2023, 1, 1),
        ends_on=date(2026, 11, 30),
    )
    monkeypatch.setattr("drives.pulls.timezone.now", lambda: datetime(2026, 11, 23, tzinfo=UTC))

    # The coordinator opens the drive and pulls.
    assert coordinator_client.get(drive.get_absolute_url()).status_code == 200
    coordinator_client.post(reverse("drives:drive-pull", args=[drive.pk]))
    page = coordinator_client.get(reverse("drives:drive-detail", args=[drive.pk]))
    board = {row["library__name"]: row for row in page.context["leaderboard"]}
    # Demo Librarian: revisions 2, 5, 8, 11, 13 (1 + 1 + 2 + 0 + 2 references).
    assert (
        board["Bibliothèque de Morges"]["edits"],
        board["Bibliothèque de Morges"]["references"],
    ) == (5, 6)
    assert board["Bibliothèque de Nyon"]["edits"] == 3
    assert "Bibliothèque de Morges" in page.content.decode()

    # The scores take the new signals in; the shortlist puts Morges first.
    coordinator_client.post(reverse("libraries:scores-refresh"))
    shortlist = coordinator_client.get(reverse("libraries:shortlist")).content.decode()
    assert shortlist.index("Bibliothèque de Morges") < shortlist.index("Bibliothèque de Nyon")

    # A follow-up to the top of the shortlist (one library per region), sent.
    response = coordinator_client.post(reverse("campaigns:shortlist-campaign"), {"n": 1})
    follow_up = Campaign.objects.get(kind=Campaign.Kind.FOLLOW_UP)
    assert response["Location"] == follow_up.get_absolute_url()
    assert list(follow_up.librarians.all()) == [anne]
    Message.objects.create(
        campaign=follow_up,
        language="fr",
        subject="Merci pour vos références, {{ library }} !",
        body="Bonjour {{ recipient }},\n\nMerci !\n\n{{ answer_links }}",
    )
    coordinator_client.post(reverse("campaigns:campaign-launch", args=[follow_up.pk]))
    assert smtp.recorder.count_by_address() == {"anne@morges.example.org": 1}
    [email] = smtp.recorder.to("anne@morges.example.org")
    assert email["Subject"].strip() == "Merci pour vos références, Bibliothèque de Morges !"
