"""Pulling a #1lib1ref drive from two wikis, and refreshing the activity scores.

    .venv/bin/python bench/contributions.py [--database-url URL] [--keep] [--no-scores]

1. Builds a fresh PostgreSQL database, and two fake wikis on loopback (tests.wiki_server,
   the MediaWiki 1.39 API as recorded in tests/fixtures) holding 1,000 accounts and 20,000
   revisions between them, of which 3,000 carry a hashtag; 1,000 librarians at 200
   libraries have those accounts.
2. Pulls the drive once with ``drives.pulls.contributions_pull``, counting the
   HTTP requests each wiki received by kind, then pulls again (nothing new).
3. Prints users, requests (and per 50 users), revisions stored, wall time, and checks the
   aim: at most ceil(users/50) usercontribs requests per wiki per result page, plus the
   batches of revision texts — no request per user or per revision.
4. The wiki-wide capture of every participant (``list=recentchanges``): a third fake wiki
   with 200,000 changes in a drive's window by 20,000 accounts, 2 % of them with a hashtag.
   Captured once timed and twice under tracemalloc (the whole window, then half of it: the
   pulling process's peak must stay flat, page by page, never the window in memory), and
   compared in the same run with a bare loop that only fetches and parses the same pages.
   Prints requests by kind (aim: recentchanges requests <= ceil(changes / 500) + a few),
   wall times, rows stored, peaks, and the ratio bare / capture (aim >= 0.5).
5. Then runs bench/scores.py (score refresh over 1,000,000 signals against a plain SQL
   GROUP BY in the same run) unless --no-scores.

A measurement, not a test: exit 0 whatever the figures; non-zero only when setup fails.
"""

from __future__ import annotations

import argparse
import math
import os
import random
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))

from bench.public_pages import SetupError, database_close, database_create, database_drop, step  # noqa: E402

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/outreach_bench_contributions"
USERS, LIBRARIES, REVISIONS, TAGGED = 1000, 200, 20_000, 3000
WIKIS = ("frwiki", "dewiki")
WINDOW = (date(2027, 1, 15), date(2027, 2, 5))
# The recentchanges capture: changes in the window, the share with a hashtag, the accounts.
CHANGES, TAGGED_SHARE, PARTICIPANTS = 200_000, 0.02, 20_000
CAPTURE_WINDOW = (date(2027, 5, 1), date(2027, 5, 20))


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL)
    parser.add_argument("--keep", action="store_true", help="leave the database for inspection")
    parser.add_argument("--no-scores", action="store_true", help="skip bench/scores.py")
    parser.add_argument("--no-capture", action="store_true", help="skip the recentchanges capture")
    parser.add_argument("--changes", type=int, default=CHANGES, help="changes in the window")
    return parser.parse_args()


