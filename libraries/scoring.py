"""Activity scores: every library's signals, weighted by kind and decayed by age, in SQL.

A signal of kind *k* that is *d* days old counts ``SCORE_WEIGHTS[k] * 0.5 ** (d / H)``, where
*H* is ``SCORE_HALF_LIFE_DAYS``; a library's score is the sum over its signals, a librarian's
activity the sum over the signals naming them. The database computes the sums (``KindWeight``
and ``SignalBase`` are the two factors as SQL expressions, written for PostgreSQL and for
SQLite), so no Python loop ever walks the signals.

An exponentially decayed sum carries forward: tonight's is last night's times the day's
decay, plus what the day's new signals add. So the sums are stored at a fixed basis (the
``ScoreBasis`` row: a signal dated *t* adds ``w * 2 ** ((t - epoch) / H)``), where they do not
decay at all, and one factor for every row, ``ScoreBasis.scale``, turns them into the scores
as of the last refresh. ``scores_refresh`` then costs what the night's signals and the
libraries' snapshots cost, not what history does:

- the signals recorded since the last refresh (ids above ``ScoreBasis.watermark``) are added
  to their library's parts (``LibraryScorePart``, by kind), to its score and to their
  librarian's activity;
- the libraries and librarians marked for a recount (``ScoreRecount``: a signal of theirs
  was edited or deleted, see ``ActivitySignalQuerySet``; or one is dated after the refresh,
  and counts as new until its date) are counted again from all their signals;
- a snapshot is written for every library whose sums changed (between two snapshots, a
  score only decays: ``score_trend`` fills the days in between).

Everything is counted again from all the signals (``recount``) on the first refresh, when the
weights or the half-life in the settings are no longer those of the basis, when a refresh is
dated before the last one, and when asked (``scores_refresh(recount=True)``,
``manage.py scores_refresh --recount``). ``scores_check`` compares the stored sums with a full
count without writing them (the nightly task does every week, and recounts if they differ by
more than ``SCORES_CHECK_TOLERANCE``, relative).

``score_explain`` reads one library's parts back (count, weight, contribution per kind): the
breakdown the library page shows, which adds up to the library's score because the same
refresh wrote both. The pages read what the last refresh wrote, so they cost the same whatever
the number of signals, and say when that was (``scores_refreshed_at``).
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from django.conf import settings
from django.db import OperationalError, connection, transaction
from django.db.models import Count, F, FloatField, Func, Max, Q, Sum
from django.db.models.expressions import RawSQL
from django.utils import timezone

from .models import (
    ActivitySignal,
    Librarian,
    Library,
    LibraryScorePart,
    LibraryScoreSnapshot,
    ScoreBasis,
    ScoreRecount,
)

logger = logging.getLogger(__name__)

SECONDS_PER_DAY = 86400.0
# Julian day number of 1970-01-01T00:00Z: SQLite's julianday() counts days from there on.
UNIX_EPOCH_JULIAN_DAY = 2440587.5
# The basis is moved to the refresh's time (everything recounted) before the stored sums
# grow past 2 ** this many half-lives: far from a float's range, and from losing precision.
MAX_HALF_LIVES_FROM_BASIS = 200
CHECK_EVERY = timedelta(days=7)


def score_weights() -> dict[str, float]:
    """The weight of every kind of signal: SCORE_WEIGHTS, and 0 for a kind it leaves out."""
    configured = settings.SCORE_WEIGHTS
    return {kind: float(configured.get(kind, 0.0)) for kind in ActivitySignal.Kind.values}


def half_life_days() -> float:
    return float(settings.SCORE_HALF_LIFE_DAYS)


class KindWeight(Func):
    """The weight of a signal's kind, as a float: ``weights`` (by default SCORE_WEIGHTS, and 0
    for a kind they leave out)."""

    output_field = FloatField()

    def __init__(self, kind: str = "kind", *, weights: dict[str, float] | None = None):
        super().__init__(F(kind))
        self.weights = score_weights() if weights is None else weights

    def as_sql(self, compiler, connection, **extra_context):
        (kind_expression,) = self.get_source_expressions()
        kind_sql, kind_params = compiler.compile(kind_expression)
        whens = " ".join("WHEN %s THEN %s" for _ in self.weights)
        weight_params = [value for item in self.weights.items() for value in item]
        # CAST: PostgreSQL reads a literal such as 1.5 as numeric; the product must be float.
        sql = f"CAST(CASE {kind_sql} {whens} ELSE 0 END AS DOUBLE PRECISION)"
        return sql, (*kind_params, *weight_params)

    def get_group_by_cols(self):
        # Next to an aggregate, grouping by the kind is enough (the weight follows from it);
        # grouping by this expression would evaluate the CASE on every row again.
        (kind_expression,) = self.get_source_expressions()
        return kind_expression.get_group_by_cols()


class SignalBase(Func):
    """What a signal adds to a sum at the basis ``epoch`` per unit of its kind's weight:
    ``2 ** ((t - epoch) / H)`` for a signal dated *t*, 1 at the epoch.

    Written as ``EXP(ln 2 / H * (t - epoch))``. A signal dated after ``now`` counts as if
    dated ``now`` (new, not more). ``now`` and ``epoch`` go in as seconds since 1970, which
    each database compares with the stored timestamp in its own cheapest way. EXP is built
    into PostgreSQL; Django registers it on every SQLite connection.
    """

    output_field = FloatField()

    def __init__(self, occurred_at: str = "occurred_at", *, basis: Basis):
        super().__init__(F(occurred_at))
        self.basis = basis

    def as_sql(self, compiler, connection, **extra_context):
        (occurred_expression,) = self.get_source_expressions()
        occurred_sql, occurred_params = compiler.compile(occurred_expression)
        if connection.vendor == "postgresql":
            # date_part returns double precision (EXTRACT returns numeric since PostgreSQL 14).
            seconds_sql = f"LEAST(date_part('epoch', {occurred_sql}), %s)"
        elif connection.vendor == "sqlite":
            # Datetimes are stored as UTC text, which julianday() reads.
            days_sql = f"julianday({occurred_sql}) - {UNIX_EPOCH_JULIAN_DAY}"
            seconds_sql = f"MIN(({days_sql}) * {SECONDS_PER_DAY}, %s)"
        else:  # pragma: no cover - the project runs on PostgreSQL or SQLite
            raise NotImplementedError(f"Scores are not written for {connection.vendor}.")
        basis = self.basis
        sql = f"EXP(%s * ({seconds_sql} - %s))"
        return sql, (basis.rate, *occurred_params, basis.now.timestamp(), basis.epoch.timestamp())


@dataclass(frozen=True, eq=False)  # hashed by identity: Django hashes expressions' arguments
class Basis:
    """The terms of a count: the sums at ``epoch``, signals dated after ``now`` counted as of
    ``now``, with these weights and half-life."""

    epoch: datetime
    now: datetime
    weights: dict[str, float]
    half_life: float

    @property
    def rate(self) -> float:
        """ln 2 / H, per second."""
        return math.log(2) / (self.half_life * SECONDS_PER_DAY)

    @property
    def scale(self) -> float:
        """What turns a sum at the epoch into the score at ``now``."""
        return math.exp(-self.rate * (self.now - self.epoch).total_seconds())

    def signal_base(self):
        """What one signal adds to a sum at the epoch: its kind's weight times its growth."""
        return KindWeight(weights=self.weights) * SignalBase(basis=self)


