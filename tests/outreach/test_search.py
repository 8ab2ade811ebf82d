"""The search box: one text across libraries, librarians, meetups and campaigns, within what
the user may see (their permissions and their regions), in a fixed number of queries."""

import itertools
from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from campaigns.models import Campaign
from drives.models import Drive
from meetings.models import Meeting
from meetings.services import meetings_materialise
from outreach.search import MAX_TEXT_LENGTH, SEARCH_LIMIT, search
from tests.factories import (
    LibrarianFactory,
    LibraryFactory,
    MeetupSeriesFactory,
    RegionFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db


def _search(client, text):
    response = client.get(reverse("search"), {"q": text})
    assert response.status_code == 200
    return response


def _one_off(title, library, days=10):
    start = timezone.now() + timedelta(days=days)
    return Meeting.objects.create(
        title=title, host_library=library, start=start, end=start + timedelta(hours=1)
    )


def test_a_library_is_found_by_its_name_and_by_its_city(coordinator_client):
    morges = LibraryFactory(name="Bibliothèque municipale", city="Morges")
    LibraryFactory(name="Médiathèque Valais", city="Sion")

    by_name = _search(coordinator_client, "MUNICIPALE").context["results"]
    by_city = _search(coordinator_client, "morg").context["results"]

    assert by_name.libraries == [morges]
    assert by_city.libraries == [morges]
    page = _search(coordinator_client, "morg").content.decode()
    assert f'href="{morges.get_absolute_url()}"' in page
    assert "Médiathèque Valais" not in page


def test_a_library_is_found_without_its_accents_through_its_slug(coordinator_client):
    geneva = LibraryFactory(name="Bibliothèque de Genève", slug="bibliotheque-de-geneve")

    assert _search(coordinator_client, "Geneve").context["results"].libraries == [geneva]


def test_a_coordinator_finds_a_librarian_by_email(coordinator_client):
    anne = LibrarianFactory(name="Anne Dupont", email="anne.dupont@morges.example.org")

    response = _search(coordinator_client, "ANNE.DUPONT@")

    assert response.context["results"].librarians == [anne]
    page = response.content.decode()
    assert reverse("libraries:librarian-update", args=[anne.pk]) in page
    assert anne.library.name in page  # the line of context


def test_librarians_are_hidden_from_a_user_who_may_see_libraries_but_not_librarians(client):
    anne = LibrarianFactory(name="Anne Dupont", email="anne.dupont@morges.example.org")
    user = UserFactory(username="reader")
    user.user_permissions.add(Permission.objects.get(codename="view_library"))
    anne.library.region.ambassadors.add(user)  # the library is in a region they see
    client.force_login(user)

    by_name = _search(client, "Anne Dupont")
    by_email = _search(client, "anne.dupont@")

    for response in (by_name, by_email):
        results = response.context["results"]
        assert "librarians" not in results.kinds
        assert results.librarians == []
        # Nor is the library found through its librarian: that would tell where she works.
        assert results.libraries == []
        page = response.content.decode()
        assert "anne.dupont@morges.example.org" not in page
        assert reverse("libraries:librarian-update", args=[anne.pk]) not in page
    # The library itself is theirs to find.
    assert _search(client, anne.library.name).context["results"].libraries == [anne.library]


def test_meetup_series_one_off_meetings_campaigns_and_drives_are_found(coordinator_client):
    library = LibraryFactory(name="Bibliothèque de Morges", city="Morges")
    series = MeetupSeriesFactory(title="Wikipermanence de Morges", host_library=library)
    meetings_materialise(series=series)
    office_hour = _one_off("#1lib1ref office hour", library)
    drive = Drive.objects.create(title="#1lib1ref 2026", hashtags="#1lib1ref", wikis="frwiki")
    invitation = Campaign.objects.create(title="Wikipermanences à Morges")

    by_title = _search(coordinator_client, "wikipermanence").context["results"]
    by_host = _search(coordinator_client, "Morges").context["results"]
    by_hashtag = _search(coordinator_client, "1lib1ref")

    assert by_title.series == [series]
    assert by_title.campaigns == [invitation]
    assert by_host.series == [series]
    assert by_hashtag.context["results"].meetings == [office_hour]
    assert by_hashtag.context["results"].drives == [drive]
    page = by_hashtag.content.decode()
    assert reverse("meetings:meeting-public", args=[office_hour.pk]) in page
    assert drive.get_absolute_url() in page
    series_page = _search(coordinator_client, "wikipermanence").content.decode()
    assert series.get_absolute_url() in series_page
    assert "Next meeting" in series_page  # its next date, as context


def test_an_ambassador_never_sees_another_regions_rows(client, make_ambassador):
    mine, other = RegionFactory(name="Vaud"), RegionFactory(name="Valais")
    rows = {}
    for region, city in ((mine, "Morges"), (other, "Sion")):
        library = LibraryFactory(name=f"Zeta library {city}", city=city, region=region)
        LibrarianFactory(name=f"Zeta librarian {city}", library=library)
        MeetupSeriesFactory(title=f"Zeta meetup {city}", host_library=library)
        _one_off(f"Zeta office hour {city}", library)
        campaign = Campaign.objects.create(title=f"Zeta campaign {city}")
        campaign.regions.add(region)
        rows[city] = library
    client.force_login(make_ambassador(mine))

    response = _search(client, "zeta")

    results = response.context["results"]
    assert results.libraries == [rows["Morges"]]
    assert [row.name for row in results.librarians] == ["Zeta librarian Morges"]
    assert [row.title for row in results.series] == ["Zeta meetup Morges"]
    assert [row.title for row in results.meetings] == ["Zeta office hour Morges"]
    assert [row.title for row in results.campaigns] == ["Zeta campaign Morges"]
    assert results.total == 5
    assert "Sion" not in response.content.decode()
    # Looking for the other region by name finds nothing either.
    assert _search(client, "Sion").context["results"].total == 0


def test_an_empty_query_searches_nothing_and_says_what_can_be_found(coordinator_client):
    LibraryFactory(name="Bibliothèque de Morges")

    for text in ("", "   "):
        response = _search(coordinator_client, text)
        assert response.context["results"].total == 0
        page = response.content.decode()
        assert "Type a name, a city" in page
        assert "Nothing matches" not in page
    assert "Type a name" in coordinator_client.get(reverse("search")).content.decode()


def test_a_query_that_matches_nothing_says_so(coordinator_client):
    LibraryFactory(name="Bibliothèque de Morges")

    page = _search(coordinator_client, "Xylophone").content.decode()

    assert "Nothing matches “Xylophone”." in page


@pytest.mark.parametrize(
    "text",
    ["%", "_", "%%", "\\", "'; DROP TABLE libraries_library; --", "a\x00b", "x" * 5000],
)
def test_odd_input_is_searched_literally_and_never_crashes(coordinator_client, text):
    LibrarianFactory(name="Anne Dupont", library=LibraryFactory(name="Bibliothèque de Morges"))

    results = _search(coordinator_client, text).context["results"]

    # "%" and "_" are not wildcards: nothing here contains them.
    assert results.total == 0
    assert len(results.text) <= MAX_TEXT_LENGTH


def test_unicode_is_searched_as_typed(coordinator_client):
    zurich = LibraryFactory(name="Pestalozzi-Bibliothek Zürich", city="Zürich")
    LibraryFactory(name="Bibliothèque 日本 🙂", city="Lausanne")

    assert _search(coordinator_client, "Zürich").context["results"].libraries == [zurich]
    assert _search(coordinator_client, "zurich").context["results"].libraries == []  # no slug
    assert _search(coordinator_client, "日本 🙂").context["results"].libraries_total == 1


def test_each_kind_shows_a_limited_number_with_a_link_to_see_them_all(coordinator_client):
    region = RegionFactory()
    for n in range(SEARCH_LIMIT + 2):
        library = LibraryFactory(name=f"Bibliothèque Zeta {n:02}", region=region)
        MeetupSeriesFactory(title=f"Zeta meetup {n:02}", host_library=library)

    response = _search(coordinator_client, "zeta")

    results = response.context["results"]
    assert len(results.libraries) == SEARCH_LIMIT
    assert results.libraries_total == SEARCH_LIMIT + 2
    assert results.series_total == SEARCH_LIMIT + 2
    page = response.content.decode()
    # The library list filters by the same q; the series list has no search of its own.
    assert f'href="{reverse("libraries:library-list")}?q=zeta"' in page
    assert "see all 12" in page
    assert "And 2 more" in page


def test_the_search_runs_a_fixed_number_of_queries_whatever_the_number_of_rows(
    coordinator_client,
):
    region = RegionFactory()
    numbers = itertools.count()

    def add_rows(count):
        for _ in range(count):
            library = LibraryFactory(name=f"Zeta library {next(numbers)}", region=region)
            LibrarianFactory(name="Zeta librarian", library=library)
            series = MeetupSeriesFactory(title="Zeta meetup", host_library=library)
            meetings_materialise(series=series)
            _one_off("Zeta office hour", library)
            Campaign.objects.create(title="Zeta campaign").regions.add(region)

    def count_queries():
        with CaptureQueriesContext(connection) as queries:
            response = _search(coordinator_client, "zeta")
        return len(queries), response.context["results"]

    add_rows(2)
    few, small = count_queries()
    add_rows(4)
    many, large = count_queries()

    assert small.libraries_total == 2
    assert large.libraries_total == 6
    assert large.librarians_total == large.series_total == large.meetings_total == 6
    assert few == many


def test_the_selector_runs_one_query_per_kind(coordinator):
    LibraryFactory(name="Zeta library")
    coordinator.has_perm("libraries.view_library")  # permissions loaded, as the page does
    search(user=coordinator, text="warm up the region scope")

    with CaptureQueriesContext(connection) as queries:
        results = search(user=coordinator, text="zeta")

    assert len(results.kinds) == 6
    assert len(queries) == 6
    assert results.libraries_total == 1


def test_the_navbar_has_the_search_box_on_every_coordinator_page(coordinator_client):
    page = coordinator_client.get(reverse("dashboard")).content.decode()

    assert f'<form role="search" action="{reverse("search")}" method="get"' in page
    assert 'name="q"' in page
    assert '<label for="navbar-search-q" class="visually-hidden">Search</label>' in page


def test_the_navbar_keeps_the_query_on_the_search_page(coordinator_client):
    page = _search(coordinator_client, "Morges").content.decode()

    assert 'id="navbar-search-q" name="q"' in page
    assert page.count('value="Morges"') == 2  # the navbar's box and the page's


def test_public_pages_have_no_search_box_and_keep_the_meetups_link(client):
    page = client.get(reverse("meetings:public-list")).content.decode()

    assert 'role="search" action="/search/"' not in page
    assert f'href="{reverse("meetings:public-list")}"' in page
