"""The CSV import and export service (libraries.imports), against the database."""

import csv
import io
from datetime import date

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from libraries import imports
from libraries.imports import (
    COLUMN_NAMES,
    EXAMPLE_PATH,
    ImportFileError,
    decode_upload,
    libraries_export_rows,
    libraries_import,
)
from libraries.models import Librarian, Library, LibraryStatusChange, MailingList
from tests.factories import LibrarianFactory, LibraryFactory, MailingListFactory, RegionFactory

pytestmark = pytest.mark.django_db

ANNE = {
    "library": "Bibliothèque de Vallorbe",
    "city": "Vallorbe",
    "region": "Vaud",
    "name": "Anne Rochat",
    "email": "anne@vallorbe.example.org",
}
MARC = {**ANNE, "name": "Marc Dubois", "email": "marc@vallorbe.example.org"}
SOPHIE = {
    "library": "Bibliothèque de la Venoge",
    "city": "Cossonay",
    "region": "Vaud",
    "name": "Sophie Favre",
    "email": "sophie@venoge.example.org",
}


def csv_text(*rows, delimiter=",", header=COLUMN_NAMES, lineterminator="\n"):
    """A CSV file with ``header`` and one line per dict of ``rows`` (missing cells empty)."""
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter, lineterminator=lineterminator)
    writer.writerow(header)
    for row in rows:
        writer.writerow([row.get(column, "") for column in header])
    return out.getvalue()


def errors_of(report):
    return [(error.line, error.column) for error in report.errors]


def export_text(libraries=None):
    out = io.StringIO()
    csv.writer(out).writerows(libraries_export_rows(libraries or Library.objects.all()))
    return out.getvalue()


@pytest.fixture
def biblio_vaud(db):
    return MailingListFactory(name="Biblio-Vaud", slug="biblio-vaud")


# A good file --------------------------------------------------------------------------------


def test_a_good_file_creates_libraries_librarians_and_memberships(vaud, biblio_vaud, coordinator):
    text = csv_text(
        {
            **ANNE,
            "address": "Rue des Forgerons 7, 1337 Vallorbe",
            "website": "www.vallorbe.example.org",
            "library_languages": "fr, de",
            "status": "contacted",
            "mailing_lists": "Biblio-Vaud",
            "email": "Anne.Rochat@Vallorbe.EXAMPLE.org",
            "role": "Directrice",
            "language": "de",
            "wiki_username": "Anne Rochat",
            "home_wiki": "frwiki",
            "consent_source": "Annuaire cantonal",
            "consent_date": "12.02.2024",
        },
        MARC,
        {"library": "Bibliothèque de la Venoge", "city": "Cossonay", "region": "vaud"},
    )

    report = libraries_import(text=text, imported_by=coordinator)

    assert report.written and not report.has_errors and not report.dry_run
    assert (report.libraries_created, report.librarians_created) == (2, 2)
    assert (report.memberships_added, report.rows_unchanged) == (1, 0)
    assert [row.actions for row in report.rows] == [
        ["new library", "added to list Biblio-Vaud", "new librarian"],
        ["new librarian"],
        ["new library"],
    ]
    vallorbe = Library.objects.get(city="Vallorbe")
    assert vallorbe.address == "Rue des Forgerons 7, 1337 Vallorbe"
    assert vallorbe.website == "https://www.vallorbe.example.org"
    assert (vallorbe.languages, vallorbe.status, vallorbe.region) == ("de,fr", "contacted", vaud)
    assert list(vallorbe.mailing_lists.all()) == [biblio_vaud]
    first = vallorbe.status_changes.get()
    assert (first.to_status, first.source, first.changed_by) == ("contacted", "import", coordinator)
    anne = Librarian.objects.get(name="Anne Rochat")
    # The domain is lower-cased, the local part keeps its case (core.text.normalize_email).
    assert anne.email == "Anne.Rochat@vallorbe.example.org"
    assert (anne.role, anne.language, anne.home_wiki) == ("Directrice", "de", "frwiki")
    assert anne.consent_at == date(2024, 2, 12)
    # Empty cells of a new row take the model's defaults, or the region's language.
    venoge = Library.objects.get(city="Cossonay")
    assert (venoge.status, venoge.languages, venoge.address) == ("prospect", "fr", "")
    assert Librarian.objects.get(name="Marc Dubois").language == "fr"