def _now(now: datetime | None) -> datetime:
    now = now or timezone.now()
    if timezone.is_naive(now):
        raise ValueError("Scores are computed at an aware datetime.")
    return now


# The statements ------------------------------------------------------------------------------


def _ids_sql(ids) -> tuple[str, list]:
    """A set of ids as a subquery with one parameter: however many there are, the statement
    has the same text (SQLite allows some thousands of parameters, PostgreSQL 65,535)."""
    ids = sorted(ids)
    if connection.vendor == "postgresql":
        return "SELECT unnest(%s::bigint[])", [ids]
    return "SELECT value FROM json_each(%s)", [json.dumps(ids)]


def _ids(ids):
    """The same, for ``field__in``. PostgreSQL takes the ids themselves (a list it reads
    through the field's index); SQLite the subquery."""
    if connection.vendor == "postgresql":
        return sorted(ids) or [0]
    return RawSQL(*_ids_sql(ids))


def _sql(queryset) -> tuple[str, tuple]:
    return queryset.query.sql_with_params()


def _parts_query(signals, basis: Basis):
    """``signals`` grouped by library and kind: library_id, kind, signal_count, base.

    All the signals of a group share a kind, so its weight multiplies their growths' sum once
    per group rather than each signal's: the CASE over the kinds costs as much as the rest of
    the arithmetic when it runs on every row.
    """
    return (
        signals.order_by()
        .values("library_id", "kind")
        .annotate(
            signal_count=Count("id"),
            base=KindWeight(weights=basis.weights) * Sum(SignalBase(basis=basis)),
        )
    )


def _library_query(signals, basis: Basis):
    """``signals`` grouped by library: library_id, base."""
    return signals.order_by().values("library_id").annotate(base=Sum(basis.signal_base()))


def _activity_query(signals, basis: Basis):
    """``signals`` naming a librarian, grouped by librarian: librarian_id, base."""
    return (
        signals.filter(librarian__isnull=False)
        .order_by()
        .values("librarian_id")
        .annotate(base=Sum(basis.signal_base()))
    )


