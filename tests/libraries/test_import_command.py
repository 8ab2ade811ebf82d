"""The command-line face of the import and export: import_libraries and export_libraries."""

import io
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError

from libraries.imports import EXAMPLE_PATH
from libraries.models import Librarian, Library
from tests.factories import LibrarianFactory, LibraryFactory

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
    "Bibliothèque de Cossonay,Cossonay,Vaud,,,\n"
)


def write(tmp_path: Path, text: str, name: str = "directory.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def run(*args):
    """call_command with its output captured: (stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    call_command(*args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_importing_a_good_file_writes_it_and_prints_the_counts(tmp_path):
    out, err = run("import_libraries", str(write(tmp_path, GOOD)))

    assert "new libraries: 1" in out
    assert "new librarians: 2" in out
    assert err == ""
    assert Librarian.objects.count() == 2


def test_a_file_with_errors_prints_each_and_fails_writing_nothing(tmp_path):
    err = io.StringIO()

    with pytest.raises(CommandError, match="2 rows of 5 have errors, so nothing was imported"):
        call_command("import_libraries", str(write(tmp_path, BROKEN)), stderr=err)

    lines = err.getvalue().splitlines()
    assert lines[0].startswith("line 4, column region: Unknown region “Atlantis”")
    assert lines[1] == "line 5, column email: “not-an-email” is not a valid email address."
    assert not Library.objects.exists()


def test_skipping_invalid_rows_imports_the_others_and_succeeds(tmp_path):
    out, err = run("import_libraries", str(write(tmp_path, BROKEN)), "--skip-invalid")

    assert "rows with errors: 2" in out and "left out" in out
    assert "line 4, column region" in err
    assert sorted(Library.objects.values_list("city", flat=True)) == ["Cossonay", "Vallorbe"]
    assert Librarian.objects.count() == 2


def test_a_clean_dry_run_succeeds_and_writes_nothing(tmp_path):
    out, _err = run("import_libraries", str(write(tmp_path, GOOD)), "--dry-run")

    assert "new librarians: 2" in out
    assert "Dry run: nothing was written." in out
    assert not Library.objects.exists()


def test_a_dry_run_with_errors_fails(tmp_path):
    with pytest.raises(CommandError, match="have errors"):
        run("import_libraries", str(write(tmp_path, BROKEN)), "--dry-run")
    assert not Library.objects.exists()


def test_a_dash_reads_the_file_from_standard_input(monkeypatch):
    stdin = io.TextIOWrapper(io.BytesIO(("\ufeff" + GOOD).encode("utf-8")), encoding="utf-8")
    monkeypatch.setattr(sys, "stdin", stdin)

    out, _err = run("import_libraries", "-")

    assert "new librarians: 2" in out
    assert Librarian.objects.count() == 2


def test_a_semicolon_file_says_so_on_the_error_stream(tmp_path):
    _out, err = run("import_libraries", str(write(tmp_path, GOOD.replace(",", ";"))))
    assert "semicolons" in err
    assert Librarian.objects.count() == 2


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (GOOD.encode("latin-1"), "save it as 'CSV UTF-8'"),
        (b"", "empty"),
        (b"library,city\nA,B\n", "missing: region"),
    ],
    ids=["not utf-8", "empty", "no region column"],
)
def test_a_file_level_problem_is_a_command_error(tmp_path, data, message):
    path = tmp_path / "directory.csv"
    path.write_bytes(data)

    with pytest.raises(CommandError, match=message):
        run("import_libraries", str(path))


def test_a_missing_file_is_a_command_error(tmp_path):
    with pytest.raises(CommandError, match="Cannot read"):
        run("import_libraries", str(tmp_path / "nowhere.csv"))


def test_a_file_level_problem_exits_with_status_1_and_a_message(tmp_path):
    path = tmp_path / "directory.csv"
    path.write_bytes(GOOD.encode("latin-1"))

    # A real process, for the exit status; the file is refused before any database query.
    result = subprocess.run(
        [sys.executable, "manage.py", "import_libraries", str(path)],
        cwd=settings.BASE_DIR,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 1
    assert "CSV UTF-8" in result.stderr


def test_the_example_file_imports_with_the_command(tmp_path, romandie_regions, romandie_lists):
    out, _err = run("import_libraries", str(EXAMPLE_PATH))
    assert "new libraries: 8" in out
    assert "rows with errors" not in out


def test_the_export_goes_to_standard_output_and_imports_back_unchanged(tmp_path, vaud):
    library = LibraryFactory(name="Bibliothèque de Morges", city="Morges", region=vaud)
    LibrarianFactory(library=library, name="Anne Rochat", email="anne@morges.example.org")
    LibraryFactory(name="Médiathèque de Nyon", city="Nyon", region=vaud)

    out, _err = run("export_libraries")

    lines = out.splitlines()
    assert lines[0].startswith("library,city,region,")
    assert len(lines) == 3
    out, _err = run("import_libraries", str(write(tmp_path, out)))
    assert "rows unchanged: 2" in out
    assert "new librarians: 0" in out


def test_the_export_writes_a_file_with_a_bom_when_asked(tmp_path, vaud):
    LibrarianFactory(library=LibraryFactory(region=vaud), email="anne@morges.example.org")
    path = tmp_path / "libraries.csv"

    _out, err = run("export_libraries", str(path), "--bom")

    data = path.read_bytes()
    assert data.startswith(b"\xef\xbb\xbflibrary,city,region,")
    assert b"anne@morges.example.org" in data
    assert "1 row written" in err


@pytest.mark.django_db
def test_the_example_file_imports_cleanly_into_the_demo_network_and_again_changes_nothing():
    call_command("load_demo", stdout=io.StringIO())
    before = Library.objects.count()
    out = io.StringIO()
    call_command("import_libraries", str(EXAMPLE_PATH), stdout=out)
    assert "new libraries: 8" in out.getvalue()
    assert Library.objects.count() == before + 8
    assert Library.objects.filter(city="Vallorbe").exists()
    again = io.StringIO()
    call_command("import_libraries", str(EXAMPLE_PATH), stdout=again)
    assert "rows unchanged: 12" in again.getvalue()
    assert Library.objects.count() == before + 8
