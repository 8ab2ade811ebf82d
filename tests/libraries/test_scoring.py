"""Scores: signals weighted by kind and halved every half-life, computed by the database; the
breakdown the pages read, written by the same refresh."""

import datetime
import math
import threading

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format

from libraries import scoring
from libraries.models import (
    ActivitySignal,
    Librarian,
    Library,
    LibraryScorePart,
    LibraryScoreSnapshot,
)
from libraries.tasks import scores_refresh_task
from outreach.celery import app as celery_app
from tests.factories import (
    ActivitySignalFactory,
    LibrarianFactory,
    LibraryFactory,
    RegionFactory,
)

pytestmark = pytest.mark.django_db

NOW = datetime.datetime(2026, 3, 1, 10, 0, tzinfo=datetime.UTC)
WEIGHTS = {"tagged_edit": 1.0, "hosted_meetup": 8.0, "attended": 3.0, "invitation_no": -2.0}


@pytest.fixture(autouse=True)
def score_settings(settings):
    settings.SCORE_WEIGHTS = WEIGHTS
    settings.SCORE_HALF_LIFE_DAYS = 100
    return settings


def days_ago(days: float) -> datetime.datetime:
    return NOW - datetime.timedelta(days=days)


def score_of(library: Library) -> float | None:
    """The library's score as of the last refresh, read again."""
    return Library.objects.with_scale().get(pk=library.pk).score


def activities() -> dict[int, float]:
    return {librarian.pk: librarian.activity for librarian in Librarian.objects.with_scale()}


def test_a_new_signal_counts_its_kinds_weight():
    library = LibraryFactory()
    ActivitySignalFactory(library=library, kind="hosted_meetup", occurred_at=NOW)
    scoring.scores_refresh(now=NOW)
    assert score_of(library) == pytest.approx(8.0)


def test_a_signal_one_half_life_old_counts_half_and_two_half_lives_a_quarter():
    library = LibraryFactory()
    ActivitySignalFactory(library=library, kind="hosted_meetup", occurred_at=days_ago(100))
    scoring.scores_refresh(now=NOW)
    assert score_of(library) == pytest.approx(4.0)
    scoring.scores_refresh(now=NOW + datetime.timedelta(days=100))
    assert score_of(library) == pytest.approx(2.0)


def test_the_half_life_comes_from_the_settings(settings):
    settings.SCORE_HALF_LIFE_DAYS = 50
    library = LibraryFactory()
    ActivitySignalFactory(library=library, kind="hosted_meetup", occurred_at=days_ago(100))
    scoring.scores_refresh(now=NOW)
    assert score_of(library) == pytest.approx(2.0)


def test_weights_come_from_the_settings_and_a_kind_they_leave_out_weighs_nothing(settings):
    library = LibraryFactory()
    ActivitySignalFactory(library=library, kind="tagged_edit", occurred_at=NOW)
    ActivitySignalFactory(library=library, kind="tagged_edit", occurred_at=NOW)
    ActivitySignalFactory(library=library, kind="story", occurred_at=NOW)  # not in WEIGHTS
    scoring.scores_refresh(now=NOW)
    assert score_of(library) == pytest.approx(2.0)
    settings.SCORE_WEIGHTS = {**WEIGHTS, "tagged_edit": 2.5, "story": 4}
    scoring.scores_refresh(now=NOW)
    assert score_of(library) == pytest.approx(9.0)


def test_a_negative_weight_lowers_the_score():
    library = LibraryFactory()
    ActivitySignalFactory(library=library, kind="attended", occurred_at=NOW)
    ActivitySignalFactory(library=library, kind="invitation_no", occurred_at=NOW)
    scoring.scores_refresh(now=NOW)
    assert score_of(library) == pytest.approx(1.0)


def test_a_signal_dated_in_the_future_counts_as_new_not_more():
    library = LibraryFactory()
    ActivitySignalFactory(library=library, kind="attended", occurred_at=NOW + datetime.timedelta(3))
    scoring.scores_refresh(now=NOW)
    assert score_of(library) == pytest.approx(3.0)


