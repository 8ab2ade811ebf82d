"""CSV import and export of libraries, their librarians and their mailing-list memberships.

Coordinators keep their directories in spreadsheets, one row per librarian. An import runs in
three steps:

1. Read. ``decode_upload`` turns the uploaded bytes into text (UTF-8, with or without the BOM
   spreadsheet programs write). ``libraries_import`` detects the delimiter from the header line
   (French and German spreadsheets write semicolons), maps the headers onto ``IMPORT_COLUMNS``
   and reads the records, remembering the physical line each one starts on. A problem with the
   file as a whole raises ``ImportFileError``.
2. Check. Regions, mailing lists, libraries and the librarians whose emails the file names are
   loaded up front in a handful of queries. Every row is checked against them and against the
   rows above it (an email twice, two different addresses for one library); each problem
   becomes a ``RowError`` with its line, its column and a plain-language reason.
3. Write. The valid rows are applied in file order inside one transaction. Libraries are
   matched by name and city, librarians by email, both whatever the case. New libraries go
   through ``services.library_create`` and status changes through
   ``services.library_status_change``, so the pipeline history says "import". An empty cell
   never blanks a stored value, list memberships are only ever added, and a row that changes
   nothing writes nothing. The transaction is rolled back for a dry run, and when a row has an
   error and the caller did not ask to skip invalid rows: a preview is the real import, undone,
   so it reports exactly what the import would do.

``libraries_export_rows`` writes the same columns back, so that an export imports unchanged.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator, validate_email
from django.db import IntegrityError, transaction
from django.db.models import Prefetch, Q, QuerySet
from django.db.models.functions import Lower
from django.utils import translation
from django.utils.text import format_lazy, slugify
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from core.roles import visible_region_ids
from core.text import normalize_email, normalize_wiki_username

from . import services
from .models import Librarian, Library, MailingList, Region, normalize_languages

EXAMPLE_PATH = Path(__file__).resolve().parent / "import_example.csv"

# Librarians are looked up by the emails of the file, this many per query (each bound twice):
# under the 999 parameters of older SQLite builds, and few queries for thousands of rows.
EMAIL_CHUNK = 400
EXPORT_CHUNK = 500
# What the history of a library says when the import moved it through the pipeline.
STATUS_CHANGE_SOURCE = "import"
STATUS_CHANGE_REASON = "CSV import"


@dataclass(frozen=True)
class ImportColumn:
    name: str
    required: bool
    help: str
    example: str


def _language_codes() -> list[str]:
    return [code for code, _name in settings.CONTENT_LANGUAGES]


IMPORT_COLUMNS: list[ImportColumn] = [
    ImportColumn(
        "library",
        True,
        gettext_lazy(
            "Name of the library. With the city it identifies the library: rows with the same "
            "name and city, whatever the case, are about the same library."
        ),
        "Bibliothèque communale de Vallorbe",
    ),
    ImportColumn("city", True, gettext_lazy("Town or city of the library."), "Vallorbe"),
    ImportColumn(
        "region",
        True,
        gettext_lazy(
            "Region of the library, as named in Outreach; case and accents do not matter."
        ),
        "Vaud",
    ),
    ImportColumn(
        "address",
        False,
        gettext_lazy("Postal address. Spreadsheet programs quote it if it contains a comma."),
        "Rue des Forgerons 7, 1337 Vallorbe",
    ),
    ImportColumn(
        "website",
        False,
        gettext_lazy("Web site of the library; https:// is added when it is missing."),
        "www.vallorbe.example.org",
    ),
    ImportColumn(
        "library_languages",
        False,
        format_lazy(
            gettext_lazy(
                "Languages the library works in, as codes separated by commas ({codes}). "
                "A new library gets its region's language when this is empty."
            ),
            codes=", ".join(code for code, _name in settings.CONTENT_LANGUAGES),
        ),
        "fr, de",
    ),
    ImportColumn(
        "status",
        False,
        format_lazy(
            gettext_lazy(
                "Where the library stands in the pipeline: {statuses}. A new library starts "
                "as prospect when this is empty."
            ),
            statuses=", ".join(Library.Status.values),
        ),
        "prospect",
    ),
    ImportColumn(
        "mailing_lists",
        False,
        gettext_lazy(
            "Mailing lists the library is on, by their name in Outreach, separated by commas, "
            "semicolons or |. The import adds memberships; it never removes one."
        ),
        "Biblio-Vaud; BiblioRomandie",
    ),
    ImportColumn(
        "name",
        False,
        gettext_lazy(
            "Name of the librarian; needed for a new librarian. Leave every librarian column "
            "empty for a row that describes a library alone."
        ),
        "Anne Rochat",
    ),
    ImportColumn(
        "email",
        False,
        gettext_lazy(
            "Email of the librarian, needed as soon as the row names one. It identifies the "
            "librarian: a known address updates that librarian, and moves them if the "
            "library differs."
        ),
        "anne.rochat@vallorbe.example.org",
    ),
    ImportColumn("role", False, gettext_lazy("Role or job title of the librarian."), "Directrice"),
    ImportColumn(
        "language",
        False,
        format_lazy(
            gettext_lazy("Language the librarian receives mail in, as a code ({codes})."),
            codes=", ".join(code for code, _name in settings.CONTENT_LANGUAGES),
        ),
        "fr",
    ),
    ImportColumn(
        "wiki_username",
        False,
        gettext_lazy("Username of the librarian on the wikis, if they have one."),
        "Anne Rochat",
    ),
    ImportColumn(
        "home_wiki",
        False,
        gettext_lazy("The wiki they mostly edit, such as frwiki or dewiki."),
        "frwiki",
    ),
    ImportColumn(
        "consent_source",
        False,
        gettext_lazy("Where the address comes from and why we may write to it."),
        "Annuaire des bibliothèques vaudoises",
    ),
    ImportColumn(
        "consent_date",
        False,
        gettext_lazy("Date of that consent, as 2024-03-31, 31.03.2024 or 31/03/2024."),
        "2024-03-31",
    ),
]
COLUMN_NAMES = [column.name for column in IMPORT_COLUMNS]
REQUIRED_COLUMNS = [column.name for column in IMPORT_COLUMNS if column.required]
LIBRARIAN_COLUMNS = [
    "name",
    "email",
    "role",
    "language",
    "wiki_username",
    "home_wiki",
    "consent_source",
    "consent_date",
]
# Columns that describe the library: two rows about one library must not disagree on them.
LIBRARY_VALUE_COLUMNS = ["region", "address", "website", "library_languages", "status"]


class ImportFileError(Exception):
    """The file as a whole cannot be imported; ``str(error)`` tells the person why."""


@dataclass
class RowError:
    line: int
    column: str
    message: str


@dataclass
class RowOutcome:
    line: int
    library: str
    city: str
    email: str
    actions: list[str]
    errors: list[RowError]


@dataclass
class ImportReport:
    rows: list[RowOutcome]
    warnings: list[str]
    dry_run: bool
    written: bool
    libraries_created: int = 0
    libraries_updated: int = 0
    librarians_created: int = 0
    librarians_updated: int = 0
    memberships_added: int = 0
    rows_unchanged: int = 0

    @property
    def errors(self) -> list[RowError]:
        return [error for row in self.rows for error in row.errors]

    @property
    def has_errors(self) -> bool:
        return any(row.errors for row in self.rows)

    @property
    def valid_rows(self) -> int:
        return sum(1 for row in self.rows if not row.errors)

    @property
    def invalid_rows(self) -> int:
        return sum(1 for row in self.rows if row.errors)

    @property
    def total_rows(self) -> int:
        return len(self.rows)


def decode_upload(data: bytes) -> str:
    """The text of an uploaded file, which must be UTF-8 (a leading BOM is dropped)."""
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8) :]
    if not data.strip():
        raise ImportFileError(_("The file is empty."))
    not_utf8 = ImportFileError(
        # Translators: 'CSV UTF-8' is the name of the format in Excel's and LibreOffice's
        # "Save as" dialog; keep it as your spreadsheet program spells it.
        _(
            "The file is not in UTF-8, so its accented letters cannot be read reliably. In "
            "your spreadsheet program, save it as 'CSV UTF-8' and upload it again."
        )
    )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise not_utf8 from None
    # UTF-16 ("Unicode text" in Excel) without a BOM decodes as UTF-8 full of NUL characters.
    if "\x00" in text:
        raise not_utf8
    return text


def libraries_import(
    *,
    text: str,
    imported_by: AbstractBaseUser | None = None,
    dry_run: bool = False,
    skip_invalid: bool = False,
) -> ImportReport:
    """Import a CSV directory of libraries and librarians; report what happened to each row.

    With any row in error nothing is written, unless ``skip_invalid`` asks to write the valid
    rows anyway. A ``dry_run`` does the same work and rolls it back, so its report (counts and
    actions per row) is exactly what the import would do. ``written`` says whether the changes
    were committed. Raises ``ImportFileError`` when the file as a whole cannot be read.
    """
    table = _read_table(text)
    importer = _Importer(imported_by=imported_by)
    rows = importer.check(table.records)
    report = ImportReport(
        rows=[row.outcome for row in rows], warnings=table.warnings, dry_run=dry_run, written=False
    )
    with transaction.atomic():
        for row in rows:
            if not row.outcome.errors:
                importer.apply(row)
        # Decided after the writes: a row can still fail there (see _Importer.apply).
        written = not dry_run and report.valid_rows > 0 and (skip_invalid or not report.has_errors)
        if not written:
            transaction.set_rollback(True)
    importer.fill_counts(report)
    report.written = written
    return report


def libraries_export_rows(libraries: QuerySet[Library]) -> Iterator[list[str]]:
    """The CSV rows of ``libraries``: the header, then one row per librarian.

    A library without librarians gets one row of its own with the librarian columns empty, so
    that the file imports back unchanged. A few queries per chunk of libraries, not per library.
    """
    yield list(COLUMN_NAMES)
    libraries = libraries.select_related("region").prefetch_related(
        Prefetch("librarians", queryset=Librarian.objects.order_by("name", "email")),
        Prefetch("mailing_lists", queryset=MailingList.objects.order_by("name")),
    )
    for library in libraries.iterator(chunk_size=EXPORT_CHUNK):
        library_cells = {
            "library": library.name,
            "city": library.city,
            "region": library.region.name,
            "address": library.address,
            "website": library.website,
            "library_languages": ", ".join(library.language_list),
            "status": library.status,
            "mailing_lists": ", ".join(ml.name for ml in library.mailing_lists.all()),
        }
        librarians = list(library.librarians.all())
        if not librarians:
            yield _export_row(library_cells)
        for librarian in librarians:
            yield _export_row(
                {
                    **library_cells,
                    "name": librarian.name,
                    "email": librarian.email,
                    "role": librarian.role,
                    "language": librarian.language,
                    "wiki_username": librarian.wiki_username,
                    "home_wiki": librarian.home_wiki,
                    "consent_source": librarian.consent_source,
                    "consent_date": librarian.consent_at.isoformat()
                    if librarian.consent_at
                    else "",
                }
            )


# Reading ------------------------------------------------------------------------------------

# A cell starting with one of these is a formula to a spreadsheet program, which would run it
# when the coordinator opens the export (OWASP "CSV injection"). The export prefixes such a
# cell with an apostrophe, and the import takes that apostrophe off again.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _export_row(cells: dict[str, str]) -> list[str]:
    row = []
    for name in COLUMN_NAMES:
        value = cells.get(name) or ""
        row.append("'" + value if value.startswith(_FORMULA_STARTS) else value)
    return row


def _unescape_formula(value: str) -> str:
    return value[1:] if value.startswith("'") and value[1:].startswith(_FORMULA_STARTS) else value


@dataclass
class _Record:
    line: int  # the physical line the record starts on; the header is line 1
    values: dict[str, str]  # by column name, stripped; "" when the cell is empty or absent
    stray_values: bool  # a value sits under no column (beyond the header, or under no name)


@dataclass
class _Table:
    records: list[_Record]
    warnings: list[str]


def _header_key(value: str) -> str:
    """ " Mailing lists" and "mailing-lists" are the column mailing_lists."""
    return re.sub(r"[\s\-]+", "_", value.strip().lower())


def _detect_delimiter(text: str) -> str:
    """The delimiter of the header line: commas, or semicolons as French and German Excel write."""
    for line in text.splitlines():
        if line.strip():
            unquoted = re.sub(r'"[^"]*"', "", line)
            counts = {delimiter: unquoted.count(delimiter) for delimiter in (",", ";", "\t")}
            best = max(counts, key=counts.__getitem__)  # a comma wins a tie
            return best if counts[best] else ","
    return ","


def _read_table(text: str) -> _Table:
    text = text.removeprefix("\ufeff")
    delimiter = _detect_delimiter(text)
    warnings = []
    if delimiter == ";":
        warnings.append(_("The columns are separated by semicolons."))
    elif delimiter == "\t":
        warnings.append(_("The columns are separated by tabs."))
    # newline="" hands line endings to the csv module, which then keeps a quoted newline
    # inside its cell; reader.line_num counts physical lines, so records spanning several
    # lines keep the numbers right for the rows below them.
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    header: list[str] | None = None
    columns: dict[str, int] = {}
    records = []
    end_of_previous = 0
    try:
        for cells in reader:
            line, end_of_previous = end_of_previous + 1, reader.line_num
            if not any(cell.strip() for cell in cells):
                continue
            if header is None:
                header = cells
                columns = _map_header(header, warnings)
                continue
            values = {
                name: _unescape_formula(cells[index].strip()) if index < len(cells) else ""
                for name, index in columns.items()
            }
            stray = any(
                cell.strip()
                for index, cell in enumerate(cells)
                if index >= len(header) or not header[index].strip()
            )
            records.append(_Record(line=line, values=values, stray_values=stray))
    except csv.Error as error:
        raise ImportFileError(
            _("The file cannot be read as CSV near line %(line)d: %(error)s.")
            % {"line": reader.line_num, "error": error}
        ) from None
    if header is None:
        raise ImportFileError(_("The file is empty."))
    if not records:
        raise ImportFileError(_("The file has a header line but no rows to import."))
    return _Table(records=records, warnings=warnings)


def _map_header(header: list[str], warnings: list[str]) -> dict[str, int]:
    columns: dict[str, int] = {}
    unknown = []
    for index, cell in enumerate(header):
        key = _header_key(cell)
        if not key:
            continue  # spreadsheet programs write trailing empty columns
        if key not in COLUMN_NAMES:
            unknown.append(cell.strip())
        elif key in columns:
            raise ImportFileError(
                _("The column %(column)s appears twice in the header line.") % {"column": key}
            )
        else:
            columns[key] = index
    missing = [name for name in REQUIRED_COLUMNS if name not in columns]
    if missing:
        raise ImportFileError(
            _(
                "The first line of the file must name the columns, and these required ones "
                "are missing: %(columns)s. The import page lists every column."
            )
            % {"columns": ", ".join(missing)}
        )
    if unknown:
        warnings.append(
            _("These columns are not known and were ignored: %(columns)s.")
            % {"columns": ", ".join(unknown)}
        )
    return columns


# Checking and writing -----------------------------------------------------------------------


@dataclass
class _Row:
    outcome: RowOutcome
    key: tuple[str, str]  # the library's name and city, lower-cased
    library: dict[str, Any]  # name, city, region, address, website, languages, status
    lists: list[MailingList]
    librarian: dict[str, Any] | None  # None on a row that describes a library alone


@dataclass
class _Plan:
    """What applying one row changes, worked out before writing: an unchanged row writes nothing."""

    library: Library | None  # as it stands, or None when the row creates it
    new_library: dict[str, Any] | None = None
    library_changes: dict[str, Any] = field(default_factory=dict)
    status: str = ""
    lists: list[MailingList] = field(default_factory=list)
    librarian: Librarian | None = None
    new_librarian: dict[str, Any] | None = None
    librarian_changes: dict[str, Any] = field(default_factory=dict)
    move_librarian: bool = False
    moved_from: Library | None = None

    @property
    def changes_library(self) -> bool:
        return bool(self.library_changes or self.status)

    @property
    def changes_librarian(self) -> bool:
        return bool(self.librarian_changes or self.move_librarian)

    @property
    def writes(self) -> bool:
        return bool(
            self.new_library is not None
            or self.changes_library
            or self.lists
            or self.new_librarian is not None
            or self.changes_librarian
        )

    def actions(self) -> list[str]:
        actions = []
        if self.new_library is not None:
            actions.append(_("new library"))
        elif self.changes_library:
            actions.append(_("library updated"))
        for mailing_list in self.lists:
            # Translators: what importing a row does, e.g. "added to list Biblio-Vaud".
            actions.append(_("added to list %(list)s") % {"list": mailing_list.name})
        if self.new_librarian is not None:
            actions.append(_("new librarian"))
        elif self.changes_librarian:
            actions.append(_("librarian updated"))
            if self.moved_from is not None:
                # Translators: a librarian found at another library, e.g. "moved from
                # Bibliothèque de Morges (Morges)".
                actions.append(_("moved from %(library)s") % {"library": self.moved_from})
        return actions


_LIBRARIAN_TEXT_FIELDS = ["name", "role", "wiki_username", "home_wiki", "consent_source"]
_LIBRARIAN_UPDATE_FIELDS = [*_LIBRARIAN_TEXT_FIELDS, "language", "consent_at"]
# ISO, and the day-first forms Swiss, French and German spreadsheets write.
_DATE_PATTERNS = [
    re.compile(r"(?P<y>\d{4})-(?P<m>\d{1,2})-(?P<d>\d{1,2})"),
    re.compile(r"(?P<d>\d{1,2})\.(?P<m>\d{1,2})\.(?P<y>\d{4})"),
    re.compile(r"(?P<d>\d{1,2})/(?P<m>\d{1,2})/(?P<y>\d{4})"),
]


def _parse_date(value: str) -> date | None:
    for pattern in _DATE_PATTERNS:
        match = pattern.fullmatch(value)
        if match:
            try:
                return date(int(match["y"]), int(match["m"]), int(match["d"]))
            except ValueError:
                return None
    return None


def _known(names: Iterable[str], limit: int = 30) -> str:
    names = sorted(names, key=str.lower)
    shown = ", ".join(names[:limit])
    return shown + ", …" if len(names) > limit else shown


def _chunks(items: list, size: int) -> Iterator[list]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class _Importer:
    """The lookups of one import, the rows' checks against them, and the writes."""

    def __init__(self, *, imported_by: AbstractBaseUser | None) -> None:
        self.imported_by = imported_by
        # An ambassador imports into their regions only; the command line (no user) and
        # coordinators into every region.
        self.region_ids = visible_region_ids(imported_by) if imported_by is not None else None
        self.regions_by_pk: dict[int, Region] = {}
        self.regions_by_name: dict[str, Region] = {}
        self.regions_by_slug: dict[str, Region] = {}
        for region in Region.objects.order_by("name"):
            self.regions_by_pk[region.pk] = region
            self.regions_by_name.setdefault(region.name.lower(), region)
            self.regions_by_slug.setdefault(region.slug, region)
            self.regions_by_slug.setdefault(slugify(region.name), region)
        self.lists_by_name: dict[str, MailingList] = {}
        self.lists_by_slug: dict[str, MailingList] = {}
        for mailing_list in MailingList.objects.order_by("name"):
            self.lists_by_name.setdefault(mailing_list.name.lower(), mailing_list)
            self.lists_by_slug.setdefault(mailing_list.slug, mailing_list)
            self.lists_by_slug.setdefault(slugify(mailing_list.name), mailing_list)
        self.list_names_longest_first = sorted(self.lists_by_name, key=len, reverse=True)
        # Every library, matched in Python: SQLite's LOWER() folds ASCII letters only, so
        # "BIBLIOTHÈQUE" and "Bibliothèque" would differ there and match on PostgreSQL. A
        # chapter's directory is a few thousand libraries at most: one query, little memory.
        self.libraries: dict[tuple[str, str], Library] = {}
        self.libraries_by_pk: dict[int, Library] = {}
        for library in Library.objects.order_by("pk").iterator(chunk_size=2000):
            self.libraries.setdefault(_library_key(library.name, library.city), library)
            self.libraries_by_pk[library.pk] = library
        self.librarians: dict[str, Librarian] = {}
        self.memberships: set[tuple[int, int]] = set()  # (mailing list id, library id)
        statuses: dict[str, str] = {}
        for value, label in Library.Status.choices:
            statuses[value] = value
            statuses[str(label).lower()] = value  # in the language of the person importing
            with translation.override("en"):
                statuses[str(label).lower()] = value
        self.statuses = statuses
        self.language_codes = _language_codes()
        # Counters, filled as rows are written.
        self.created_library_pks: set[int] = set()
        self.updated_library_pks: set[int] = set()
        self.librarians_created = 0
        self.librarians_updated = 0
        self.memberships_added = 0
        self.rows_unchanged = 0

    # Lookups that depend on the file ---------------------------------------------------------

    def _load_librarians(self, emails: set[str]) -> None:
        """The librarians with these (normalized) emails, whatever the case."""
        for chunk in _chunks(sorted(emails), EMAIL_CHUNK):
            # The address as written too: SQLite's LOWER() leaves non-ASCII capitals alone.
            matching = Librarian.objects.annotate(email_lower=Lower("email")).filter(
                Q(email_lower__in=[email.lower() for email in chunk]) | Q(email__in=chunk)
            )
            for librarian in matching:
                self.librarians.setdefault(librarian.email.lower(), librarian)

    def _load_memberships(self, lists: Iterable[MailingList]) -> None:
        list_ids = {mailing_list.pk for mailing_list in lists}
        if list_ids:
            self.memberships.update(
                MailingList.members.through.objects.filter(mailinglist_id__in=list_ids).values_list(
                    "mailinglist_id", "library_id"
                )
            )

    def _outside(self, region_id: int | None) -> bool:
        """Whether the person importing may not touch rows of this region."""
        return self.region_ids is not None and region_id not in self.region_ids

    def _your_regions(self) -> str:
        return _known(self.regions_by_pk[pk].name for pk in sorted(self.region_ids or ()))

    def _find_region(self, value: str) -> Region | None:
        return self.regions_by_name.get(value.lower()) or self.regions_by_slug.get(slugify(value))

    def _find_lists(self, value: str) -> tuple[list[MailingList], list[str]]:
        """The lists named in ``value`` and the names matching none.

        Known names are matched first, longest first, so a list whose name contains a comma
        still reads as one list; what is left is split on commas, semicolons and bars.
        """
        found: list[MailingList] = []
        unknown: list[str] = []
        names = self.list_names_longest_first
        lowered = value.lower()
        if len(lowered) != len(value):  # a few letters change length when lower-cased
            lowered = value
        position = 0
        while position < len(value):
            if value[position] in ",;|" or value[position].isspace():
                position += 1
                continue
            matched = next(
                (
                    name
                    for name in names
                    if lowered.startswith(name, position)
                    and re.match(r"\s*(?:[,;|]|$)", value[position + len(name) :])
                ),
                None,
            )
            if matched is not None:
                mailing_list = self.lists_by_name[matched]
                position += len(matched)
            else:
                token = re.split(r"[,;|]", value[position:], maxsplit=1)[0]
                position += len(token)
                mailing_list = self.lists_by_slug.get(slugify(token))
                if mailing_list is None:
                    unknown.append(token.strip())
                    continue
            if mailing_list not in found:
                found.append(mailing_list)
        return found, unknown

    # Checking --------------------------------------------------------------------------------

    def check(self, records: list[_Record]) -> list[_Row]:
        emails = set()
        for record in records:
            email = record.values.get("email", "")
            if email:
                emails.add(normalize_email(email))
        self._load_librarians(emails)
        rows = [self._check_row(record) for record in records]
        self._load_memberships({ml for row in rows for ml in row.lists})
        self._check_across_rows(rows)
        return rows

    def _check_row(self, record: _Record) -> _Row:
        values = record.values
        errors: list[RowError] = []

        def error(column: str, message: str) -> None:
            errors.append(RowError(line=record.line, column=column, message=message))

        def value(column: str) -> str:
            return values.get(column, "")

        if record.stray_values:
            error(
                "",
                _(
                    "This row has more values than the header line has columns. Is a value "
                    "that contains a comma or a semicolon missing its quotes?"
                ),
            )
        missing = {
            "library": _("The library's name is missing."),
            "city": _("The city is missing."),
            "region": _("The region is missing."),
        }
        for column, message in missing.items():
            if not value(column):
                error(column, message)
        self._check_length(error, "library", value("library"), Library, "name")
        self._check_length(error, "city", value("city"), Library, "city")

        region = None
        if value("region"):
            region = self._find_region(value("region"))
            if region is None:
                error(
                    "region",
                    _("Unknown region “%(value)s”. The regions are: %(known)s.")
                    % {
                        "value": value("region"),
                        "known": _known(r.name for r in self.regions_by_pk.values()),
                    },
                )

        if region is not None and self._outside(region.pk):
            error(
                "region",
                _(
                    "“%(value)s” is not one of your regions (%(yours)s): ask a coordinator "
                    "to import this row."
                )
                % {"value": value("region"), "yours": self._your_regions()},
            )
        existing = self.libraries.get(_library_key(value("library"), value("city")))
        if existing is not None and self._outside(existing.region_id):
            error(
                "library",
                _(
                    "This library is in a region that is not yours (%(yours)s): ask a "
                    "coordinator to import this row."
                )
                % {"yours": self._your_regions()},
            )

        address = _one_newline(value("address"))

        website = value("website")
        if website:
            if not re.match(r"[a-z][a-z0-9+.\-]*://", website, re.IGNORECASE):
                website = "https://" + website
            try:
                URLValidator(schemes=["http", "https"])(website)
                if len(website) > Library._meta.get_field("website").max_length:
                    raise ValidationError("too long")
            except ValidationError:
                error(
                    "website",
                    _("“%(value)s” is not a valid web address.") % {"value": value("website")},
                )
                website = ""

        languages = ""
        if value("library_languages"):
            languages = normalize_languages(value("library_languages"))
            unknown = [c for c in languages.split(",") if c not in self.language_codes]
            if unknown:
                error("library_languages", self._unknown_languages(unknown))
                languages = ""

        status = ""
        if value("status"):
            status = self.statuses.get(value("status").lower(), "")
            if not status:
                error(
                    "status",
                    _("Unknown status “%(value)s”. Use one of: %(choices)s.")
                    % {"value": value("status"), "choices": ", ".join(Library.Status.values)},
                )

        lists: list[MailingList] = []
        if value("mailing_lists"):
            lists, unknown_lists = self._find_lists(value("mailing_lists"))
            for name in unknown_lists:
                error(
                    "mailing_lists",
                    _("Unknown mailing list “%(value)s”. The lists are: %(known)s.")
                    % {
                        "value": name,
                        "known": _known(ml.name for ml in self.lists_by_name.values()),
                    },
                )

        for mailing_list in lists:
            if self._outside(mailing_list.region_id):
                error(
                    "mailing_lists",
                    _("The mailing list “%(value)s” is not one of your regions' lists.")
                    % {"value": mailing_list.name},
                )

        librarian = None
        if any(value(column) for column in LIBRARIAN_COLUMNS):
            librarian = self._check_librarian(value, error)
            known = self.librarians.get(librarian["email"].lower()) if librarian["email"] else None
            home = self.libraries_by_pk.get(known.library_id) if known else None
            if home is not None and self._outside(home.region_id):
                error(
                    "email",
                    _(
                        "This librarian works at a library of a region that is not yours: "
                        "ask a coordinator to import this row."
                    ),
                )

        outcome = RowOutcome(
            line=record.line,
            library=value("library"),
            city=value("city"),
            email=value("email"),
            actions=[],
            errors=errors,
        )
        return _Row(
            outcome=outcome,
            key=_library_key(value("library"), value("city")),
            library={
                "name": value("library"),
                "city": value("city"),
                "region": region,
                "address": address,
                "website": website,
                "languages": languages,
                "status": status,
            },
            lists=lists,
            librarian=librarian,
        )

    def _check_librarian(
        self, value: Callable[[str], str], error: Callable[[str, str], None]
    ) -> dict[str, Any]:
        email = normalize_email(value("email"))
        if not email:
            error(
                "email",
                _("The email is missing: a row that names a librarian needs their address."),
            )
        else:
            try:
                # A line break in an address could smuggle headers into an email.
                if "\r" in email or "\n" in email:
                    raise ValidationError("line break")
                validate_email(email)
            except ValidationError:
                error(
                    "email",
                    _("“%(value)s” is not a valid email address.") % {"value": value("email")},
                )
            self._check_length(error, "email", email, Librarian, "email")
            if not value("name") and email.lower() not in self.librarians:
                error("name", _("The name is missing: a new librarian needs one."))
        for column in _LIBRARIAN_TEXT_FIELDS:
            self._check_length(error, column, value(column), Librarian, column)

        language = value("language").lower()
        if language and language not in self.language_codes:
            error("language", self._unknown_languages([language]))
            language = ""

        consent_at = None
        if value("consent_date"):
            consent_at = _parse_date(value("consent_date"))
            if consent_at is None:
                error(
                    "consent_date",
                    _(
                        "“%(value)s” is not a date. Write it as 2024-03-31, 31.03.2024 or "
                        "31/03/2024."
                    )
                    % {"value": value("consent_date")},
                )
        return {
            **{column: value(column) for column in _LIBRARIAN_TEXT_FIELDS},
            "wiki_username": normalize_wiki_username(value("wiki_username")),
            "email": email,
            "language": language,
            "consent_at": consent_at,
        }

    def _check_length(
        self,
        error: Callable[[str, str], None],
        column: str,
        value: str,
        model: type[Library | Librarian],
        field_name: str,
    ) -> None:
        max_length = model._meta.get_field(field_name).max_length
        if len(value) > max_length:
            error(
                column,
                _("Too long: at most %(max)d characters, this has %(length)d.")
                % {"max": max_length, "length": len(value)},
            )

    def _unknown_languages(self, codes: list[str]) -> str:
        return _("Unknown language code “%(value)s”. Use one of: %(codes)s.") % {
            "value": ", ".join(codes),
            "codes": ", ".join(self.language_codes),
        }

    def _check_across_rows(self, rows: list[_Row]) -> None:
        """An email on two rows, and two rows giving one library different values."""
        email_lines: dict[str, int] = {}
        # library key -> column -> (comparable value, line, value as written)
        library_values: dict[tuple[str, str], dict[str, tuple[Any, int, str]]] = {}
        for row in rows:
            line = row.outcome.line
            email = row.librarian["email"].lower() if row.librarian else ""
            if email:
                if email in email_lines:
                    row.outcome.errors.append(
                        RowError(
                            line=line,
                            column="email",
                            message=_("This email is already on line %(line)d.")
                            % {"line": email_lines[email]},
                        )
                    )
                else:
                    email_lines[email] = line
            if not all(row.key):
                continue
            seen = library_values.setdefault(row.key, {})
            region = row.library["region"]
            given = {
                "region": (region.pk if region else None, region.name if region else ""),
                "address": (row.library["address"], row.library["address"]),
                "website": (row.library["website"], row.library["website"]),
                "library_languages": (row.library["languages"], row.library["languages"]),
                "status": (row.library["status"], row.library["status"]),
            }
            for column in LIBRARY_VALUE_COLUMNS:
                comparable, shown = given[column]
                if not comparable:
                    continue
                if column not in seen:
                    seen[column] = (comparable, line, shown)
                elif seen[column][0] != comparable:
                    row.outcome.errors.append(
                        RowError(
                            line=line,
                            column=column,
                            # Translators: two rows about one library disagree, e.g. "Line 4
                            # gives this library another address: “Rue du Lac 1”."
                            message=_(
                                "Line %(line)d gives this library another %(column)s: “%(value)s”."
                            )
                            % {"line": seen[column][1], "column": column, "value": seen[column][2]},
                        )
                    )

    # Writing ---------------------------------------------------------------------------------

    def apply(self, row: _Row) -> None:
        """Write one valid row, in a savepoint of its own if it changes anything."""
        plan = self._plan(row)
        if not plan.writes:
            row.outcome.actions = [_("unchanged")]
            self.rows_unchanged += 1
            return
        try:
            with transaction.atomic():
                library, librarian = self._execute(plan)
        except (ValidationError, IntegrityError) as error:
            # The checks above make this rare (a concurrent edit, a rule only the model
            # knows): the row is reported and the others still go through.
            for instance in (plan.library, plan.librarian):
                if instance is not None:
                    instance.refresh_from_db()
            message = (
                "; ".join(error.messages) if isinstance(error, ValidationError) else str(error)
            )
            row.outcome.errors.append(
                RowError(
                    line=row.outcome.line,
                    column="",
                    message=_("This row could not be saved: %(error)s") % {"error": message},
                )
            )
            return
        row.outcome.actions = plan.actions()
        if plan.new_library is not None:
            self.libraries[row.key] = library
            self.libraries_by_pk[library.pk] = library
            self.created_library_pks.add(library.pk)
        elif plan.changes_library and library.pk not in self.created_library_pks:
            self.updated_library_pks.add(library.pk)
        for mailing_list in plan.lists:
            self.memberships.add((mailing_list.pk, library.pk))
        self.memberships_added += len(plan.lists)
        if plan.new_librarian is not None:
            self.librarians[librarian.email.lower()] = librarian
            self.librarians_created += 1
        elif plan.changes_librarian:
            self.librarians_updated += 1

    def _plan(self, row: _Row) -> _Plan:
        values = row.library
        library = self.libraries.get(row.key)
        plan = _Plan(library=library)
        if library is None:
            region = values["region"]
            languages = values["languages"] or region.language
            plan.new_library = {
                "name": values["name"],
                "city": values["city"],
                "region": region,
                "address": values["address"],
                "website": values["website"],
                "languages": languages,
                "status": values["status"] or Library.Status.PROSPECT,
            }
            plan.lists = list(row.lists)
        else:
            if values["region"].pk != library.region_id:
                plan.library_changes["region"] = values["region"]
            for name in ("address", "website", "languages"):
                stored = getattr(library, name)
                if values[name] and values[name] != _one_newline(stored):
                    plan.library_changes[name] = values[name]
            if values["status"] and values["status"] != library.status:
                plan.status = values["status"]
            plan.lists = [ml for ml in row.lists if (ml.pk, library.pk) not in self.memberships]
            region = plan.library_changes.get("region") or self.regions_by_pk[library.region_id]
            languages = plan.library_changes.get("languages", library.languages)

        if row.librarian is not None:
            given = row.librarian
            librarian = self.librarians.get(given["email"].lower())
            if librarian is None:
                plan.new_librarian = {
                    **{name: given[name] for name in _LIBRARIAN_TEXT_FIELDS},
                    "email": given["email"],
                    "language": given["language"] or _default_language(languages, region),
                    "consent_at": given["consent_at"],
                }
            else:
                plan.librarian = librarian
                for name in _LIBRARIAN_UPDATE_FIELDS:
                    if given[name] and given[name] != getattr(librarian, name):
                        plan.librarian_changes[name] = given[name]
                if library is None or librarian.library_id != library.pk:
                    plan.move_librarian = True
                    plan.moved_from = self.libraries_by_pk.get(librarian.library_id)
        return plan

    def _execute(self, plan: _Plan) -> tuple[Library, Librarian | None]:
        if plan.new_library is not None:
            library = services.library_create(
                source=STATUS_CHANGE_SOURCE, created_by=self.imported_by, **plan.new_library
            )
        else:
            library = plan.library
            if plan.library_changes:
                for name, new_value in plan.library_changes.items():
                    setattr(library, name, new_value)
                library.save(update_fields=[*plan.library_changes, "updated_at"])
            if plan.status:
                services.library_status_change(
                    library=library,
                    status=plan.status,
                    reason=STATUS_CHANGE_REASON,
                    changed_by=self.imported_by,
                    source=STATUS_CHANGE_SOURCE,
                )
        for mailing_list in plan.lists:
            mailing_list.members.add(library)

        librarian = plan.librarian
        if plan.new_librarian is not None:
            librarian = Librarian.objects.create(library=library, **plan.new_librarian)
        elif plan.changes_librarian:
            update_fields = list(plan.librarian_changes)
            for name, new_value in plan.librarian_changes.items():
                setattr(librarian, name, new_value)
            if plan.move_librarian:
                librarian.library = library
                update_fields.append("library")
            librarian.save(update_fields=[*update_fields, "updated_at"])
        return library, librarian

    def fill_counts(self, report: ImportReport) -> None:
        report.libraries_created = len(self.created_library_pks)
        report.libraries_updated = len(self.updated_library_pks)
        report.librarians_created = self.librarians_created
        report.librarians_updated = self.librarians_updated
        report.memberships_added = self.memberships_added
        report.rows_unchanged = self.rows_unchanged


def _library_key(name: str, city: str) -> tuple[str, str]:
    """How rows and libraries are matched: name and city, whatever the case and the spacing."""
    return (" ".join(name.split()).lower(), " ".join(city.split()).lower())


def _one_newline(text: str) -> str:
    """Text with "\n" line breaks: browsers send CRLF, a CSV file may hold either."""
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _default_language(languages: str, region: Region) -> str:
    """A new librarian speaks the region's language if their library does, else the library's."""
    codes = [code for code in languages.split(",") if code]
    return region.language if not codes or region.language in codes else codes[0]
