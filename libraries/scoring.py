"""Activity scores: every library's signals, weighted by kind and decayed by age, in SQL.

A signal of kind *k* that is *d* days old counts ``SCORE_WEIGHTS[k] * 0.5 ** (d / H)``, where
*H* is ``SCORE_HALF_LIFE_DAYS``; a library's score is the sum over its signals. The database
computes it (``KindWeight`` and ``SignalDecay`` are the two factors as SQL expressions,
written for PostgreSQL and for SQLite), so no Python loop ever walks the signals, and only
the refresh reads them:

- ``scores_refresh`` writes, in five set-based statements, every library's score by kind of
  signal (``LibraryScorePart``: one scan of the signals grouped by library and kind), every
  library's ``score`` (the sum of its parts), every librarian's ``activity`` (the same sum
  over the signals naming them) and the day's ``LibraryScoreSnapshot`` rows. The nightly task
  and the "Refresh scores now" button run it.
- ``score_explain`` reads one library's parts back (count, weight, contribution per kind):
  the breakdown the library page shows, which adds up to the stored score because the same
  refresh wrote both. The pages read what the last refresh wrote, so they cost the same
  whatever the number of signals, and say when that was (``scores_refreshed_at``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, F, FloatField, Func, Sum
from django.utils import timezone

from .models import ActivitySignal, Librarian, Library, LibraryScorePart, LibraryScoreSnapshot

SECONDS_PER_DAY = 86400.0
# Julian day number of 1970-01-01T00:00Z: SQLite's julianday() counts days from there on.
UNIX_EPOCH_JULIAN_DAY = 2440587.5


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


class SignalDecay(Func):
    """What a signal counts at ``now`` per unit of its kind's weight: 1 when new, halved every
    half-life.

    Written as ``EXP(-ln 2 / H * age_in_days)`` (the same as ``0.5 ** (age / H)``, with one
    multiplication per row instead of a division and a power). A signal dated after ``now``
    counts as new, not more. ``now`` goes in as a number, the Unix epoch on PostgreSQL and the
    Julian day on SQLite, so each database compares it with the stored timestamp in its own
    cheapest way. EXP is built into PostgreSQL; Django registers it on every SQLite
    connection.
    """

    output_field = FloatField()

    def __init__(
        self,
        occurred_at: str = "occurred_at",
        *,
        now: datetime,
        half_life: float | None = None,
    ):
        super().__init__(F(occurred_at))
        self.now = now
        self.half_life = half_life_days() if half_life is None else half_life

    def as_sql(self, compiler, connection, **extra_context):
        (occurred_expression,) = self.get_source_expressions()
        occurred_sql, occurred_params = compiler.compile(occurred_expression)
        epoch = self.now.timestamp()
        if connection.vendor == "postgresql":
            # date_part returns double precision (EXTRACT returns numeric since PostgreSQL 14).
            age_sql = f"GREATEST(%s - date_part('epoch', {occurred_sql}), 0) / {SECONDS_PER_DAY}"
            now_param = epoch
        elif connection.vendor == "sqlite":
            # Datetimes are stored as UTC text, which julianday() reads.
            age_sql = f"MAX(%s - julianday({occurred_sql}), 0)"
            now_param = epoch / SECONDS_PER_DAY + UNIX_EPOCH_JULIAN_DAY
        else:  # pragma: no cover - the project runs on PostgreSQL or SQLite
            raise NotImplementedError(f"Scores are not written for {connection.vendor}.")
        sql = f"EXP(%s * {age_sql})"
        return sql, (-math.log(2) / self.half_life, now_param, *occurred_params)


def signal_contribution(
    *,
    now: datetime,
    weights: dict[str, float] | None = None,
    half_life: float | None = None,
):
    """What one signal adds to a score at ``now``: its kind's weight times its decay."""
    return KindWeight(weights=weights) * SignalDecay(now=now, half_life=half_life)


def _now(now: datetime | None) -> datetime:
    now = now or timezone.now()
    if timezone.is_naive(now):
        raise ValueError("Scores are computed at an aware datetime.")
    return now


def _parts_query(*, now: datetime, weights: dict[str, float]):
    """Every library's signals grouped by kind: library_id, kind, signal_count, contribution.

    All the signals of a group share a kind, so its weight multiplies their decays' sum once
    per group rather than each signal's: the CASE over the kinds costs as much as the rest
    of the arithmetic when it runs on every row.
    """
    return (
        ActivitySignal.objects.order_by()
        .values("library_id", "kind")
        .annotate(
            signal_count=Count("id"),
            contribution=KindWeight(weights=weights) * Sum(SignalDecay(now=now)),
        )
    )


def _activity_query(*, now: datetime, weights: dict[str, float]):
    """The signals naming a librarian grouped by librarian: librarian_id, activity."""
    return (
        ActivitySignal.objects.filter(librarian__isnull=False)
        .order_by()
        .values("librarian_id")
        .annotate(activity=Sum(signal_contribution(now=now, weights=weights)))
    )