def test_a_semicolon_file_imports_like_a_comma_file_and_says_so(vaud, biblio_vaud):
    text = csv_text(
        {**ANNE, "address": "Rue du Lac 1; 1337 Vallorbe", "mailing_lists": "Biblio-Vaud"},
        MARC,
        delimiter=";",
    )
    assert text.splitlines()[0].count(";") == len(COLUMN_NAMES) - 1

    report = libraries_import(text=text)

    assert not report.has_errors
    assert (report.libraries_created, report.librarians_created) == (1, 2)
    assert any("semicolons" in warning for warning in report.warnings)
    assert Library.objects.get().address == "Rue du Lac 1; 1337 Vallorbe"


def test_a_file_with_a_bom_and_crlf_line_endings_imports(vaud):
    data = "\ufeff".encode() + csv_text(ANNE, MARC, lineterminator="\r\n").encode()

    report = libraries_import(text=decode_upload(data))

    assert not report.has_errors
    assert [row.line for row in report.rows] == [2, 3]
    assert Librarian.objects.count() == 2
    assert Library.objects.get().name == "Bibliothèque de Vallorbe"


def test_a_quoted_newline_keeps_the_cell_whole_and_the_line_numbers_right(vaud):
    text = (
        "library,city,region,address,name,email\r\n"
        'Bibliothèque de Vallorbe,Vallorbe,Vaud,"Rue des Forgerons 7\r\n'
        'Case postale 12, 1337 Vallorbe",Anne Rochat,anne@vallorbe.example.org\r\n'
        "\r\n"
        "Bibliothèque de Vallorbe,Vallorbe,Atlantis,,Marc Dubois,marc@vallorbe.example.org\r\n"
        "Bibliothèque de Vallorbe,Vallorbe,Vaud,,Eva Meylan,not-an-email\r\n"
    )

    report = libraries_import(text=text)

    # Line 2 spans two lines and line 4 is blank: the next records start on lines 5 and 6.
    assert [row.line for row in report.rows] == [2, 5, 6]
    assert errors_of(report) == [(5, "region"), (6, "email")]
    libraries_import(text=text, skip_invalid=True)
    assert Library.objects.get().address == "Rue des Forgerons 7\nCase postale 12, 1337 Vallorbe"


def test_blank_lines_trailing_empty_columns_and_header_spelling_are_tolerated(vaud):
    text = (
        " Library ;CITY;Region;Mailing lists;EMAIL;Name;Notes;;\n"
        ";;;;;;;;\n"
        "Bibliothèque de Vallorbe;Vallorbe;Vaud;;anne@vallorbe.example.org;Anne Rochat;x;;\n"
        "\n"
    )

    report = libraries_import(text=text)

    assert not report.has_errors
    assert report.librarians_created == 1
    assert any("Notes" in warning and "ignored" in warning for warning in report.warnings)


def test_a_region_is_found_by_its_name_or_its_slug_whatever_the_case_and_accents(db):
    geneve = RegionFactory(name="Genève", slug="geneve")
    rows = [
        {"library": f"Bibliothèque {n}", "city": "Genève", "region": region}
        for n, region in enumerate(["Genève", "GENÈVE", "geneve", "Geneve"])
    ]

    report = libraries_import(text=csv_text(*rows))

    assert not report.has_errors
    assert set(Library.objects.values_list("region", flat=True)) == {geneve.pk}


