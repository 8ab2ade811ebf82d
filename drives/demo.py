"""The demo's #1lib1ref drive (see libraries.demo): last winter's, its edits already stored, so
that its pages, the leaderboard and the dashboard are full on a first run without any network.

Idempotent like the rest of the demo: a drive found by its title is left as it is.
"""

from __future__ import annotations

from datetime import timedelta

from libraries.demo import DemoContext
from libraries.models import Librarian

from .models import Contribution, Drive, DriveContribution, PullRun

DRIVE = "#1lib1ref 2026"
PAGES = [
    "Lausanne", "Fribourg", "Neuchâtel", "Sion", "Delémont", "Genève", "Yverdon-les-Bains",
    "Bibliothèque cantonale et universitaire de Lausanne", "Lac Léman", "Jura bernois",
    "Château de Chillon", "Abbaye de Saint-Maurice", "Bienne", "Montreux", "La Chaux-de-Fonds",
]  # fmt: skip
SUMMARIES = [
    "ajout de source #1lib1ref",
    "Référence ajoutée (#1Lib1Ref)",
    "#1bib1ref : source pour la date de fondation",
    "Quelle: Stadtarchiv #1lib1ref",
    "ref #1lib1refCH",
]


def load(ctx: DemoContext) -> None:
    """Last winter's #1lib1ref drive (15 January – 5 February), its edits already stored, so
    that its pages are full on a first run without any network."""
    if Drive.objects.filter(title=DRIVE).exists():
        return
    year = ctx.now.year if ctx.now.month > 2 else ctx.now.year - 1
    start = ctx.now.replace(year=year, month=1, day=15, hour=8, minute=0, second=0, microsecond=0)
    drive = Drive.objects.create(
        title=DRIVE,
        hashtags="#1lib1ref #1bib1ref #1lib1refCH",
        wikis="frwiki dewiki",
        starts_on=start.date(),
        ends_on=start.date().replace(month=2, day=5),
        public_leaderboard=True,
    )
    rng = ctx.rng("drive", DRIVE)
    librarians = list(
        Librarian.objects.exclude(wiki_username="").select_related("library").order_by("pk")
    )
    rows, tagged_revids, revid = [], set(), 1_000_000
    for librarian in librarians:
        if rng.random() < 0.3:
            continue
        for _ in range(rng.choice([1, 1, 2, 3, 5, 8])):
            revid += rng.randint(1, 400)
            tagged = rng.random() > 0.1
            if tagged:
                tagged_revids.add(revid)
            rows.append(
                Contribution(
                    librarian=librarian,
                    library=librarian.library,
                    wiki=librarian.home_wiki or "frwiki",
                    revid=revid,
                    parentid=revid - rng.randint(1, 300),
                    page=rng.choice(PAGES),
                    username=librarian.wiki_username,
                    timestamp=start + timedelta(minutes=rng.randint(0, 21 * 24 * 60)),
                    summary=rng.choice(SUMMARIES) if tagged else "source",
                    size_change=rng.randint(40, 900),
                    references_added=rng.choice([0, 1, 1, 1, 2, 2, 3, 4]) or (0 if tagged else 1),
                )
            )
    # No signals from these: the demo network's own signals already hold its librarians'
    # tagged edits (libraries.demo), and would be counted twice.
    Contribution.objects.bulk_create(rows)
    DriveContribution.objects.bulk_create(
        DriveContribution(drive=drive, contribution=row, tagged=row.revid in tagged_revids)
        for row in Contribution.objects.filter(revid__in=[row.revid for row in rows])
    )
    PullRun.objects.create(
        drive=drive,
        status=PullRun.Status.DONE,
        finished_at=ctx.now,
        users=len(librarians),
        requests=6,
        edits_seen=len(rows) * 3,
        edits_kept=len(tagged_revids),
        untagged_kept=len(rows) - len(tagged_revids),
    )
    ctx.created["drives"] += 1
    ctx.created["contributions"] += len(rows)
