"""Move every contribution drive out of campaigns, with everything pulled for it.

A drive used to be a Campaign of kind ``contribution_drive``, with drive-only fields, and its
pull runs, cursors and contributions pointed at the campaign; wiki accounts and the
dashboard's tallies sat in campaigns too. Here:

- each such campaign (and any other that pull runs, cursors or contributions point at)
  becomes a Drive **with the campaign's id**, so that every row pointing at it keeps its
  ``drive_id`` and the old addresses (/campaigns/<id>/drive/) redirect to /drives/<id>/;
- its regions become the drive's, with its lists' and hand-picked librarians' regions, so
  that an ambassador sees exactly the drives they saw before;
- pull runs, cursors, wiki accounts, contributions and tallies are copied row for row, ids
  included, by one INSERT … SELECT per table whatever their number;
- a drive campaign that wrote to people (it has messages or deliveries) stays a campaign
  inviting to its drive; one that was only a drive is removed, as it now lives as a drive.

campaigns.migrations.0007 then drops the old tables and fields. Nothing is lost: the test
(tests/drives/test_migration.py) migrates a database of the old schema and compares.
"""

from django.core.management.color import no_style
from django.db import migrations

DRIVE_KIND = "contribution_drive"
# (old model in campaigns, new model in drives): the same columns on both sides.
COPIED = [
    ("PullRun", "PullRun"),
    ("PullCursor", "PullCursor"),
    ("WikiAccount", "WikiAccount"),
    ("Contribution", "Contribution"),
    ("ContributionTally", "ContributionTally"),
]


def _drive_campaign_ids(apps, db) -> set[int]:
    Campaign = apps.get_model("campaigns", "Campaign")
    ids = set(Campaign.objects.using(db).filter(kind=DRIVE_KIND).values_list("pk", flat=True))
    for name in ("PullRun", "PullCursor", "Contribution"):
        model = apps.get_model("campaigns", name)
        ids |= set(model.objects.using(db).values_list("drive_id", flat=True).distinct())
    return ids


def _regions(campaign) -> set[int]:
    """The drive's regions: what made the campaign visible to an ambassador (every one of its
    regions, lists and picked librarians theirs, and at least one region). A list without a
    region kept it from every ambassador: so does a drive without regions."""
    regions = {region.pk for region in campaign.regions.all()}
    if not regions:
        return set()
    lists = list(campaign.mailing_lists.all())
    if any(mailing_list.region_id is None for mailing_list in lists):
        return set()
    regions |= {mailing_list.region_id for mailing_list in lists}
    regions |= {librarian.library.region_id for librarian in campaign.librarians.all()}
    return regions


def _copy_table(schema_editor, old, new) -> None:
    quote = schema_editor.connection.ops.quote_name
    columns = ", ".join(quote(field.column) for field in new._meta.local_concrete_fields)
    schema_editor.execute(
        f"INSERT INTO {quote(new._meta.db_table)} ({columns}) "
        f"SELECT {columns} FROM {quote(old._meta.db_table)}"
    )


def forward(apps, schema_editor):
    db = schema_editor.connection.alias
    Campaign = apps.get_model("campaigns", "Campaign")
    Drive = apps.get_model("drives", "Drive")
    ids = _drive_campaign_ids(apps, db)
    campaigns = list(
        Campaign.objects.using(db)
        .filter(pk__in=ids)
        .prefetch_related("regions", "mailing_lists", "librarians__library")
        .order_by("pk")
    )
    Drive.objects.using(db).bulk_create(
        [
            Drive(
                pk=campaign.pk,
                title=campaign.title,
                hashtags=campaign.hashtags,
                wikis=campaign.wikis,
                starts_on=campaign.starts_on,
                ends_on=campaign.ends_on,
                public_leaderboard=campaign.public_leaderboard,
                created_by_id=campaign.created_by_id,
            )
            for campaign in campaigns
        ]
    )
    Through = Drive.regions.through
    rows = []
    for campaign in campaigns:
        # bulk_create stamped them now: the drive is as old as the campaign it was.
        Drive.objects.using(db).filter(pk=campaign.pk).update(
            created_at=campaign.created_at, updated_at=campaign.updated_at
        )
        rows += [Through(drive_id=campaign.pk, region_id=pk) for pk in sorted(_regions(campaign))]
    Through.objects.using(db).bulk_create(rows)

    models = [Drive]
    for old_name, new_name in COPIED:
        old, new = apps.get_model("campaigns", old_name), apps.get_model("drives", new_name)
        _copy_table(schema_editor, old, new)
        models.append(new)
    # The ids were copied: the sequences start after them (PostgreSQL; nothing on SQLite).
    for sql in schema_editor.connection.ops.sequence_reset_sql(no_style(), models):
        schema_editor.execute(sql)

    for campaign in campaigns:
        if campaign.messages.exists() or campaign.deliveries.exists():
            # It wrote to people: a campaign inviting to its drive, as it was.
            Campaign.objects.using(db).filter(pk=campaign.pk).update(drive_id=campaign.pk)
        else:
            # Only a drive: it lives on as one (its rows were copied above).
            campaign.delete()


class Migration(migrations.Migration):

    dependencies = [
        ("campaigns", "0006_campaign_drive"),
        ("drives", "0001_initial"),
    ]

    # No way back: going back would have to rebuild the drives as campaigns.
    operations = [migrations.RunPython(forward, elidable=False)]
