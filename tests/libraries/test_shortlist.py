"""The shortlist: per region, the top libraries by score, why, and their most active people."""

import csv
import io

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse
from django.utils import timezone

from campaigns.audience import campaign_librarians
from campaigns.models import Campaign
from libraries import scoring
from libraries.models import Librarian, Library, LibraryScoreSnapshot, Region
from libraries.selectors import shortlist_build
from tests.factories import (
    ActivitySignalFactory,
    LibrarianFactory,
    LibraryFactory,
    RegionFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

URL = reverse("libraries:shortlist")


@pytest.fixture(autouse=True)
def score_settings(settings):
    settings.SCORE_WEIGHTS = {
        "list_reply": 1.0,
        "attended": 3.0,
        "tagged_edit": 1.0,
        "hosted_meetup": 8.0,
    }
    settings.SCORE_HALF_LIFE_DAYS = 180


def signal(library, kind, times=1, librarian=None):
    for _ in range(times):
        ActivitySignalFactory(library=library, kind=kind, librarian=librarian)


@pytest.fixture
def regions():
    vaud = RegionFactory(name="Vaud", slug="vaud")
    geneve = RegionFactory(name="Genève", slug="geneve")
    # Vaud: three libraries with signals, one without.
    lausanne = LibraryFactory(region=vaud, name="BCU Lausanne")
    anne = LibrarianFactory(library=lausanne, name="Anne")
    bruno = LibrarianFactory(library=lausanne, name="Bruno", shortlist_rank=4)
    carla = LibrarianFactory(library=lausanne, name="Carla")
    LibrarianFactory(library=lausanne, name="Dora")
    LibrarianFactory(library=lausanne, name="Eve", unsubscribed_at=timezone.now())
    signal(lausanne, "hosted_meetup", 2)
    signal(lausanne, "attended", 3, librarian=anne)
    signal(lausanne, "tagged_edit", 2, librarian=bruno)
    signal(lausanne, "list_reply", 1, librarian=carla)
    signal(lausanne, "tagged_edit", 5, librarian=Librarian.objects.get(name="Eve"))
    morges = LibraryFactory(region=vaud, name="Bibliothèque de Morges")
    signal(morges, "list_reply", 4)
    LibrarianFactory(library=morges, name="Fanny")
    nyon = LibraryFactory(region=vaud, name="Bibliothèque de Nyon")
    signal(nyon, "attended", 1)
    LibraryFactory(region=vaud, name="Bibliothèque silencieuse")
    # Genève: one library.
    geneve_library = LibraryFactory(region=geneve, name="Bibliothèque de Genève")
    signal(geneve_library, "tagged_edit", 2, librarian=LibrarianFactory(library=geneve_library))
    scoring.scores_refresh()
    return {
        "vaud": vaud,
        "geneve": geneve,
        "lausanne": lausanne,
        "morges": morges,
        "nyon": nyon,
        "geneve_library": geneve_library,
    }


def test_the_shortlist_gives_each_region_its_top_libraries_by_score(regions, coordinator):
    shortlist = shortlist_build(user=coordinator)
    assert [group.region.name for group in shortlist] == ["Genève", "Vaud"]
    vaud = shortlist.regions[1]
    assert [entry.library.name for entry in vaud.libraries] == [
        "BCU Lausanne",
        "Bibliothèque de Morges",
        "Bibliothèque de Nyon",
    ]
    assert [entry.position for entry in vaud.libraries] == [1, 2, 3]
    assert [entry.library.name for entry in shortlist.regions[0].libraries] == [
        "Bibliothèque de Genève"
    ]


def test_the_number_per_region_is_a_parameter(regions, coordinator):
    shortlist = shortlist_build(user=coordinator, per_region=2)
    assert [len(group.libraries) for group in shortlist] == [1, 2]


def test_the_reason_is_the_two_kinds_that_contribute_most(regions, coordinator):
    lausanne = shortlist_build(user=coordinator).regions[1].libraries[0]
    assert [reason.kind for reason in lausanne.reasons] == ["hosted_meetup", "attended"]
    assert [reason.contribution for reason in lausanne.reasons] == pytest.approx(
        [16.0, 9.0], rel=1e-3
    )
    assert lausanne.reason_text.startswith("Hosted a meetup (16.0); Attended a meetup (9.0)")


def test_the_most_active_reachable_librarians_come_first_then_by_hand_rank(regions, coordinator):
    lausanne, morges, _ = shortlist_build(user=coordinator).regions[1].libraries
    # Eve made the most edits, but unsubscribed; Dora did nothing.
    assert [person.librarian.name for person in lausanne.librarians] == ["Anne", "Bruno", "Carla"]
    assert [person.activity for person in lausanne.librarians] == pytest.approx(
        [9.0, 2.0, 1.0], rel=1e-3
    )
    # Morges' signals name nobody: its librarian is still the person to write to.
    assert [(p.librarian.name, p.activity) for p in morges.librarians] == [("Fanny", 0.0)]


def test_the_shortlist_page_shows_regions_libraries_reasons_and_librarians(
    coordinator_client, regions
):
    response = coordinator_client.get(URL)
    assert response.status_code == 200
    assert response.templates[0].name == "libraries/shortlist.html"
    page = response.content.decode()
    for text in ("Vaud", "Genève", "BCU Lausanne", "Hosted a meetup", "Anne", "rank 4"):
        assert text in page
    assert "Bibliothèque silencieuse" not in page
    assert "Eve" not in page


def test_the_shortlist_page_and_csv_read_a_fixed_number_of_queries(
    coordinator_client, regions, django_assert_num_queries
):
    export = reverse("libraries:shortlist-export")
    # 4 for the session, the user and their permissions, as on every page; then the
    # libraries, their score parts and their most active librarians, as the refresh stored
    # them; the page also reads when the scores were refreshed.
    with django_assert_num_queries(8):
        coordinator_client.get(URL)
    with django_assert_num_queries(7):
        coordinator_client.get(export)
    for i in range(12):
        region = RegionFactory(name=f"Region {i}")
        for _ in range(3):
            library = LibraryFactory(region=region)
            for k in range(3):
                signal(library, "attended", k + 1, librarian=LibrarianFactory(library=library))
    scoring.scores_refresh()
    with django_assert_num_queries(8) as queries:
        response = coordinator_client.get(URL)
    assert len(response.context["shortlist"].regions) == 14
    assert len(response.context["shortlist"].librarians()) == 12 * 3 * 3 + 5
    # The signals are the refresh's to read: the page reads what it stored.
    assert not [q for q in queries.captured_queries if "libraries_activitysignal" in q["sql"]]
    with django_assert_num_queries(7):
        coordinator_client.get(export)


def test_the_shortlist_shows_the_last_refresh_until_the_next(regions, coordinator):
    lausanne = regions["lausanne"]
    fanny = Librarian.objects.get(name="Fanny")
    signal(regions["morges"], "hosted_meetup", 4, librarian=fanny)  # 32: above Lausanne
    signal(lausanne, "story", 1, librarian=Librarian.objects.get(name="Dora"))

    morges = shortlist_build(user=coordinator).regions[1].libraries[1]
    assert [reason.kind for reason in morges.reasons] == ["list_reply"]
    assert [(p.librarian.name, p.activity) for p in morges.librarians] == [("Fanny", 0.0)]

    scoring.scores_refresh()
    vaud = shortlist_build(user=coordinator).regions[1]
    assert [entry.library.name for entry in vaud.libraries][:2] == [
        "Bibliothèque de Morges",
        "BCU Lausanne",
    ]
    morges = vaud.libraries[0]
    assert [reason.kind for reason in morges.reasons] == ["hosted_meetup", "list_reply"]
    assert [p.librarian.name for p in morges.librarians] == ["Fanny"]
    assert morges.librarians[0].activity == pytest.approx(32.0, rel=1e-3)
    # A kind that weighs nothing is no reason, and its signals make nobody more active.
    assert [reason.kind for reason in vaud.libraries[1].reasons] == ["hosted_meetup", "attended"]
    assert "Dora" not in [p.librarian.name for p in vaud.libraries[1].librarians]


def test_librarians_without_activity_come_by_hand_rank_then_by_name(coordinator):
    library = LibraryFactory(name="Bibliothèque de Vevey")
    signal(library, "attended")
    for name, rank in (("Zoé", None), ("Yann", 2), ("Alice", None), ("Xavier", 1)):
        LibrarianFactory(library=library, name=name, shortlist_rank=rank)
    scoring.scores_refresh()
    (entry,) = shortlist_build(user=coordinator).regions[0].libraries
    assert [person.librarian.name for person in entry.librarians] == ["Xavier", "Yann", "Alice"]


def test_the_shortlist_exports_one_row_per_librarian(coordinator_client, regions):
    response = coordinator_client.get(reverse("libraries:shortlist-export"), {"n": 2})
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert "attachment" in response["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert rows[0] == [
        "region",
        "library",
        "score",
        "reason",
        "librarian",
        "email",
        "activity",
        "shortlist rank",
    ]
    body = [(row[0], row[1], row[4]) for row in rows[1:]]
    assert body == [
        ("Genève", "Bibliothèque de Genève", body[0][2]),
        ("Vaud", "BCU Lausanne", "Anne"),
        ("Vaud", "BCU Lausanne", "Bruno"),
        ("Vaud", "BCU Lausanne", "Carla"),
        ("Vaud", "Bibliothèque de Morges", "Fanny"),
    ]
    anne = rows[2]
    # 2 meetups, 3 attendances, 8 edits (Eve's count for the library): 16 + 9 + 8.
    assert float(anne[2]) == pytest.approx(33.0, rel=1e-2)
    assert anne[3].startswith("Hosted a meetup")
    assert anne[5] == Librarian.objects.get(name="Anne").email
    assert float(anne[6]) == pytest.approx(9.0, rel=1e-2)
    assert rows[3][7] == "4"  # Bruno's hand rank


def test_a_library_without_reachable_librarians_gets_one_csv_row(coordinator_client, regions):
    rows = list(
        csv.reader(
            io.StringIO(
                coordinator_client.get(reverse("libraries:shortlist-export")).content.decode(
                    "utf-8-sig"
                )
            )
        )
    )
    nyon = [row for row in rows if row[1] == "Bibliothèque de Nyon"]
    assert len(nyon) == 1 and nyon[0][4:] == ["", "", "", ""]


def test_saving_ranks_ranks_the_librarians_shown_in_order_and_clears_the_others(
    coordinator_client, regions
):
    outsider = LibrarianFactory(name="Outsider", shortlist_rank=1)
    response = coordinator_client.post(reverse("libraries:shortlist-ranks"), {"n": 10})
    assert response.status_code == 302
    assert response["Location"] == f"{URL}?n=10"
    ranked = list(
        Librarian.objects.filter(shortlist_rank__isnull=False)
        .order_by("shortlist_rank")
        .values_list("name", "shortlist_rank")
    )
    geneve_name = regions["geneve_library"].librarians.get().name
    assert ranked == [(geneve_name, 1), ("Anne", 2), ("Bruno", 3), ("Carla", 4), ("Fanny", 5)]
    outsider.refresh_from_db()
    assert outsider.shortlist_rank is None

    # The campaign filter "shortlisted librarians only" now reaches exactly them.
    campaign = Campaign.objects.create(title="Suivi", filter_librarians=True, shortlist_only=True)
    assert {librarian.name for librarian in campaign_librarians(campaign)} == {
        name for name, _ in ranked
    }


def test_using_the_shortlist_as_an_audience_makes_a_draft_campaign_to_its_librarians(
    coordinator_client, coordinator, regions
):
    response = coordinator_client.post(reverse("campaigns:shortlist-campaign"), {"n": 1})
    campaign = Campaign.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("campaigns:campaign-detail", args=[campaign.pk])
    assert campaign.status == Campaign.Status.DRAFT
    assert campaign.kind == Campaign.Kind.FOLLOW_UP
    assert campaign.title.startswith("Shortlist ")
    assert campaign.created_by == coordinator
    geneve_name = regions["geneve_library"].librarians.get().name
    assert {librarian.name for librarian in campaign.librarians.all()} == {
        geneve_name,
        "Anne",
        "Bruno",
        "Carla",
    }
    assert coordinator_client.get(response["Location"]).status_code == 200


def test_an_empty_shortlist_makes_no_campaign(coordinator_client):
    response = coordinator_client.post(reverse("campaigns:shortlist-campaign"))
    assert response.status_code == 302
    assert not Campaign.objects.exists()


def test_refresh_scores_now_recomputes_them(coordinator_client):
    library = LibraryFactory()
    signal(library, "attended")
    response = coordinator_client.post(reverse("libraries:scores-refresh"), follow=True)
    library.refresh_from_db()
    assert library.score == pytest.approx(3.0, rel=1e-3)
    assert LibraryScoreSnapshot.objects.filter(library=library).exists()
    assert "Scores refreshed for 1 libraries." in response.content.decode()


def test_the_shortlist_page_before_any_score_says_so(coordinator_client):
    page = coordinator_client.get(URL).content.decode()
    assert "Scores have not been computed yet." in page
    assert "Use as campaign audience" not in page


@pytest.mark.parametrize(
    "name,method",
    [
        ("libraries:shortlist", "get"),
        ("libraries:shortlist-export", "get"),
        ("libraries:shortlist-ranks", "post"),
        ("campaigns:shortlist-campaign", "post"),
        ("libraries:scores-refresh", "post"),
    ],
)
def test_anonymous_visitors_are_sent_to_log_in(client, name, method):
    response = getattr(client, method)(reverse(name))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


@pytest.mark.parametrize(
    "name,method",
    [
        ("libraries:shortlist", "get"),
        ("libraries:shortlist-export", "get"),
        ("libraries:shortlist-ranks", "post"),
        ("campaigns:shortlist-campaign", "post"),
        ("libraries:scores-refresh", "post"),
    ],
)
def test_users_without_the_permission_are_refused(client, regions, name, method):
    client.force_login(UserFactory(username="someone"))
    assert getattr(client, method)(reverse(name)).status_code == 403
    assert not Campaign.objects.exists()
    assert not Librarian.objects.filter(name="Anne", shortlist_rank__isnull=False).exists()


def test_a_reader_sees_the_shortlist_but_cannot_write_from_it(client, regions):
    reader = UserFactory(username="reader")
    reader.user_permissions.add(*Permission.objects.filter(codename="view_library"))
    reader.ambassador_regions.set(Region.objects.all())
    client.force_login(reader)
    page = client.get(URL).content.decode()
    assert "BCU Lausanne" in page
    assert "Save ranks</button>" not in page and "Refresh scores now</button>" not in page
    assert "Use as campaign audience</button>" not in page
    assert client.post(reverse("libraries:shortlist-ranks")).status_code == 403
    assert client.post(reverse("campaigns:shortlist-campaign")).status_code == 403
    # The CSV carries email addresses: it needs the librarians' view permission too.
    assert client.get(reverse("libraries:shortlist-export")).status_code == 403


def test_the_demo_data_comes_with_scores_and_a_shortlist(coordinator_client):
    from django.core.management import call_command

    call_command("load_demo", stdout=io.StringIO())
    assert not Library.objects.filter(score_base__isnull=True).exists()
    response = coordinator_client.get(URL)
    assert response.context["shortlist"].regions
    assert response.context["shortlist"].librarians()
