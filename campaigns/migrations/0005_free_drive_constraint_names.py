# The drives move to their own app (drives.migrations.0002 copies them): the constraint names
# of these tables are freed first, as the new tables take them over.

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('campaigns', '0004_contribution_tally'),
    ]

    operations = [
        migrations.RemoveConstraint(model_name='contribution', name='contribution_once_per_wiki'),
        migrations.RemoveConstraint(model_name='pullcursor', name='pull_cursor_once_per_batch'),
        migrations.RemoveConstraint(model_name='wikiaccount', name='wiki_account_once'),
        migrations.RemoveConstraint(model_name='contributiontally', name='contribution_tally_once'),
    ]
