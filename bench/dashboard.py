"""The coordinator's pages at two sizes of data: query counts and latencies, large / small.

    .venv/bin/python bench/dashboard.py [--database-url URL] [--keep] [--requests N]

1. Builds two fresh PostgreSQL databases (dropped first if they exist), ``…_small`` and
   ``…_large``, migrates them and fills them in SQL (INSERT … SELECT generate_series, not the
   ORM): the large one with 20 regions, 5,000 libraries, 50,000 librarians, 500 meetup
   series, 10,000 meetings, 100,000 RSVPs, 300,000 contributions to five #1lib1ref drives and
   1,000,000 activity signals over two years, plus the pipeline's history, 90 days of score
   snapshots and a few campaigns with their deliveries and answers; the small one with a
   tenth of each (regions, mailing lists and campaigns stay as they are). Then the score
   refresh (``libraries.scoring.scores_refresh``), the #1lib1ref tallies the dashboard reads
   (``drives.services.contribution_tallies_refresh``, as after a pull) and VACUUM
   ANALYZE, as on a database that grew over time. Prints each step's time and the rows of
   every table.
2. Measures, in a process of its own per database (Django's test Client, in-process, logged
   in as a coordinator, DEBUG off), the dashboard, the library list, the page of the library
   with the most signals (the worst case) and the shortlist: the queries of a request
   (``CaptureQueriesContext``) and the latency of 30 requests after 3 of warm-up, half of
   them in a first round (small then large) and half in a second, so that both sizes see
   the machine's load alike.
3. Prints, per page, the queries and the median and 95th percentile latency at both sizes,
   the ratio large / small, and PASS or FAIL against the aim: the same number of queries at
   both sizes and a ratio of at most 1.5. For a page that fails, the statements whose time
   grew most, and the plan (EXPLAIN ANALYZE) of the slowest one on the large database.

A measurement, not a test: it exits 0 whatever the figures are, and non-zero only when the
setup fails. The databases are dropped at the end unless --keep.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from datetime import date, timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))

from bench.public_pages import (  # noqa: E402  the benchmarks share their plumbing
    SetupError,
    database_close,
    database_create,
    database_drop,
    step,
)
from bench.scores import KIND_SHARES  # noqa: E402  the same mix of signals

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/outreach_bench_dashboard"
SIZES = ("small", "large")
# Rows at the large size; the small size has a tenth of each.
LARGE = {
    "libraries": 5_000,
    "librarians": 50_000,
    "series": 500,
    "meetings": 10_000,
    "rsvps": 100_000,
    "contributions": 300_000,
    "signals": 1_000_000,
}
SMALL_FRACTION = 0.1
AIM_RATIO = 1.5
COORDINATOR = "bench-coordinator"
# Requests whose statements are captured per page and size (after the timed ones).
PROFILE_REQUESTS = 3
SNAPSHOT_DAYS = 90
UPCOMING_MONTHS = 4  # of each series' meetings, the last ones are to come
# A geography, not a volume: the same 20 regions at both sizes.
REGIONS = [
    ("Vaud", "vaud", "fr"),
    ("Genève", "geneve", "fr"),
    ("Neuchâtel", "neuchatel", "fr"),
    ("Fribourg", "fribourg", "fr"),
    ("Valais", "valais", "fr"),
    ("Jura", "jura", "fr"),
    ("Bern", "bern", "de"),
    ("Zürich", "zurich", "de"),
    ("Basel-Stadt", "basel-stadt", "de"),
    ("Basel-Landschaft", "basel-landschaft", "de"),
    ("Luzern", "luzern", "de"),
    ("Aargau", "aargau", "de"),
    ("St. Gallen", "st-gallen", "de"),
    ("Graubünden", "graubunden", "de"),
    ("Ticino", "ticino", "it"),
    ("Solothurn", "solothurn", "de"),
    ("Thurgau", "thurgau", "de"),
    ("Schwyz", "schwyz", "de"),
    ("Zug", "zug", "de"),
    ("Schaffhausen", "schaffhausen", "de"),
]
# (table, label) of the row counts printed for both sizes.
TABLES = [
    ("libraries_region", "regions"),
    ("libraries_library", "libraries"),
    ("libraries_librarian", "librarians"),
    ("libraries_mailinglist", "mailing lists"),
    ("libraries_mailinglist_members", "list memberships"),
    ("libraries_librarystatuschange", "status changes"),
    ("libraries_activitysignal", "activity signals"),
    ("libraries_libraryscoresnapshot", "score snapshots"),
    ("meetings_meetupseries", "meetup series"),
    ("meetings_meeting", "meetings"),
    ("meetings_rsvp", "RSVPs"),
    ("campaigns_campaign", "campaigns"),
    ("campaigns_delivery", "deliveries"),
    ("drives_contribution", "contributions"),
]


def main() -> int:
    args = parse_args()
    if args.child:
        return child_main(args)
    started = time.monotonic()
    urls = {size: sized_url(args.database_url, size) for size in SIZES}
    scratch = Path(tempfile.mkdtemp(prefix="outreach-bench-dashboard-"))
    (scratch / "static").mkdir()
    created: list[str] = []
    try:
        fills = {}
        for size in SIZES:
            counts = sized_counts(size, args.scale)
            print(
                f"\n{size}: {counts['libraries']:,} libraries, {counts['librarians']:,} "
                f"librarians, {counts['series']:,} series, {counts['meetings']:,} meetings, "
                f"{counts['rsvps']:,} RSVPs, {counts['contributions']:,} contributions, "
                f"{counts['signals']:,} signals",
                flush=True,
            )
            database_create(urls[size])
            created.append(urls[size])
            fills[size] = child_run(args, "fill", size, urls[size], scratch)
        print()
        measures: dict[str, list[dict]] = {size: [] for size in SIZES}
        for round_number in range(1, args.rounds + 1):
            for size in SIZES:
                with step(f"measure, round {round_number} of {args.rounds}: {size}"):
                    measures[size].append(child_run(args, "measure", size, urls[size], scratch))
        report(args, fills, measures, large_url=urls["large"])
        print(f"\nwhole run: {time.monotonic() - started:.0f} s")
    except SetupError as error:
        print(f"setup failed: {error}", file=sys.stderr)
        return 1
    finally:
        database_close()
        for url in created:
            if args.keep:
                print(f"database kept: {url}")
            else:
                database_drop(url)
        shutil.rmtree(scratch, ignore_errors=True)
    return 0


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--database-url",
        default=DEFAULT_DATABASE_URL,
        help="the databases are this one's name followed by _small and _large",
    )
    parser.add_argument("--keep", action="store_true", help="leave the databases for inspection")
    parser.add_argument(
        "--requests", type=int, default=30, help="timed requests per page and size, all rounds"
    )
    parser.add_argument("--warmup", type=int, default=3, help="untimed requests first, per round")
    parser.add_argument(
        "--rounds", type=int, default=2, help="rounds of small then large, to even out the load"
    )
    parser.add_argument(
        "--scale", type=float, default=1.0, help="multiplies every row count (0.1: a quick try)"
    )
    # The benchmark runs itself once per database and step: one Django per database.
    parser.add_argument("--child", choices=["fill", "measure"], help=argparse.SUPPRESS)
    parser.add_argument("--size", choices=SIZES, help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.requests < 2 or args.rounds < 1 or args.warmup < 0 or args.scale <= 0:
        parser.error("--requests must be 2 or more, --rounds 1 or more, --scale above 0")
    return args


def sized_url(database_url: str, size: str) -> str:
    parts = urlsplit(database_url)
    name = parts.path.lstrip("/")
    if not name:
        raise SetupError(f"no database name in {database_url!r}")
    return urlunsplit(parts._replace(path=f"/{name}_{size}"))


def sized_counts(size: str, scale: float) -> dict[str, int]:
    fraction = scale * (SMALL_FRACTION if size == "small" else 1.0)
    return {name: max(1, round(count * fraction)) for name, count in LARGE.items()}


def child_env(database_url: str, scratch: Path) -> dict[str, str]:
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "bench.settings",
        "DATABASE_URL": database_url,
        # As in production: no query log kept by the debug cursor, cached templates.
        "DEBUG": "0",
        "SECRET_KEY": "bench-only-dummy-secret-key-signs-nothing-that-leaves-this-machine",
        "ALLOWED_HOSTS": "testserver",
        "SECURE_SSL_REDIRECT": "0",
        "SECURE_HSTS_SECONDS": "0",
        "SECURE_COOKIES": "0",
        "BENCH_STATIC_ROOT": str(scratch / "static"),
        "LOG_LEVEL": "WARNING",
    }


def child_run(args, task: str, size: str, database_url: str, scratch: Path) -> dict:
    result = scratch / f"{task}-{size}.json"
    result.unlink(missing_ok=True)
    per_round = -(-args.requests // args.rounds)
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--child",
        task,
        "--size",
        size,
        "--result",
        str(result),
        "--scale",
        repr(args.scale),
        "--requests",
        str(per_round),
        "--warmup",
        str(args.warmup),
    ]
    completed = subprocess.run(
        command, cwd=BASE_DIR, env=child_env(database_url, scratch), stdin=subprocess.DEVNULL
    )
    if completed.returncode != 0 or not result.exists():
        raise SetupError(f"{task} {size}: the child process failed (exit {completed.returncode})")
    return json.loads(result.read_text())


# The child processes ------------------------------------------------------------------------


def child_main(args: argparse.Namespace) -> int:
    import django

    try:
        django.setup()
        if args.child == "fill":
            result = fill(sized_counts(args.size, args.scale))
        else:
            result = measure(args)
    except SetupError as error:
        print(f"\n{args.size}: {error}", file=sys.stderr)
        return 1
    except Exception as error:  # a page or a statement that broke: nothing was measured
        import traceback

        traceback.print_exc()
        print(f"\n{args.size}: {error!r}", file=sys.stderr)
        return 1
    finally:
        database_close()
    Path(args.result).write_text(json.dumps(result))
    return 0


# The data -----------------------------------------------------------------------------------


def fill(counts: dict[str, int]) -> dict:
    """Migrate, fill in SQL, refresh the scores, analyze; return the fill's figures."""
    from django.core.management import call_command
    from django.db import connection

    started = time.monotonic()
    with step("migrate"):
        call_command("migrate", verbosity=0, interactive=False)
    migrated = time.monotonic()
    libraries = counts["libraries"]
    per_library = max(1, counts["librarians"] // libraries)
    per_series = max(1, counts["meetings"] // counts["series"])
    per_meeting = max(1, counts["rsvps"] // (counts["series"] * per_series))
    with connection.cursor() as cursor:
        cursor.execute("SELECT setseed(0.20261123)")
        with step(f"20 regions, 2 mailing lists each, {libraries:,} libraries, their history"):
            fill_libraries(cursor, libraries=libraries)
        with step(f"{libraries * per_library:,} librarians, {per_library} per library"):
            fill_librarians(cursor, per_library=per_library)
        with step(f"{counts['signals']:,} activity signals over two years"):
            fill_signals(cursor, signals=counts["signals"], per_library=per_library)
        with step(f"{SNAPSHOT_DAYS} days of score snapshots"):
            fill_snapshots(cursor)
        with step(
            f"{counts['series']:,} series, {counts['series'] * per_series:,} meetings, "
            f"{per_meeting} RSVPs each"
        ):
            fill_meetings(
                cursor, series=counts["series"], per_series=per_series, per_meeting=per_meeting
            )
        with step("campaigns, their deliveries and answers"):
            fill_campaigns(cursor, deliveries=counts["librarians"] // 5)
        with step(f"{counts['contributions']:,} contributions to five drives"):
            fill_contributions(cursor, contributions=counts["contributions"])
        for table in ("bench_library", "bench_librarian", "bench_meeting", "bench_drive"):
            cursor.execute(f"DROP TABLE IF EXISTS {table}")
    with step("scores_refresh()"):
        from libraries.scoring import scores_refresh

        scores_refresh()
    # What every pull, count-in and night does: the dashboard reads these tallies.
    with step("contribution_tallies_refresh()"):
        from drives.services import contribution_tallies_refresh

        contribution_tallies_refresh()
    # Planner statistics and the visibility map, as autovacuum keeps them on a database that
    # grew over time: right after a bulk load the planner would guess wrong.
    with step("vacuum analyze"), connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
    filled = time.monotonic()
    rows = {}
    with connection.cursor() as cursor:
        for table, _label in TABLES:
            cursor.execute(f"SELECT count(*) FROM {table}")
            rows[table] = cursor.fetchone()[0]
        # The worst case of the library page: the library with the most signals.
        cursor.execute(
            "SELECT library.slug, count(*) FROM libraries_activitysignal AS signal"
            " JOIN libraries_library AS library ON library.id = signal.library_id"
            " GROUP BY library.id ORDER BY count(*) DESC, library.id LIMIT 1"
        )
        slug, signals = cursor.fetchone()
    return {
        "rows": rows,
        "migrate_seconds": migrated - started,
        "fill_seconds": filled - migrated,
        "library_slug": slug,
        "library_signals": signals,
    }


def fill_libraries(cursor, *, libraries: int) -> None:
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    from core.roles import COORDINATORS
    from libraries.models import MailingList, Region

    user = get_user_model().objects.create_user(
        username=COORDINATOR, email="coordinator@bench.example.org"
    )
    user.groups.add(Group.objects.get(name=COORDINATORS))
    regions = Region.objects.bulk_create(
        Region(name=name, slug=slug, language=language, time_zone="Europe/Zurich")
        for name, slug, language in REGIONS
    )
    MailingList.objects.bulk_create(
        MailingList(
            name=f"Bibliothèques {region.name} {n}",
            slug=f"bibliotheques-{region.slug}-{n}",
            posting_address=f"bibliotheques-{region.slug}-{n}@lists.bench.example.org",
            subscribed_as="outreach@bench.example.org",
            network=f"Réseau des bibliothèques {region.name}",
            region=region,
            language=region.language,
        )
        for region in regions
        for n in (1, 2)
    )
    # Half prospects, then fewer and fewer along the pipeline; one in ten bilingual.
    cursor.execute(
        """
        INSERT INTO libraries_library (name, slug, region_id, city, address, website, languages,
            status, status_changed_at, score_base, notes, created_at, updated_at)
        SELECT 'Bibliothèque ' || g.i, 'bibliotheque-' || g.i,
            r.ids[1 + mod(g.i, array_length(r.ids, 1))],
            'Ville ' || mod(g.i, 700), 'Rue de la Gare ' || (mod(g.i, 90) + 1),
            'https://bibliotheque-' || g.i || '.example.org',
            CASE WHEN mod(g.i, 10) = 0 THEN 'de,fr'
                ELSE r.languages[1 + mod(g.i, array_length(r.ids, 1))] END,
            CASE WHEN g.x < 0.50 THEN 'prospect' WHEN g.x < 0.75 THEN 'contacted'
                WHEN g.x < 0.85 THEN 'interested' WHEN g.x < 0.95 THEN 'partner'
                ELSE 'dormant' END,
            NULL, NULL, '', now() - interval '800 days', now()
        FROM (SELECT i, random() AS x FROM generate_series(1, %s) AS i) AS g,
            (SELECT array_agg(id ORDER BY id) AS ids, array_agg(language ORDER BY id) AS languages
             FROM libraries_region) AS r
        ORDER BY g.i
        """,
        [libraries],
    )
    # Each library numbered from 0, so that random numbers pick one by a join.
    cursor.execute(
        """
        CREATE TEMPORARY TABLE bench_library AS
        SELECT (row_number() OVER (ORDER BY library.id) - 1)::int AS n, library.id,
            library.region_id, library.status, library.city, region.language
        FROM libraries_library AS library
        JOIN libraries_region AS region ON region.id = library.region_id
        """
    )
    cursor.execute("ALTER TABLE bench_library ADD PRIMARY KEY (n)")
    cursor.execute("ANALYZE bench_library")
    cursor.execute(
        """
        INSERT INTO libraries_mailinglist_members (mailinglist_id, library_id)
        SELECT lists.ids[1 + mod(library.n, array_length(lists.ids, 1))], library.id
        FROM bench_library AS library
        JOIN (SELECT region_id, array_agg(id ORDER BY id) AS ids FROM libraries_mailinglist
              GROUP BY region_id) AS lists ON lists.region_id = library.region_id
        """
    )
    # The pipeline's history: the creation, then one step per status up to the current one,
    # the last a few days to three months ago.
    cursor.execute(
        """
        INSERT INTO libraries_librarystatuschange (library_id, from_status, to_status,
            changed_at, changed_by_id, source, reason)
        SELECT library.id, '', 'prospect', now() - interval '800 days', NULL::integer, 'import', ''
        FROM bench_library AS library
        UNION ALL
        SELECT library.id, path.statuses[move.n], path.statuses[move.n + 1],
            now() - ((path.reached - move.n) * 40 + mod(library.n, 97) + 1) * interval '1 day'
                - mod(library.n, 1440) * interval '1 minute',
            NULL, 'manual', 'Bench: one step along the pipeline'
        FROM bench_library AS library
        CROSS JOIN LATERAL (
            SELECT ARRAY['prospect', 'contacted', 'interested', 'partner', 'dormant'] AS statuses,
                array_position(
                    ARRAY['prospect', 'contacted', 'interested', 'partner', 'dormant'],
                    library.status::text
                ) - 1 AS reached
        ) AS path
        CROSS JOIN LATERAL generate_series(1, path.reached) AS move(n)
        """
    )
    cursor.execute(
        """
        UPDATE libraries_library AS library SET status_changed_at = latest.at
        FROM (SELECT library_id, max(changed_at) AS at FROM libraries_librarystatuschange
              GROUP BY library_id) AS latest
        WHERE latest.library_id = library.id
        """
    )


def fill_librarians(cursor, *, per_library: int) -> None:
    """Librarians, each with an address of their own; one in five has a wiki account."""
    cursor.execute(
        """
        INSERT INTO libraries_librarian (library_id, name, email, role, language,
            wiki_username, home_wiki, consent_source, consent_at, unsubscribed_at,
            shortlist_rank, notes, created_at, updated_at)
        SELECT library.id, 'Bibliothécaire ' || library.n || '-' || k,
            'librarian-' || library.n || '-' || k || '@bench.example.org',
            (ARRAY['Directrice', 'Bibliothécaire', 'Médiatrice', 'Assistant'])[1 + mod(k, 4)],
            library.language,
            CASE WHEN mod(library.n + k, 5) = 0 THEN 'BenchLib ' || library.n || '-' || k
                ELSE '' END,
            CASE WHEN mod(library.n + k, 5) <> 0 THEN ''
                WHEN library.language = 'de' THEN 'dewiki' ELSE 'frwiki' END,
            'Annuaire des bibliothèques (bench)', current_date - mod(library.n * 7 + k, 700),
            CASE WHEN mod(library.n * 13 + k, 33) = 0 THEN now() - interval '30 days' END,
            NULL, '', now() - interval '700 days', now()
        FROM bench_library AS library CROSS JOIN generate_series(0, %s - 1) AS k
        ORDER BY library.n, k
        """,
        [per_library],
    )
    cursor.execute(
        """
        CREATE TEMPORARY TABLE bench_librarian AS
        SELECT (row_number() OVER (ORDER BY librarian.id) - 1)::int AS n, librarian.id,
            librarian.library_id, library.n AS library_n,
            (row_number() OVER (PARTITION BY librarian.library_id ORDER BY librarian.id)
                - 1)::int AS k,
            librarian.name, librarian.email, librarian.language,
            librarian.wiki_username, librarian.home_wiki
        FROM libraries_librarian AS librarian
        JOIN bench_library AS library ON library.id = librarian.library_id
        """
    )
    cursor.execute("ALTER TABLE bench_librarian ADD PRIMARY KEY (n)")
    cursor.execute("CREATE UNIQUE INDEX ON bench_librarian (library_n, k)")
    cursor.execute("ANALYZE bench_librarian")


def fill_signals(cursor, *, signals: int, per_library: int) -> None:
    """Signals as scores.py makes them: skewed towards a few very active libraries (the square
    of a uniform number), none for the last tenth, recent ones more often, 60% naming one of
    the library's librarians."""
    kinds, bounds, total = list(KIND_SHARES), [], 0
    for kind in kinds:
        total += KIND_SHARES[kind]
        bounds.append(total)
    whens = (f"WHEN r.k < {bound} THEN '{kind}'" for kind, bound in zip(kinds, bounds, strict=True))
    cursor.execute("SELECT count(*) FROM bench_library")
    (libraries,) = cursor.fetchone()
    cursor.execute(
        f"""
        INSERT INTO libraries_activitysignal (library_id, librarian_id, kind, occurred_at,
            source, note, recorded_by_id, created_at)
        SELECT library.id, librarian.id, CASE {" ".join(whens)} END,
            now() - r.age * interval '730 days', 'bench', '', NULL, now()
        FROM (
            SELECT floor(power(random(), 2) * %s * 0.9)::int AS library_n,
                floor(random() * %s)::int AS person, random() AS named,
                random() * %s AS k, power(random(), 1.5) AS age
            FROM generate_series(1, %s)
        ) AS r
        JOIN bench_library AS library ON library.n = r.library_n
        LEFT JOIN bench_librarian AS librarian
            ON r.named < 0.6 AND librarian.library_n = r.library_n AND librarian.k = r.person
        """,
        [libraries, per_library, total, signals],
    )


def fill_snapshots(cursor) -> None:
    """The nightly refresh's trend rows of the last months; tonight's is the refresh's own."""
    cursor.execute("SELECT count(*) FROM bench_library")
    (libraries,) = cursor.fetchone()
    cursor.execute(
        """
        INSERT INTO libraries_libraryscoresnapshot (library_id, date, score, computed_at)
        SELECT library.id, current_date - day,
            100.0 * power(1.0 - library.n / %s::float, 4) * (1 + day / 300.0),
            now() - day * interval '1 day'
        FROM bench_library AS library CROSS JOIN generate_series(1, %s) AS day
        """,
        [libraries, SNAPSHOT_DAYS],
    )


def fill_meetings(cursor, *, series: int, per_series: int, per_meeting: int) -> None:
    """Monthly series at partner-ish libraries, their meetings from the rule (the last
    UPCOMING_MONTHS to come, a few cancelled), and RSVPs: half from librarians, half from
    visitors; attendance marked on the past ones."""
    cursor.execute("SELECT count(*) FROM bench_library")
    (libraries,) = cursor.fetchone()
    cursor.execute(
        """
        INSERT INTO meetings_meetupseries (title, slug, host_library_id, venue, language,
            time_zone, rrule, start_date, start_time, duration, capacity, online_url,
            description, audience, what_to_bring, status, created_at, updated_at)
        SELECT (ARRAY['Wikipermanence', 'Atelier Wikipédia', 'Café Wikimedia Commons',
                'Wiki-Treff'])[1 + mod(i, 4)] || ' ' || library.city || ' ' || i,
            'bench-series-' || i, library.id,
            'Salle de lecture, premier étage. Entrée par la cour.', library.language,
            'Europe/Zurich',
            'FREQ=MONTHLY;BYDAY=+' || (1 + mod(i, 4))
                || (ARRAY['MO', 'TU', 'WE', 'TH', 'FR', 'SA'])[1 + mod(i * 5, 6)],
            (date_trunc('month', now()) - make_interval(months => %s))::date,
            (ARRAY['12:00', '14:00', '17:30', '18:30'])[1 + mod(i, 4)]::time,
            interval '2 hours', CASE WHEN mod(i, 5) = 0 THEN NULL ELSE 8 + mod(i, 3) * 6 END,
            CASE WHEN mod(i, 10) = 0 THEN 'https://meet.example.org/bench-' || i ELSE '' END,
            'Venez découvrir Wikipédia et Wikimedia Commons avec des bénévoles.',
            'Tout public, débutants bienvenus.', 'Un ordinateur portable si possible.',
            'active', now() - interval '600 days', now()
        FROM generate_series(1, %s) AS i
        JOIN bench_library AS library ON library.n = mod(i * 7, %s)
        """,
        [per_series - UPCOMING_MONTHS, series, libraries],
    )
    # The rule's day in each month: the n-th given weekday, at the local start time.
    cursor.execute(
        r"""
        INSERT INTO meetings_meeting (series_id, title, host_library_id, original_start, start,
            "end", time_zone, agenda, capacity, online_url, display_time_zones, cancelled_at,
            cancel_reason, created_at, updated_at)
        SELECT s.id, '', s.host_library_id, o.at, o.at, o.at + s.duration, s.time_zone, '',
            s.capacity, s.online_url, '',
            CASE WHEN mod(s.id * 31 + m.k, 37) = 0 THEN o.at - interval '10 days' END,
            CASE WHEN mod(s.id * 31 + m.k, 37) = 0 THEN 'Bibliothèque fermée' ELSE '' END,
            o.at - interval '90 days', now()
        FROM meetings_meetupseries AS s
        CROSS JOIN LATERAL (
            SELECT k, (s.start_date + make_interval(months => k))::date AS month,
                array_position(ARRAY['MO', 'TU', 'WE', 'TH', 'FR', 'SA', 'SU'],
                    right(s.rrule, 2)) AS weekday,
                substring(s.rrule from 'BYDAY=\+(\d)')::int AS nth
            FROM generate_series(0, %s - 1) AS k
        ) AS m
        CROSS JOIN LATERAL (
            SELECT ((m.month + mod(m.weekday - extract(isodow from m.month)::int + 7, 7)
                + 7 * (m.nth - 1)) + s.start_time) AT TIME ZONE s.time_zone AS at
        ) AS o
        """,
        [per_series],
    )
    cursor.execute(
        """
        CREATE TEMPORARY TABLE bench_meeting AS
        SELECT (row_number() OVER (ORDER BY id) - 1)::int AS n, id, start, "end"
        FROM meetings_meeting
        """
    )
    cursor.execute("SELECT count(*) FROM bench_librarian")
    (librarians,) = cursor.fetchone()
    # Even k: a librarian, a different one for each k of a meeting (7919 is prime to the
    # count of librarians), so one RSVP per person per meeting; odd k: a visitor.
    cursor.execute(
        """
        INSERT INTO meetings_rsvp (meeting_id, librarian_id, name, email, answer, role, guests,
            waitlisted_at, attended, created_at, updated_at)
        SELECT r.meeting_id, librarian.id,
            COALESCE(librarian.name, 'Visiteur ' || r.meeting_n || '-' || r.k),
            COALESCE(librarian.email,
                'visitor-' || r.meeting_n || '-' || r.k || '@bench.example.org'),
            CASE WHEN r.x < 0.7 THEN 'yes' WHEN r.x < 0.85 THEN 'maybe' ELSE 'no' END,
            CASE WHEN r.y < 0.85 THEN 'attendee' WHEN r.y < 0.9 THEN 'host'
                WHEN r.y < 0.95 THEN 'mentor' ELSE 'greeter' END,
            CASE WHEN r.y < 0.15 THEN 1 ELSE 0 END, NULL,
            CASE WHEN r.ends < now() AND r.x < 0.7 THEN r.y < 0.8 END,
            r.starts - (1 + r.y * 30) * interval '1 day', now()
        FROM (
            SELECT meeting.n AS meeting_n, meeting.id AS meeting_id, meeting.start AS starts,
                meeting."end" AS ends, k, random() AS x, random() AS y
            FROM bench_meeting AS meeting CROSS JOIN generate_series(0, %s - 1) AS k
        ) AS r
        LEFT JOIN bench_librarian AS librarian
            ON mod(r.k, 2) = 0 AND librarian.n = mod((r.meeting_n * %s + r.k) * 7919, %s)
        """,
        [per_meeting, per_meeting, librarians],
    )


def fill_campaigns(cursor, *, deliveries: int) -> None:
    """The same nine campaigns and five drives at both sizes: seven campaigns launched (one
    still sending) with their deliveries and, for invitations and follow-ups, answers, some of
    them this week; one scheduled, one draft; five #1lib1ref drives, the last one running
    now."""
    from django.utils import timezone

    from campaigns.models import Campaign, Message
    from drives.models import Drive
    from libraries.models import Region

    now = timezone.now()
    kinds = [
        Campaign.Kind.INVITATION,
        Campaign.Kind.FOLLOW_UP,
        Campaign.Kind.MEETUP_ANNOUNCEMENT,
    ]
    launched = []
    for n in range(7):
        started = now - timedelta(days=2 + 30 * n, hours=n)
        launched.append(
            Campaign(
                title=f"Bench campaign {n + 1}",
                kind=kinds[n % len(kinds)],
                status=Campaign.Status.SENDING if n == 0 else Campaign.Status.SENT,
                filter_librarians=True,
                started_at=started,
                finished_at=None if n == 0 else started + timedelta(hours=3),
                heartbeat_at=now if n == 0 else None,
            )
        )
    others = [
        Campaign(
            title="Bench campaign scheduled",
            status=Campaign.Status.SCHEDULED,
            filter_librarians=True,
            scheduled_at=now + timedelta(days=5),
        ),
        Campaign(title="Bench campaign draft", filter_librarians=True),
    ]
    today = timezone.localdate(now)
    # The four #1lib1ref windows (15 January – 5 February, May) that ended before today, oldest
    # first, then a drive running now.
    past = [
        (starts, ends)
        for year in range(today.year - 3, today.year + 1)
        for starts, ends in (
            (date(year, 1, 15), date(year, 2, 5)),
            (date(year, 5, 1), date(year, 5, 31)),
        )
        if ends < today - timedelta(days=42)
    ]
    windows = [*past[-4:], (today - timedelta(days=42), today + timedelta(days=21))]
    drives = [
        Drive(
            title=f"#1lib1ref {starts:%B %Y}",
            hashtags="#1lib1ref #1bib1ref",
            wikis="frwiki dewiki",
            starts_on=starts,
            ends_on=ends,
            public_leaderboard=True,
        )
        for starts, ends in windows
    ]
    campaigns = Campaign.objects.bulk_create(launched + others)
    drives = Drive.objects.bulk_create(drives)
    Message.objects.bulk_create(
        Message(
            campaign=campaign,
            language="fr",
            subject=f"{campaign.title} : des ateliers Wikipédia dans votre bibliothèque",
            body="Bonjour {{ recipient }},\n\nNous vous proposons …\n\n{{ answer_links }}",
        )
        for campaign in campaigns
    )
    regions = list(Region.objects.order_by("pk"))
    for n, campaign in enumerate(launched + others):
        campaign.regions.set(regions[n % 4 :: 4])
    cursor.execute(
        "CREATE TEMPORARY TABLE bench_drive (n int PRIMARY KEY, id bigint, starts timestamptz,"
        " ends timestamptz)"
    )
    for n, drive in enumerate(drives):
        cursor.execute(
            "INSERT INTO bench_drive VALUES (%s, %s, %s::date + time '08:00',"
            " least(now(), %s::date + time '20:00'))",
            [n, drive.pk, drive.starts_on, drive.ends_on],
        )
    per_campaign = max(1, deliveries // len(launched))
    cursor.execute("SELECT count(*) FROM bench_librarian")
    (librarians,) = cursor.fetchone()
    per_campaign = min(per_campaign, librarians)
    for n, campaign in enumerate(launched):
        answered = campaign.kind in (Campaign.Kind.INVITATION, Campaign.Kind.FOLLOW_UP)
        cursor.execute(
            """
            INSERT INTO campaigns_delivery (campaign_id, email, language, librarian_id,
                library_id, mailing_list_id, state, attempts, next_attempt_at, claimed_at,
                sent_at, message_id, error, moderation, answer, answer_comment, answered_at,
                created_at, updated_at)
            SELECT %(campaign)s, librarian.email, librarian.language, librarian.id,
                librarian.library_id, NULL, d.state, CASE WHEN d.state = 'queued' THEN 0 ELSE 1
                END, NULL, NULL, d.sent_at,
                CASE WHEN d.state = 'sent' THEN '<bench-' || %(campaign)s || '-' || d.j
                    || '@outreach.bench.example.org>' ELSE '' END,
                CASE WHEN d.state = 'failed' THEN '550 5.1.1 mailbox unavailable' ELSE '' END,
                '', d.answer, '',
                CASE WHEN d.answer <> '' THEN least(now(), d.sent_at + d.y * interval '9 days')
                END,
                %(started)s, now()
            FROM (
                SELECT j, x.state, x.y,
                    CASE WHEN x.state = 'sent' THEN %(started)s + j * interval '200 ms' END
                        AS sent_at,
                    CASE WHEN x.state <> 'sent' OR NOT %(answered)s THEN ''
                        WHEN x.y < 0.10 THEN 'yes' WHEN x.y < 0.15 THEN 'maybe'
                        WHEN x.y < 0.20 THEN 'no' ELSE '' END AS answer
                FROM (
                    SELECT j, random() AS y,
                        CASE WHEN %(sending)s AND j >= %(per)s / 2 THEN 'queued'
                            WHEN mod(j, 20) = 7 THEN 'failed'
                            WHEN mod(j, 33) = 5 THEN 'suppressed' ELSE 'sent' END AS state
                    FROM generate_series(0, %(per)s - 1) AS j
                ) AS x
            ) AS d
            JOIN bench_librarian AS librarian
                ON librarian.n = mod(%(offset)s + d.j, %(librarians)s)
            """,
            {
                "campaign": campaign.pk,
                "started": campaign.started_at,
                "answered": answered,
                "sending": campaign.status == Campaign.Status.SENDING,
                "per": per_campaign,
                "offset": n * per_campaign,
                "librarians": librarians,
            },
        )


def fill_contributions(cursor, *, contributions: int) -> None:
    """Tagged edits (and a few untagged ones) by librarians with a wiki account, skewed
    towards a few busy ones, spread over the drives' windows (the running one up to now)."""
    cursor.execute(
        """
        CREATE TEMPORARY TABLE bench_wiki AS
        SELECT (row_number() OVER (ORDER BY id) - 1)::int AS n, id, library_id,
            wiki_username, home_wiki
        FROM bench_librarian WHERE wiki_username <> ''
        """
    )
    cursor.execute("ALTER TABLE bench_wiki ADD PRIMARY KEY (n)")
    cursor.execute("ANALYZE bench_wiki")
    cursor.execute("SELECT count(*) FROM bench_wiki")
    (accounts,) = cursor.fetchone()
    cursor.execute("SELECT count(*) FROM bench_drive")
    (drives,) = cursor.fetchone()
    # Each edit once, then its link to its drive (tagged, or kept apart): as a pull stores them.
    cursor.execute(
        """
        CREATE TEMPORARY TABLE bench_edit AS
        SELECT i, mod(i, %s) AS drive_n, floor(power(random(), 2) * %s)::int AS account_n,
            random() AS t, random() AS x, random() AS y, random() < 0.92 AS tagged
        FROM generate_series(1, %s) AS i
        """,
        [drives, accounts, contributions],
    )
    cursor.execute(
        """
        INSERT INTO drives_contribution (id, librarian_id, library_id, wiki, revid,
            parentid, page, ns, username, timestamp, summary, size_change, references_added,
            texts_read, created_at)
        SELECT r.i, account.id, account.library_id, account.home_wiki,
            500000000 + r.i, 500000000 + r.i - 1 - floor(r.x * 1000)::int,
            'Article ' || mod(r.i * 13, 60000), 0, account.wiki_username,
            drive.starts + r.t * (drive.ends - drive.starts),
            CASE WHEN r.tagged THEN 'Ajout de source #1lib1ref' ELSE 'Ajout de source' END,
            floor(r.x * 800)::int - 100, floor(r.y * 4)::int, true, now()
        FROM bench_edit AS r
        JOIN bench_drive AS drive ON drive.n = r.drive_n
        JOIN bench_wiki AS account ON account.n = r.account_n
        """
    )
    cursor.execute(
        """
        INSERT INTO drives_drivecontribution (drive_id, contribution_id, tagged, counted_in,
            created_at)
        SELECT drive.id, r.i, r.tagged, false, now()
        FROM bench_edit AS r JOIN bench_drive AS drive ON drive.n = r.drive_n
        """
    )
    cursor.execute(
        "SELECT setval(pg_get_serial_sequence('drives_contribution', 'id'),"
        " (SELECT max(id) FROM drives_contribution))"
    )
    cursor.execute("DROP TABLE bench_edit")
    cursor.execute("DROP TABLE bench_wiki")


# The measurement ----------------------------------------------------------------------------


def measure(args: argparse.Namespace) -> dict:
    """Each page: warm-up, timed requests, then requests whose statements are captured."""
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext, override_settings
    from django.urls import reverse
    from django.utils import timezone

    # Static URLs without the manifest, so that no collectstatic is needed: with DEBUG off
    # the project's storage would look every {% static %} up in a manifest instead, a dict
    # lookup, the same at both sizes. (WhiteNoise serves the scratch directory, empty.)
    override_settings(
        STORAGES={
            **settings.STORAGES,
            "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
        }
    ).enable()
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT library.slug FROM libraries_activitysignal AS signal"
            " JOIN libraries_library AS library ON library.id = signal.library_id"
            " GROUP BY library.id ORDER BY count(*) DESC, library.id LIMIT 1"
        )
        (slug,) = cursor.fetchone()
    user_model = get_user_model()
    user = user_model.objects.get(username=COORDINATOR)
    client = Client()
    client.force_login(user)
    # force_login made this their last visit: a week ago, so "since your last visit" has rows.
    user_model.objects.filter(pk=user.pk).update(last_login=timezone.now() - timedelta(days=7))
    pages = [
        ("dashboard", reverse("dashboard")),
        ("library list", reverse("libraries:library-list")),
        ("library page", reverse("libraries:library-detail", kwargs={"slug": slug})),
        ("shortlist", reverse("libraries:shortlist")),
    ]

    def get(url: str) -> None:
        response = client.get(url)
        if response.status_code != 200:
            raise SetupError(f"{url} answered {response.status_code}, not 200")

    results = []
    for name, url in pages:
        for _ in range(args.warmup):
            get(url)
        times = []
        for _ in range(args.requests):
            started = time.perf_counter()
            get(url)
            times.append((time.perf_counter() - started) * 1000)
        captures = []
        for _ in range(PROFILE_REQUESTS):
            with CaptureQueriesContext(connection) as queries:
                get(url)
            captures.append([[q["sql"], float(q["time"]) * 1000] for q in queries.captured_queries])
        results.append({"page": name, "url": url, "times": times, "captures": captures})
    return {"pages": results}


# The figures --------------------------------------------------------------------------------


def normalised(sql: str) -> str:
    """A statement with its values taken out, so that the same statement matches at both
    sizes whatever ids and dates it carries."""
    sql = re.sub(r"'(?:[^']|'')*'", "?", sql)
    # Server-side cursors (QuerySet.iterator) are named after the process and a counter.
    sql = re.sub(r'"_django_curs_\w+"', '"_django_curs"', sql)
    sql = re.sub(r"\b\d+(?:\.\d+)?(?:e[-+]?\d+)?\b", "?", sql)
    sql = re.sub(r"\((?:\?, )+\?\)", "(…)", sql)
    return sql


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def page_figures(rounds: list[dict]) -> dict[str, dict]:
    """Per page: every timed request of every round, the query counts seen, and the median
    time per request of each distinct statement."""
    figures: dict[str, dict] = {}
    for result in rounds:
        for page in result["pages"]:
            entry = figures.setdefault(
                page["page"], {"url": page["url"], "times": [], "counts": [], "captures": []}
            )
            entry["times"] += page["times"]
            entry["counts"] += [len(capture) for capture in page["captures"]]
            entry["captures"] += page["captures"]
    for entry in figures.values():
        per_statement: dict[str, list[float]] = defaultdict(list)
        example: dict[str, str] = {}
        calls: dict[str, int] = {}
        for capture in entry["captures"]:
            totals: dict[str, float] = defaultdict(float)
            seen: dict[str, int] = defaultdict(int)
            for sql, ms in capture:
                key = normalised(sql)
                totals[key] += ms
                seen[key] += 1
                example[key] = sql
            for key, ms in totals.items():
                per_statement[key].append(ms)
            for key, count in seen.items():
                calls[key] = max(calls.get(key, 0), count)
        entry["statements"] = {
            key: {
                "ms": statistics.median(values + [0.0] * (len(entry["captures"]) - len(values))),
                "calls": calls[key],
                "sql": example[key],
            }
            for key, values in per_statement.items()
        }
    return figures


def counts_text(counts: list[int]) -> str:
    low, high = min(counts), max(counts)
    return str(low) if low == high else f"{low}–{high}"


def report(args, fills: dict, measures: dict, *, large_url: str) -> None:
    print("\nrows")
    print(f"  {'table':<20} {'small':>12} {'large':>12}")
    for table, label in TABLES:
        small, large = fills["small"]["rows"][table], fills["large"]["rows"][table]
        print(f"  {label:<20} {small:>12,} {large:>12,}")
    print(
        f"  {'migrate':<20} {fills['small']['migrate_seconds']:>10.1f} s "
        f"{fills['large']['migrate_seconds']:>10.1f} s"
    )
    print(
        f"  {'fill (all in SQL)':<20} {fills['small']['fill_seconds']:>10.1f} s "
        f"{fills['large']['fill_seconds']:>10.1f} s   (refresh and VACUUM ANALYZE included)"
    )

    figures = {size: page_figures(measures[size]) for size in SIZES}
    print(
        f"\npages: Django's test Client in-process as a coordinator, DEBUG off, "
        f"{args.requests} timed requests per page and size after {args.warmup} of warm-up, "
        f"in {args.rounds} rounds of small then large; milliseconds"
    )
    print(
        f"  {'page':<14} {'queries':>15}   {'median ms':>17} {'ratio':>7}   {'p95 ms':>17}"
        f"   aim: same queries, ratio <= {AIM_RATIO:g}"
    )
    print(
        f"  {'':<14} {'small':>7} {'large':>7}   {'small':>8} {'large':>8} {'':>7}   "
        f"{'small':>8} {'large':>8}"
    )
    failed = []
    for page in figures["small"]:
        small, large = figures["small"][page], figures["large"][page]
        median_small = statistics.median(small["times"])
        median_large = statistics.median(large["times"])
        ratio = median_large / median_small
        same_queries = (
            set(small["counts"]) == set(large["counts"]) and len(set(small["counts"])) == 1
        )
        verdict = "PASS" if same_queries and ratio <= AIM_RATIO else "FAIL"
        if verdict == "FAIL":
            failed.append(page)
        print(
            f"  {page:<14} {counts_text(small['counts']):>7} {counts_text(large['counts']):>7}"
            f"   {median_small:>8.1f} {median_large:>8.1f} {ratio:>7.2f}"
            f"   {percentile(small['times'], 0.95):>8.1f} {percentile(large['times'], 0.95):>8.1f}"
            f"   {verdict}" + ("" if same_queries else "  (query count differs)")
        )
    print(
        f"  library page: the library with the most signals, "
        f"{fills['small']['library_signals']:,} (small) and "
        f"{fills['large']['library_signals']:,} (large)"
    )
    print(
        f"overall: {'PASS' if not failed else 'FAIL'} "
        f"({len(figures['small']) - len(failed)} of {len(figures['small'])} pages within the aim)"
    )
    for page in failed:
        explain_page(page, figures["small"][page], figures["large"][page], large_url=large_url)


def explain_page(page: str, small: dict, large: dict, *, large_url: str) -> None:
    """The statements whose time grew most from small to large, then the plan of the slowest
    one on the large database."""
    print(
        f"\n{page}: statements by time per request, large (median of {len(large['captures'])}"
        " captured requests)"
    )
    statements = sorted(large["statements"].items(), key=lambda item: -item[1]["ms"])
    for key, figures in statements[:5]:
        before = small["statements"].get(key)
        small_ms = f"{before['ms']:8.1f}" if before else "       –"
        small_calls = before["calls"] if before else 0
        print(
            f"  {small_ms} ms → {figures['ms']:8.1f} ms   calls {small_calls} → "
            f"{figures['calls']}   {brief(figures['sql'])}"
        )
    grown = [
        (key, figures["calls"], small["statements"].get(key, {}).get("calls", 0))
        for key, figures in large["statements"].items()
        if figures["calls"] != small["statements"].get(key, {}).get("calls", 0)
    ]
    for key, calls_large, calls_small in grown:
        print(f"  runs {calls_small} → {calls_large} times: {brief(key)}")
    selects = [
        figures["sql"]
        for _key, figures in statements
        if figures["sql"].lstrip().upper().startswith(("SELECT", "WITH"))
    ]
    if not selects:
        return
    import psycopg

    print(f"\n{page}: EXPLAIN (ANALYZE, BUFFERS) of the slowest statement, large database")
    print(f"  {brief(selects[0], 600)}")
    with psycopg.connect(large_url, autocommit=True) as connection:
        plan = connection.execute(f"EXPLAIN (ANALYZE, BUFFERS) {selects[0]}").fetchall()
    for (line,) in plan[:40]:
        print(f"    {line if len(line) <= 160 else line[:159] + '…'}")
    if len(plan) > 40:
        print(f"    … {len(plan) - 40} more lines")


def squeeze(sql: str) -> str:
    return " ".join(sql.split())


def brief(sql: str, width: int = 300) -> str:
    """The start of a statement and its FROM onwards: the column lists say little."""
    sql = squeeze(sql)
    head, found, tail = sql.partition(" FROM ")
    if found and len(head) > 100:
        sql = f"{head[:80]} … FROM {tail}"
    return sql if len(sql) <= width else f"{sql[: width - 1]}…"


if __name__ == "__main__":
    sys.exit(main())
