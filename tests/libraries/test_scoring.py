"""Scores: signals weighted by kind and halved every half-life, computed by the database."""

import datetime

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from libraries import scoring
from libraries.models import Library, LibraryScoreSnapshot
from libraries.tasks import scores_refresh_task
from outreach.celery import app as celery_app
from tests.factories import ActivitySignalFactory, LibrarianFactory, LibraryFactory

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


def score_of(library: Library) -> float:
    library.refresh_from_db(fields=["score"])
    return library.score


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
    assert scoring.scores_refresh(now=NOW) == 3
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


def test_the_refresh_is_two_statements_whatever_the_number_of_signals():
    for i in range(30):
        library = LibraryFactory()
        for days in range(i % 5):
            ActivitySignalFactory(library=library, kind="tagged_edit", occurred_at=days_ago(days))
    with CaptureQueriesContext(connection) as queries:
        scoring.scores_refresh(now=NOW)
    statements = [q["sql"] for q in queries.captured_queries if "SAVEPOINT" not in q["sql"].upper()]
    assert len(statements) == 2
    assert statements[0].lstrip().upper().startswith("UPDATE")
    assert "GROUP BY" in statements[0].upper()
    assert statements[1].lstrip().upper().startswith("INSERT")


def test_the_refresh_writes_one_snapshot_per_library_and_day():
    library = LibraryFactory()
    ActivitySignalFactory(library=library, kind="hosted_meetup", occurred_at=NOW)
    scoring.scores_refresh(now=NOW)
    scoring.scores_refresh(now=NOW + datetime.timedelta(days=1))
    scoring.scores_refresh(now=NOW + datetime.timedelta(days=100))
    snapshots = list(library.score_snapshots.order_by("date").values_list("date", "score"))
    assert [date for date, _ in snapshots] == [
        datetime.date(2026, 3, 1),
        datetime.date(2026, 3, 2),
        datetime.date(2026, 6, 9),
    ]
    assert [score for _, score in snapshots] == pytest.approx([8.0, 8 * 0.5 ** (1 / 100), 4.0])


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
        ActivitySignalFactory(library=library, kind="attended", occurred_at=days_ago(10))
    scoring.scores_refresh(now=NOW)
    first = list(LibraryScoreSnapshot.objects.order_by("pk").values_list("library", "score"))
    scores = list(Library.objects.order_by("pk").values_list("score", flat=True))
    scoring.scores_refresh(now=NOW)
    assert LibraryScoreSnapshot.objects.count() == 3
    assert (
        list(LibraryScoreSnapshot.objects.order_by("pk").values_list("library", "score")) == first
    )
    assert list(Library.objects.order_by("pk").values_list("score", flat=True)) == scores


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

    explanation = scoring.score_explain(library, now=NOW)

    lines = [(line.kind, line.count, line.weight) for line in explanation.lines]
    assert lines == [("hosted_meetup", 1, 8.0), ("tagged_edit", 2, 1.0), ("story", 1, 0.0)]
    contributions = [line.contribution for line in explanation.lines]
    assert contributions == pytest.approx([4.0, 1.25, 0.0])
    assert explanation.total == pytest.approx(score_of(library))
    assert explanation.signal_count == 4
    assert explanation.lines[0].label == "Hosted a meetup"


def test_a_library_without_signals_is_explained_as_zero():
    explanation = scoring.score_explain(LibraryFactory(), now=NOW)
    assert (explanation.lines, explanation.total) == ([], 0)


def test_a_librarians_activity_is_the_decayed_sum_of_their_own_signals():
    anne = LibrarianFactory()
    bob = LibrarianFactory(library=anne.library)
    ActivitySignalFactory(library=anne.library, librarian=anne, kind="attended", occurred_at=NOW)
    ActivitySignalFactory(
        library=anne.library, librarian=anne, kind="tagged_edit", occurred_at=days_ago(100)
    )
    ActivitySignalFactory(library=anne.library, librarian=bob, kind="tagged_edit", occurred_at=NOW)
    ActivitySignalFactory(library=anne.library, kind="hosted_meetup", occurred_at=NOW)  # nobody's

    activity = scoring.librarians_activity(library_ids=[anne.library_id], now=NOW)

    assert activity == pytest.approx({anne.pk: 3.5, bob.pk: 1.0})


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
    assert len(response.context["snapshots"]) == 3
    assert response.context["sparkline"].count(",") == 3
    assert "Activity score" in page
    assert "Hosted a meetup" in page
    assert "9.0" in page  # the score, and the total of the breakdown (9.00)
    assert "<polyline" in page


def test_the_library_page_before_any_refresh_says_the_score_is_not_computed(coordinator_client):
    library = LibraryFactory()
    response = coordinator_client.get(reverse("libraries:library-detail", args=[library.slug]))
    assert "Not computed yet" in response.content.decode()
    assert response.context["snapshots"] == []
