"""Page-shaped reads of the libraries domain that join several models.

``shortlist_build`` is the shortlist page, its CSV and the librarians its actions write to:
per region, the libraries with the highest score, why (the kinds of signal that weigh most),
and their most active librarians. Three queries whatever the number of rows, of what the
score refresh stored (libraries.scoring): no signal is read.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from django.db.models import F, Window
from django.db.models.functions import RowNumber
from django.utils.translation import gettext as _

from .models import ActivitySignal, Librarian, Library, LibraryScorePart, Region

SHORTLIST_LIBRARIES_PER_REGION = 10
SHORTLIST_LIBRARIANS_PER_LIBRARY = 3
SHORTLIST_REASON_KINDS = 2


@dataclass(frozen=True)
class Reason:
    kind: str
    label: str
    contribution: float


@dataclass
class ShortlistLibrarian:
    librarian: Librarian
    activity: float


@dataclass
class ShortlistLibrary:
    library: Library
    position: int
    reasons: list[Reason] = field(default_factory=list)
    librarians: list[ShortlistLibrarian] = field(default_factory=list)

    @property
    def reason_text(self) -> str:
        return "; ".join(f"{reason.label} ({reason.contribution:.1f})" for reason in self.reasons)


@dataclass
class ShortlistRegion:
    region: Region
    libraries: list[ShortlistLibrary] = field(default_factory=list)


@dataclass
class Shortlist:
    regions: list[ShortlistRegion]
    per_region: int

    def __iter__(self) -> Iterator[ShortlistRegion]:
        return iter(self.regions)

    def librarians(self) -> list[Librarian]:
        """Every librarian shown, in shortlist order (region, library, activity)."""
        return [
            entry.librarian
            for region in self.regions
            for library in region.libraries
            for entry in library.librarians
        ]


def shortlist_build(*, user, per_region: int = SHORTLIST_LIBRARIES_PER_REGION) -> Shortlist:
    """The top ``per_region`` libraries of each of ``user``'s regions by stored score, above
    zero.

    Each comes with the two kinds of signal that contribute most to its score (the reason)
    and its three most active reachable librarians: by the weighted, decayed sum of their own
    signals, then by the rank a coordinator gave by hand, then by name. A library whose
    signals name nobody still shows its librarians, with an activity of 0: they are the
    people to write to. Scores, their parts by kind and the librarians' activity are those of
    the last refresh, so they agree with each other.

    Three queries, each ranked within its group by a window function so that only the rows
    shown are read back: the libraries (within their region), their score parts (within the
    library, two at most) and their librarians (within the library, three at most).
    """
    ranked = (
        Library.objects.visible_to(user)
        .filter(score_base__gt=0)
        .select_related("region")
        .with_scale()
        .annotate(
            position=Window(
                RowNumber(),
                partition_by=[F("region_id")],
                order_by=[F("score_base").desc(), F("name").asc(), F("pk").asc()],
            )
        )
        .filter(position__lte=per_region)
        .order_by("region__name", "position")
    )
    entries = [ShortlistLibrary(library=library, position=library.position) for library in ranked]
    library_ids = [entry.library.pk for entry in entries]
    if not library_ids:
        return Shortlist(regions=[], per_region=per_region)

    labels = dict(ActivitySignal.Kind.choices)
    reasons: dict[int, list[Reason]] = {}
    parts = (
        LibraryScorePart.objects.filter(library_id__in=library_ids, base__gt=0)
        .with_scale()
        .annotate(
            position=Window(
                RowNumber(),
                partition_by=[F("library_id")],
                order_by=[F("base").desc(), F("kind").asc()],
            )
        )
        .filter(position__lte=SHORTLIST_REASON_KINDS)
        .order_by("library_id", "position")
    )
    for part in parts:
        reasons.setdefault(part.library_id, []).append(
            Reason(
                kind=part.kind,
                label=str(labels.get(part.kind, part.kind)),
                contribution=part.contribution,
            )
        )
    librarians: dict[int, list[ShortlistLibrarian]] = {}
    most_active = (
        Librarian.objects.reachable()
        .filter(library_id__in=library_ids)
        .with_scale()
        .annotate(
            position=Window(
                RowNumber(),
                partition_by=[F("library_id")],
                order_by=[
                    F("activity_base").desc(),
                    F("shortlist_rank").asc(nulls_last=True),
                    F("name").asc(),
                    F("pk").asc(),
                ],
            )
        )
        .filter(position__lte=SHORTLIST_LIBRARIANS_PER_LIBRARY)
        .order_by("library_id", "position")
    )
    for librarian in most_active:
        librarians.setdefault(librarian.library_id, []).append(
            ShortlistLibrarian(librarian=librarian, activity=librarian.activity)
        )

    regions: dict[int, ShortlistRegion] = {}
    for entry in entries:
        library = entry.library
        entry.reasons = reasons.get(library.pk, [])
        entry.librarians = librarians.get(library.pk, [])
        regions.setdefault(library.region_id, ShortlistRegion(region=library.region))
        regions[library.region_id].libraries.append(entry)
    return Shortlist(regions=list(regions.values()), per_region=per_region)


def shortlist_csv_rows(shortlist: Shortlist) -> Iterator[list]:
    """The header, then one row per librarian; a library with nobody to write to gets one."""
    yield [
        _("region"),
        _("library"),
        _("score"),
        _("reason"),
        _("librarian"),
        _("email"),
        _("activity"),
        _("shortlist rank"),
    ]
    for region in shortlist:
        for entry in region.libraries:
            library = entry.library
            start = [region.region.name, library.name, f"{library.score:.2f}", entry.reason_text]
            if not entry.librarians:
                yield [*start, "", "", "", ""]
            for person in entry.librarians:
                librarian = person.librarian
                yield [
                    *start,
                    librarian.name,
                    librarian.email,
                    f"{person.activity:.2f}",
                    librarian.shortlist_rank or "",
                ]