TABLES = {
    "library": Library._meta.db_table,
    "librarian": Librarian._meta.db_table,
    "part": LibraryScorePart._meta.db_table,
    "snapshot": LibraryScoreSnapshot._meta.db_table,
    "signal": ActivitySignal._meta.db_table,
    "recount": ScoreRecount._meta.db_table,
}


def _parts_insert(cursor, signals, basis: Basis) -> None:
    sql, params = _sql(_parts_query(signals, basis))
    cursor.execute(
        f"""
        INSERT INTO {TABLES["part"]} (library_id, kind, signal_count, base)
        SELECT library_id, kind, signal_count, base FROM ({sql}) AS grouped
        """,
        params,
    )


def _snapshots_write(cursor, basis: Basis, libraries: str, params) -> None:
    """The day's snapshot of the libraries ``libraries`` (SQL: a WHERE on the library table)."""
    # "WHERE": SQLite needs one before ON CONFLICT in INSERT … SELECT, to tell the upsert
    # from a join's ON (https://www.sqlite.org/lang_upsert.html).
    cursor.execute(
        f"""
        INSERT INTO {TABLES["snapshot"]} (library_id, date, score, computed_at)
        SELECT id, %s, score_base * %s, %s FROM {TABLES["library"]} WHERE {libraries}
        ON CONFLICT (library_id, date)
        DO UPDATE SET score = excluded.score, computed_at = excluded.computed_at
        """,
        [
            connection.ops.adapt_datefield_value(timezone.localdate(basis.now)),
            basis.scale,
            connection.ops.adapt_datetimefield_value(basis.now),
            *params,
        ],
    )


def _signals_upto(watermark: int):
    return ActivitySignal.objects.filter(pk__lte=watermark)


def _watermark() -> int | None:
    """The newest signal the refresh may count: every signal up to it is committed; None
    when that cannot be known now.

    On PostgreSQL a transaction that inserts a signal holds its id before it commits, so a
    later id can be visible while an earlier one is not yet: the SHARE lock waits for the
    transactions writing signals to end (and holds new ones back for that instant only, as
    the transaction ends at once). While it waits, every new signal waits behind it: after
    SCORES_WATERMARK_WAIT seconds it gives up (a transaction writing signals that long is
    a pull or an import), and the refresh counts no new signal this time. SQLite has one
    writer at a time: ids are committed in order.
    """
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                wait = int(settings.SCORES_WATERMARK_WAIT * 1000)
                cursor.execute(f"SET LOCAL lock_timeout = {wait}")
                cursor.execute(f"LOCK TABLE {TABLES['signal']} IN SHARE MODE")
            cursor.execute(f"SELECT MAX(id) FROM {TABLES['signal']}")
            (watermark,) = cursor.fetchone()
    except OperationalError as error:
        if getattr(error.__cause__, "sqlstate", None) != "55P03":  # lock_not_available
            raise
        logger.warning(
            "Scores: signals were being written for over %s s; the refresh adds none of the "
            "new ones this time (the next one will).",
            settings.SCORES_WATERMARK_WAIT,
        )
        return None
    return watermark or 0


def _recounts_claim(cursor) -> tuple[set[int], set[int]]:
    """Take the libraries and librarians marked for a recount: exactly the rows deleted here
    (a mark written meanwhile stays for the next refresh)."""
    cursor.execute(f"DELETE FROM {TABLES['recount']} RETURNING library_id, librarian_id")
    libraries, librarians = set(), set()
    for library_id, librarian_id in cursor.fetchall():
        if library_id is not None:
            libraries.add(library_id)
        if librarian_id is not None:
            librarians.add(librarian_id)
    return libraries, librarians


def _future_mark(cursor, signals) -> None:
    """Mark for the next refresh's recount the libraries and librarians of ``signals`` dated
    after the refresh: until then they count as new, after it they decay."""
    sql, params = _sql(signals.order_by().values("library_id", "librarian_id").distinct())
    cursor.execute(
        f"INSERT INTO {TABLES['recount']} (library_id, librarian_id) {sql}",
        params,
    )


# The refresh ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ScoresRefreshed:
    """What a refresh did: ``recounted`` everything, or carried the sums forward with the
    ``signals`` recorded since the last one; ``libraries`` in all, ``changed`` of them with
    new sums (and a snapshot); ``recounted_libraries`` counted again from all their signals."""

    now: datetime
    recounted: bool
    libraries: int
    signals: int = 0
    changed: int = 0
    recounted_libraries: int = 0
    recounted_librarians: int = 0
    reason: str = ""