@pytest.mark.parametrize("written", ["2024-03-31", "31.03.2024", "31/03/2024", "2024-3-31"])
def test_a_consent_date_is_read_in_each_accepted_format(vaud, written):
    libraries_import(text=csv_text({**ANNE, "consent_date": written}))
    assert Librarian.objects.get().consent_at == date(2024, 3, 31)


@pytest.mark.parametrize("written", ["partner", "Partner", " PARTNER "])
def test_a_status_is_read_as_its_value_or_its_english_label(vaud, written):
    report = libraries_import(text=csv_text({**ANNE, "status": written}))
    assert not report.has_errors
    assert Library.objects.get().status == "partner"


@pytest.mark.parametrize(
    "written",
    [
        "Biblio-Vaud, Lecture, publique",
        "biblio-vaud;lecture, publique",
        "BIBLIO-VAUD | lecture, PUBLIQUE",
        "Lecture, publique;Biblio-Vaud;",
    ],
)
def test_mailing_lists_are_separated_by_commas_semicolons_or_bars(vaud, written):
    biblio_vaud = MailingListFactory(name="Biblio-Vaud")
    # A list whose name holds a comma is still one list.
    lecture = MailingListFactory(name="Lecture, publique")

    report = libraries_import(text=csv_text({**ANNE, "mailing_lists": written}))

    assert not report.has_errors, report.errors
    assert set(Library.objects.get().mailing_lists.all()) == {biblio_vaud, lecture}
    assert report.memberships_added == 2


def test_a_row_without_librarian_columns_describes_a_library_alone(vaud):
    report = libraries_import(text=csv_text({**ANNE, "name": "", "email": ""}))

    assert not report.has_errors
    assert report.rows[0].actions == ["new library"]
    assert Library.objects.count() == 1
    assert not Librarian.objects.exists()


# Broken rows --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cells", "column", "words"),
    [
        ({"library": ""}, "library", "missing"),
        ({"city": ""}, "city", "missing"),
        ({"region": ""}, "region", "missing"),
        ({"email": "", "role": "Directrice"}, "email", "missing"),
        ({"email": "anne.vallorbe.example.org"}, "email", "not a valid email"),
        ({"email": "anne@vallorbe.example.org\nBcc: x@y.org"}, "email", "not a valid email"),
        ({"region": "Atlantis"}, "region", "Unknown region “Atlantis”"),
        ({"mailing_lists": "Biblio-Vaud, Biblio-Mars"}, "mailing_lists", "“Biblio-Mars”"),
        ({"library_languages": "fr, xx"}, "library_languages", "Unknown language code “xx”"),
        ({"language": "french"}, "language", "Unknown language code “french”"),
        ({"status": "friend"}, "status", "Unknown status “friend”"),
        ({"website": "not a website"}, "website", "not a valid web address"),
        ({"website": "ftp://files.example.org"}, "website", "not a valid web address"),
        ({"consent_date": "31.02.2024"}, "consent_date", "not a date"),
        ({"consent_date": "March 2024"}, "consent_date", "not a date"),
        ({"name": ""}, "name", "new librarian"),
        ({"library": "B" * 201}, "library", "at most 200 characters"),
        ({"home_wiki": "w" * 51}, "home_wiki", "at most 50 characters"),
    ],
)
def test_each_broken_row_is_reported_with_its_line_column_and_reason(
    vaud, biblio_vaud, cells, column, words
):
    report = libraries_import(text=csv_text(ANNE, MARC, {**SOPHIE, **cells}))

    assert errors_of(report) == [(4, column)]
    assert words in report.errors[0].message
    assert (report.valid_rows, report.invalid_rows, report.total_rows) == (2, 1, 3)
    assert not report.written
    assert not Library.objects.exists()


def test_a_row_with_more_values_than_columns_is_reported_as_a_whole(vaud):
    text = csv_text(ANNE) + "Bibliothèque de Cossonay,Cossonay,Vaud" + "," * 16 + "stray\n"

    report = libraries_import(text=text)

    assert errors_of(report) == [(3, "")]
    assert "quotes" in report.errors[0].message