def wikis_build(rng: random.Random):
    """Two fake wikis, the same 1,000 accounts on both, 10,000 revisions each."""
    from tests.wiki_server import WikiServer, load_exchanges

    exchanges = load_exchanges()
    servers = {}
    names = [f"Librarian {n:04d}" for n in range(USERS)]
    tagged_left = TAGGED
    revid = 100
    for code in WIKIS:
        server = WikiServer(exchanges=exchanges)
        for n, name in enumerate(names):
            server.add_user(name, 100 + n)
        per_wiki = REVISIONS // len(WIKIS)
        tagged_here = tagged_left // 2 if code == WIKIS[0] else tagged_left
        tagged_left -= tagged_here
        tagged_slots = set(rng.sample(range(per_wiki), tagged_here))
        start = datetime(*WINDOW[0].timetuple()[:3], 8, tzinfo=UTC)
        texts: dict[int, str] = {}  # the last text of each user's page
        last: dict[int, int] = {}  # and its last revision
        for slot in range(per_wiki):
            user = slot % USERS
            pageid = 1000 + user
            text = texts.get(pageid) or f"'''Page {user}''' of {code}.\n"
            if slot in tagged_slots:
                text += f"\nFait {slot}.<ref>Source {slot}, p. {slot % 300}.</ref>"
                comment = rng.choice(["ajout de source #1lib1ref", "(#1Bib1Ref) ref", "＃1lib1ref"])
            elif rng.random() < 0.2:
                text += f"\nPhrase {slot} sans source."
                comment = "ajout"
            else:  # a typo: same size
                swap = ("Page", "page") if "Page" in text else ("page", "Page")
                text = text.replace(*swap, 1)
                comment = "typo"
            revid += 1
            server.add_revision(
                revid=revid,
                parentid=last.get(pageid, 0),
                pageid=pageid,
                ns=0,
                title=f"Article {user}",
                user=names[user],
                timestamp=start + timedelta(minutes=slot // 2),
                comment=comment,
                text=text,
            )
            last[pageid], texts[pageid] = revid, text
        servers[code] = server
    return servers, names


def populate(names: list[str]) -> None:
    from libraries.models import Librarian, Library, Region

    region = Region.objects.create(name="Vaud", slug="vaud")
    libraries = Library.objects.bulk_create(
        Library(
            name=f"Bibliothèque {n}", slug=f"bibliotheque-{n}", region=region, city=f"Ville {n}"
        )
        for n in range(LIBRARIES)
    )
    Librarian.objects.bulk_create(
        Librarian(
            library=libraries[n % LIBRARIES],
            name=f"Librarian {n}",
            email=f"librarian{n}@example.org",
            wiki_username=name,
        )
        for n, name in enumerate(names)
    )


def main() -> int:
    args = parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="outreach-bench-contributions-"))
    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "outreach.settings",
            "DATABASE_URL": args.database_url,
            "WIKI_CACHE_DIR": str(scratch / "pywikibot"),
            "CELERY_BROKER_URL": "",
        }
    )
    rng = random.Random("outreach-bench-contributions")
    servers, created = {}, False
    try:
        database_create(args.database_url)
        created = True
        import django

        django.setup()
        from django.conf import settings
        from django.core.management import call_command

        with step("migrate"):
            call_command("migrate", verbosity=0)
        with step(f"two fake wikis: {USERS} accounts, {REVISIONS} revisions, {TAGGED} tagged"):
            servers, names = wikis_build(rng)
            for server in servers.values():
                server.start()
            settings.WIKIS = {code: server.api_url for code, server in servers.items()}
        with step(f"{USERS} librarians at {LIBRARIES} libraries"):
            populate(names)
        measure(servers)
        if not args.no_capture:
            capture_measure(rng)
    except SetupError as error:
        print(f"setup failed: {error}", file=sys.stderr)
        return 1
    finally:
        for server in servers.values():
            server.stop()
        if created:
            database_close()
            if args.keep:
                print(f"database kept: {args.database_url}")
            else:
                database_drop(args.database_url)
    if not args.no_scores:
        print("\n--- bench/scores.py ---", flush=True)
        subprocess.run([sys.executable, str(BASE_DIR / "bench" / "scores.py")], check=False)
    return 0


