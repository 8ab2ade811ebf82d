"""The demo network that `make run` loads: believable, harmless, and loaded only once."""

from collections import Counter
from datetime import timedelta
from io import StringIO

import pytest
from django.apps import apps
from django.core.management import call_command
from django.db.models import Count, F
from django.db.models.functions import Lower
from django.utils import timezone

from libraries import demo as demo_module
from libraries.demo import LIBRARIES
from libraries.models import (
    ActivitySignal,
    Librarian,
    Library,
    LibraryStatusChange,
    MailingList,
    Region,
)
from tests.factories import LibraryFactory, RegionFactory

pytestmark = pytest.mark.django_db

# Kept free for the import example file, so that importing it after the demo adds libraries.
IMPORT_EXAMPLE_TOWNS = {"Vallorbe", "Cossonay", "Le Landeron", "Romont", "Saint-Maurice"}
IMPORT_EXAMPLE_TOWNS |= {"Saignelégier"}


def load_demo() -> str:
    out = StringIO()
    call_command("load_demo", stdout=out)
    return out.getvalue().strip()


@pytest.fixture
def demo(db) -> str:
    return load_demo()


def snapshot() -> dict[str, object]:
    """Every row of every table (many-to-many tables included), in primary-key order."""
    return {
        model._meta.label: list(model.objects.order_by("pk").values())
        for model in apps.get_models(include_auto_created=True)
    }


def test_the_demo_has_six_french_speaking_cantons_in_the_zurich_time_zone(demo):
    regions = Region.objects.order_by("slug")
    assert [r.slug for r in regions] == [
        "fribourg",
        "geneve",
        "jura",
        "neuchatel",
        "valais",
        "vaud",
    ]
    assert {r.name for r in regions} >= {"Genève", "Neuchâtel"}
    assert {(r.language, r.time_zone) for r in regions} == {("fr", "Europe/Zurich")}


def test_the_demo_has_about_sixty_libraries_and_a_hundred_and_fifty_librarians(demo):
    assert 55 <= Library.objects.count() <= 65
    assert 130 <= Librarian.objects.count() <= 170
    staff_sizes = Library.objects.annotate(n=Count("librarians")).values_list("n", flat=True)
    assert set(staff_sizes) <= {1, 2, 3, 4}
    assert Library.objects.filter(region__slug="jura").exists()


def test_only_libraries_of_bilingual_cantons_speak_german(demo):
    bilingual = Library.objects.filter(languages="de,fr")
    assert bilingual.exists()
    assert set(bilingual.values_list("region__slug", flat=True)) <= {"fribourg", "valais"}
    assert set(Library.objects.values_list("languages", flat=True)) == {"fr", "de,fr"}


def test_the_towns_of_the_import_example_are_left_free(demo):
    assert not Library.objects.filter(city__in=IMPORT_EXAMPLE_TOWNS).exists()
    assert not {spec.city for spec in LIBRARIES} & IMPORT_EXAMPLE_TOWNS


def test_the_four_mailing_lists_gather_the_libraries_of_their_regions(demo):
    lists = {ml.name: ml for ml in MailingList.objects.all()}
    assert set(lists) == {
        "BiblioRomandie",
        "Biblio-Vaud",
        "Lecture publique Genève",
        "Réseau Arc jurassien",
    }

    def member_regions(name: str) -> set[str]:
        return set(lists[name].members.values_list("region__slug", flat=True))

    assert lists["BiblioRomandie"].members.count() == Library.objects.count()
    assert lists["BiblioRomandie"].network == "Bibliothèques romandes"
    assert member_regions("Biblio-Vaud") == {"vaud"}
    assert (
        lists["Biblio-Vaud"].members.count() == Library.objects.filter(region__slug="vaud").count()
    )
    assert lists["Biblio-Vaud"].region.slug == "vaud"
    assert member_regions("Lecture publique Genève") == {"geneve"}
    assert lists["Lecture publique Genève"].region.slug == "geneve"
    assert member_regions("Réseau Arc jurassien") == {"neuchatel", "jura"}


def test_most_libraries_are_prospects_and_a_few_are_partners_or_dormant(demo):
    statuses = Counter(Library.objects.values_list("status", flat=True))
    assert set(statuses) == set(Library.Status.values)
    assert statuses["prospect"] == max(statuses.values())
    assert statuses["contacted"] > statuses["interested"] > statuses["partner"]
    assert 3 <= statuses["partner"] <= 8
    assert 1 <= statuses["dormant"] <= 4


def test_every_library_status_is_the_last_step_of_a_history_in_order(demo):
    now = timezone.now()
    for library in Library.objects.prefetch_related("status_changes"):
        steps = sorted(library.status_changes.all(), key=lambda change: change.pk)
        assert steps[0].from_status == "" and steps[0].to_status == "prospect"
        for before, after in zip(steps, steps[1:], strict=False):
            assert after.from_status == before.to_status
            assert after.changed_at > before.changed_at
            assert after.reason and after.source
        assert steps[-1].to_status == library.status
        assert steps[-1].changed_at == library.status_changed_at
        assert steps[-1].changed_at < now
        # The story spans about eighteen months.
        assert (now - steps[0].changed_at).days <= 560