def test_a_duplicate_email_is_reported_on_its_second_line(vaud):
    twice = {**SOPHIE, "email": "ANNE@vallorbe.example.org"}

    report = libraries_import(text=csv_text(ANNE, MARC, twice))

    assert errors_of(report) == [(4, "email")]
    assert "already on line 2" in report.errors[0].message


def test_conflicting_values_for_one_library_are_reported_on_the_later_row(vaud):
    RegionFactory(name="Valais", slug="valais")
    text = csv_text(
        {**ANNE, "address": "Rue A 1", "website": "vallorbe.example.org"},
        # Same library whatever the case; the same value written differently is no conflict.
        {
            **MARC,
            "library": " BIBLIOTHÈQUE  DE VALLORBE",
            "website": "https://vallorbe.example.org",
        },
        {**MARC, "email": "eva@vallorbe.example.org", "address": "Rue B 2", "region": "Valais"},
        {**MARC, "email": "luc@vallorbe.example.org", "library_languages": "de", "status": ""},
    )

    report = libraries_import(text=text)

    assert errors_of(report) == [(4, "region"), (4, "address")]
    assert "Line 2" in report.errors[1].message and "Rue A 1" in report.errors[1].message
    assert report.rows[3].errors == []


# Writing or not -----------------------------------------------------------------------------


def test_with_any_error_nothing_is_written_but_the_valid_rows_are_still_counted(vaud):
    report = libraries_import(text=csv_text(ANNE, MARC, {**SOPHIE, "region": "Atlantis"}))

    assert report.has_errors and not report.written
    # What importing the valid rows would do, for the preview.
    assert (report.libraries_created, report.librarians_created) == (1, 2)
    assert not Library.objects.exists()
    assert not Librarian.objects.exists()
    assert not LibraryStatusChange.objects.exists()


def test_skipping_invalid_rows_writes_exactly_the_valid_ones(vaud):
    text = csv_text(
        ANNE,
        {**MARC, "email": "marc@"},
        SOPHIE,
        {**SOPHIE, "email": "eva@venoge.example.org", "region": "Atlantis"},
    )

    report = libraries_import(text=text, skip_invalid=True)

    assert report.written and report.has_errors
    assert errors_of(report) == [(3, "email"), (5, "region")]
    assert [row.actions for row in report.rows if not row.errors] == [
        ["new library", "new librarian"],
        ["new library", "new librarian"],
    ]
    assert set(Librarian.objects.values_list("email", flat=True)) == {
        ANNE["email"],
        SOPHIE["email"],
    }
    assert Library.objects.count() == 2


def test_skipping_invalid_rows_when_none_is_valid_writes_nothing(vaud):
    report = libraries_import(text=csv_text({**ANNE, "region": "Atlantis"}), skip_invalid=True)
    assert not report.written


def test_a_dry_run_reports_what_the_import_will_do_and_writes_nothing(vaud, biblio_vaud):
    existing = LibraryFactory(name="Bibliothèque de la Venoge", city="Cossonay", region=vaud)
    text = csv_text(
        {**ANNE, "mailing_lists": "Biblio-Vaud"},
        MARC,
        {**SOPHIE, "status": "interested", "address": "Place du Marché 2"},
    )

    dry = libraries_import(text=text, dry_run=True)

    assert dry.dry_run and not dry.written
    assert Library.objects.get() == existing
    assert not Librarian.objects.exists()
    assert not MailingList.members.through.objects.exists()
    existing.refresh_from_db()
    assert existing.status == "prospect"

    real = libraries_import(text=text)

    assert real.written
    counts = [
        "libraries_created",
        "libraries_updated",
        "librarians_created",
        "librarians_updated",
        "memberships_added",
        "rows_unchanged",
    ]
    assert [getattr(dry, name) for name in counts] == [getattr(real, name) for name in counts]
    assert [getattr(real, name) for name in counts] == [1, 1, 3, 0, 1, 0]
    assert [row.actions for row in dry.rows] == [row.actions for row in real.rows]