def measure(servers) -> None:
    from drives.models import Contribution, Drive
    from drives.pulls import contributions_pull

    drive = Drive.objects.create(
        title="#1lib1ref bench",
        hashtags="#1lib1ref #1bib1ref",
        wikis=" ".join(WIKIS),
        starts_on=WINDOW[0],
        ends_on=WINDOW[1],
    )
    now = datetime(2027, 3, 1, tzinfo=UTC)
    for server in servers.values():
        server.requests.clear()
        server.now = now
    started = time.monotonic()
    run = contributions_pull(drive=drive, now=now)
    wall = time.monotonic() - started
    print(f"\npull: {run.status} {run.errors}")
    kinds = {
        code: Counter(
            r.get("list") or r.get("prop") or r.get("meta") or r.get("action")
            for r in server.requests
        )
        for code, server in servers.items()
    }
    stored = Contribution.objects.in_drive(drive)
    print(f"{'wiki':8} {'users':>6} {'users req':>9} {'contribs req':>12} {'per 50 users':>12} "
          f"{'texts req':>9} {'other':>6} {'total':>6}")  # fmt: skip
    total_requests, within = 0, True
    for code, counts in kinds.items():
        users_batches = math.ceil(USERS / 50)
        contribs = counts["usercontribs"]
        texts = counts["revisions"]
        other = sum(counts.values()) - counts["users"] - contribs - texts  # incl. recentchanges
        total_requests += sum(counts.values())
        print(
            f"{code:8} {USERS:>6} {counts['users']:>9} {contribs:>12} "
            f"{contribs / users_batches:>12.2f} {texts:>9} {other:>6} {sum(counts.values()):>6}"
        )
        kept = stored.filter(wiki=code)
        text_batches = math.ceil(
            len(
                set(kept.values_list("revid", flat=True))
                | set(kept.values_list("parentid", flat=True))
            )
            / 50
        )
        within &= contribs <= users_batches * max(
            1, math.ceil(REVISIONS / len(WIKIS) / USERS * 50 / 500)
        )
        print(
            f"         kept here: {kept.count()} edits; their texts alone: {text_batches} batches"
        )
    print(
        f"\nrevisions kept: {stored.count()} ({stored.filter(tagged=True).count()} tagged, "
        f"{stored.filter(tagged=False).count()} untagged kept apart); edits seen {run.edits_seen}"
    )
    print(
        f"HTTP requests: {total_requests} (the module counted {run.requests}); "
        f"wall time {wall:.1f} s"
    )
    again_started = time.monotonic()
    for server in servers.values():
        server.requests.clear()
    again = contributions_pull(drive=drive, now=now)
    print(
        f"pull again: {again.status}, {again.edits_kept} new, "
        f"{sum(len(s.requests) for s in servers.values())} requests, "
        f"{time.monotonic() - again_started:.1f} s"
    )
    verdict = "PASS" if within and run.status == "done" else "BELOW"
    print(
        "\naim: usercontribs requests <= ceil(users/50) per wiki per result page, "
        f"plus the batches of texts\n  {verdict}"
    )


# The recentchanges capture ------------------------------------------------------------------


