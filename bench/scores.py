"""The score refresh over a million signals, against a plain GROUP BY of the same rows.

    .venv/bin/python bench/scores.py [--database-url URL] [--keep] [--signals N]

1. Builds a fresh PostgreSQL database (dropped first if it exists) and migrates it.
2. Inserts, in SQL (INSERT … SELECT generate_series, not the ORM): 6 regions, 20,000
   libraries, two librarians each, and 1,000,000 activity signals of every kind, dated over
   the last three years (more recent ones more often), spread unevenly over the libraries
   (a few very active, many quiet, some with none), 60% of them naming a librarian. Then
   VACUUM ANALYZE, as autovacuum would have done on a database that grew over time.
3. Times ``libraries.scoring.scores_refresh`` (the score parts replaced: DELETE, then
   INSERT … SELECT the signals grouped by library and kind; the UPDATE … FROM every library's
   parts summed; the UPDATE … FROM the signals naming a librarian grouped by librarian; the
   upsert of the day's snapshots) and, as the yardstick, a plain
   ``SELECT library_id, SUM(…) FROM libraries_activitysignal GROUP BY library_id`` of the
   same weighted, decayed sum, fetched: the rows read once and the same arithmetic, without
   the librarians' second aggregate, the join to every library and without writing
   anything. Each runs once to warm the cache, then three times, alternately; the median is
   kept. Each refresh is a night later than the one before, so every score, part and
   activity changes and every library gets a new snapshot row, as nightly. Those refreshes
   run back to back, so each finds the dead rows of the one before; three more are timed
   after a VACUUM of the tables the refresh rewrites (not timed), as autovacuum leaves them
   from one night to the next.
4. Prints both medians, their ratio (the aim: at most 3, PASS or BELOW; the back-to-back
   refreshes count), a bare GROUP BY of the weights (no decay) for scale, the vacuumed
   refreshes' median and ratio, the time of each of the refresh's statements (one more
   refresh, its statements captured), and checks that the scores the refresh wrote equal
   the yardstick's sums, that each library's parts add up to its score, and that the
   librarians' activity equals a GROUP BY librarian of the same sum.

A measurement, not a test: it exits 0 whatever the figures are, and non-zero only when the
setup fails. The database is dropped at the end unless --keep.
"""

from __future__ import annotations

import argparse
import itertools
import math
import os
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.public_pages import (  # noqa: E402  the benchmarks share their plumbing
    SetupError,
    _maintenance_connection,
    database_close,
    step,
)

BASE_DIR = Path(__file__).resolve().parent.parent
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/outreach_bench_scores"
AIM = 3.0
RUNS = 3
REGIONS = [
    ("Vaud", "vaud", "fr"),
    ("Genève", "geneve", "fr"),
    ("Neuchâtel", "neuchatel", "fr"),
    ("Fribourg", "fribourg", "fr"),
    ("Bern", "bern", "de"),
    ("Zürich", "zurich", "de"),
]
# How often each kind occurs among the signals (list replies and edits are the bulk).
KIND_SHARES = {
    "list_reply": 20,
    "invitation_yes": 3,
    "invitation_maybe": 2,
    "invitation_no": 2,
    "rsvp_yes": 8,
    "attended": 10,
    "hosted_meetup": 2,
    "tagged_edit": 30,
    "reference_added": 18,
    "story": 1,
    "contact": 4,
}


def main() -> int:
    args = parse_args()
    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "outreach.settings",
            "DATABASE_URL": args.database_url,
            # As in production: no query log kept in memory by the debug cursor.
            "DEBUG": "0",
            "SECRET_KEY": "bench-only-dummy-secret-key-signs-nothing-that-leaves-this-machine",
            "LOG_LEVEL": "WARNING",
        }
    )
    sys.path.insert(0, str(BASE_DIR))
    created = False
    try:
        database_create(args.database_url)
        created = True
        populate(args)
        measure(args)
    except SetupError as error:
        print(f"setup failed: {error}", file=sys.stderr)
        return 1
    finally:
        if created:
            database_close()
            if args.keep:
                print(f"database kept: {args.database_url}")
            else:
                database_drop(args.database_url)
    return 0


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL)
    parser.add_argument("--keep", action="store_true", help="leave the database for inspection")
    parser.add_argument("--libraries", type=int, default=20_000)
    parser.add_argument("--signals", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=RUNS, help="timed runs of each, median kept")
    return parser.parse_args()


