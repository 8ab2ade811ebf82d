"""The score refresh over a million signals, against a plain GROUP BY of the same rows.

    .venv/bin/python bench/scores.py [--database-url URL] [--keep] [--signals N]

1. Builds a fresh PostgreSQL database (dropped first if it exists) and migrates it.
2. Inserts, in SQL (INSERT … SELECT generate_series, not the ORM): 6 regions, 20,000
   libraries, two librarians each, and 1,000,000 activity signals of every kind, dated over
   the last three years (more recent ones more often), spread unevenly over the libraries
   (a few very active, many quiet, some with none), 60% of them naming a librarian. Then
   VACUUM ANALYZE, as autovacuum would have done on a database that grew over time.
3. Times ``libraries.scoring.scores_refresh`` two ways, each against the yardstick: a plain
   ``SELECT library_id, SUM(…) FROM libraries_activitysignal GROUP BY library_id`` of the
   same weighted, decayed sum, fetched (the rows read once and the same arithmetic, without
   the librarians' second aggregate, the join to every library and without writing
   anything), timed right after each refresh over the same signals:

   - the full recount (``recount=True``, as when the weights or the half-life change): a new
     basis, so every part, score, librarian's activity and snapshot is written again;
   - the nightly refresh, carried forward, with 1,000 and then with 20,000 new signals since
     the last refresh (dated over the night, spread over the libraries as the others), and
     20 old signals deleted through the ORM each night (their libraries recounted).

   Each refresh is a night later than the one before, and follows a VACUUM ANALYZE of the
   tables it writes (not timed), as autovacuum leaves them from one night to the next. Three
   runs of each, the median kept; one more of each with its statements captured.
4. Prints the medians and their ratios to the GROUP BY (the aims: the full recount at most
   3, the nightly refresh at most 0.5; PASS or BELOW), a bare GROUP BY of the weights (no
   decay) for scale, the time of each statement, and the agreement: ``scores_check`` (every
   sum counted again at the last basis, the largest relative difference; the alarm is above
   1e-6), and the scores and librarians' activity against the hand-written GROUP BYs.

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
AIM = 3.0  # the full recount against the GROUP BY
CARRIED_AIM = 0.5  # the nightly refresh carried forward against the GROUP BY
DELETED = 20  # signals deleted each night (their libraries recounted)
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
            signals_insert(cursor, args.signals, libraries=args.libraries)
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


def signals_insert(
    cursor, count: int, *, libraries: int, ending: datetime | None = None, days: float = 1095
) -> None:
    """``count`` signals of every kind dated over ``days`` days before ``ending`` (now), in SQL.

    Library: the square of a uniform number skews towards the first ids (a few very active
    libraries); a tenth of the libraries, the last ones, get none. Age: recent signals more
    often (over three years) or evenly (a night's). Librarians: 60% name one of the library's
    two, inserted in order, so their ids follow from the library's.
    """
    kinds = list(KIND_SHARES)
    # Cumulative shares: a random number in [0, total) picks the first kind whose bound
    # exceeds it.
    bounds, total = [], 0
    for kind in kinds:
        total += KIND_SHARES[kind]
        bounds.append(total)
    whens = (f"WHEN r.k < {bound} THEN '{kind}'" for kind, bound in zip(kinds, bounds, strict=True))
    pick_kind = f"CASE {' '.join(whens)} END"
    skew = 1.5 if days > 1 else 1.0
    cursor.execute(
        f"""
        INSERT INTO libraries_activitysignal (library_id, librarian_id, kind,
            occurred_at, source, note, created_at)
        SELECT first.library + r.library_offset,
            CASE WHEN r.named < 0.6
                THEN first.librarian + 2 * r.library_offset + r.which END,
            {pick_kind},
            %s::timestamptz - r.age * %s * interval '1 day',
            'bench', '', now()
        FROM (
            SELECT floor(power(random(), 2) * %s * 0.9)::int AS library_offset,
                random() AS named, (random() < 0.5)::int AS which,
                random() * %s AS k, power(random(), %s) AS age
            FROM generate_series(1, %s)
        ) AS r,
        (
            SELECT (SELECT min(id) FROM libraries_library) AS library,
                (SELECT min(id) FROM libraries_librarian) AS librarian
        ) AS first
        """,
        [ending or datetime.now(tz=UTC), days, libraries, total, skew, count],
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


def refresh_statements(refresh: Callable[[], object]) -> list[tuple[str, float]]:
    """``refresh`` run with its statements captured: (statement's start, ms) of each."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        refresh()
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


def runs_text(times: list[float]) -> str:
    return ", ".join(f"{t * 1000:.1f}" for t in times)


def measure(args: argparse.Namespace) -> None:
    from django.db import connection

    from libraries.models import ActivitySignal, Librarian, Library, LibraryScorePart
    from libraries.scoring import scores_check, scores_refresh

    base = datetime.now(tz=UTC)
    nights = itertools.count()
    night = {"now": base}

    def next_night() -> datetime:
        night["now"] = base + timedelta(days=next(nights))
        return night["now"]

    def vacuum() -> None:
        # What autovacuum does between two nights (not timed): the night before rewrote rows.
        with connection.cursor() as cursor:
            for model in (LibraryScorePart, Library, Librarian, ActivitySignal):
                cursor.execute(f"VACUUM ANALYZE {model._meta.db_table}")

    def yardstick() -> float:
        return timed(lambda: group_by(night["now"]))

    with step("warm-up: the first refresh (a full count), one GROUP BY"):
        scores_refresh(now=next_night())
        group_by(night["now"])
        group_by(night["now"], decayed=False)

    # 1. The full recount, as when the weights or the half-life change: a new basis, so every
    #    part is rewritten, every score, every librarian's activity, every snapshot.
    recount_times, group_by_times, bare_times = [], [], []
    for _ in range(args.runs):
        vacuum()
        now = next_night()
        recount_times.append(timed(lambda now=now: scores_refresh(now=now, recount=True)))
        group_by_times.append(yardstick())
        bare_times.append(timed(lambda: group_by(night["now"], decayed=False)))
    vacuum()
    now = next_night()
    recount_statements = refresh_statements(lambda: scores_refresh(now=now, recount=True))

    # 2. The nightly refresh, carried forward: each night `new` signals dated since the last
    #    refresh (inserted and vacuumed, not timed) and DELETED signals deleted through the
    #    ORM (their libraries recounted), then the refresh and, alternately, the GROUP BY.
    def night_with(new: int) -> datetime:
        now = next_night()
        with connection.cursor() as cursor:
            signals_insert(cursor, new, libraries=args.libraries, ending=now, days=1)
        doomed = list(ActivitySignal.objects.order_by("?").values_list("pk", flat=True)[:DELETED])
        ActivitySignal.objects.filter(pk__in=doomed).delete()
        vacuum()
        return now

    carried: dict[int, tuple[list[float], list[float]]] = {}
    last_done = None
    for new in (1_000, 20_000):
        refresh_times, yardstick_times = [], []
        for _ in range(args.runs):
            now = night_with(new)
            started = time.perf_counter()
            last_done = scores_refresh(now=now)
            refresh_times.append(time.perf_counter() - started)
            yardstick_times.append(yardstick())
        carried[new] = (refresh_times, yardstick_times)
    now = night_with(20_000)
    carried_statements = refresh_statements(lambda: scores_refresh(now=now))

    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM libraries_activitysignal")
        (signals,) = cursor.fetchone()
    libraries = Library.objects.count()
    with step("check: every sum counted again at the last refresh's basis"):
        checked = scores_check()
    expected = group_by(night["now"])
    written = {library.pk: library.score for library in Library.objects.with_scale()}
    worst = max(abs(written[pk] - expected.get(pk, 0.0)) for pk in written)
    expected_activity = group_by(night["now"], column="librarian_id")
    activity = {librarian.pk: librarian.activity for librarian in Librarian.objects.with_scale()}
    worst_activity = max(abs(activity[pk] - expected_activity.get(pk, 0.0)) for pk in activity)

    print()
    print(
        f"{signals:,} signals, {libraries:,} libraries, {LibraryScorePart.objects.count():,} parts"
    )
    group_by_median = statistics.median(group_by_times)
    recount_median = statistics.median(recount_times)
    recount_ratio = recount_median / group_by_median
    print(
        f"plain GROUP BY, same sum:      median {group_by_median * 1000:8.1f} ms  "
        f"(runs: {runs_text(group_by_times)} ms)"
    )
    print(
        f"bare GROUP BY of weights:      median {statistics.median(bare_times) * 1000:8.1f} ms  "
        "(no decay; for scale only)"
    )
    print(
        f"full recount (new basis):      median {recount_median * 1000:8.1f} ms  "
        f"(runs: {runs_text(recount_times)} ms; every part, score, activity and snapshot "
        "written)"
    )
    print("  its statements (one more, captured):")
    for head, ms in recount_statements:
        print(f"  {ms:8.1f} ms  {head}")
    verdicts = []
    for new, (refresh_times, yardstick_times) in carried.items():
        median = statistics.median(refresh_times)
        yardstick_median = statistics.median(yardstick_times)
        ratio = median / yardstick_median
        verdicts.append((f"carried forward, {new:,} new", ratio, CARRIED_AIM))
        print(
            f"carried forward, {new:>6,} new:  median {median * 1000:8.1f} ms  "
            f"(runs: {runs_text(refresh_times)} ms; and {DELETED} deleted) against a GROUP BY "
            f"of {yardstick_median * 1000:.1f} ms: ratio {ratio:.2f}"
        )
    if last_done is not None:
        print(
            f"  the last: {last_done.signals:,} signals added, {last_done.changed:,} libraries "
            f"changed, {last_done.recounted_libraries} recounted"
        )
    print("  the statements of one more with 20,000 new (captured):")
    for head, ms in carried_statements:
        print(f"  {ms:8.1f} ms  {head}")
    print(
        f"check against a full count: largest relative difference {checked.difference:.2e} "
        f"(libraries {checked.libraries:.2e}, parts {checked.parts:.2e}, librarians "
        f"{checked.librarians:.2e}; {checked.parts_miscounted} parts miscounted)   "
        f"{'AGREE' if checked.agrees else 'ALARM'}"
    )
    print(f"scores vs the GROUP BY's sums:          largest difference {worst:.2e}")
    print(
        f"librarians' activity vs a GROUP BY librarian ({len(activity):,} librarians): "
        f"largest difference {worst_activity:.2e}"
    )
    verdicts.insert(0, ("full recount", recount_ratio, AIM))
    for name, ratio, aim in verdicts:
        verdict = "PASS" if ratio <= aim else "BELOW"
        print(f"ratio {name} / GROUP BY: {ratio:.2f}   aim: ratio <= {aim:g}   {verdict}")


if __name__ == "__main__":
    sys.exit(main())