def _recount_reason(basis: ScoreBasis | None, terms: Basis) -> str:
    if basis is None:
        return "first refresh"
    if basis.weights != terms.weights or basis.half_life_days != terms.half_life:
        return "weights or half-life changed"
    if terms.now < basis.as_of:
        return "dated before the last refresh"
    if (terms.now - basis.epoch).total_seconds() / (
        terms.half_life * SECONDS_PER_DAY
    ) > MAX_HALF_LIVES_FROM_BASIS:
        return "basis moved forward"
    return ""


def scores_refresh(*, now: datetime | None = None, recount: bool = False) -> ScoresRefreshed:
    """Bring every score, its parts and the librarians' activity to ``now`` and write the day's
    snapshots; return what it did.

    Carries the stored sums forward with the signals recorded since the last refresh, and
    counts again from all their signals the libraries and librarians marked for it; counts
    everything again when ``recount``, on the first refresh, when the weights or the
    half-life changed, or when ``now`` is before the last refresh. All of it in one
    transaction, after reading the watermark in one of its own: a page reads the parts,
    scores and activity of one refresh or of the next, each whole. Running it again the same
    day adds nothing twice and overwrites that day's snapshots, so it is idempotent.
    """
    now = _now(now)
    watermark = _watermark()
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # A second refresh (the button during the nightly run) would add the same
            # signals again: it waits here for this one, then finds nothing new. The mode
            # lets pages read meanwhile (they see the last refresh). SQLite serialises
            # writing transactions by itself.
            cursor.execute(f"LOCK TABLE {TABLES['part']} IN SHARE ROW EXCLUSIVE MODE")
            # Room for the groups in memory: 150,000 of them spill to disk at the default.
            cursor.execute("SET LOCAL work_mem = '64MB'")
            # The commit returns before its WAL reaches the disk: a crash in that instant
            # loses this refresh whole (the basis is in the same transaction), and the next
            # one does its work again. Nothing else waits on it.
            cursor.execute("SET LOCAL synchronous_commit = off")
        basis = ScoreBasis.objects.first()
        weights = score_weights()
        terms = Basis(
            epoch=basis.epoch if basis else now,
            now=now,
            weights=weights,
            half_life=half_life_days(),
        )
        reason = "asked" if recount else _recount_reason(basis, terms)
        if watermark is None:
            # Nothing new is counted: the signals up to the last watermark are the known ones.
            watermark = basis.watermark if basis else 0
        if reason:
            terms = Basis(epoch=now, now=now, weights=weights, half_life=terms.half_life)
            done = _recount_all(cursor, terms, watermark, reason=reason)
        else:
            # Signals counted already (a refresh meanwhile took a later watermark) stay so.
            watermark = max(watermark, basis.watermark)
            done = _carry_forward(cursor, terms, basis.watermark, watermark)
        ScoreBasis.objects.update_or_create(
            pk=basis.pk if basis else None,
            defaults={
                "epoch": terms.epoch,
                "as_of": now,
                "scale": terms.scale,
                "watermark": watermark,
                "half_life_days": terms.half_life,
                "weights": weights,
                "recounted_at": now if done.recounted else basis.recounted_at,
            },
        )
    return done


COUNTED = "score_parts_counted"


