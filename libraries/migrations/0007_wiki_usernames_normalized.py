# Wiki usernames as MediaWiki reads them (core.text.normalize_wiki_username): NFC, underscores
# as spaces. A name typed in decomposed Unicode was reported missing by the pulls.

import re
import unicodedata

from django.db import migrations


def normalize(apps, schema_editor):
    Librarian = apps.get_model("libraries", "Librarian")
    changed = []
    for librarian in Librarian.objects.exclude(wiki_username="").only("pk", "wiki_username"):
        # The rule as it stands today, written out: a migration does not follow later edits.
        name = re.sub(r"[ _]+", " ", unicodedata.normalize("NFC", librarian.wiki_username))
        if name.strip() != librarian.wiki_username:
            librarian.wiki_username = name.strip()
            changed.append(librarian)
    Librarian.objects.bulk_update(changed, ["wiki_username"], batch_size=1000)


class Migration(migrations.Migration):

    dependencies = [
        ("libraries", "0006_score_parts"),
    ]

    operations = [migrations.RunPython(normalize, migrations.RunPython.noop)]
