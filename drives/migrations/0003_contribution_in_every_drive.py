"""An edit is stored once and linked to every drive it counts in.

Until now a contribution belonged to the one drive that pulled it first: another drive over
the same wiki and dates missed it. Its drive, ``tagged`` and ``counted_in`` move to a
DriveContribution per (drive, edit); each existing contribution gets its link **with the
contribution's id**, so that the count-in addresses of the drive pages name the same edit.
The old columns go in 0004: on PostgreSQL a table cannot be altered in the transaction that
filled it while its foreign keys are still to be checked.
"""

import django.db.models.deletion
from django.core.management.color import no_style
from django.db import migrations, models


def links_from_contributions(apps, schema_editor):
    Contribution = apps.get_model("drives", "Contribution")
    DriveContribution = apps.get_model("drives", "DriveContribution")
    quote = schema_editor.connection.ops.quote_name
    schema_editor.execute(
        f"INSERT INTO {quote(DriveContribution._meta.db_table)} "
        "(id, drive_id, contribution_id, tagged, counted_in, created_at) "
        "SELECT id, drive_id, id, tagged, counted_in, created_at "
        f"FROM {quote(Contribution._meta.db_table)}"
    )
    for sql in schema_editor.connection.ops.sequence_reset_sql(no_style(), [DriveContribution]):
        schema_editor.execute(sql)


class Migration(migrations.Migration):

    dependencies = [
        ('drives', '0002_drives_from_campaigns'),
        ('libraries', '0006_score_parts'),
    ]

    operations = [
        migrations.CreateModel(
            name='DriveContribution',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('tagged', models.BooleanField(default=True, verbose_name='tagged')),
                ('counted_in', models.BooleanField(default=False, verbose_name='counted in')),
                ('created_at', models.DateTimeField(auto_now_add=True, verbose_name='stored')),
                ('contribution', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='links', to='drives.contribution', verbose_name='contribution')),
                ('drive', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='links', to='drives.drive', verbose_name='drive')),
            ],
            options={
                'verbose_name': 'contribution to a drive',
                'verbose_name_plural': 'contributions to drives',
            },
        ),
        migrations.RunPython(links_from_contributions, elidable=False),
    ]