def capture_wiki_build(rng: random.Random, changes: int):
    """A wiki of ``changes`` edits in CAPTURE_WINDOW by PARTICIPANTS accounts (a few bots),
    TAGGED_SHARE of them with a hashtag; short texts, one reference per tagged edit."""
    from tests.wiki_server import WikiServer, load_exchanges

    server = WikiServer(exchanges=load_exchanges())
    for n in range(PARTICIPANTS):
        server.add_user(f"Participant {n:05d}", 10_000 + n, ("bot",) if n % 500 == 0 else ())
    start = datetime(*CAPTURE_WINDOW[0].timetuple()[:3], tzinfo=UTC)
    span = (CAPTURE_WINDOW[1] - CAPTURE_WINDOW[0]).total_seconds()
    last: dict[int, int] = {}
    tagged = 0
    for n in range(changes):
        user = int(rng.random() ** 2 * PARTICIPANTS)
        pageid = 50_000 + rng.randrange(changes // 4 or 1)
        hashtag = rng.random() < TAGGED_SHARE
        tagged += hashtag
        server.add_revision(
            revid=10_000_000 + n,
            parentid=last.get(pageid, 0),
            pageid=pageid,
            ns=0,
            title=f"Article {pageid}",
            user=f"Participant {user:05d}",
            timestamp=start + timedelta(seconds=span * n / changes),
            comment="ajout de source #1lib1ref" if hashtag else "modification",
            text=f"Texte {n}." + ("<ref>Source.</ref>" if hashtag else ""),
        )
        last[pageid] = 10_000_000 + n
    server.now = datetime(*CAPTURE_WINDOW[1].timetuple()[:3], tzinfo=UTC) + timedelta(days=2)
    server._rc_rows()  # the wiki's own index, built before anything is measured
    return server, tagged


def capture_measure(rng: random.Random) -> None:
    import tracemalloc

    from django.conf import settings
    from django.db import connection

    from drives import pulls, wiki
    from drives.models import Contribution, Drive, Lead

    changes = int(os.environ.get("BENCH_CHANGES", CHANGES))
    with step(f"a wiki of {changes:,} changes, {TAGGED_SHARE:.0%} with a hashtag"):
        server, tagged = capture_wiki_build(rng, changes)
        server.start()
        settings.WIKIS = {**settings.WIKIS, "bigwiki": server.api_url}
    now = server.now
    start = datetime(*CAPTURE_WINDOW[0].timetuple()[:3], tzinfo=UTC)
    end = datetime(*CAPTURE_WINDOW[1].timetuple()[:3], tzinfo=UTC) + timedelta(days=1)
    middle = start + (end - start) / 2
    try:
        wiki.users_info("bigwiki", ["Participant 00001"])  # the site, built once beforehand

        def capture(title, until, *, traced=False):
            drive = Drive.objects.create(
                title=title,
                hashtags="#1lib1ref",
                wikis="bigwiki",
                starts_on=CAPTURE_WINDOW[0],
                ends_on=CAPTURE_WINDOW[1],
            )
            run = pulls.PullRun.objects.create(drive=drive)
            run.requests_before = wiki.request_count()
            pattern = pulls.hashtag_pattern(pulls.hashtags_parse(drive.hashtags))
            server.requests.clear()
            if traced:
                tracemalloc.start()
            started = time.monotonic()
            pulls._capture_recent(run, drive, "bigwiki", {}, pattern, start, until, False, now=now)
            wall = time.monotonic() - started
            peak = tracemalloc.get_traced_memory()[1] if traced else 0
            if traced:
                tracemalloc.stop()
            kinds = Counter(
                r.get("list") or r.get("prop") or r.get("meta") for r in server.requests
            )
            return drive, run, wall, peak, kinds

        with step("capture, timed"):
            drive, run, wall, _peak, kinds = capture("capture", end)
        with step("then the references of what it kept, texts 50 at a time"):
            server.requests.clear()
            texts_started = time.monotonic()
            pulls.texts_read_again(drive=drive, wiki_code="bigwiki")
            texts_wall = time.monotonic() - texts_started
            texts_requests = len(server.requests)
        stored = Contribution.objects.in_drive(drive)
        kept, kept_tagged, leads = (
            stored.count(),
            stored.filter(tagged=True).count(),
            (Lead.objects.filter(wiki="bigwiki").count()),
        )
        with step("the bare loop: fetch and parse the same pages"):
            server.requests.clear()
            bare_started = time.monotonic()
            rows = sum(len(edits) for edits, _token in wiki.recent_changes(
                "bigwiki", start=max(start, now - timedelta(days=settings.WIKI_RC_MAX_AGE_DAYS)),
                end=end,
            ))  # fmt: skip
            bare = time.monotonic() - bare_started
        # Stored once: the traced runs find the edits stored and only link them.
        Contribution.objects.filter(wiki="bigwiki").delete()
        Lead.objects.filter(wiki="bigwiki").delete()
        with step("capture under tracemalloc, half the window"):
            _d, _r, _w, peak_half, _k = capture("half", middle, traced=True)
        Contribution.objects.filter(wiki="bigwiki").delete()
        with step("capture under tracemalloc, the whole window"):
            _d, _r, _w, peak_full, _k = capture("whole", end, traced=True)
    finally:
        server.stop()
    limit = math.ceil(changes / wiki.RECENT_CHANGES_PER_REQUEST) + 3
    rc = kinds["recentchanges"]
    ratio = bare / wall if wall else 0.0
    print(f"\nrecentchanges capture over {changes:,} changes ({tagged:,} with a hashtag):")
    print(f"  requests: recentchanges {rc} (aim <= {limit}), other {sum(kinds.values()) - rc}; "
          f"then texts {texts_requests} ({texts_wall:.1f} s) for the references")  # fmt: skip
    print(f"  rows listed by the bare loop: {rows:,} (bots left out)")
    print(f"  stored: {kept:,} edits kept, {kept_tagged:,} tagged; {leads:,} leads; "
          f"edits seen {run.edits_seen:,}")  # fmt: skip
    print(f"  wall time: capture {wall:.1f} s, bare loop {bare:.1f} s; ratio bare / capture "
          f"{ratio:.2f} (aim >= 0.5)")  # fmt: skip
    print(f"  peak Python memory of the capture: half the window {peak_half / 2**20:.1f} MiB, "
          f"the whole window {peak_full / 2**20:.1f} MiB "
          f"(x{peak_full / peak_half if peak_half else 0:.2f}; aim: flat)")  # fmt: skip
    flat = peak_full <= 1.5 * peak_half
    verdict = "PASS" if rc <= limit and ratio >= 0.5 and flat else "BELOW"
    print(f"  {verdict}")
    connection.close()


if __name__ == "__main__":
    sys.exit(main())
