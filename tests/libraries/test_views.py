"""Coordinator pages for libraries, librarians and mailing lists, through the test client."""

import pytest
from django.urls import reverse

from libraries.models import ActivitySignal, Librarian, Library, MailingList
from tests.factories import (
    LibrarianFactory,
    LibraryFactory,
    MailingListFactory,
)

pytestmark = pytest.mark.django_db


def _names(response):
    return [library.name for library in response.context["object_list"]]


def test_the_library_list_filters_by_region_status_and_language(coordinator_client, vaud, geneve):
    LibraryFactory(name="Morges", region=vaud, status="partner", languages="fr")
    LibraryFactory(name="Nyon", region=vaud, status="prospect", languages="fr")
    LibraryFactory(name="Carouge", region=geneve, status="partner", languages="de,fr")
    url = reverse("libraries:library-list")

    assert _names(coordinator_client.get(url, {"region": "vaud"})) == ["Morges", "Nyon"]
    assert _names(coordinator_client.get(url, {"status": "partner"})) == ["Carouge", "Morges"]
    assert _names(coordinator_client.get(url, {"language": "de"})) == ["Carouge"]
    both = coordinator_client.get(url, {"region": "vaud", "status": "partner"})
    assert _names(both) == ["Morges"]


def test_the_library_search_finds_libraries_by_city_and_by_librarian(coordinator_client, vaud):
    LibraryFactory(name="Bibliothèque communale", city="Yverdon-les-Bains", region=vaud)
    other = LibraryFactory(name="Médiathèque", city="Renens", region=vaud)
    LibrarianFactory(library=other, name="Chloé Rochat")
    LibrarianFactory(library=other, name="Chloé Python")
    url = reverse("libraries:library-list")

    assert _names(coordinator_client.get(url, {"q": "yverdon"})) == ["Bibliothèque communale"]
    # Two matching librarians still give the library once, with its full librarian count.
    response = coordinator_client.get(url, {"q": "chloé"})
    assert _names(response) == ["Médiathèque"]
    assert response.context["object_list"][0].librarian_count == 2


def test_an_unknown_filter_value_shows_every_library_instead_of_failing(coordinator_client):
    LibraryFactory()
    response = coordinator_client.get(reverse("libraries:library-list"), {"region": "atlantis"})
    assert response.status_code == 200
    assert response.context["filter_form"].errors


def test_the_library_list_is_paginated_and_keeps_its_filters(coordinator_client, vaud):
    for n in range(30):
        LibraryFactory(name=f"Bibliothèque {n:02}", region=vaud, status="contacted")
    response = coordinator_client.get(
        reverse("libraries:library-list"), {"status": "contacted", "page": 2}
    )
    assert response.context["paginator"].count == 30
    assert len(response.context["object_list"]) == 5
    assert "status=contacted&amp;page=1" in response.content.decode()


def test_the_library_list_costs_the_same_queries_for_five_or_twenty_five_rows(
    coordinator_client, vaud, django_assert_max_num_queries
):
    for n in range(5):
        LibrarianFactory(library=LibraryFactory(name=f"A{n}", region=vaud))
    url = reverse("libraries:library-list")
    with django_assert_max_num_queries(12) as small:
        coordinator_client.get(url)
    for n in range(20):
        LibrarianFactory(library=LibraryFactory(name=f"B{n}", region=vaud))
    with django_assert_max_num_queries(12) as large:
        coordinator_client.get(url)
    assert len(small.captured_queries) == len(large.captured_queries)


def test_the_library_page_shows_librarians_lists_history_and_signals(
    coordinator_client, coordinator, vaud
):
    library = LibraryFactory(name="Bibliothèque de Morges", region=vaud)
    LibrarianFactory(library=library, name="Anne Rochat", email="anne@morges.example.org")
    MailingListFactory(name="Biblio-Vaud").members.add(library)
    coordinator_client.post(
        reverse("libraries:library-status", args=[library.slug]),
        {"status": "contacted", "reason": "Called the head librarian"},
    )
    ActivitySignal.objects.create(
        library=library, kind="list_reply", occurred_at="2026-10-01T10:00Z", source="Biblio-Vaud"
    )

    response = coordinator_client.get(library.get_absolute_url())
    page = response.content.decode()
    for text in ("Anne Rochat", "anne@morges.example.org", "Biblio-Vaud", "Called the head"):
        assert text in page
    assert "Replied on a mailing list" in page