# The database -------------------------------------------------------------------------------


def _database_name(database_url: str) -> str:
    name = urlsplit(database_url).path.lstrip("/")
    if not name or name in ("postgres", "template0", "template1"):
        raise SetupError(f"refusing to drop and recreate the database {name!r}")
    return name


def database_create(database_url: str) -> None:
    from psycopg import sql

    name = _database_name(database_url)
    with (
        step(f"database {name}: drop and create"),
        _maintenance_connection(database_url) as connection,
    ):
        connection.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
        connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def database_drop(database_url: str) -> None:
    from psycopg import sql

    name = _database_name(database_url)
    with _maintenance_connection(database_url) as connection:
        connection.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
    print(f"database {name} dropped")


# The data -----------------------------------------------------------------------------------


def populate(args: argparse.Namespace) -> None:
    import django
    from django.core.management import call_command

    with step("migrate"):
        django.setup()
        call_command("migrate", verbosity=0, interactive=False)

    from django.db import connection

    kinds = list(KIND_SHARES)
    # Cumulative shares: a random number in [0, total) picks the first kind whose bound
    # exceeds it.
    bounds, total = [], 0
    for kind in kinds:
        total += KIND_SHARES[kind]
        bounds.append(total)
    whens = (f"WHEN r.k < {bound} THEN '{kind}'" for kind, bound in zip(kinds, bounds, strict=True))
    pick_kind = f"CASE {' '.join(whens)} END"
    with connection.cursor() as cursor:
        cursor.execute("SELECT setseed(0.20260301)")
        with step(f"{len(REGIONS)} regions, {args.libraries:,} libraries, two librarians each"):
            for name, slug, language in REGIONS:
                cursor.execute(
                    "INSERT INTO libraries_region (name, slug, language, time_zone)"
                    " VALUES (%s, %s, %s, 'Europe/Zurich')",
                    [name, slug, language],
                )
            cursor.execute(
                """
                INSERT INTO libraries_library (name, slug, region_id, city, address, website,
                    languages, status, status_changed_at, notes, created_at, updated_at)
                SELECT 'Bibliothèque ' || i, 'bibliotheque-' || i,
                    regions.ids[1 + i %% array_length(regions.ids, 1)],
                    'Ville ' || (i %% 700), 'Rue de la Gare ' || (i %% 90 + 1), '',
                    'fr', 'prospect', now(), '', now(), now()
                FROM generate_series(1, %s) AS i,
                    (SELECT array_agg(id ORDER BY id) AS ids FROM libraries_region) AS regions
                """,
                [args.libraries],
            )
            cursor.execute(
                """
                INSERT INTO libraries_librarian (library_id, name, email, role, language,
                    wiki_username, home_wiki, consent_source, notes, created_at, updated_at)
                SELECT library.id, 'Bibliothécaire ' || library.id || '-' || n,
                    'librarian-' || library.id || '-' || n || '@bench.example.org',
                    'Librarian', 'fr', '', '', 'bench', '', now(), now()
                FROM libraries_library AS library, generate_series(1, 2) AS n
                ORDER BY library.id, n
                """
            )
        with step(f"{args.signals:,} signals (INSERT … SELECT generate_series)"):
            # Library: the square of a uniform number skews towards the first ids (a few
            # very active libraries); a tenth of the libraries, the last ones, get none.
            # Age: up to three years, recent signals more often. Librarians: the library's
            # two, inserted in order, so their ids follow from the library's.
            cursor.execute(
                f"""
                INSERT INTO libraries_activitysignal (library_id, librarian_id, kind,
                    occurred_at, source, note, created_at)
                SELECT first.library + r.library_offset,
                    CASE WHEN r.named < 0.6
                        THEN first.librarian + 2 * r.library_offset + r.which END,
                    {pick_kind},
                    now() - r.age * interval '1095 days',
                    'bench', '', now()
                FROM (
                    SELECT floor(power(random(), 2) * %s * 0.9)::int AS library_offset,
                        random() AS named, (random() < 0.5)::int AS which,
                        random() * %s AS k, power(random(), 1.5) AS age
                    FROM generate_series(1, %s)
                ) AS r,
                (
                    SELECT (SELECT min(id) FROM libraries_library) AS library,
                        (SELECT min(id) FROM libraries_librarian) AS librarian
                ) AS first
                """,
                [args.libraries, total, args.signals],
            )
        with step("vacuum analyze"):
            cursor.execute("VACUUM ANALYZE")
        cursor.execute(
            "SELECT count(*), count(DISTINCT library_id), count(librarian_id)"
            " FROM libraries_activitysignal"
        )
        signals, libraries, named = cursor.fetchone()
    print(
        f"  {signals:,} signals on {libraries:,} libraries ({named:,} naming a librarian)",
        flush=True,
    )


