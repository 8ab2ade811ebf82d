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
4. Then runs bench/scores.py (score refresh over 1,000,000 signals against a plain SQL
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


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL)
    parser.add_argument("--keep", action="store_true", help="leave the database for inspection")
    parser.add_argument("--no-scores", action="store_true", help="skip bench/scores.py")
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
    stored = Contribution.objects.filter(drive=drive)
    print(f"{'wiki':8} {'users':>6} {'users req':>9} {'contribs req':>12} {'per 50 users':>12} "
          f"{'texts req':>9} {'other':>6} {'total':>6}")  # fmt: skip
    total_requests, within = 0, True
    for code, counts in kinds.items():
        users_batches = math.ceil(USERS / 50)
        contribs = counts["usercontribs"]
        texts = counts["revisions"]
        other = sum(counts.values()) - counts["users"] - contribs - texts
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
        f"\nrevisions stored: {stored.count()} ({stored.filter(tagged=True).count()} tagged, "
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


if __name__ == "__main__":
    sys.exit(main())
