"""Activity scores: every library's signals, weighted by kind and decayed by age, in SQL.

A signal of kind *k* that is *d* days old counts ``SCORE_WEIGHTS[k] * 0.5 ** (d / H)``, where
*H* is ``SCORE_HALF_LIFE_DAYS``; a library's score is the sum over its signals. The database
computes it (``SignalContribution`` is that formula as one SQL expression, written for
PostgreSQL and for SQLite), so no Python loop ever walks the signals:

- ``scores_refresh`` writes every library's ``score`` with one UPDATE … FROM (the aggregate
  grouped by library) and upserts the day's ``LibraryScoreSnapshot`` rows with one
  INSERT … SELECT … ON CONFLICT. The nightly task and the "Refresh scores now" button run it.
- ``score_explain`` gives one library's score by kind (count, weight, contribution): the
  breakdown the library page shows, which adds up to the score.
- ``librarians_activity`` is the same sum over each librarian's own signals, for the
  shortlist's "most active librarians".
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, F, FloatField, Func, Sum
from django.utils import timezone

from .models import ActivitySignal, Library, LibraryScoreSnapshot

SECONDS_PER_DAY = 86400.0
# Julian day number of 1970-01-01T00:00Z: SQLite's julianday() counts days from there on.
UNIX_EPOCH_JULIAN_DAY = 2440587.5


def score_weights() -> dict[str, float]:
    """The weight of every kind of signal: SCORE_WEIGHTS, and 0 for a kind it leaves out."""
    configured = settings.SCORE_WEIGHTS
    return {kind: float(configured.get(kind, 0.0)) for kind in ActivitySignal.Kind.values}


def half_life_days() -> float:
    return float(settings.SCORE_HALF_LIFE_DAYS)


class SignalContribution(Func):
    """What one signal adds to a score at ``now``: its kind's weight, halved every half-life.

    Written as ``weight(kind) * EXP(-ln 2 / H * age_in_days)`` (the same as
    ``0.5 ** (age / H)``, with one multiplication per row instead of a division and a power).
    A signal dated after ``now`` counts as new, not more. ``now`` goes in as a number, the
    Unix epoch on PostgreSQL and the Julian day on SQLite, so each database compares it with
    the stored timestamp in its own cheapest way. EXP is built into PostgreSQL; Django
    registers it on every SQLite connection.
    """

    output_field = FloatField()

    def __init__(
        self,
        kind: str = "kind",
        occurred_at: str = "occurred_at",
        *,
        now: datetime,
        weights: dict[str, float] | None = None,
        half_life: float | None = None,
    ):
        super().__init__(F(kind), F(occurred_at))
        self.now = now
        self.weights = score_weights() if weights is None else weights
        self.half_life = half_life_days() if half_life is None else half_life

    def as_sql(self, compiler, connection, **extra_context):
        kind_expression, occurred_expression = self.get_source_expressions()
        kind_sql, kind_params = compiler.compile(kind_expression)
        occurred_sql, occurred_params = compiler.compile(occurred_expression)
        whens = " ".join("WHEN %s THEN %s" for _ in self.weights)
        weight_params = [value for item in self.weights.items() for value in item]
        # CAST: PostgreSQL reads a literal such as 1.5 as numeric; the product must be float.
        weight_sql = f"CAST(CASE {kind_sql} {whens} ELSE 0 END AS DOUBLE PRECISION)"
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
        sql = f"({weight_sql} * EXP(%s * {age_sql}))"
        params = (
            *kind_params,
            *weight_params,
            -math.log(2) / self.half_life,
            now_param,
            *occurred_params,
        )
        return sql, params


def _now(now: datetime | None) -> datetime:
    now = now or timezone.now()
    if timezone.is_naive(now):
        raise ValueError("Scores are computed at an aware datetime.")
    return now


def library_totals(*, now: datetime | None = None):
    """(library_id, score) of every library that has signals: the aggregate the refresh uses."""
    return (
        ActivitySignal.objects.order_by()
        .values("library_id")
        .annotate(total=Sum(SignalContribution(now=_now(now))))
        .values_list("library_id", "total")
    )


@transaction.atomic
def scores_refresh(*, now: datetime | None = None) -> int:
    """Write every library's score at ``now`` and that day's snapshot; return the libraries.

    Two statements whatever the number of signals: an UPDATE … FROM the aggregate grouped by
    library (a library without signals gets 0; rows whose score did not change are not
    rewritten), then an upsert of the day's snapshot of every library. Running it again the
    same day overwrites that day's snapshots, so it is idempotent; a missed night only leaves
    a day without a snapshot.
    """
    now = _now(now)
    totals_sql, totals_params = library_totals(now=now).query.sql_with_params()
    library = Library._meta.db_table
    snapshot = LibraryScoreSnapshot._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            UPDATE {library} AS target SET score = totals.score
            FROM (
                SELECT every.id AS library_id, COALESCE(signalled.total, 0.0) AS score
                FROM {library} AS every
                LEFT JOIN ({totals_sql}) AS signalled
                    ON signalled.library_id = every.id
            ) AS totals
            WHERE target.id = totals.library_id
                AND (target.score IS NULL OR target.score <> totals.score)
            """,
            totals_params,
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
    lines: list[ScoreLine]
    total: float
    half_life_days: float
    now: datetime

    @property
    def signal_count(self) -> int:
        return sum(line.count for line in self.lines)