# The measurement ----------------------------------------------------------------------------


def group_by_sql(now: datetime, *, decayed: bool = True) -> tuple[str, list]:
    """The yardstick, written by hand: the same weighted, decayed sum, without any write."""
    from django.conf import settings

    from libraries.models import ActivitySignal

    weights = {kind: float(settings.SCORE_WEIGHTS.get(kind, 0)) for kind in ActivitySignal.Kind}
    case = " ".join(f"WHEN '{kind}' THEN {weight!r}" for kind, weight in weights.items())
    weight = f"CAST(CASE kind {case} ELSE 0 END AS DOUBLE PRECISION)"
    if not decayed:
        return (
            f"SELECT library_id, SUM({weight}) FROM libraries_activitysignal GROUP BY library_id",
            [],
        )
    rate = -math.log(2) / float(settings.SCORE_HALF_LIFE_DAYS)
    return (
        f"SELECT library_id, SUM({weight} * EXP(%s * GREATEST(%s - date_part('epoch', "
        "occurred_at), 0) / 86400.0)) FROM libraries_activitysignal GROUP BY library_id",
        [rate, now.timestamp()],
    )


def group_by(now: datetime, *, decayed: bool = True, column: str = "library_id") -> dict:
    from django.db import connection

    sql, params = group_by_sql(now, decayed=decayed)
    if column != "library_id":
        # The librarians' activity: the same sum over the signals naming one.
        sql = sql.replace("library_id", column).replace(
            "GROUP BY", f"WHERE {column} IS NOT NULL GROUP BY"
        )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return dict(cursor.fetchall())