def test_reimporting_the_same_file_changes_nothing(vaud, biblio_vaud):
    text = csv_text(
        {**ANNE, "mailing_lists": "Biblio-Vaud", "status": "partner", "consent_date": "1.2.2024"},
        MARC,
        {**SOPHIE, "website": "venoge.example.org", "library_languages": "de,fr"},
    )
    libraries_import(text=text)
    before = {
        "libraries": list(Library.objects.order_by("pk").values()),
        "librarians": list(Librarian.objects.order_by("pk").values()),
        "history": LibraryStatusChange.objects.count(),
    }

    with CaptureQueriesContext(connection) as queries:
        report = libraries_import(text=text)

    assert report.written and not report.has_errors
    assert report.rows_unchanged == 3
    assert [row.actions for row in report.rows] == [["unchanged"]] * 3
    assert report.libraries_created == report.libraries_updated == 0
    assert report.librarians_created == report.librarians_updated == 0
    assert report.memberships_added == 0
    assert before == {
        "libraries": list(Library.objects.order_by("pk").values()),
        "librarians": list(Librarian.objects.order_by("pk").values()),
        "history": LibraryStatusChange.objects.count(),
    }
    statements = " ".join(query["sql"].split(" ", 1)[0].upper() for query in queries)
    assert "UPDATE" not in statements and "INSERT" not in statements


def test_a_changed_row_updates_in_place_and_never_duplicates(vaud):
    libraries_import(text=csv_text({**ANNE, "address": "Rue A 1", "role": "Bibliothécaire"}))
    library, anne = Library.objects.get(), Librarian.objects.get()
    updated_at = (library.updated_at, anne.updated_at)

    report = libraries_import(
        text=csv_text(
            {
                **ANNE,
                "library": "bibliothèque de VALLORBE",
                "email": "ANNE@vallorbe.example.org",
                "address": "Rue B 2",
                "role": "Directrice",
                "wiki_username": "Anne_R.",
            }
        )
    )

    assert report.rows[0].actions == ["library updated", "librarian updated"]
    assert (report.libraries_updated, report.librarians_updated) == (1, 1)
    assert Library.objects.get().pk == library.pk
    assert Librarian.objects.get().pk == anne.pk
    library.refresh_from_db()
    anne.refresh_from_db()
    assert library.address == "Rue B 2"
    assert library.name == "Bibliothèque de Vallorbe"  # the key is not rewritten
    # Kept as MediaWiki reads it: underscores are spaces.
    assert (anne.role, anne.wiki_username) == ("Directrice", "Anne R.")
    assert anne.email == "anne@vallorbe.example.org"
    assert library.updated_at > updated_at[0] and anne.updated_at > updated_at[1]


def test_empty_cells_never_blank_stored_values(vaud, biblio_vaud):
    library = LibraryFactory(
        name="Bibliothèque de Vallorbe",
        city="Vallorbe",
        region=vaud,
        address="Rue A 1",
        website="https://vallorbe.example.org",
        languages="de,fr",
        status="partner",
    )
    biblio_vaud.members.add(library)
    anne = LibrarianFactory(
        library=library,
        name="Anne Rochat",
        email="anne@vallorbe.example.org",
        role="Directrice",
        language="de",
        wiki_username="Anne R.",
        home_wiki="frwiki",
        consent_source="Annuaire",
        consent_at=date(2024, 1, 1),
    )
    before = (list(Library.objects.values()), list(Librarian.objects.values()))
    sparse = (
        "library,city,region,address,website,status,name,email,role,language,consent_date\n"
        "Bibliothèque de Vallorbe,Vallorbe,Vaud,,,,,anne@vallorbe.example.org,,,\n"
    )

    report = libraries_import(text=sparse)

    assert report.rows_unchanged == 1
    assert before == (list(Library.objects.values()), list(Librarian.objects.values()))
    assert anne.consent_at == Librarian.objects.get().consent_at == date(2024, 1, 1)
    assert list(library.mailing_lists.all()) == [biblio_vaud]


