"""The import page (upload, preview, confirm) and the export, through the test client."""

import csv
import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from libraries.models import Librarian, Library
from tests.factories import LibrarianFactory, LibraryFactory, MailingListFactory

# Every test imports into the region of Vaud.
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("vaud")]

HEADER = "library,city,region,name,email,language\n"
GOOD = HEADER + (
    "Bibliothèque de Vallorbe,Vallorbe,Vaud,Anne Rochat,anne@vallorbe.example.org,fr\n"
    "Bibliothèque de Vallorbe,Vallorbe,Vaud,Marc Dubois,marc@vallorbe.example.org,fr\n"
)
BROKEN = GOOD + (
    "Bibliothèque de Romont,Romont,Atlantis,Luc Python,luc@romont.example.org,fr\n"
    "Bibliothèque de Cossonay,Cossonay,Vaud,Eva Meylan,not-an-email,fr\n"
)


def _upload(client, text, name="directory.csv", encoding="utf-8"):
    data = text.encode(encoding) if isinstance(text, str) else text
    return client.post(
        reverse("libraries:library-import"),
        {"file": SimpleUploadedFile(name, data, content_type="text/csv")},
    )


def test_the_import_page_documents_the_columns_and_offers_an_example(coordinator_client):
    page = coordinator_client.get(reverse("libraries:library-import")).content.decode()
    for column in ("library", "city", "region", "email", "mailing_lists", "consent_date"):
        assert f"<code>{column}</code>" in page
    example = coordinator_client.get(reverse("libraries:library-import-example"))
    assert example["Content-Type"].startswith("text/csv")
    assert b"library" in b"".join(example.streaming_content).splitlines()[0]


def test_uploading_a_good_file_previews_it_and_writes_nothing(coordinator_client):
    response = _upload(coordinator_client, GOOD)
    assert response.status_code == 200
    report = response.context["report"]
    assert (report.libraries_created, report.librarians_created) == (1, 2)
    assert not report.has_errors
    assert not Library.objects.exists()


def test_confirming_the_preview_imports_the_file(coordinator_client, coordinator):
    _upload(coordinator_client, GOOD)
    response = coordinator_client.post(reverse("libraries:library-import-confirm"), follow=True)
    assert response.redirect_chain[-1][0] == reverse("libraries:library-list")
    assert "New libraries: 1; libraries updated: 0; new librarians: 2" in str(
        list(response.context["messages"])[0]
    )
    library = Library.objects.get()
    assert library.librarians.count() == 2
    assert library.status_changes.get().changed_by == coordinator
    # The preview is used up: confirming again imports nothing more and says so.
    again = coordinator_client.post(reverse("libraries:library-import-confirm"), follow=True)
    assert "upload the file again" in str(list(again.context["messages"])[0])
    assert Librarian.objects.count() == 2


def test_a_broken_file_shows_each_error_with_its_line_and_column(coordinator_client):
    response = _upload(coordinator_client, BROKEN)
    page = response.content.decode()
    errors = {(e.line, e.column) for e in response.context["report"].errors}
    assert errors == {(4, "region"), (5, "email")}
    assert 'id="import-errors"' in page
    assert "Atlantis" in page or "region" in page


def test_with_errors_confirming_without_the_choice_writes_nothing(coordinator_client):
    _upload(coordinator_client, BROKEN)
    response = coordinator_client.post(reverse("libraries:library-import-confirm"))
    assert response.status_code == 200
    assert response.context["report"].has_errors
    assert not Library.objects.exists()


def test_choosing_to_import_only_the_valid_rows_writes_them(coordinator_client):
    _upload(coordinator_client, BROKEN)
    coordinator_client.post(reverse("libraries:library-import-confirm"), {"skip_invalid": "on"})
    assert list(Library.objects.values_list("city", flat=True)) == ["Vallorbe"]
    assert Librarian.objects.count() == 2


def test_a_file_that_is_not_utf8_is_refused_with_a_plain_message(coordinator_client):
    response = _upload(coordinator_client, GOOD.replace("è", "\xe8"), encoding="latin-1")
    assert response.status_code == 400
    assert "UTF-8" in response.context["file_error"]
    assert not Library.objects.exists()


def test_a_file_larger_than_the_limit_is_a_form_error(coordinator_client, settings):
    settings.IMPORT_MAX_BYTES = 100
    response = _upload(coordinator_client, GOOD * 5)
    assert response.status_code == 200
    assert "file" in response.context["form"].errors


def test_the_export_follows_the_list_filters_and_imports_back_unchanged(coordinator_client, vaud):
    partner = LibraryFactory(name="Bibliothèque de Morges", city="Morges", status="partner")
    partner.region = vaud
    partner.save()
    LibrarianFactory(library=partner, name="Anne Rochat", email="anne@morges.example.org")
    MailingListFactory(name="Biblio-Vaud").members.add(partner)
    LibraryFactory(name="Médiathèque de Nyon", city="Nyon", status="prospect", region=vaud)

    response = coordinator_client.get(reverse("libraries:library-export"), {"status": "partner"})
    assert response["Content-Disposition"].startswith("attachment;")
    content = b"".join(response.streaming_content).decode("utf-8")
    assert content.startswith("\ufeff")
    rows = list(csv.DictReader(io.StringIO(content.lstrip("\ufeff"))))
    assert [(r["library"], r["email"], r["mailing_lists"]) for r in rows] == [
        ("Bibliothèque de Morges", "anne@morges.example.org", "Biblio-Vaud")
    ]

    preview = _upload(coordinator_client, content.encode("utf-8")).context["report"]
    assert not preview.has_errors
    assert preview.rows_unchanged == 1
    assert preview.libraries_updated == preview.librarians_updated == 0