def refresh_statements(now: datetime) -> list[tuple[str, float]]:
    """One more refresh with its statements captured: (statement's start, ms) of each."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from libraries.scoring import scores_refresh

    with CaptureQueriesContext(connection) as queries:
        scores_refresh(now=now)
    statements = []
    for query in queries.captured_queries:
        sql = " ".join(query["sql"].split())
        if sql.upper().startswith(("SAVEPOINT", "RELEASE SAVEPOINT")):
            continue
        head = sql if len(sql) <= 70 else sql[:69] + "…"
        statements.append((head, float(query["time"]) * 1000))
    return statements


def timed(function: Callable[[], object]) -> float:
    started = time.perf_counter()
    function()
    return time.perf_counter() - started


def measure(args: argparse.Namespace) -> None:
    from django.db import connection
    from django.db.models import Sum

    from libraries.models import Librarian, Library, LibraryScorePart, LibraryScoreSnapshot
    from libraries.scoring import scores_refresh

    base = datetime.now(tz=UTC)
    nights = itertools.count()

    def refresh() -> None:
        # A night later each time: every score decays, every library gets a new snapshot.
        scores_refresh(now=base + timedelta(days=next(nights)))

    def vacuum() -> None:
        # What autovacuum does between two nights: each refresh leaves a dead row version of
        # every part, of most libraries and of most librarians, far above its threshold.
        with connection.cursor() as cursor:
            for model in (LibraryScorePart, Library, Librarian):
                cursor.execute(f"VACUUM {model._meta.db_table}")

    with step("warm-up: one refresh, one GROUP BY"):
        refresh()
        group_by(base)
        group_by(base, decayed=False)
    refresh_times, group_by_times, bare_times = [], [], []
    for _ in range(args.runs):
        refresh_times.append(timed(refresh))
        group_by_times.append(timed(lambda: group_by(base)))
        bare_times.append(timed(lambda: group_by(base, decayed=False)))
    # The same refreshes with the night's autovacuum before each (not timed), as in
    # production; the runs above, back to back, pile up dead rows.
    vacuumed_times = []
    for _ in range(args.runs):
        vacuum()
        vacuumed_times.append(timed(refresh))
    # Not timed: the same refresh once more, a night later, its statements captured.
    vacuum()
    last_night = base + timedelta(days=next(nights))
    statements = refresh_statements(last_night)

    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM libraries_activitysignal")
        (signals,) = cursor.fetchone()
    libraries = Library.objects.count()
    snapshots = LibraryScoreSnapshot.objects.count()
    expected = group_by(last_night)
    written = dict(Library.objects.values_list("pk", "score"))
    worst = max(abs(written[pk] - expected.get(pk, 0.0)) for pk in written)
    zero = sum(1 for pk in written if pk not in expected)
    parts = dict(
        LibraryScorePart.objects.order_by()
        .values("library_id")
        .annotate(total=Sum("contribution"))
        .values_list("library_id", "total")
    )
    worst_parts = max(abs(written[pk] - parts.get(pk, 0.0)) for pk in written)
    part_rows = LibraryScorePart.objects.count()
    expected_activity = group_by(last_night, column="librarian_id")
    activity = dict(Librarian.objects.values_list("pk", "activity"))
    worst_activity = max(abs(activity[pk] - expected_activity.get(pk, 0.0)) for pk in activity)

    refresh_median = statistics.median(refresh_times)
    group_by_median = statistics.median(group_by_times)
    ratio = refresh_median / group_by_median
    print()
    print(f"{signals:,} signals, {libraries:,} libraries ({zero:,} without signals)")
    print(f"{snapshots:,} snapshot rows after {2 * args.runs + 2} nightly refreshes")
    print(
        f"scores_refresh():            median {refresh_median * 1000:8.1f} ms  "
        f"(runs: {', '.join(f'{t * 1000:.1f}' for t in refresh_times)} ms)"
    )
    print(
        f"plain GROUP BY, same sum:    median {group_by_median * 1000:8.1f} ms  "
        f"(runs: {', '.join(f'{t * 1000:.1f}' for t in group_by_times)} ms)"
    )
    print(
        f"bare GROUP BY of weights:    median {statistics.median(bare_times) * 1000:8.1f} ms  "
        "(no decay; for scale only)"
    )
    vacuumed_median = statistics.median(vacuumed_times)
    print(
        f"scores_refresh(), vacuumed:  median {vacuumed_median * 1000:8.1f} ms  "
        f"(runs: {', '.join(f'{t * 1000:.1f}' for t in vacuumed_times)} ms; "
        f"ratio {vacuumed_median / group_by_median:.2f}; each after a VACUUM, as nightly)"
    )
    print(
        f"the refresh's statements (one more refresh after a VACUUM, captured; "
        f"{part_rows:,} parts):"
    )
    for head, ms in statements:
        print(f"  {ms:8.1f} ms  {head}")
    print(f"scores written vs the GROUP BY's sums: largest difference {worst:.2e}")
    print(f"scores written vs their parts summed:  largest difference {worst_parts:.2e}")
    print(
        f"librarians' activity vs a GROUP BY librarian ({len(activity):,} librarians): "
        f"largest difference {worst_activity:.2e}"
    )
    verdict = "PASS" if ratio <= AIM else "BELOW"
    print(f"ratio refresh / GROUP BY: {ratio:.2f}   aim: ratio <= {AIM:g}   {verdict}")


if __name__ == "__main__":
    sys.exit(main())