def test_memberships_are_added_and_never_removed(vaud, biblio_vaud):
    other = MailingListFactory(name="BiblioRomandie")
    libraries_import(text=csv_text({**ANNE, "mailing_lists": "Biblio-Vaud"}))

    report = libraries_import(text=csv_text({**ANNE, "mailing_lists": "BiblioRomandie"}))

    assert report.rows[0].actions == ["added to list BiblioRomandie"]
    assert set(Library.objects.get().mailing_lists.all()) == {biblio_vaud, other}


def test_a_librarian_found_by_email_is_moved_to_the_library_of_the_row(vaud):
    morges = LibraryFactory(name="Bibliothèque de Morges", city="Morges", region=vaud)
    anne = LibrarianFactory(library=morges, name="Anne Rochat", email="Anne@Vallorbe.example.org")

    report = libraries_import(text=csv_text({**ANNE, "email": "anne@VALLORBE.example.org"}))

    assert report.rows[0].actions == [
        "new library",
        "librarian updated",
        "moved from Bibliothèque de Morges (Morges)",
    ]
    assert (report.librarians_created, report.librarians_updated) == (0, 1)
    anne.refresh_from_db()
    assert anne.library.city == "Vallorbe"
    assert Librarian.objects.count() == 1


def test_a_status_change_is_recorded_in_the_history_as_coming_from_the_import(vaud, coordinator):
    library = LibraryFactory(name="Bibliothèque de Vallorbe", city="Vallorbe", region=vaud)

    report = libraries_import(
        text=csv_text({**ANNE, "status": "Interested"}), imported_by=coordinator
    )

    assert report.rows[0].actions == ["library updated", "new librarian"]
    assert report.libraries_updated == 1
    library.refresh_from_db()
    assert library.status == "interested"
    change = library.status_changes.get()
    assert (change.from_status, change.to_status) == ("prospect", "interested")
    assert (change.source, change.reason, change.changed_by) == (
        "import",
        "CSV import",
        coordinator,
    )


def test_lookups_take_the_same_number_of_queries_for_a_small_and_a_large_file(vaud, biblio_vaud):
    def rows(count):
        return [
            {
                "library": f"Bibliothèque {n % 7}",
                "city": "Vallorbe",
                "region": "Vaud",
                "mailing_lists": "Biblio-Vaud",
                "name": f"Person {n}",
                "email": f"person{n}@vallorbe.example.org",
            }
            for n in range(count)
        ]

    libraries_import(text=csv_text(*rows(60)))

    def count_queries(count):
        with CaptureQueriesContext(connection) as queries:
            report = libraries_import(text=csv_text(*rows(count)))
        assert report.rows_unchanged == count
        return len(queries)

    assert count_queries(8) == count_queries(60) <= 10


# Export -------------------------------------------------------------------------------------


@pytest.fixture
def directory(vaud, biblio_vaud):
    """A populated database with the awkward cases an export must carry."""
    valais = RegionFactory(name="Valais", slug="valais", language="fr")
    romandie = MailingListFactory(name="BiblioRomandie")
    landeron = LibraryFactory(
        name="Bibliothèque du Landeron",
        city="Le Landeron",
        region=vaud,
        # As a browser sends a textarea: CRLF line breaks.
        address="Ville 24,\r\n2525 Le Landeron",
        languages="de,fr",
        status="partner",
        website="",
    )
    romandie.members.add(landeron)
    biblio_vaud.members.add(landeron)
    LibrarianFactory(
        library=landeron,
        name="Katrin Schaller",
        email="Katrin.Schaller@landeron.example.org",
        language="de",
        wiki_username="=cmd|' /C calc'!A0",
        home_wiki="dewiki",
        consent_source="Liste; réponse du 3 mars",
        consent_at=date(2024, 3, 3),
    )
    LibrarianFactory(library=landeron, name="Nicolas Girard", email="nicolas@landeron.example.org")
    agaune = LibraryFactory(name="Médiathèque d'Agaune", city="Saint-Maurice", region=valais)
    # A librarian who unsubscribed is exported too, and stays unsubscribed on the way back.
    LibrarianFactory(
        library=agaune,
        name="Léa Barman",
        email="lea@agaune.example.org",
        role="",
        unsubscribed_at=timezone.now(),
    )
    # A library without librarians gets a row of its own.
    LibraryFactory(name="Bibliothèque scolaire", city="Romont", region=valais, status="dormant")
    return landeron


