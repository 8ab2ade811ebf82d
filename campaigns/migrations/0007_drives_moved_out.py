# The drives and everything pulled for them now live in the drives app (copied by
# drives.migrations.0002): their old tables and the campaign's drive-only fields go.

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('campaigns', '0006_campaign_drive'),
        ('drives', '0002_drives_from_campaigns'),
    ]

    operations = [
        migrations.DeleteModel(name='Contribution'),
        migrations.DeleteModel(name='ContributionTally'),
        migrations.DeleteModel(name='PullCursor'),
        migrations.DeleteModel(name='PullRun'),
        migrations.DeleteModel(name='WikiAccount'),
        migrations.RemoveField(model_name='campaign', name='ends_on'),
        migrations.RemoveField(model_name='campaign', name='hashtags'),
        migrations.RemoveField(model_name='campaign', name='public_leaderboard'),
        migrations.RemoveField(model_name='campaign', name='starts_on'),
        migrations.RemoveField(model_name='campaign', name='wikis'),
    ]