def _recount_all(cursor, basis: Basis, watermark: int, *, reason: str) -> ScoresRefreshed:
    """Count every sum again from all the signals up to ``watermark``, at a new epoch.

    1. the signals grouped by library and kind, in one scan, into a temporary table (with
       the date of each group's latest signal);
    2. the parts updated in place from it (a new basis changes them all; rewriting a row
       without touching its indexed columns keeps it on its page, with no index written),
       then, when the counts say so, those gone deleted and the new ones inserted;
    3. UPDATE … FROM every library's groups summed (0 without signals);
    4. UPDATE … FROM the signals naming a librarian grouped by librarian (0 for the others);
    5. the day's snapshot of every library;
    6. the libraries with a signal dated after ``now`` marked for the next refresh (read
       from the groups, then those libraries' signals by their index).
    Every mark for a recount is dropped first: this is one. The UPDATEs rewrite only the
    rows whose value changed.
    """
    signals = _signals_upto(watermark)
    library, part, librarian = TABLES["library"], TABLES["part"], TABLES["librarian"]
    cursor.execute(f"DELETE FROM {TABLES['recount']}")
    counted_sql, counted_params = _sql(
        _parts_query(signals, basis).annotate(latest=Max("occurred_at"))
    )
    cursor.execute(f"DROP TABLE IF EXISTS {COUNTED}")
    cursor.execute(f"CREATE TEMPORARY TABLE {COUNTED} AS {counted_sql}", counted_params)
    # The sizes and spreads, for the plans of the statements that join them: PostgreSQL
    # does not analyse temporary tables by itself, and the parts may have grown from none
    # since autovacuum last looked (a plan made for an empty table scans it once a row).
    cursor.execute(f"ANALYZE {COUNTED}")
    cursor.execute(f"ANALYZE {part}")
    cursor.execute(f"SELECT (SELECT COUNT(*) FROM {COUNTED}), (SELECT COUNT(*) FROM {part})")
    groups, parts = cursor.fetchone()
    # A new basis changes every part: each is updated, and the count of them tells whether
    # some are gone or new (usually none).
    same_part = "part.library_id = counted.library_id AND part.kind = counted.kind"
    cursor.execute(
        f"""
        UPDATE {part} AS part SET signal_count = counted.signal_count, base = counted.base
        FROM {COUNTED} AS counted WHERE {same_part}
        """
    )
    matched = cursor.rowcount
    if matched < parts:
        cursor.execute(
            f"""
            DELETE FROM {part} WHERE NOT EXISTS (
                SELECT 1 FROM {COUNTED} AS counted
                WHERE {part}.library_id = counted.library_id AND {part}.kind = counted.kind
            )
            """
        )
    if matched < groups:
        # The groups without a part yet: the unique index tells (an anti-join here could
        # scan the rows this very statement inserts, once for each).
        cursor.execute(
            f"""
            INSERT INTO {part} (library_id, kind, signal_count, base)
            SELECT library_id, kind, signal_count, base FROM {COUNTED} WHERE TRUE
            ON CONFLICT (library_id, kind) DO NOTHING
            """
        )
    cursor.execute(
        f"""
        UPDATE {library} AS target SET score_base = totals.base
        FROM (
            SELECT every.id AS library_id, COALESCE(SUM(counted.base), 0.0) AS base
            FROM {library} AS every
            LEFT JOIN {COUNTED} AS counted ON counted.library_id = every.id
            GROUP BY every.id
        ) AS totals
        WHERE target.id = totals.library_id
            AND (target.score_base IS NULL OR target.score_base <> totals.base)
        """
    )
    # A second aggregate of the signals: the parts are per library and kind, and a single
    # scan grouped both ways needs GROUPING SETS, which SQLite lacks.
    activity_sql, activity_params = _sql(_activity_query(signals, basis))
    cursor.execute(
        f"""
        UPDATE {librarian} AS target SET activity_base = totals.base
        FROM (
            SELECT every.id AS librarian_id, COALESCE(named.base, 0.0) AS base
            FROM {librarian} AS every
            LEFT JOIN ({activity_sql}) AS named ON named.librarian_id = every.id
        ) AS totals
        WHERE target.id = totals.librarian_id AND target.activity_base <> totals.base
        """,
        activity_params,
    )
    _snapshots_write(cursor, basis, "TRUE", [])
    libraries = cursor.rowcount
    cursor.execute(
        f"SELECT DISTINCT library_id FROM {COUNTED} WHERE latest > %s",
        [connection.ops.adapt_datetimefield_value(basis.now)],
    )
    ahead = [library_id for (library_id,) in cursor.fetchall()]
    if ahead:
        _future_mark(cursor, signals.filter(library_id__in=_ids(ahead), occurred_at__gt=basis.now))
    cursor.execute(f"DROP TABLE {COUNTED}")
    return ScoresRefreshed(
        now=basis.now,
        recounted=True,
        libraries=libraries,
        changed=libraries,
        recounted_libraries=libraries,
        reason=reason,
    )