@transaction.atomic
def scores_refresh(*, now: datetime | None = None) -> int:
    """Write every score at ``now`` with its parts, the librarians' activity and that day's
    snapshot; return the number of libraries.

    Five statements whatever the number of rows (six on PostgreSQL, which first takes a lock
    so that two refreshes run one after the other), two of which read the signals:

    1. DELETE every ``LibraryScorePart``;
    2. INSERT … SELECT the parts: the signals grouped by library and kind (count and sum), in
       one scan;
    3. UPDATE … FROM every library's parts summed (0 without parts): ``Library.score``;
    4. UPDATE … FROM the signals naming a librarian grouped by librarian (0 for those no
       signal names): ``Librarian.activity``;
    5. an upsert of the day's snapshot of every library.

    The UPDATEs rewrite only the rows whose value changed. All of it in one transaction: a
    page reads the parts, scores and activity of one refresh or of the next, each whole.
    Running it again the same day replaces the parts and overwrites that day's snapshots, so
    it is idempotent; a missed night only leaves a day without a snapshot.
    """
    now = _now(now)
    weights = score_weights()
    parts_sql, parts_params = _parts_query(now=now, weights=weights).query.sql_with_params()
    activity_sql, activity_params = _activity_query(
        now=now, weights=weights
    ).query.sql_with_params()
    library = Library._meta.db_table
    librarian = Librarian._meta.db_table
    part = LibraryScorePart._meta.db_table
    snapshot = LibraryScoreSnapshot._meta.db_table
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # A second refresh (the button during the nightly run) would not see the parts
            # this one inserts and would collide with them on (library, kind): it waits
            # here instead. The mode lets pages read meanwhile (they see the last refresh).
            # SQLite serialises writing transactions by itself.
            cursor.execute(f"LOCK TABLE {part} IN SHARE ROW EXCLUSIVE MODE")
        cursor.execute(f"DELETE FROM {part}")
        cursor.execute(
            f"""
            INSERT INTO {part} (library_id, kind, signal_count, contribution)
            SELECT library_id, kind, signal_count, contribution FROM ({parts_sql}) AS grouped
            """,
            parts_params,
        )
        cursor.execute(
            f"""
            UPDATE {library} AS target SET score = totals.score
            FROM (
                SELECT every.id AS library_id, COALESCE(SUM(part.contribution), 0.0) AS score
                FROM {library} AS every
                LEFT JOIN {part} AS part ON part.library_id = every.id
                GROUP BY every.id
            ) AS totals
            WHERE target.id = totals.library_id
                AND (target.score IS NULL OR target.score <> totals.score)
            """
        )
        # A second aggregate of the signals: the parts are per library and kind, and a
        # single scan grouped both ways needs GROUPING SETS, which SQLite lacks.
        cursor.execute(
            f"""
            UPDATE {librarian} AS target SET activity = totals.activity
            FROM (
                SELECT every.id AS librarian_id, COALESCE(named.activity, 0.0) AS activity
                FROM {librarian} AS every
                LEFT JOIN ({activity_sql}) AS named ON named.librarian_id = every.id
            ) AS totals
            WHERE target.id = totals.librarian_id AND target.activity <> totals.activity
            """,
            activity_params,
        )
        # "WHERE TRUE": SQLite needs a WHERE before ON CONFLICT in INSERT … SELECT, to tell
        # the upsert from a join's ON (https://www.sqlite.org/lang_upsert.html).
        cursor.execute(
            f"""
            INSERT INTO {snapshot} (library_id, date, score, computed_at)
            SELECT id, %s, score, %s FROM {library} WHERE TRUE
            ON CONFLICT (library_id, date)
            DO UPDATE SET score = excluded.score, computed_at = excluded.computed_at
            """,
            [
                connection.ops.adapt_datefield_value(timezone.localdate(now)),
                connection.ops.adapt_datetimefield_value(now),
            ],
        )
        return cursor.rowcount


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


def score_explain(library: Library, *, computed_at: datetime | None = None) -> ScoreExplanation:
    """The score of ``library`` by kind of signal as the last refresh wrote it, largest
    contribution first.

    One query: the library's parts, at most one per kind. They add up to the library's stored
    score (the refresh summed them); a library has none before its first refresh, nor when it
    had no signal then. ``computed_at``, when the caller knows it (the library's newest
    snapshot), is kept as the explanation's ``now``. The weights shown are today's settings.
    """
    weights = score_weights()
    labels = dict(ActivitySignal.Kind.choices)
    parts = (
        LibraryScorePart.objects.filter(library=library)
        .order_by("-contribution", "-signal_count", "kind")
        .values_list("kind", "signal_count", "contribution")
    )
    lines = [
        ScoreLine(
            kind=kind,
            label=str(labels.get(kind, kind)),
            count=count,
            weight=weights.get(kind, 0.0),
            contribution=contribution,
        )
        for kind, count, contribution in parts
    ]
    return ScoreExplanation(
        lines=lines,
        total=math.fsum(line.contribution for line in lines),
        half_life_days=half_life_days(),
        now=computed_at,
    )


def scores_refreshed_at() -> datetime | None:
    """When the refresh last ran, from the newest snapshot."""
    latest = LibraryScoreSnapshot.objects.order_by("-computed_at").first()
    return latest.computed_at if latest else None
