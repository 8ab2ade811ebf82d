"""Page-shaped reads of drives: what counts, totals, the leaderboard, edits per day, and which
drives are due for a pull. Every figure is one SQL aggregate, whatever the contributions.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db.models import Count, OuterRef, Subquery, Sum
from django.db.models.functions import Coalesce, TruncDate
from django.utils import timezone

from .models import Contribution, Drive, Lead, PullRun

# A whole year of weeks: both #1lib1ref windows (mid-January to early February, and May)
# always fall inside it.
TALLY_WEEKS = 52


def tally_start(now: datetime) -> datetime:
    """Midnight (local time) of the Monday TALLY_WEEKS - 1 weeks before ``now``'s week."""
    today = timezone.localtime(now).replace(hour=0, minute=0, second=0, microsecond=0)
    return today - timedelta(days=today.weekday(), weeks=TALLY_WEEKS - 1)


def drive_counted(drive: Drive, *, user=None):
    """The drive's contributions that count: tagged, or counted in by a coordinator; those of
    ``user``'s regions when given (None: every one, as the public leaderboard shows)."""
    contributions = (
        Contribution.objects.all() if user is None else Contribution.objects.visible_to(user)
    )
    return contributions.in_drive(drive, counted=True)


def drive_totals(drive: Drive, *, user=None) -> dict:
    """Edits, references added, librarians, libraries and wikis: one aggregate query."""
    return drive_counted(drive, user=user).aggregate(
        edits=Count("pk"),
        references=Coalesce(Sum("references_added"), 0),
        librarians=Count("librarian", distinct=True),
        libraries=Count("library", distinct=True),
        wikis=Count("wiki", distinct=True),
    )


def drive_leaderboard(drive: Drive, *, user=None, limit: int = 50) -> list[dict]:
    """Libraries ranked by references added, then edits."""
    return list(
        drive_counted(drive, user=user)
        .exclude(library=None)
        .values("library_id", "library__name", "library__city", "library__slug")
        .annotate(
            edits=Count("pk"),
            references=Coalesce(Sum("references_added"), 0),
            librarians=Count("librarian", distinct=True),
        )
        .order_by("-references", "-edits", "library__name")[:limit]
    )


def drive_edits_by_day(drive: Drive, *, user=None) -> list[dict]:
    """Counted edits and references per day of the drive (days without edits included)."""
    rows = {
        row["day"]: row
        for row in drive_counted(drive, user=user)
        .annotate(day=TruncDate("timestamp"))
        .values("day")
        .annotate(edits=Count("pk"), references=Coalesce(Sum("references_added"), 0))
        .order_by("day")
    }
    if not drive.starts_on or not drive.ends_on:
        return list(rows.values())
    days, day = [], drive.starts_on
    while day <= drive.ends_on:
        row = rows.get(day, {})
        days.append(
            {"day": day, "edits": row.get("edits", 0), "references": row.get("references", 0)}
        )
        day += timedelta(days=1)
    return days


def drives_due(*, now: datetime) -> list[int]:
    """Drives to pull now: open ones every time, those ended in the last week at night; never
    one whose pull is alive (heard of within its lease)."""
    today = timezone.localdate(now)
    drives = Drive.objects.filter(starts_on__lte=today, ends_on__isnull=False).exclude(wikis="")
    if timezone.localtime(now).hour == 2:
        drives = drives.filter(ends_on__gte=today - timedelta(days=7))
    else:
        drives = drives.filter(ends_on__gte=today - timedelta(days=1))
    running = PullRun.objects.live(now=now).values("drive_id")
    return list(drives.exclude(pk__in=running).values_list("pk", flat=True))


def drives_to_reread(*, now: datetime) -> list[int]:
    """Drives whose window closed and was not read again whole since: the night's pull reads
    it all once more, for the edits that became visible late."""
    if timezone.localtime(now).hour != 2:
        return []
    today = timezone.localdate(now)
    return list(
        Drive.objects.filter(
            ends_on__lt=today, ends_on__gte=today - timedelta(days=7), window_reread_at=None
        ).values_list("pk", flat=True)
    )


# Leads --------------------------------------------------------------------------------------


def leads_with_activity(*, user, drive: Drive | None = None, status: str | None = "new"):
    """The leads ``user`` may see (of ``drive`` when given), each with its counted ``edits``
    and ``references`` (in that drive, or overall): one query, by correlated subqueries."""
    edits = Contribution.objects.filter(
        wiki=OuterRef("wiki"), username=OuterRef("username")
    ).counted()
    if drive is not None:
        edits = edits.filter(links__drive=drive)
    edits = edits.order_by().values("wiki")
    leads = Lead.objects.visible_to(user).select_related("librarian__library")
    if status:
        leads = leads.filter(status=status)
    leads = leads.annotate(
        edits=Coalesce(Subquery(edits.annotate(n=Count("pk")).values("n")), 0),
        references=Coalesce(Subquery(edits.annotate(n=Sum("references_added")).values("n")), 0),
    )
    if drive is not None:
        leads = leads.filter(edits__gt=0)
    return leads.order_by("-references", "-edits", "username")


def lead_pages(leads, *, per_lead: int = 5) -> dict[int, list[str]]:
    """The pages each lead edited (most recent first, ``per_lead`` at most): one query."""
    leads = list(leads)
    if not leads:
        return {}
    by_account = {(lead.wiki, lead.username): lead.pk for lead in leads}
    pages: dict[int, list[str]] = {lead.pk: [] for lead in leads}
    rows = (
        Contribution.objects.counted()
        .filter(
            wiki__in={lead.wiki for lead in leads},
            username__in={lead.username for lead in leads},
        )
        .order_by("-timestamp")
        .values_list("wiki", "username", "page")
    )
    for wiki_code, username, page in rows:
        lead_id = by_account.get((wiki_code, username))
        if lead_id is not None and page not in pages[lead_id] and len(pages[lead_id]) < per_lead:
            pages[lead_id].append(page)
    return pages
