import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from libraries import imports


class Command(BaseCommand):
    help = (
        "Import libraries, librarians and mailing-list memberships from a CSV file, one row per "
        "librarian (the columns are listed on the import page). With any row in error nothing "
        "is written, unless --skip-invalid."
    )

    def add_arguments(self, parser):
        parser.add_argument("path", help='the CSV file, UTF-8; "-" reads standard input')
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="check the file and show what would change, without writing anything",
        )
        parser.add_argument(
            "--skip-invalid",
            action="store_true",
            help="import the valid rows and leave the rows with errors out",
        )

    def handle(self, *, path, dry_run, skip_invalid, **options):
        try:
            data = sys.stdin.buffer.read() if path == "-" else Path(path).read_bytes()
        except OSError as error:
            raise CommandError(
                _("Cannot read %(path)s: %(error)s") % {"path": path, "error": error}
            ) from None
        try:
            report = imports.libraries_import(
                text=imports.decode_upload(data), dry_run=dry_run, skip_invalid=skip_invalid
            )
        except imports.ImportFileError as error:
            raise CommandError(str(error)) from None

        for warning in report.warnings:
            self.stderr.write(warning)
        for error in report.errors:
            if error.column:
                where = _("line %(line)d, column %(column)s") % {
                    "line": error.line,
                    "column": error.column,
                }
            else:
                where = _("line %(line)d") % {"line": error.line}
            self.stderr.write(f"{where}: {error.message}")
        self.stdout.write(self._summary(report))

        if report.has_errors and not report.written:
            raise CommandError(
                ngettext(
                    "%(count)d row of %(total)d has errors, so nothing was imported. Fix it, "
                    "or use --skip-invalid to import the other rows.",
                    "%(count)d rows of %(total)d have errors, so nothing was imported. Fix "
                    "them, or use --skip-invalid to import the other rows.",
                    report.invalid_rows,
                )
                % {"count": report.invalid_rows, "total": report.total_rows}
            )

    def _summary(self, report: imports.ImportReport) -> str:
        lines = [
            _("new libraries: %d") % report.libraries_created,
            _("libraries updated: %d") % report.libraries_updated,
            _("new librarians: %d") % report.librarians_created,
            _("librarians updated: %d") % report.librarians_updated,
            _("list memberships added: %d") % report.memberships_added,
            _("rows unchanged: %d") % report.rows_unchanged,
        ]
        if report.invalid_rows:
            lines.append(_("rows with errors: %d") % report.invalid_rows)
        if report.dry_run:
            lines.append(_("Dry run: nothing was written."))
        elif report.written and report.invalid_rows:
            lines.append(_("The rows with errors were left out."))
        return "\n".join(lines)