def test_libraries_without_signals_score_zero_and_signals_do_not_leak_between_libraries():
    busy, quiet, other = LibraryFactory(), LibraryFactory(), LibraryFactory()
    ActivitySignalFactory(library=busy, kind="hosted_meetup", occurred_at=NOW)
    ActivitySignalFactory(library=other, kind="attended", occurred_at=days_ago(100))
    assert scoring.scores_refresh(now=NOW).libraries == 3
    assert score_of(busy) == pytest.approx(8.0)
    assert score_of(quiet) == 0.0
    assert score_of(other) == pytest.approx(1.5)


def test_a_library_whose_signals_are_gone_falls_back_to_zero():
    library = LibraryFactory()
    signal = ActivitySignalFactory(library=library, kind="hosted_meetup", occurred_at=NOW)
    scoring.scores_refresh(now=NOW)
    signal.delete()
    scoring.scores_refresh(now=NOW)
    assert score_of(library) == 0.0


def _statements(queries) -> list[str]:
    return [
        " ".join(q["sql"].split()).upper()
        for q in queries.captured_queries
        if not q["sql"].upper().startswith(("SAVEPOINT", "RELEASE SAVEPOINT", "LOCK TABLE"))
    ]


def _history(libraries: int):
    for i in range(libraries):
        library = LibraryFactory()
        librarian = LibrarianFactory(library=library)
        for days in range(i % 5):
            ActivitySignalFactory(
                library=library,
                librarian=librarian if days % 2 else None,
                kind="tagged_edit" if days % 3 else "attended",
                occurred_at=days_ago(days + 1),
            )


def test_a_full_recount_is_the_same_statements_whatever_the_number_of_signals():
    _history(30)
    with CaptureQueriesContext(connection) as queries:
        scoring.scores_refresh(now=NOW)
    # PostgreSQL also takes two locks (signals committed in order; one refresh at a time).
    statements = [s for s in _statements(queries) if not s.startswith(("SET ", "BEGIN", "COMMIT"))]
    heads = [" ".join(s.split()[:2]) for s in statements]
    assert heads == [
        "SELECT MAX(ID)",  # the watermark
        'SELECT "LIBRARIES_SCOREBASIS"."ID",',  # the basis
        "DELETE FROM",  # the marks for a recount: this is one
        "DROP TABLE",
        "CREATE TEMPORARY",  # the signals grouped by library and kind
        "ANALYZE SCORE_PARTS_COUNTED",
        "ANALYZE LIBRARIES_LIBRARYSCOREPART",
        "SELECT (SELECT",  # how many groups, how many parts
        "UPDATE LIBRARIES_LIBRARYSCOREPART",  # the parts, in place (none yet)
        "INSERT INTO",  # the new parts (here all: none was gone)
        "UPDATE LIBRARIES_LIBRARY",  # the scores
        "UPDATE LIBRARIES_LIBRARIAN",  # the activity
        "INSERT INTO",  # the snapshots
        "SELECT DISTINCT",  # the libraries with a signal dated later: none here
        "DROP TABLE",
        'SELECT "LIBRARIES_SCOREBASIS"."ID",',
        "INSERT INTO",  # the basis
    ]
    grouped, activity = statements[4], statements[11]
    assert "GROUP BY" in grouped and "GROUP BY" in activity
    # The signals are read twice: by library and kind, and by librarian.
    assert [i for i, s in enumerate(statements) if "LIBRARIES_ACTIVITYSIGNAL" in s] == [0, 4, 11]


def test_carrying_forward_reads_the_new_signals_only_whatever_the_history():
    """A night's refresh costs what the night's signals cost: the same statements after a
    short history as after a long one, each reading the signals by id above the last
    refresh's, and none of the old signals."""

    def night(history: int) -> list[str]:
        _history(history)
        scoring.scores_refresh(now=NOW)
        library = LibraryFactory()
        ActivitySignalFactory(library=library, kind="attended", occurred_at=NOW)
        ActivitySignalFactory(kind="tagged_edit", occurred_at=NOW)
        with CaptureQueriesContext(connection) as queries:
            done = scoring.scores_refresh(now=NOW + datetime.timedelta(days=1))
        assert (done.recounted, done.signals) == (False, 2)
        signal_reads = [
            s
            for s in _statements(queries)
            # The watermark: the newest id, the last entry of the primary key's index.
            if "LIBRARIES_ACTIVITYSIGNAL" in s and not s.startswith("SELECT MAX(ID)")
        ]
        for statement in signal_reads:
            # By id above the last refresh's, or the signals of the libraries (and people)
            # counted again: here the two libraries created since, by their index.
            bounded = ('"ID" >', '"LIBRARY_ID" IN (', '"LIBRARIAN_ID" IN (')
            assert any(bound in statement for bound in bounded), statement
        return [s.split(" ")[0] for s in _statements(queries)]

    short = night(3)
    ActivitySignal.objects.all().delete()
    Library.objects.all().delete()
    scoring.scores_refresh(now=NOW + datetime.timedelta(days=1), recount=True)
    assert night(40) == short


