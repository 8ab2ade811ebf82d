import csv
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from libraries.imports import libraries_export_rows
from libraries.models import Library


class Command(BaseCommand):
    help = (
        "Write every library with its librarians and lists as a CSV file that "
        "import_libraries reads back unchanged (standard output by default)."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "path", nargs="?", default="-", help='where to write the CSV; "-" is standard output'
        )
        parser.add_argument(
            "--bom",
            action="store_true",
            help="start with a byte-order mark, so that Excel reads the file as UTF-8",
        )

    def handle(self, *, path, bom, **options):
        rows = libraries_export_rows(Library.objects.all())
        if path == "-":
            if bom:
                self.stdout.write("\ufeff", ending="")
            self._write(self.stdout, rows)
            return
        try:
            # newline="": the csv module writes the RFC 4180 line endings itself.
            with Path(path).open("w", encoding="utf-8-sig" if bom else "utf-8", newline="") as out:
                count = self._write(out, rows)
        except OSError as error:
            raise CommandError(
                _("Cannot write %(path)s: %(error)s") % {"path": path, "error": error}
            ) from None
        self.stderr.write(
            ngettext(
                "%(count)d row written to %(path)s.", "%(count)d rows written to %(path)s.", count
            )
            % {"count": count, "path": path}
        )

    def _write(self, out, rows) -> int:
        writer = csv.writer(out)
        count = -1  # the header is not a row of data
        for row in rows:
            writer.writerow(row)
            count += 1
        return count
