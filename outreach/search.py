"""The coordinator's search box: one text, looked up in every kind of row a coordinator opens.

``search`` finds libraries (name, city, slug), librarians (name, email, wiki username, library),
meetup series (title, host library's name and city, slug), one-off meetings (title),
campaigns (title) and contribution drives (title, hashtags). Each kind starts from
``visible_to(user)``, so an ambassador finds their regions' rows only, and is searched only
when the user holds its view permission: librarians are personal data. One query per kind,
its total counted in the same query by a window function, whatever the number of rows; plus
the user's permissions and regions, once.

Matching is case-insensitive. It is accent-insensitive only through the slugs, which are
ASCII ("geneve" finds the slug of "Bibliothèque de Genève"): a real ``unaccent`` would need a
PostgreSQL extension and has no SQLite equivalent.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db.models import (
    Case,
    Count,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
    When,
    Window,
)
from django.utils import timezone
from django.utils.text import slugify

from campaigns.models import Campaign
from drives.models import Drive
from libraries.models import Librarian, Library
from meetings.models import Meeting, MeetupSeries

SEARCH_LIMIT = 10
# Longer texts are cut: no name is this long, and a LIKE pattern of a megabyte is no search.
MAX_TEXT_LENGTH = 100

KINDS = ("libraries", "librarians", "series", "meetings", "campaigns", "drives")
PERMISSIONS = {
    "libraries": "libraries.view_library",
    "librarians": "libraries.view_librarian",
    "series": "meetings.view_meetupseries",
    "meetings": "meetings.view_meeting",
    "campaigns": "campaigns.view_campaign",
    "drives": "drives.view_drive",
}


@dataclass
class SearchResults:
    """Up to ``limit`` rows of each kind, and how many rows of that kind match in all.

    ``kinds`` are the kinds that were searched: the others are not the user's to see (no
    permission), and a page shows nothing about them, not even an empty heading.
    """

    text: str
    kinds: tuple[str, ...] = ()
    libraries: list[Library] = field(default_factory=list)
    libraries_total: int = 0
    librarians: list[Librarian] = field(default_factory=list)
    librarians_total: int = 0
    series: list[MeetupSeries] = field(default_factory=list)
    series_total: int = 0
    meetings: list[Meeting] = field(default_factory=list)
    meetings_total: int = 0
    campaigns: list[Campaign] = field(default_factory=list)
    campaigns_total: int = 0
    drives: list[Drive] = field(default_factory=list)
    drives_total: int = 0

    @property
    def total(self) -> int:
        return sum(getattr(self, f"{kind}_total") for kind in self.kinds)


def search_text_clean(text: str) -> str:
    """The text as searched: no NUL (PostgreSQL refuses it), single spaces, not too long."""
    return " ".join(text.replace("\x00", " ").split())[:MAX_TEXT_LENGTH].strip()


def search(*, user, text: str, limit: int = SEARCH_LIMIT) -> SearchResults:
    """Find ``text`` in each kind of row ``user`` may see, at most ``limit`` rows of each kind.

    An empty text (after cleaning) searches nothing and runs no query.
    """
    text = search_text_clean(text)
    kinds = tuple(kind for kind in KINDS if user.has_perm(PERMISSIONS[kind]))
    results = SearchResults(text=text, kinds=kinds)
    if not text:
        return results
    slug = slugify(text)
    for kind in kinds:
        rows, total = _page(_QUERIES[kind](user, text, slug), limit)
        setattr(results, kind, rows)
        setattr(results, f"{kind}_total", total)
    return results


def _page(queryset: QuerySet, limit: int) -> tuple[list, int]:
    """The first ``limit`` rows and the number of rows in all, in one query: the window
    function counts the rows the WHERE clause kept, before the LIMIT (SQLite ≥ 3.25 and
    PostgreSQL alike)."""
    rows = list(queryset.annotate(search_total=Window(Count("pk")))[:limit])
    return rows, (rows[0].search_total if rows else 0)


def _starts_first(field_name: str, text: str) -> Case:
    """0 for rows whose ``field_name`` starts with the text, 1 for the others: "Mor" lists
    Morges before Bibliothèque de Morges."""
    return Case(
        When(**{f"{field_name}__istartswith": text}, then=Value(0)),
        default=Value(1),
        output_field=IntegerField(),
    )


def _slug_matches(slug: str) -> Q:
    # An empty slug ("%", "日本") would match every row.
    return Q(slug__icontains=slug) if slug else Q(pk__in=[])


def _libraries(user, text: str, slug: str) -> QuerySet[Library]:
    # Not LibraryQuerySet.search: it also matches libraries by their librarians' names and
    # emails, which would tell a user without the view_librarian permission where a person
    # works. Librarians have their own group here, for those who may see them.
    return (
        Library.objects.visible_to(user)
        .filter(Q(name__icontains=text) | Q(city__icontains=text) | _slug_matches(slug))
        .select_related("region")
        .order_by(_starts_first("name", text), "name", "city")
    )


def _librarians(user, text: str, slug: str) -> QuerySet[Librarian]:
    return (
        Librarian.objects.visible_to(user)
        .search(text)
        .select_related("library", "library__region")
        .order_by(_starts_first("name", text), "name", "pk")
    )


def _series(user, text: str, slug: str) -> QuerySet[MeetupSeries]:
    next_start = (
        Meeting.objects.filter(
            series=OuterRef("pk"), start__gte=timezone.now(), cancelled_at__isnull=True
        )
        .order_by("start")
        .values("start")[:1]
    )
    return (
        MeetupSeries.objects.visible_to(user)
        .filter(
            Q(title__icontains=text)
            | Q(host_library__name__icontains=text)
            | Q(host_library__city__icontains=text)
            | _slug_matches(slug)
        )
        .select_related("host_library", "host_library__region")
        .annotate(next_start=Subquery(next_start))
        .order_by(_starts_first("title", text), "title", "pk")
    )


def _meetings(user, text: str, slug: str) -> QuerySet[Meeting]:
    """One-off meetings (office hours): a series' occurrences are found through the series."""
    return (
        Meeting.objects.visible_to(user)
        .filter(series__isnull=True, title__icontains=text)
        .select_related("host_library", "host_library__region")
        .order_by("-start", "pk")
    )


def _campaigns(user, text: str, slug: str) -> QuerySet[Campaign]:
    return (
        Campaign.objects.visible_to(user)
        .filter(title__icontains=text)
        .order_by(_starts_first("title", text), "-created_at", "pk")
    )


def _drives(user, text: str, slug: str) -> QuerySet[Drive]:
    return (
        Drive.objects.visible_to(user)
        .filter(Q(title__icontains=text) | Q(hashtags__icontains=text))
        .order_by(_starts_first("title", text), "-created_at", "pk")
    )


# Each kind's query, from the user, the cleaned text and its slug (ASCII, for accents).
_QUERIES = {
    "libraries": _libraries,
    "librarians": _librarians,
    "series": _series,
    "meetings": _meetings,
    "campaigns": _campaigns,
    "drives": _drives,
}
