from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from drives.streams import stream_consume


class Command(BaseCommand):
    help = (
        "Capture the drives' edits live from Wikimedia EventStreams (DRIVES_EVENTSTREAMS_URL), "
        "reconnecting and resuming where it stopped. Runs until stopped."
    )

    def handle(self, **options):
        if not settings.DRIVES_EVENTSTREAMS_URL:
            raise CommandError(
                "DRIVES_EVENTSTREAMS_URL is not set, e.g. "
                "https://stream.wikimedia.org/v2/stream/recentchange"
            )
        self.stdout.write(f"Reading {settings.DRIVES_EVENTSTREAMS_URL} (Ctrl-C stops).")
        try:
            stream_consume()
        except KeyboardInterrupt:
            self.stdout.write("Stopped; the next run resumes where this one got.")
