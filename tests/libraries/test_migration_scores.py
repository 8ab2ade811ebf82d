"""A database scored before the scores were carried forward migrates with the same scores on
its pages, and its next refresh counts everything again at a basis of its own."""

from datetime import UTC, date, datetime

BEFORE = [("libraries", "0007_wiki_usernames_normalized")]
AFTER = [("libraries", "0008_scores_carried_forward")]
REFRESHED = datetime(2026, 3, 1, 4, 30, tzinfo=UTC)


def test_the_last_refreshs_scores_become_sums_at_a_basis_of_scale_one(migrator):
    old = migrator.apply_initial_migration(BEFORE)
    Region = old.apps.get_model("libraries", "Region")
    Library = old.apps.get_model("libraries", "Library")
    Librarian = old.apps.get_model("libraries", "Librarian")
    Part = old.apps.get_model("libraries", "LibraryScorePart")
    Snapshot = old.apps.get_model("libraries", "LibraryScoreSnapshot")
    vaud = Region.objects.create(name="Vaud", slug="vaud")
    library = Library.objects.create(name="B", slug="b", region=vaud, city="X", score=7.5)
    anne = Librarian.objects.create(library=library, name="Anne", email="a@x.org", activity=2.5)
    Part.objects.create(library=library, kind="attended", signal_count=3, contribution=7.5)
    Snapshot.objects.create(
        library=library, date=date(2026, 3, 1), score=7.5, computed_at=REFRESHED
    )

    new = migrator.apply_tested_migration(AFTER)

    basis = new.apps.get_model("libraries", "ScoreBasis").objects.get()
    assert (basis.scale, basis.as_of, basis.weights, basis.watermark) == (1.0, REFRESHED, {}, 0)
    Library = new.apps.get_model("libraries", "Library")
    assert Library.objects.get(pk=library.pk).score_base * basis.scale == 7.5
    Librarian = new.apps.get_model("libraries", "Librarian")
    assert Librarian.objects.get(pk=anne.pk).activity_base == 2.5
    Part = new.apps.get_model("libraries", "LibraryScorePart")
    assert list(Part.objects.values_list("kind", "signal_count", "base")) == [("attended", 3, 7.5)]


def test_a_database_never_scored_has_no_basis(migrator):
    migrator.apply_initial_migration(BEFORE)
    new = migrator.apply_tested_migration(AFTER)
    assert not new.apps.get_model("libraries", "ScoreBasis").objects.exists()
