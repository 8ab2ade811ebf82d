# The link of each contribution to its drive is a DriveContribution now (0003): the columns
# it replaces go, and the new table gets its constraint and indexes.

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('drives', '0003_contribution_in_every_drive'),
    ]

    operations = [
        migrations.AddConstraint(
            model_name='drivecontribution',
            constraint=models.UniqueConstraint(fields=('drive', 'contribution'), name='drive_contribution_once'),
        ),
        migrations.AddIndex(
            model_name='drivecontribution',
            index=models.Index(fields=['drive', 'tagged', 'counted_in'], name='drives_driv_drive_i_50bed0_idx'),
        ),
        migrations.RemoveIndex(
            model_name='contribution',
            name='drives_cont_drive_i_89fd70_idx',
        ),
        migrations.RemoveField(
            model_name='contribution',
            name='counted_in',
        ),
        migrations.RemoveField(
            model_name='contribution',
            name='drive',
        ),
        migrations.RemoveField(
            model_name='contribution',
            name='tagged',
        ),
        migrations.AddField(
            model_name='contribution',
            name='drives',
            field=models.ManyToManyField(related_name='contributions', through='drives.DriveContribution', to='drives.drive', verbose_name='drives'),
        ),
        migrations.AddIndex(
            model_name='contribution',
            index=models.Index(fields=['timestamp'], name='drives_cont_timesta_ffe5dd_idx'),
        ),
    ]
