"""Scores carried forward from night to night (libraries.scoring): stored sums at a basis.

The sums stored so far are the scores of the last refresh: they become the sums at a basis
dated then (scale 1), so pages show the same scores until the next refresh, which recounts
everything (the basis records no weights: they differ from the settings' whatever these are).
"""

from django.db import migrations, models


def room_for_updates_in_place(apps, schema_editor):
    """Keep a third of every page free in the tables the refresh updates each night, so that
    a row's new version fits on its page and no index is written (PostgreSQL's HOT
    updates). Pages written from now on keep it; SQLite has no such setting."""
    if schema_editor.connection.vendor != "postgresql":
        return
    for model in ("library", "librarian", "libraryscorepart"):
        table = apps.get_model("libraries", model)._meta.db_table
        schema_editor.execute(f"ALTER TABLE {schema_editor.quote_name(table)} SET (fillfactor = 70)")


def basis_from_last_refresh(apps, schema_editor):
    ScoreBasis = apps.get_model("libraries", "ScoreBasis")
    Snapshot = apps.get_model("libraries", "LibraryScoreSnapshot")
    last = Snapshot.objects.order_by("-computed_at").values_list("computed_at", flat=True).first()
    if last is not None:
        ScoreBasis.objects.create(
            epoch=last,
            as_of=last,
            scale=1.0,
            watermark=0,
            half_life_days=0.0,
            weights={},
            recounted_at=last,
        )


class Migration(migrations.Migration):
    dependencies = [
        ("libraries", "0007_wiki_usernames_normalized"),
    ]

    operations = [
        migrations.RenameField("library", "score", "score_base"),
        migrations.RenameField("librarian", "activity", "activity_base"),
        migrations.RenameField("libraryscorepart", "contribution", "base"),
        migrations.AlterModelOptions(
            name="libraryscorepart",
            options={
                "ordering": ["library_id", "-base", "kind"],
                "verbose_name": "score part",
                "verbose_name_plural": "score parts",
            },
        ),
        migrations.CreateModel(
            name="ScoreBasis",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("epoch", models.DateTimeField(verbose_name="basis")),
                ("as_of", models.DateTimeField(verbose_name="computed")),
                ("scale", models.FloatField(verbose_name="scale")),
                (
                    "watermark",
                    models.BigIntegerField(default=0, verbose_name="last signal counted"),
                ),
                ("half_life_days", models.FloatField(verbose_name="half-life in days")),
                ("weights", models.JSONField(verbose_name="weights")),
                ("recounted_at", models.DateTimeField(verbose_name="last full recount")),
                (
                    "checked_at",
                    models.DateTimeField(blank=True, null=True, verbose_name="last check"),
                ),
                (
                    "check_difference",
                    models.FloatField(
                        blank=True, null=True, verbose_name="largest relative difference"
                    ),
                ),
            ],
            options={"verbose_name": "score basis", "verbose_name_plural": "score basis"},
        ),
        migrations.CreateModel(
            name="ScoreRecount",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("library_id", models.BigIntegerField(null=True)),
                ("librarian_id", models.BigIntegerField(null=True)),
            ],
        ),
        # "When did the refresh last run" is the basis's now: the index only slowed the
        # snapshots' insert.
        migrations.RemoveIndex(
            model_name="libraryscoresnapshot", name="libraries_l_compute_79a8d4_idx"
        ),
        migrations.RunPython(room_for_updates_in_place, migrations.RunPython.noop),
        migrations.RunPython(basis_from_last_refresh, migrations.RunPython.noop),
    ]