def test_a_snapshot_is_written_on_the_days_a_librarys_signals_change_and_the_trend_decays_between():
    library, quiet = LibraryFactory(), LibraryFactory()
    ActivitySignalFactory(library=library, kind="hosted_meetup", occurred_at=NOW)
    scoring.scores_refresh(now=NOW)  # the first: every library
    scoring.scores_refresh(now=NOW + datetime.timedelta(days=1))  # nothing new
    ActivitySignalFactory(library=library, kind="attended", occurred_at=NOW + datetime.timedelta(3))
    scoring.scores_refresh(now=NOW + datetime.timedelta(days=3))
    snapshots = list(library.score_snapshots.order_by("date").values_list("date", "score"))
    assert snapshots == [
        (datetime.date(2026, 3, 1), pytest.approx(8.0)),
        (datetime.date(2026, 3, 4), pytest.approx(8 * 0.5 ** (3 / 100) + 3)),
    ]
    assert quiet.score_snapshots.count() == 1

    trend = scoring.score_trend(library, basis=scoring.score_basis(), days=30)
    assert [point.date for point in trend] == [datetime.date(2026, 3, day) for day in (1, 2, 3, 4)]
    assert [point.score for point in trend] == pytest.approx(
        [8.0, 8 * 0.5 ** (1 / 100), 8 * 0.5 ** (2 / 100), 8 * 0.5 ** (3 / 100) + 3]
    )
    assert trend[-1].score == pytest.approx(score_of(library))
    # A week later the trend covers the days without a refresh too, decaying.
    scoring.scores_refresh(now=NOW + datetime.timedelta(days=40))
    trend = scoring.score_trend(library, basis=scoring.score_basis(), days=30)
    assert len(trend) == 30
    assert trend[-1].score == pytest.approx(score_of(library))
    assert trend[0].score == pytest.approx(score_of(library) * 2 ** (29 / 100))


def test_refreshing_again_the_same_day_updates_that_days_snapshot():
    library = LibraryFactory()
    ActivitySignalFactory(library=library, kind="hosted_meetup", occurred_at=NOW)
    scoring.scores_refresh(now=NOW)
    ActivitySignalFactory(library=library, kind="attended", occurred_at=NOW)
    later = NOW + datetime.timedelta(hours=2)
    scoring.scores_refresh(now=later)
    snapshot = LibraryScoreSnapshot.objects.get(library=library)
    assert snapshot.score == pytest.approx(11.0, rel=1e-3)
    assert snapshot.computed_at == later


def test_the_refresh_is_idempotent():
    libraries = LibraryFactory.create_batch(3)
    for library in libraries:
        librarian = LibrarianFactory(library=library)
        ActivitySignalFactory(
            library=library, librarian=librarian, kind="attended", occurred_at=days_ago(10)
        )
    scoring.scores_refresh(now=NOW)

    def state():
        return (
            list(LibraryScoreSnapshot.objects.order_by("pk").values_list("library", "score")),
            list(Library.objects.order_by("pk").values_list("score_base", flat=True)),
            list(
                LibraryScorePart.objects.order_by("library", "kind").values_list(
                    "library", "kind", "signal_count", "base"
                )
            ),
            list(Librarian.objects.order_by("pk").values_list("activity_base", flat=True)),
        )

    first = state()
    scoring.scores_refresh(now=NOW)
    assert LibraryScoreSnapshot.objects.count() == 3
    assert state() == first