def test_creating_a_library_from_the_form_starts_its_history(coordinator_client, vaud):
    response = coordinator_client.post(
        reverse("libraries:library-create"),
        {
            "name": "Bibliothèque de Pully",
            "city": "Pully",
            "region": vaud.pk,
            "languages": ["fr", "de"],
            "website": "https://pully.example.org",
        },
    )
    library = Library.objects.get(name="Bibliothèque de Pully")
    assert response.status_code == 302
    assert response["Location"] == library.get_absolute_url()
    assert library.languages == "de,fr"
    assert library.status_changes.get().to_status == "prospect"


def test_the_library_form_shows_field_errors_and_keeps_what_was_typed(coordinator_client, vaud):
    response = coordinator_client.post(
        reverse("libraries:library-create"),
        {"name": "Bibliothèque de Pully", "city": "", "region": vaud.pk, "website": "not a url"},
    )
    assert response.status_code == 200
    form = response.context["form"]
    assert set(form.errors) == {"city", "website", "languages"}
    assert 'value="Bibliothèque de Pully"' in response.content.decode()
    assert not Library.objects.exists()


def test_creating_a_library_that_already_exists_in_that_city_is_a_form_error(
    coordinator_client, vaud
):
    LibraryFactory(name="Bibliothèque de Pully", city="Pully", region=vaud)
    response = coordinator_client.post(
        reverse("libraries:library-create"),
        {"name": "bibliothèque de pully", "city": "PULLY", "region": vaud.pk, "languages": ["fr"]},
    )
    assert response.status_code == 200
    assert response.context["form"].errors
    assert Library.objects.count() == 1


def test_editing_a_library_keeps_its_slug(coordinator_client, vaud):
    library = LibraryFactory(region=vaud, slug="bibliotheque-morges")
    response = coordinator_client.post(
        reverse("libraries:library-update", args=[library.slug]),
        {
            "name": "Bibliothèque de Morges",
            "city": "Morges",
            "region": vaud.pk,
            "languages": ["fr"],
        },
    )
    assert response.status_code == 302
    library.refresh_from_db()
    assert (library.name, library.slug) == ("Bibliothèque de Morges", "bibliotheque-morges")


def test_a_status_change_needs_a_reason(coordinator_client):
    library = LibraryFactory()
    response = coordinator_client.post(
        reverse("libraries:library-status", args=[library.slug]), {"status": "partner"}, follow=True
    )
    library.refresh_from_db()
    assert library.status == "prospect"
    assert any("required" in str(m) for m in response.context["messages"])


def test_a_status_change_from_the_page_is_recorded_with_its_author(coordinator_client, coordinator):
    library = LibraryFactory()
    coordinator_client.post(
        reverse("libraries:library-status", args=[library.slug]),
        {"status": "interested", "reason": "Said yes at the cantonal meeting"},
    )
    change = library.status_changes.get()
    assert (change.to_status, change.changed_by, change.source) == (
        "interested",
        coordinator,
        "manual",
    )


def test_a_coordinator_records_a_signal_by_hand(coordinator_client, coordinator):
    librarian = LibrarianFactory()
    library = librarian.library
    coordinator_client.post(
        reverse("libraries:signal-create", args=[library.slug]),
        {
            "kind": "story",
            "librarian": librarian.pk,
            "occurred_at": "2026-11-02T14:30",
            "note": "Told us about the Wikipedia workshop",
        },
    )
    signal = library.signals.get()
    assert (signal.kind, signal.librarian, signal.recorded_by) == ("story", librarian, coordinator)


def test_a_signal_cannot_name_a_librarian_of_another_library(coordinator_client):
    library = LibraryFactory()
    stranger = LibrarianFactory()
    coordinator_client.post(
        reverse("libraries:signal-create", args=[library.slug]),
        {"kind": "story", "librarian": stranger.pk, "occurred_at": "2026-11-02T14:30"},
    )
    assert not ActivitySignal.objects.exists()


