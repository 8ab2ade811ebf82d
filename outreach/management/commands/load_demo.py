from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone

from campaigns import demo as campaigns_demo
from drives import demo as drives_demo
from drives.services import contribution_tallies_refresh
from libraries import demo
from libraries.scoring import scores_refresh
from meetings import demo as meetings_demo


class Command(BaseCommand):
    help = (
        "Load a demo network of French-speaking Swiss libraries (invented people, addresses "
        "under .example.org). Safe to run again: it only creates what is missing."
    )

    def handle(self, **options):
        ctx = demo.DemoContext(now=timezone.now())
        # One transaction for every app's part: an interrupted run leaves nothing half-built.
        with transaction.atomic():
            demo.load(ctx)
            meetings_demo.load(ctx)
            campaigns_demo.load(ctx)
            drives_demo.load(ctx)
            # Scores from the signals just recorded, so that the shortlist and the library
            # pages have something to show before the first nightly refresh. A second run
            # that creates nothing changes nothing, scores included.
            if any(ctx.created.values()):
                scores_refresh(now=ctx.now)
                contribution_tallies_refresh(now=ctx.now)
        self.stdout.write(ctx.summary())