def score_explain(library: Library, *, now: datetime | None = None) -> ScoreExplanation:
    """The score of ``library`` at ``now`` by kind of signal, largest contribution first.

    One aggregate grouped by kind, with the refresh's own expression: the contributions add
    up to the score the refresh writes at the same ``now``.
    """
    now = _now(now)
    weights = score_weights()
    rows = (
        ActivitySignal.objects.filter(library=library)
        .order_by()
        .values("kind")
        .annotate(
            count=Count("id"),
            contribution=Sum(SignalContribution(now=now, weights=weights)),
        )
    )
    labels = dict(ActivitySignal.Kind.choices)
    lines = sorted(
        (
            ScoreLine(
                kind=row["kind"],
                label=str(labels.get(row["kind"], row["kind"])),
                count=row["count"],
                weight=weights.get(row["kind"], 0.0),
                contribution=row["contribution"] or 0.0,
            )
            for row in rows
        ),
        key=lambda line: (-line.contribution, -line.count, line.kind),
    )
    return ScoreExplanation(
        lines=lines,
        total=sum(line.contribution for line in lines),
        half_life_days=half_life_days(),
        now=now,
    )


def library_kind_contributions(
    library_ids: list[int], *, now: datetime | None = None
) -> dict[int, dict[str, float]]:
    """{library_id: {kind: contribution}} for several libraries, in one query."""
    rows = (
        ActivitySignal.objects.filter(library_id__in=library_ids)
        .order_by()
        .values_list("library_id", "kind")
        .annotate(contribution=Sum(SignalContribution(now=_now(now))))
    )
    contributions: dict[int, dict[str, float]] = {}
    for library_id, kind, contribution in rows:
        contributions.setdefault(library_id, {})[kind] = contribution or 0.0
    return contributions


def librarians_activity(
    *, library_ids: list[int] | None = None, now: datetime | None = None
) -> dict[int, float]:
    """{librarian_id: the weighted, decayed sum of their own signals}, in one query.

    Only signals that name a librarian count; ``library_ids`` narrows it to those libraries.
    """
    signals = ActivitySignal.objects.filter(librarian__isnull=False)
    if library_ids is not None:
        signals = signals.filter(library_id__in=library_ids)
    rows = (
        signals.order_by()
        .values_list("librarian_id")
        .annotate(activity=Sum(SignalContribution(now=_now(now))))
    )
    return {librarian_id: activity or 0.0 for librarian_id, activity in rows}


def scores_refreshed_at() -> datetime | None:
    """When the refresh last ran, from the newest snapshot."""
    latest = LibraryScoreSnapshot.objects.order_by("-computed_at").first()
    return latest.computed_at if latest else None