def _carry_forward(cursor, basis: Basis, since: int, watermark: int) -> ScoresRefreshed:
    """Add the signals after ``since`` up to ``watermark`` to the stored sums, count again the
    libraries and librarians marked for it, and write the snapshots of those that changed.

    Costs what the new signals and the marked libraries cost: each statement reads the new
    signals by id (the primary key), the marked ones by library or librarian (their
    indexes), or the libraries without a score yet.
    """
    library, part, librarian = TABLES["library"], TABLES["part"], TABLES["librarian"]
    new = ActivitySignal.objects.filter(pk__gt=since, pk__lte=watermark)
    recount_libraries, recount_librarians = _recounts_claim(cursor)
    # Signals dated after the refresh, and libraries the refresh never scored (created
    # since): counted whole, not added.
    for library_id, librarian_id in new.filter(occurred_at__gt=basis.now).values_list(
        "library_id", "librarian_id"
    ):
        recount_libraries.add(library_id)
        if librarian_id is not None:
            recount_librarians.add(librarian_id)
    recount_libraries.update(
        Library.objects.filter(score_base__isnull=True).values_list("pk", flat=True)
    )
    signal_count = new.count() if since < watermark else 0
    if signal_count:
        added = new.filter(occurred_at__lte=basis.now).exclude(
            library_id__in=_ids(recount_libraries)
        )
        # The night's signals grouped once; then an UPDATE of the parts that exist (in
        # place: their indexed columns stay), and an INSERT of the others: cheaper than an
        # upsert, which tries an insertion first.
        parts_sql, parts_params = _sql(_parts_query(added, basis))
        cursor.execute(f"DROP TABLE IF EXISTS {COUNTED}")
        cursor.execute(f"CREATE TEMPORARY TABLE {COUNTED} AS {parts_sql}", parts_params)
        same_part = "part.library_id = counted.library_id AND part.kind = counted.kind"
        cursor.execute(
            f"""
            UPDATE {part} AS part SET
                signal_count = part.signal_count + counted.signal_count,
                base = part.base + counted.base
            FROM {COUNTED} AS counted WHERE {same_part}
            """
        )
        cursor.execute(
            f"""
            INSERT INTO {part} (library_id, kind, signal_count, base)
            SELECT library_id, kind, signal_count, base FROM {COUNTED} AS counted
            WHERE NOT EXISTS (SELECT 1 FROM {part} AS part WHERE {same_part})
            """
        )
        cursor.execute(
            f"""
            UPDATE {library} AS target SET score_base = target.score_base + added.base
            FROM (
                SELECT library_id, SUM(base) AS base FROM {COUNTED} GROUP BY library_id
            ) AS added
            WHERE target.id = added.library_id
            """
        )
        cursor.execute(f"DROP TABLE {COUNTED}")
        activity_sql, activity_params = _sql(
            _activity_query(
                new.filter(occurred_at__lte=basis.now).exclude(
                    librarian_id__in=_ids(recount_librarians)
                ),
                basis,
            )
        )
        cursor.execute(
            f"""
            UPDATE {librarian} AS target SET activity_base = target.activity_base + added.base
            FROM ({activity_sql}) AS added WHERE target.id = added.librarian_id
            """,
            activity_params,
        )
    if recount_libraries:
        _recount_libraries(cursor, basis, watermark, recount_libraries)
    if recount_librarians:
        _recount_librarians(cursor, basis, watermark, recount_librarians)
    # The day's snapshot of every library whose sums changed: those of the new signals and
    # those counted again.
    where, params = _ids_sql(recount_libraries)
    where = f"id IN ({where})"
    if signal_count:
        new_sql, new_params = _sql(new.order_by().values("library_id"))
        where, params = f"{where} OR id IN ({new_sql})", [*params, *new_params]
    _snapshots_write(cursor, basis, where, params)
    changed = cursor.rowcount
    return ScoresRefreshed(
        now=basis.now,
        recounted=False,
        libraries=Library.objects.count(),
        signals=signal_count,
        changed=changed,
        recounted_libraries=len(recount_libraries),
        recounted_librarians=len(recount_librarians),
    )


def _recount_libraries(cursor, basis: Basis, watermark: int, library_ids: set[int]) -> None:
    """The parts and scores of ``library_ids`` counted again from all their signals."""
    library, part = TABLES["library"], TABLES["part"]
    signals = _signals_upto(watermark).filter(library_id__in=_ids(library_ids))
    LibraryScorePart.objects.filter(library_id__in=_ids(library_ids)).delete()
    _parts_insert(cursor, signals, basis)
    ids_sql, ids_params = _ids_sql(library_ids)
    cursor.execute(
        f"""
        UPDATE {library} SET score_base = COALESCE(
            (SELECT SUM(part.base) FROM {part} AS part WHERE part.library_id = {library}.id),
            0.0
        )
        WHERE id IN ({ids_sql})
        """,
        ids_params,
    )
    _future_mark(cursor, signals.filter(occurred_at__gt=basis.now))


def _recount_librarians(cursor, basis: Basis, watermark: int, librarian_ids: set[int]) -> None:
    """The activity of ``librarian_ids`` counted again from all the signals naming them."""
    librarian = TABLES["librarian"]
    signals = _signals_upto(watermark).filter(librarian_id__in=_ids(librarian_ids))
    activity_sql, activity_params = _sql(_activity_query(signals, basis))
    ids_sql, ids_params = _ids_sql(librarian_ids)
    cursor.execute(
        f"""
        UPDATE {librarian} AS target SET activity_base = COALESCE(named.base, 0.0)
        FROM {librarian} AS every
        LEFT JOIN ({activity_sql}) AS named ON named.librarian_id = every.id
        WHERE target.id = every.id AND every.id IN ({ids_sql})
        """,
        [*activity_params, *ids_params],
    )


# The check ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ScoresChecked:
    """The largest relative differences between the stored sums and a full count of the same
    signals at the same basis: of the libraries' scores, of their parts and of the
    librarians' activity; ``parts_miscounted``, the parts whose number of signals differs."""

    checked_at: datetime
    libraries: float
    parts: float
    librarians: float
    parts_miscounted: int

    @property
    def difference(self) -> float:
        return max(self.libraries, self.parts, self.librarians)

    @property
    def agrees(self) -> bool:
        return self.difference <= settings.SCORES_CHECK_TOLERANCE and not self.parts_miscounted


