from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone

from campaigns import demo as campaigns_demo
from libraries import demo
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
        self.stdout.write(ctx.summary())