def test_snapshots_take_the_local_date():
    """23:30 UTC on 1 March is already 2 March in Zurich (TIME_ZONE)."""
    LibraryFactory()
    scoring.scores_refresh(now=datetime.datetime(2026, 3, 1, 23, 30, tzinfo=datetime.UTC))
    assert LibraryScoreSnapshot.objects.get().date == datetime.date(2026, 3, 2)


def test_the_explanation_gives_count_weight_and_contribution_per_kind_and_sums_to_the_score():
    library = LibraryFactory()
    ActivitySignalFactory(library=library, kind="hosted_meetup", occurred_at=days_ago(100))
    ActivitySignalFactory(library=library, kind="tagged_edit", occurred_at=NOW)
    ActivitySignalFactory(library=library, kind="tagged_edit", occurred_at=days_ago(200))
    ActivitySignalFactory(library=library, kind="story", occurred_at=NOW)
    ActivitySignalFactory(kind="hosted_meetup", occurred_at=NOW)  # another library's
    scoring.scores_refresh(now=NOW)

    with CaptureQueriesContext(connection) as queries:
        explanation = scoring.score_explain(library, basis=scoring.score_basis())

    assert len(queries) == 1 + 1  # the basis, the parts
    assert "libraries_activitysignal" not in queries[0]["sql"]
    lines = [(line.kind, line.count, line.weight) for line in explanation.lines]
    assert lines == [("hosted_meetup", 1, 8.0), ("tagged_edit", 2, 1.0), ("story", 1, 0.0)]
    contributions = [line.contribution for line in explanation.lines]
    assert contributions == pytest.approx([4.0, 1.25, 0.0])
    assert explanation.total == pytest.approx(score_of(library), rel=1e-12)
    assert explanation.signal_count == 4
    assert explanation.now == NOW
    assert explanation.lines[0].label == "Hosted a meetup"


def test_the_parts_add_up_to_the_stored_score():
    kinds = list(WEIGHTS) + ["story"]
    libraries = LibraryFactory.create_batch(6)
    for i, library in enumerate(libraries):
        for j in range(i * 7):
            ActivitySignalFactory(
                library=library, kind=kinds[(i + j) % len(kinds)], occurred_at=days_ago(j * 13.7)
            )
    scoring.scores_refresh(now=NOW)

    for library in libraries:
        parts = [part.contribution for part in library.score_parts.with_scale()]
        # The same numbers summed in another order: equal but for the last bits.
        assert math.fsum(parts) == pytest.approx(score_of(library), rel=1e-12, abs=1e-12)
        counts = library.score_parts.values_list("signal_count", flat=True)
        assert sum(counts) == library.signals.count()
    assert not libraries[0].score_parts.exists()  # no signal, no part, a score of 0
    assert score_of(libraries[0]) == 0.0


def test_a_second_refresh_replaces_the_parts():
    library = LibraryFactory()
    meetup = ActivitySignalFactory(library=library, kind="hosted_meetup", occurred_at=NOW)
    ActivitySignalFactory(library=library, kind="attended", occurred_at=NOW)
    scoring.scores_refresh(now=NOW)
    assert set(library.score_parts.values_list("kind", flat=True)) == {"hosted_meetup", "attended"}

    meetup.delete()
    ActivitySignalFactory(library=library, kind="attended", occurred_at=NOW)
    scoring.scores_refresh(now=NOW)

    explanation = scoring.score_explain(library)
    assert [(line.kind, line.count) for line in explanation.lines] == [("attended", 2)]
    assert explanation.total == pytest.approx(6.0) == score_of(library)
    assert LibraryScorePart.objects.count() == 1


def test_deleting_a_library_deletes_its_parts():
    library, other = LibraryFactory(), LibraryFactory()
    for each in (library, other):
        ActivitySignalFactory(library=each, kind="attended", occurred_at=NOW)
    scoring.scores_refresh(now=NOW)
    library.delete()
    assert list(LibraryScorePart.objects.values_list("library", flat=True)) == [other.pk]