def _largest_difference(cursor, stored_sql: str, counted_sql: str, params, keys: str) -> float:
    """max |stored - counted| / max(|stored|, |counted|) over the rows of two queries that give
    ``keys`` and a value (a key missing from one counts 0 there)."""
    greatest = "GREATEST" if connection.vendor == "postgresql" else "MAX"
    cursor.execute(
        f"""
        SELECT MAX(ABS(stored - counted) / {greatest}(ABS(stored), ABS(counted)))
        FROM (
            SELECT {keys}, SUM(stored) AS stored, SUM(counted) AS counted FROM (
                SELECT {keys}, value AS stored, 0.0 AS counted FROM ({stored_sql}) AS s
                UNION ALL
                SELECT {keys}, 0.0 AS stored, value AS counted FROM ({counted_sql}) AS c
            ) AS both_sides GROUP BY {keys}
        ) AS pairs
        WHERE {greatest}(ABS(stored), ABS(counted)) > 0
        """,
        params,
    )
    (difference,) = cursor.fetchone()
    return float(difference or 0.0)


def scores_check() -> ScoresChecked | None:
    """Count every sum again at the basis of the last refresh, without writing any, and say how
    far the stored sums are from it; None before the first refresh.

    The libraries and librarians marked for a recount (a signal of theirs changed since) are
    left out: the next refresh counts them again anyway. Three scans of the signals.
    """
    basis = ScoreBasis.objects.first()
    if basis is None:
        return None
    terms = Basis(
        epoch=basis.epoch,
        now=basis.as_of,
        weights=basis.weights or score_weights(),
        half_life=basis.half_life_days or half_life_days(),
    )
    pending_libraries = ScoreRecount.objects.filter(library_id__isnull=False).values("library_id")
    pending_librarians = ScoreRecount.objects.filter(librarian_id__isnull=False).values(
        "librarian_id"
    )
    signals = _signals_upto(basis.watermark)
    by_library = signals.exclude(library_id__in=pending_libraries)
    parts = LibraryScorePart.objects.order_by().exclude(library_id__in=pending_libraries)
    libraries = Library.objects.order_by().exclude(pk__in=pending_libraries)
    with connection.cursor() as cursor:
        stored_sql, stored_params = _sql(parts.values("library_id", "kind", value=F("base")))
        counted_sql, counted_params = _sql(
            _parts_query(by_library, terms).values("library_id", "kind", value=F("base"))
        )
        parts_difference = _largest_difference(
            cursor, stored_sql, counted_sql, [*stored_params, *counted_params], "library_id, kind"
        )
        stored_sql, stored_params = _sql(
            libraries.values(library_id=F("pk"), value=F("score_base"))
        )
        counted_sql, counted_params = _sql(
            _library_query(by_library, terms).values("library_id", value=F("base"))
        )
        libraries_difference = _largest_difference(
            cursor, stored_sql, counted_sql, [*stored_params, *counted_params], "library_id"
        )
        stored_sql, stored_params = _sql(
            Librarian.objects.order_by()
            .exclude(pk__in=pending_librarians)
            .values(librarian_id=F("pk"), value=F("activity_base"))
        )
        counted_sql, counted_params = _sql(
            _activity_query(signals.exclude(librarian_id__in=pending_librarians), terms).values(
                "librarian_id", value=F("base")
            )
        )
        librarians_difference = _largest_difference(
            cursor, stored_sql, counted_sql, [*stored_params, *counted_params], "librarian_id"
        )
    counted = {
        (row["library_id"], row["kind"]): row["signal_count"]
        for row in by_library.order_by()
        .values("library_id", "kind")
        .annotate(signal_count=Count("id"))
    }
    stored = {
        (library_id, kind): signal_count
        for library_id, kind, signal_count in parts.values_list(
            "library_id", "kind", "signal_count"
        )
    }
    miscounted = sum(
        1 for key in counted.keys() | stored.keys() if counted.get(key, 0) != stored.get(key, 0)
    )
    return ScoresChecked(
        checked_at=timezone.now(),
        libraries=libraries_difference,
        parts=parts_difference,
        librarians=librarians_difference,
        parts_miscounted=miscounted,
    )