def test_an_export_imports_back_with_no_changes(directory):
    text = export_text()
    records = list(csv.DictReader(io.StringIO(text)))
    assert [(r["library"], r["email"]) for r in records] == [
        ("Bibliothèque du Landeron", "Katrin.Schaller@landeron.example.org"),
        ("Bibliothèque du Landeron", "nicolas@landeron.example.org"),
        ("Bibliothèque scolaire", ""),
        ("Médiathèque d'Agaune", "lea@agaune.example.org"),
    ]
    assert records[0]["mailing_lists"] == "Biblio-Vaud, BiblioRomandie"
    # A value a spreadsheet would run as a formula goes out defused, and comes back whole.
    assert records[0]["wiki_username"] == "'=cmd|' /C calc'!A0"
    before = list(Librarian.objects.order_by("pk").values())

    report = libraries_import(text=text)

    assert not report.has_errors
    assert report.rows_unchanged == report.total_rows == 4
    assert list(Librarian.objects.order_by("pk").values()) == before


def test_an_export_reads_a_bounded_number_of_queries(directory, django_assert_max_num_queries):
    for n in range(20):
        library = LibraryFactory(name=f"Bibliothèque {n}", region=directory.region)
        LibrarianFactory.create_batch(2, library=library)

    with django_assert_max_num_queries(4):
        rows = list(libraries_export_rows(Library.objects.all()))

    assert len(rows) == 1 + 4 + 40


def test_an_export_of_a_filtered_queryset_holds_only_those_libraries(directory):
    rows = list(libraries_export_rows(Library.objects.filter(status="partner")))
    assert rows[0] == COLUMN_NAMES
    assert {row[0] for row in rows[1:]} == {"Bibliothèque du Landeron"}


# The example file ---------------------------------------------------------------------------


def test_the_example_file_imports_cleanly_and_then_changes_nothing(
    romandie_regions, romandie_lists, coordinator
):
    text = decode_upload(EXAMPLE_PATH.read_bytes())
    assert text.splitlines()[0].split(",") == COLUMN_NAMES

    report = libraries_import(text=text, imported_by=coordinator)

    assert not report.has_errors, report.errors
    assert not report.warnings
    assert 10 <= report.total_rows <= 14
    assert report.libraries_created == 8
    assert report.librarians_created == report.total_rows - 2
    towns = set(Library.objects.values_list("city", flat=True))
    assert towns == {
        "Vallorbe",
        "Cossonay",
        "Le Landeron",
        "Romont",
        "Saint-Maurice",
        "Saignelégier",
    }
    assert Library.objects.filter(languages="de,fr").exists()
    assert Library.objects.filter(librarians__isnull=True).exists()
    assert all(
        email.endswith(".example.org")
        for email in Librarian.objects.values_list("email", flat=True)
    )
    assert Librarian.objects.filter(home_wiki="frwiki").exclude(wiki_username="").exists()

    again = libraries_import(text=text)
    assert again.rows_unchanged == again.total_rows


def test_every_column_is_documented_with_a_help_text_and_an_example():
    for column in imports.IMPORT_COLUMNS:
        assert column.name == column.name.lower().strip() and " " not in column.name
        assert str(column.help) and column.example
    assert [c.name for c in imports.IMPORT_COLUMNS if c.required] == ["library", "city", "region"]