def test_a_signal_recorded_after_the_refresh_counts_from_the_next_one():
    library = LibraryFactory()
    ActivitySignalFactory(library=library, kind="attended", occurred_at=days_ago(1))
    scoring.scores_refresh(now=NOW)
    ActivitySignalFactory(library=library, kind="hosted_meetup", occurred_at=NOW)

    before = scoring.score_explain(library)
    assert [line.kind for line in before.lines] == ["attended"]
    assert before.total == pytest.approx(score_of(library))

    scoring.scores_refresh(now=NOW)
    after = scoring.score_explain(library)
    assert [line.kind for line in after.lines] == ["hosted_meetup", "attended"]
    assert after.total == pytest.approx(score_of(library)) == pytest.approx(8 + 3 * 0.5**0.01)


def test_a_library_without_signals_is_explained_as_zero():
    library = LibraryFactory()
    scoring.scores_refresh(now=NOW)
    explanation = scoring.score_explain(library, basis=scoring.score_basis())
    assert (explanation.lines, explanation.total, explanation.now) == ([], 0, NOW)
    assert score_of(library) == 0.0


def test_a_librarians_activity_is_the_decayed_sum_of_their_own_signals():
    anne = LibrarianFactory()
    bob = LibrarianFactory(library=anne.library)
    carla = LibrarianFactory(library=anne.library)
    ActivitySignalFactory(library=anne.library, librarian=anne, kind="attended", occurred_at=NOW)
    ActivitySignalFactory(
        library=anne.library, librarian=anne, kind="tagged_edit", occurred_at=days_ago(100)
    )
    ActivitySignalFactory(library=anne.library, librarian=bob, kind="tagged_edit", occurred_at=NOW)
    ActivitySignalFactory(library=anne.library, kind="hosted_meetup", occurred_at=NOW)  # nobody's

    scoring.scores_refresh(now=NOW)

    assert activities() == pytest.approx({anne.pk: 3.5, bob.pk: 1.0, carla.pk: 0.0})


def test_a_librarians_activity_falls_back_to_zero_when_no_signal_names_them_any_more():
    anne = LibrarianFactory()
    signal = ActivitySignalFactory(
        library=anne.library, librarian=anne, kind="attended", occurred_at=NOW
    )
    scoring.scores_refresh(now=NOW)
    assert activities()[anne.pk] == pytest.approx(3.0)

    signal.librarian = None
    signal.save(update_fields=["librarian"])
    scoring.scores_refresh(now=NOW)

    assert activities()[anne.pk] == 0.0
    assert score_of(anne.library) == pytest.approx(3.0)  # still the library's signal


def test_an_ambassador_sees_the_score_parts_of_their_regions_only(make_ambassador):
    vaud, geneve = RegionFactory(), RegionFactory()
    ActivitySignalFactory(library=LibraryFactory(region=vaud), kind="attended", occurred_at=NOW)
    ActivitySignalFactory(library=LibraryFactory(region=geneve), kind="attended", occurred_at=NOW)
    scoring.scores_refresh(now=NOW)
    ambassador = make_ambassador(vaud)
    visible = LibraryScorePart.objects.visible_to(ambassador)
    assert [part.library.region for part in visible] == [vaud]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_refreshes_at_once_run_one_after_the_other():
    """The nightly task and the button at the same moment: neither fails on the parts."""
    for i in range(20):
        library = LibraryFactory()
        for kind in ("attended", "tagged_edit", "hosted_meetup")[: 1 + i % 3]:
            ActivitySignalFactory(library=library, kind=kind, occurred_at=NOW)
    start = threading.Barrier(2)
    failures = []

    def refresh():
        try:
            start.wait(timeout=10)
            scoring.scores_refresh(now=NOW)
        except Exception as error:  # pragma: no cover - reported below
            failures.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=refresh) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not failures
    assert LibraryScorePart.objects.count() == 7 * 1 + 7 * 2 + 6 * 3  # 1, 2 or 3 kinds each
    for library in Library.objects.with_scale():
        parts = [part.contribution for part in library.score_parts.with_scale()]
        assert math.fsum(parts) == pytest.approx(library.score)


def test_the_task_refreshes_the_scores():
    library = LibraryFactory()
    ActivitySignalFactory(library=library, kind="attended")
    assert scores_refresh_task.delay().get() == 1
    assert score_of(library) == pytest.approx(3.0, rel=1e-3)
    assert LibraryScoreSnapshot.objects.filter(library=library).count() == 1