def test_adding_a_librarian_from_the_library_page_preselects_the_library(coordinator_client):
    library = LibraryFactory(languages="de,fr")
    response = coordinator_client.get(
        reverse("libraries:librarian-create"), {"library": library.slug}
    )
    assert response.context["form"].initial["library"] == library
    assert response.context["form"].initial["language"] == "de"


def test_a_librarian_email_already_used_with_another_case_is_a_form_error(coordinator_client):
    LibrarianFactory(email="anne@morges.example.org")
    library = LibraryFactory()
    response = coordinator_client.post(
        reverse("libraries:librarian-create"),
        {
            "library": library.pk,
            "name": "Anne",
            "email": "ANNE@Morges.example.org",
            "language": "fr",
        },
    )
    assert response.status_code == 200
    assert "email" in response.context["form"].errors or response.context["form"].non_field_errors()
    assert Librarian.objects.count() == 1


def test_a_librarian_name_with_a_line_break_is_refused(coordinator_client):
    library = LibraryFactory()
    response = coordinator_client.post(
        reverse("libraries:librarian-create"),
        {
            "library": library.pk,
            "name": "Anne\r\nBcc: everyone@example.org",
            "email": "anne@morges.example.org",
            "language": "fr",
        },
    )
    assert response.status_code == 200
    assert "name" in response.context["form"].errors
    assert not Librarian.objects.exists()


def test_editing_a_librarian_returns_to_their_library(coordinator_client):
    librarian = LibrarianFactory()
    response = coordinator_client.post(
        reverse("libraries:librarian-update", args=[librarian.pk]),
        {
            "library": librarian.library.pk,
            "name": "Anne Rochat-Meylan",
            "email": librarian.email,
            "language": "fr",
            "wiki_username": "AnneRM",
            "home_wiki": "frwiki",
        },
    )
    assert response["Location"] == librarian.library.get_absolute_url()
    librarian.refresh_from_db()
    assert (librarian.name, librarian.wiki_username) == ("Anne Rochat-Meylan", "AnneRM")


def test_the_librarian_list_searches_and_filters_by_region(coordinator_client, vaud, geneve):
    LibrarianFactory(name="Anne Rochat", library=LibraryFactory(region=vaud))
    LibrarianFactory(name="Anne Favre", library=LibraryFactory(region=geneve))
    LibrarianFactory(name="Marc Dubois", library=LibraryFactory(region=vaud))
    url = reverse("libraries:librarian-list")
    names = lambda r: [librarian.name for librarian in r.context["object_list"]]  # noqa: E731
    assert names(coordinator_client.get(url, {"q": "anne"})) == ["Anne Favre", "Anne Rochat"]
    assert names(coordinator_client.get(url, {"q": "anne", "region": "vaud"})) == ["Anne Rochat"]


def test_a_mailing_list_is_created_with_its_members(coordinator_client, vaud):
    morges, nyon = LibraryFactory(region=vaud), LibraryFactory(region=vaud)
    response = coordinator_client.post(
        reverse("libraries:mailinglist-create"),
        {
            "name": "Biblio-Vaud",
            "posting_address": "biblio-vaud@lists.example.org",
            "subscribed_as": "outreach@example.org",
            "region": vaud.pk,
            "language": "fr",
            "members": [morges.pk, nyon.pk],
        },
    )
    mailing_list = MailingList.objects.get()
    assert response["Location"] == mailing_list.get_absolute_url()
    assert mailing_list.slug == "biblio-vaud"
    assert set(mailing_list.members.all()) == {morges, nyon}
    page = coordinator_client.get(mailing_list.get_absolute_url()).content.decode()
    assert morges.name in page and nyon.name in page


def test_a_wiki_username_is_kept_as_mediawiki_reads_it(coordinator_client):
    librarian = LibrarianFactory()
    coordinator_client.post(
        reverse("libraries:librarian-update", args=[librarian.pk]),
        {
            "library": librarian.library.pk,
            "name": librarian.name,
            "email": librarian.email,
            "language": "fr",
            "wiki_username": "  Exemple__Bibliothe\u0301caire ",
        },
    )
    librarian.refresh_from_db()
    assert librarian.wiki_username == "Exemple Bibliothécaire"  # NFC, spaces
