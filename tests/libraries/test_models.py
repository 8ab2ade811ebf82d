import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError

from core.text import normalize_email
from libraries.models import Library
from libraries.services import library_create, library_status_change
from tests.factories import LibrarianFactory, LibraryFactory, RegionFactory

pytestmark = pytest.mark.django_db


def test_two_librarians_cannot_share_an_email_whatever_its_case():
    LibrarianFactory(email="Anne.Rochat@bibliotheque.example.org")
    with pytest.raises(IntegrityError):
        LibrarianFactory(email="anne.rochat@BIBLIOTHEQUE.example.org")


def test_two_libraries_with_the_same_name_in_the_same_city_are_refused():
    region = RegionFactory()
    LibraryFactory(name="Mediatheque", city="Morges", region=region)
    with pytest.raises(IntegrityError):
        LibraryFactory(name="MEDIATHEQUE", city="morges", region=region)


def test_the_same_library_name_in_another_city_is_another_library():
    region = RegionFactory()
    LibraryFactory(name="Bibliothèque communale", city="Morges", region=region)
    LibraryFactory(name="Bibliothèque communale", city="Nyon", region=region)
    assert Library.objects.count() == 2


def test_a_region_refuses_a_time_zone_that_does_not_exist():
    region = RegionFactory.build(time_zone="Europe/Lausanne")
    with pytest.raises(ValidationError) as error:
        region.full_clean()
    assert "time_zone" in error.value.message_dict


def test_creating_a_library_opens_its_status_history(coordinator):
    library = library_create(
        name="Bibliothèque de Pully", city="Pully", region=RegionFactory(), created_by=coordinator
    )
    assert library.slug == "bibliotheque-de-pully-pully"
    (first,) = library.status_changes.all()
    assert (first.from_status, first.to_status, first.changed_by) == ("", "prospect", coordinator)


def test_slugs_stay_unique_when_names_collide():
    region = RegionFactory()
    first = library_create(name="Bibliothèque", city="Sion", region=region, languages="fr")
    LibraryFactory(slug="bibliotheque-sion-2", name="x", city="y", region=region)
    second = library_create(name="Bibliothèque", city="Sion ", region=region, languages="fr")
    assert first.slug == "bibliotheque-sion"
    assert second.slug == "bibliotheque-sion-3"


def test_a_status_change_records_who_when_and_why(coordinator):
    library = LibraryFactory()
    change = library_status_change(
        library=library, status="contacted", reason="Mail sent to the list", changed_by=coordinator
    )
    library.refresh_from_db()
    assert library.status == "contacted"
    assert library.status_changed_at == change.changed_at
    assert (change.from_status, change.to_status, change.reason) == (
        "prospect",
        "contacted",
        "Mail sent to the list",
    )


def test_changing_to_the_current_status_records_nothing():
    library = LibraryFactory(status="partner")
    assert library_status_change(library=library, status="partner", source="test") is None
    assert not library.status_changes.exists()


def test_libraries_are_found_by_any_of_their_languages():
    region = RegionFactory()
    bilingual = LibraryFactory(languages="de,fr", region=region)
    LibraryFactory(languages="fr", region=region)
    LibraryFactory(languages="it", region=region)
    assert set(Library.objects.speaking("de")) == {bilingual}
    assert Library.objects.speaking("fr").count() == 2
    assert not Library.objects.speaking("r").exists()


def test_email_domains_are_lower_cased_but_not_the_local_part():
    assert normalize_email("  Anne.Rochat@Bibliotheque.Example.ORG ") == (
        "Anne.Rochat@bibliotheque.example.org"
    )
