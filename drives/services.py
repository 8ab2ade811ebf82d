"""Writes of drives: the drive itself, what its contributions record as activity signals, a
coordinator's count-in, and the dashboard's tallies.

Pulling from the wikis is ``drives.pulls``; it stores contributions and calls
``signals_from_contributions`` and ``contribution_tallies_refresh`` from here.
"""

from __future__ import annotations

import csv
import io
import re
from datetime import datetime

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import Count, Sum
from django.db.models.functions import Coalesce, TruncWeek
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext as _

from libraries.imports import libraries_import
from libraries.models import ActivitySignal, Librarian, Region

from .models import Contribution, ContributionTally, Drive, DriveContribution, Lead, PullRun
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


# Leads --------------------------------------------------------------------------------------

_WIKI_LANGUAGE = re.compile(
    r"^([a-z]{2,3}(?:_[a-z]+)?)(?:wiki|wiktionary|wikisource|wikibooks|wikiquote|wikinews|"
    r"wikiversity|wikivoyage)$"
)


def wiki_language(wiki_code: str) -> str:
    """The language of a Wikimedia wiki by its code ("fr" for frwiki); "" for the others."""
    match = _WIKI_LANGUAGE.match(wiki_code)
    return match.group(1).replace("_", "-") if match else ""


def leads_note(wiki_code: str, usernames: set[str]) -> int:
    """A lead for each of these accounts not seen before; return how many are new."""
    rows = [
        Lead(wiki=wiki_code, username=name, language=wiki_language(wiki_code))
        for name in sorted(usernames)
    ]
    before = Lead.objects.filter(wiki=wiki_code, username__in=usernames).count()
    Lead.objects.bulk_create(rows, ignore_conflicts=True)
    return len(rows) - before


def linked_leads(wiki_code: str) -> dict[str, Librarian]:
    """The librarians that leads of this wiki were linked to, by the wiki's spelling."""
    return {
        lead.username: lead.librarian
        for lead in Lead.objects.filter(
            wiki=wiki_code, status=Lead.Status.LINKED, librarian__isnull=False
        ).select_related("librarian")
    }


class LeadError(ValueError):
    """The lead cannot be handled so; ``messages`` say why, for the coordinator."""

    def __init__(self, messages: list[str]):
        super().__init__("; ".join(messages))
        self.messages = messages


@transaction.atomic
def lead_link(
    *, lead: Lead, librarian: Librarian, decided_by: AbstractBaseUser | None = None
) -> Lead:
    """The lead is ``librarian``: its edits count for their library from now on, and those
    already stored too (with their signals). A librarian without a wiki username gets it."""
    lead = Lead.objects.select_for_update().get(pk=lead.pk)
    lead.status, lead.librarian = Lead.Status.LINKED, librarian
    lead.decided_at, lead.decided_by = timezone.now(), decided_by
    lead.save(update_fields=["status", "librarian", "decided_at", "decided_by"])
    edits = Contribution.objects.filter(wiki=lead.wiki, username=lead.username, librarian=None)
    ids = list(edits.values_list("pk", flat=True))
    edits.update(librarian=librarian, library_id=librarian.library_id)
    if not librarian.wiki_username:
        librarian.wiki_username, librarian.home_wiki = (
            lead.username,
            librarian.home_wiki or lead.wiki,
        )
        librarian.save(update_fields=["wiki_username", "home_wiki", "updated_at"])
    signals_from_contributions(ids)
    contribution_tallies_refresh()
    return lead


@transaction.atomic
def lead_dismiss(*, lead: Lead, decided_by: AbstractBaseUser | None = None) -> Lead:
    """Not one for the directory (a Wikimedian, not a librarian): no longer listed as a lead.
    Its edits still count in the drives."""
    lead.status, lead.decided_at, lead.decided_by = (
        Lead.Status.DISMISSED,
        timezone.now(),
        decided_by,
    )
    lead.save(update_fields=["status", "decided_at", "decided_by"])
    return lead


@transaction.atomic
def lead_librarian_create(
    *, lead: Lead, row: dict[str, str], decided_by: AbstractBaseUser | None = None
) -> Librarian:
    """A librarian (and their library, if it is new) made from the lead, checked by the
    rules of the CSV import (``row`` holds its columns: library, city, region, name, email,
    …), then linked. Nothing is written when a column is wrong: LeadError says which."""
    row = {**row, "wiki_username": lead.username, "home_wiki": lead.wiki}
    row.setdefault("consent_source", _("#1lib1ref participant (%(wiki)s)") % {"wiki": lead.wiki})
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(row))
    writer.writeheader()
    writer.writerow(row)
    report = libraries_import(text=buffer.getvalue(), imported_by=decided_by)
    if not report.written:
        raise LeadError([f"{error.column}: {error.message}" for error in report.errors])
    librarian = Librarian.objects.get(email__iexact=row["email"].strip())
    lead_link(lead=lead, librarian=librarian, decided_by=decided_by)
    return librarian


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
