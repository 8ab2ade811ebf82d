import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('campaigns', '0005_free_drive_constraint_names'),
        ('drives', '0001_initial'),
    ]

    operations = [
        migrations.AddField(
            model_name='campaign',
            name='drive',
            field=models.ForeignKey(blank=True, help_text='The contribution drive the message invites to, if any.', null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='campaigns', to='drives.drive', verbose_name='contribution drive'),
        ),
    ]
