"""Writes of drives: the drive itself, what its contributions record as activity signals, a
coordinator's count-in, and the dashboard's tallies.

Pulling from the wikis is ``drives.pulls``; it stores contributions and calls
``signals_from_contributions`` and ``contribution_tallies_refresh`` from here.
"""

from __future__ import annotations

from datetime import datetime

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import Count, Sum
from django.db.models.functions import Coalesce, TruncWeek
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext as _

from libraries.models import ActivitySignal, Region

from .models import Contribution, ContributionTally, Drive, DriveContribution, PullRun
from .selectors import tally_start

# The drive ----------------------------------------------------------------------------------


@transaction.atomic
def drive_save(
    *, drive: Drive, regions: list[Region], created_by: AbstractBaseUser | None = None
) -> Drive:
    """Create or change a drive with its regions (the regions say whose drive it is)."""
    if drive.pk is None:
        drive.created_by = created_by
    drive.save()
    drive.regions.set(regions)
    return drive


# Pull runs ----------------------------------------------------------------------------------


def pull_runs_interrupt(*, now: datetime | None = None) -> int:
    """Close the runs whose worker died (not heard of for a lease) as interrupted, saying so
    in plain words; return how many. What they stored stays; the next pull resumes."""
    now = now or timezone.now()
    closed = 0
    for run in PullRun.objects.stale(now=now):
        heard = timezone.localtime(run.heartbeat_at or run.started_at)
        run.status, run.finished_at = PullRun.Status.INTERRUPTED, now
        run.errors = _(
            "The pull stopped without finishing: its worker was last heard of at "
            "%(time)s. What it stored is kept; the next pull resumes where it stopped."
        ) % {"time": date_format(heard, "SHORT_DATETIME_FORMAT")}
        run.save(update_fields=["status", "finished_at", "errors"])
        closed += 1
    return closed


# Signals ------------------------------------------------------------------------------------


def _signal_source(contribution: Contribution) -> str:
    return f"{contribution.wiki}:{contribution.revid}"


def signals_from_contributions(contribution_ids, *, again: bool = False) -> int:
    """One ``tagged_edit`` signal per edit that counts (in any drive) and one
    ``reference_added`` per reference it added, for its library: an edit counting in two
    drives is one edit of its library. Idempotent (the source names the revision); ``again``
    writes them anew, for edits whose references were counted since."""
    counted = list(
        Contribution.objects.filter(pk__in=list(contribution_ids)).counted().exclude(library=None)
    )
    if again:
        ActivitySignal.objects.filter(
            source__in=[_signal_source(c) for c in counted],
            kind__in=[ActivitySignal.Kind.TAGGED_EDIT, ActivitySignal.Kind.REFERENCE_ADDED],
        ).delete()
    sources = {_signal_source(c) for c in counted}
    already = set(
        ActivitySignal.objects.filter(
            source__in=sources,
            kind__in=[ActivitySignal.Kind.TAGGED_EDIT, ActivitySignal.Kind.REFERENCE_ADDED],
        ).values_list("source", flat=True)
    )
    signals = []
    for contribution in counted:
        source = _signal_source(contribution)
        if source in already:
            continue
        common = {
            "library_id": contribution.library_id,
            "librarian_id": contribution.librarian_id,
            "occurred_at": contribution.timestamp,
            "source": source,
        }
        signals.append(ActivitySignal(kind=ActivitySignal.Kind.TAGGED_EDIT, **common))
        signals += [
            ActivitySignal(kind=ActivitySignal.Kind.REFERENCE_ADDED, **common)
            for _ in range(min(contribution.references_added, 20))
        ]
    ActivitySignal.objects.bulk_create(signals)
    return len(signals)


@transaction.atomic
def contribution_count_in(*, link: DriveContribution, counted: bool) -> DriveContribution:
    """A coordinator counts an untagged edit in a drive (or out again). Its signals follow:
    out of the library's activity only when it counts in no drive any more."""
    link.counted_in = counted
    link.save(update_fields=["counted_in"])
    contribution = link.contribution
    if counted:
        signals_from_contributions([contribution.pk])
    elif not Contribution.objects.filter(pk=contribution.pk).counted().exists():
        ActivitySignal.objects.filter(source=_signal_source(contribution)).delete()
    contribution_tallies_refresh()
    return link


# Tallies of contributions ------------------------------------------------------------------


@transaction.atomic
def contribution_tallies_refresh(*, now: datetime | None = None) -> int:
    """Rebuild every region's tallies of counted edits over the trailing year; return the rows.

    Two aggregates of the year's contributions (per region and week, per region), one DELETE
    and one bulk INSERT, whatever the number of contributions. Idempotent: it replaces what
    was there, so running it late or twice is harmless.
    """
    now = now or timezone.now()
    start = tally_start(now)
    counted = (
        Contribution.objects.counted()
        .filter(timestamp__gte=start, timestamp__lte=now)
        .exclude(library=None)
        .order_by()
    )
    figures = {
        "edits": Count("pk"),
        "references": Coalesce(Sum("references_added"), 0),
        "librarians": Count("librarian", distinct=True),
        "libraries": Count("library", distinct=True),
    }
    rows = [
        ContributionTally(
            region_id=row["library__region"],
            week=timezone.localtime(row["week"]).date(),
            computed_at=now,
            **{name: row[name] for name in figures},
        )
        for row in counted.annotate(week=TruncWeek("timestamp"))
        .values("library__region", "week")
        .annotate(**figures)
    ]
    rows += [
        ContributionTally(
            region_id=row["library__region"],
            week=start.date(),
            whole_year=True,
            computed_at=now,
            **{name: row[name] for name in figures},
        )
        for row in counted.values("library__region").annotate(**figures)
    ]
    ContributionTally.objects.all().delete()
    ContributionTally.objects.bulk_create(rows)
    return len(rows)