def test_nothing_in_the_demo_happens_in_the_future(demo):
    now = timezone.now()
    assert not LibraryStatusChange.objects.filter(changed_at__gt=now).exists()
    assert not Library.objects.filter(status_changed_at__gt=now).exists()
    assert not ActivitySignal.objects.filter(occurred_at__gt=now).exists()
    assert not Librarian.objects.filter(unsubscribed_at__gt=now).exists()
    assert not Librarian.objects.filter(consent_at__gt=now.date()).exists()


def test_every_address_in_the_demo_is_under_example_org(demo):
    emails = [
        *Librarian.objects.values_list("email", flat=True),
        *MailingList.objects.values_list("posting_address", flat=True),
        *MailingList.objects.values_list("subscribed_as", flat=True),
    ]
    assert emails
    assert all(email.endswith(".example.org") for email in emails)
    websites = Library.objects.values_list("website", flat=True)
    assert all(".example.org/" in website for website in websites)


def test_no_librarian_email_is_used_twice_whatever_its_case(demo):
    emails = Counter(Librarian.objects.annotate(e=Lower("email")).values_list("e", flat=True))
    assert emails.most_common(1)[0][1] == 1
    names = Counter(Librarian.objects.values_list("name", flat=True))
    assert names.most_common(1)[0][1] == 1


def test_librarians_look_like_a_real_directory(demo):
    librarians = Librarian.objects.all()
    with_wiki = librarians.exclude(wiki_username="")
    assert 0.25 <= with_wiki.count() / librarians.count() <= 0.45
    assert set(with_wiki.values_list("home_wiki", flat=True)) <= {"frwiki", "dewiki"}
    assert not librarians.filter(consent_source="").exists()
    assert not librarians.filter(consent_at__isnull=True).exists()
    assert 1 <= librarians.filter(unsubscribed_at__isnull=False).count() <= 2
    assert (
        librarians.filter(role="responsable de la bibliothèque").count() == Library.objects.count()
    )


def test_signals_come_from_the_demo_and_follow_each_library_path(demo):
    signals = ActivitySignal.objects.all()
    # The demo's own, and those the demo meetups' attendance recorded ("meeting <id>").
    sources = set(signals.values_list("source", flat=True))
    assert "demo" in sources
    assert all(s == "demo" or s.startswith("meeting ") for s in sources)
    kinds = set(signals.values_list("kind", flat=True))
    assert kinds >= {
        "list_reply",
        "invitation_yes",
        "rsvp_yes",
        "attended",
        "hosted_meetup",
        "tagged_edit",
        "reference_added",
    }
    # Only partners (and those that were partners before going dormant) host meetups.
    hosts = Library.objects.filter(signals__kind="hosted_meetup").distinct()
    assert set(hosts.values_list("status", flat=True)) <= {"partner", "dormant"}
    assert (
        hosts.filter(status="partner").count() == Library.objects.filter(status="partner").count()
    )
    # Edits are made by librarians with a wiki account, at their own library.
    edits = signals.filter(kind__in=["tagged_edit", "reference_added"])
    assert not edits.filter(librarian__wiki_username="").exists()
    assert not edits.filter(librarian__isnull=True).exists()
    assert not signals.exclude(librarian=None).exclude(librarian__library=F("library")).exists()


def test_partners_and_interested_libraries_have_more_signals_than_prospects(demo):
    def average(status: str) -> float:
        libraries = Library.objects.filter(status=status).annotate(n=Count("signals"))
        return sum(lib.n for lib in libraries) / len(libraries)

    assert average("partner") > average("interested") > average("prospect")


def test_loading_twice_changes_nothing(demo):
    before = snapshot()
    assert load_demo() == "Demo data already loaded: nothing to do."
    after = snapshot()
    assert {label: len(rows) for label, rows in after.items()} == {
        label: len(rows) for label, rows in before.items()
    }
    assert after == before


def test_the_first_load_says_what_it_created(db):
    output = load_demo()
    assert output.startswith("Demo data loaded: created 6 regions, ")
    assert f"{Library.objects.count()} libraries" in output
    assert f"{Librarian.objects.count()} librarians" in output
    assert "4 mailing lists" in output
    assert f"{ActivitySignal.objects.count()} activity signals" in output


def test_a_library_already_in_the_directory_is_found_and_left_as_it_is(db):
    vaud = RegionFactory(slug="vaud", name="Vaud")
    # Same library, other case: the demo finds it the way the uniqueness constraint does.
    existing = LibraryFactory(
        name="médiathèque de renens", city="RENENS", region=vaud, status="contacted"
    )

    load_demo()

    renens = Library.objects.filter(city__iexact="renens")
    assert list(renens) == [existing]
    existing.refresh_from_db()
    assert existing.status == "contacted"
    assert not existing.status_changes.exists()
    assert not existing.signals.exists()
    # Its librarians are added all the same: they were missing.
    assert existing.librarians.exists()


def test_loading_again_weeks_later_still_creates_nothing(demo):
    before = snapshot()
    ctx = demo_module.DemoContext(now=timezone.now() + timedelta(days=45))
    demo_module.load(ctx)
    assert ctx.summary() == "Demo data already loaded: nothing to do."
    assert snapshot() == before