def scores_nightly(*, now: datetime | None = None) -> tuple[ScoresRefreshed, ScoresChecked | None]:
    """The nightly refresh, and once a week the check of what it carried forward: when the
    stored sums and a full count differ by more than SCORES_CHECK_TOLERANCE (relative), an
    error is logged (in the worker's log, with the differences) and everything is counted
    again."""
    refreshed = scores_refresh(now=now)
    basis = ScoreBasis.objects.first()
    due = basis.checked_at is None or refreshed.now - basis.checked_at >= CHECK_EVERY
    if refreshed.recounted or not due:
        return refreshed, None
    checked = scores_check()
    ScoreBasis.objects.filter(pk=basis.pk).update(
        checked_at=refreshed.now, check_difference=checked.difference
    )
    if checked.agrees:
        logger.info(
            "Scores checked against a full count: largest relative difference %.2e.",
            checked.difference,
        )
    else:
        logger.error(
            "Scores carried forward differ from a full count: largest relative difference "
            "%.2e (libraries %.2e, parts %.2e, librarians %.2e), %d parts miscounted. "
            "Everything is counted again.",
            checked.difference,
            checked.libraries,
            checked.parts,
            checked.librarians,
            checked.parts_miscounted,
        )
        refreshed = scores_refresh(now=refreshed.now, recount=True)
    return refreshed, checked


@dataclass(frozen=True)
class ScoreLine:
    kind: str
    label: str
    count: int
    weight: float
    contribution: float


@dataclass(frozen=True)
class ScoreExplanation:
    """A library's score by kind of signal; ``now`` is when the refresh computed it (None when
    the caller did not say)."""

    lines: list[ScoreLine]
    total: float
    half_life_days: float
    now: datetime | None

    @property
    def signal_count(self) -> int:
        return sum(line.count for line in self.lines)


def score_basis() -> ScoreBasis | None:
    """Where the stored scores stand (None before the first refresh)."""
    return ScoreBasis.objects.first()


def score_explain(library: Library, *, basis: ScoreBasis | None = None) -> ScoreExplanation:
    """The score of ``library`` by kind of signal as the last refresh wrote it, largest
    contribution first.

    One query: the library's parts, at most one per kind. They add up to the library's score
    (the refresh wrote both); a library has none before its first refresh, nor while it has
    no signal. With the ``basis`` (``score_basis()``), the explanation says when the refresh
    ran and shows the weights the sums were made with; without, today's settings.
    """
    weights = basis.weights if basis and basis.weights else score_weights()
    labels = dict(ActivitySignal.Kind.choices)
    parts = (
        LibraryScorePart.objects.filter(library=library)
        .order_by("-base", "-signal_count", "kind")
        .with_scale()
    )
    lines = [
        ScoreLine(
            kind=part.kind,
            label=str(labels.get(part.kind, part.kind)),
            count=part.signal_count,
            weight=weights.get(part.kind, 0.0),
            contribution=part.contribution or 0.0,
        )
        for part in parts
    ]
    return ScoreExplanation(
        lines=lines,
        total=math.fsum(line.contribution for line in lines),
        half_life_days=basis.half_life_days if basis and basis.half_life_days else half_life_days(),
        now=basis.as_of if basis else None,
    )


@dataclass(frozen=True)
class TrendPoint:
    date: date
    score: float


def score_trend(library: Library, *, basis: ScoreBasis | None, days: int = 30) -> list[TrendPoint]:
    """The library's score on each of the last ``days`` days up to the last refresh, oldest
    first, from its snapshots: a day without one decayed from the snapshot before it (the
    library's signals did not change that day). Empty before its first snapshot; two
    queries."""
    if basis is None:
        return []
    last = timezone.localdate(basis.as_of)
    first = last - timedelta(days=days - 1)
    snapshots = library.score_snapshots.filter(date__lte=last).order_by("date")
    rows = list(snapshots.filter(date__gte=first).values_list("date", "score"))
    if not rows or rows[0][0] > first:
        before = snapshots.filter(date__lt=first).values_list("date", "score").last()
        if before is not None:
            rows.insert(0, before)
    if not rows:
        return []
    half_life = basis.half_life_days or half_life_days()
    points, known = [], iter(rows)
    day, (known_day, known_score) = max(first, rows[0][0]), next(known)
    upcoming = next(known, None)
    while day <= last:
        while upcoming is not None and upcoming[0] <= day:
            known_day, known_score = upcoming
            upcoming = next(known, None)
        age = (day - known_day).days
        points.append(TrendPoint(date=day, score=known_score * 0.5 ** (age / half_life)))
        day += timedelta(days=1)
    return points


def scores_at_least(score: float, *, path: str = "") -> Q:
    """The libraries (through ``path``) whose score as of the last refresh is ``score`` or more:
    their stored sums compared with ``score`` turned into a sum at the basis (one query)."""
    scale = ScoreBasis.objects.values_list("scale", flat=True).first()
    if not scale:
        return Q(pk__in=[])
    return Q(**{f"{path}score_base__gte": score / scale})


def scores_refreshed_at() -> datetime | None:
    """When the refresh last ran."""
    return ScoreBasis.objects.values_list("as_of", flat=True).first()