def test_the_refresh_runs_every_night():
    entry = celery_app.conf.beat_schedule["libraries-scores-refresh"]
    assert entry["task"] == scores_refresh_task.name


def test_an_unknown_kind_in_the_weights_fails_the_system_checks(settings):
    from django.core.management.base import SystemCheckError

    settings.SCORE_WEIGHTS = {"tagged_edits": 1}
    with pytest.raises(SystemCheckError, match="tagged_edits"):
        call_command("check")


def test_the_weights_in_the_environment_merge_over_the_defaults():
    from outreach.settings import _score_weights

    assert _score_weights("tagged_edit=1.5, hosted_meetup=-8") == {
        "tagged_edit": 1.5,
        "hosted_meetup": -8.0,
    }
    assert _score_weights("") == {}
    with pytest.raises(Exception, match="kind=number"):
        _score_weights("tagged_edit")


# The library page ---------------------------------------------------------------------------


def test_the_library_page_shows_the_score_its_breakdown_and_its_trend(coordinator_client):
    library = LibraryFactory()
    now = timezone.now()
    ActivitySignalFactory(library=library, kind="hosted_meetup", occurred_at=now)
    ActivitySignalFactory(library=library, kind="tagged_edit", occurred_at=now)
    for day in (2, 1):
        scoring.scores_refresh(now=now - datetime.timedelta(days=day))
    scoring.scores_refresh(now=now)

    response = coordinator_client.get(reverse("libraries:library-detail", args=[library.slug]))

    page = response.content.decode()
    assert response.context["explanation"].total == pytest.approx(9.0, rel=1e-3)
    assert [line.kind for line in response.context["explanation"].lines] == [
        "hosted_meetup",
        "tagged_edit",
    ]
    assert response.context["explanation"].now == now
    assert len(response.context["snapshots"]) == 3
    assert response.context["sparkline"].count(",") == 3
    assert "Activity score" in page
    assert "Hosted a meetup" in page
    assert "9.0" in page  # the score, and the total of the breakdown (9.00)
    assert "<polyline" in page


def test_the_library_page_explains_the_score_of_the_last_refresh_and_says_when(
    coordinator_client,
):
    library = LibraryFactory()
    computed = timezone.now() - datetime.timedelta(hours=3)
    ActivitySignalFactory(library=library, kind="attended", occurred_at=computed)
    scoring.scores_refresh(now=computed)
    ActivitySignalFactory(library=library, kind="hosted_meetup")  # recorded since
    url = reverse("libraries:library-detail", args=[library.slug])

    response = coordinator_client.get(url)

    page = response.content.decode()
    explanation = response.context["explanation"]
    assert [line.kind for line in explanation.lines] == ["attended"]
    assert explanation.total == pytest.approx(3.0) == score_of(library)
    when = date_format(timezone.localtime(computed), "DATETIME_FORMAT")
    assert f"computed on {when}" in page
    assert "a signal recorded since counts from the next refresh" in page
    assert "2 signals observed." in page  # the signals themselves are listed as they are

    scoring.scores_refresh()
    response = coordinator_client.get(url)
    assert [line.kind for line in response.context["explanation"].lines] == [
        "hosted_meetup",
        "attended",
    ]


def test_the_library_page_before_any_refresh_says_the_score_is_not_computed(coordinator_client):
    library = LibraryFactory()
    ActivitySignalFactory(library=library, kind="attended")
    response = coordinator_client.get(reverse("libraries:library-detail", args=[library.slug]))
    page = response.content.decode()
    assert "Not computed yet" in page
    assert "How the score is made" not in page  # no breakdown to show
    assert "No signal: the score is 0." not in page
    assert response.context["snapshots"] == []


def test_a_score_written_before_its_parts_were_stored_waits_for_the_next_refresh(
    coordinator_client,
):
    """A score from before the parts existed (the refresh that first writes them is the
    next): the page does not claim the signals add up to 0."""
    library = LibraryFactory(score=12.5)  # the basis before any refresh
    ActivitySignalFactory(library=library, kind="attended")
    response = coordinator_client.get(reverse("libraries:library-detail", args=[library.slug]))
    page = response.content.decode()
    assert "12.5" in page
    assert "The breakdown by kind comes with the next refresh." in page
    assert "No signal: the score is 0." not in page