# File-level problems ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        "library,city\nBibliothèque de Vallorbe,Vallorbe\n".encode("latin-1"),
        "library,city,region\nA,B,C\n".encode("utf-16"),
        "library,city,region\nA,B,C\n".encode("utf-16-le"),
    ],
    ids=["latin-1", "utf-16 with bom", "utf-16 without bom"],
)
def test_a_file_that_is_not_utf8_is_refused_with_advice_to_save_it_as_csv_utf8(data):
    with pytest.raises(ImportFileError, match="save it as 'CSV UTF-8'"):
        decode_upload(data)


@pytest.mark.parametrize("data", [b"", b"\xef\xbb\xbf", b" \r\n\r\n"])
def test_an_empty_file_is_refused(data):
    with pytest.raises(ImportFileError, match="empty"):
        decode_upload(data)


def test_a_file_of_blank_lines_is_refused_as_empty(db):
    with pytest.raises(ImportFileError, match="empty"):
        libraries_import(text=";;;\n\n")


def test_a_header_without_a_required_column_is_refused_naming_the_column(db):
    with pytest.raises(ImportFileError, match="missing: region"):
        libraries_import(text="library,city,name\nA,B,C\n")


def test_a_file_without_a_header_line_is_refused(db):
    with pytest.raises(ImportFileError, match="must name the columns"):
        libraries_import(text="Bibliothèque de Vallorbe,Vallorbe,Vaud\n")


def test_a_header_without_rows_is_refused(db):
    with pytest.raises(ImportFileError, match="no rows"):
        libraries_import(text="library,city,region\r\n\r\n")


def test_a_column_named_twice_is_refused(db):
    with pytest.raises(ImportFileError, match="email appears twice"):
        libraries_import(text="library,city,region,email,Email\nA,B,C,d@e.org,d@e.org\n")


def test_the_example_file_imports_cleanly_after_the_demo_data(db):
    call_command("load_demo", stdout=io.StringIO())
    libraries_before = Library.objects.count()

    report = libraries_import(text=decode_upload(EXAMPLE_PATH.read_bytes()))

    assert not report.has_errors, report.errors
    assert report.libraries_created == 8
    assert Library.objects.count() == libraries_before + 8


def test_a_row_the_database_refuses_is_reported_and_the_others_go_through(vaud, monkeypatch):
    create = imports.services.library_create

    def refuse_venoge(**fields):
        if fields["city"] == "Cossonay":
            raise ValidationError({"name": ["Refused for the test."]})
        return create(**fields)

    monkeypatch.setattr(imports.services, "library_create", refuse_venoge)

    report = libraries_import(text=csv_text(ANNE, SOPHIE), skip_invalid=True)

    assert errors_of(report) == [(3, "")]
    assert "could not be saved: Refused for the test." in report.errors[0].message
    assert report.written
    assert list(Library.objects.values_list("city", flat=True)) == ["Vallorbe"]
    assert (report.libraries_created, report.librarians_created) == (1, 1)


def test_librarians_are_looked_up_in_chunks_of_emails(vaud, monkeypatch):
    monkeypatch.setattr(imports, "EMAIL_CHUNK", 10)
    library = LibraryFactory(name="Bibliothèque de Vallorbe", city="Vallorbe", region=vaud)
    people = [
        LibrarianFactory(
            library=library, name=f"Person {n}", email=f"Person{n}@vallorbe.example.org"
        )
        for n in range(25)
    ]
    rows = [{**ANNE, "name": p.name, "email": p.email.lower()} for p in people]

    with CaptureQueriesContext(connection) as queries:
        report = libraries_import(text=csv_text(*rows))

    assert report.rows_unchanged == 25
    assert Librarian.objects.count() == 25
    librarian_queries = [q for q in queries if 'FROM "libraries_librarian"' in q["sql"]]
    assert len(librarian_queries) == 3
