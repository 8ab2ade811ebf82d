from django.core.management.base import BaseCommand

from libraries.scoring import scores_check, scores_nightly, scores_refresh


class Command(BaseCommand):
    help = (
        "Bring the activity scores to now as the nightly task does (the signals recorded since "
        "the last refresh added, and once a week a check against a full count), or count "
        "everything again (--recount), or only compare the stored scores with a full count "
        "(--check)."
    )

    def add_arguments(self, parser):
        what = parser.add_mutually_exclusive_group()
        what.add_argument(
            "--recount", action="store_true", help="count every score again from all the signals"
        )
        what.add_argument(
            "--check",
            action="store_true",
            help="compare the stored scores with a full count, and write nothing",
        )

    def handle(self, *, recount, check, **options):
        if check:
            checked = scores_check()
            if checked is None:
                self.stdout.write("No scores yet: nothing to check.")
                return
            self._checked(checked)
            return
        if recount:
            refreshed, checked = scores_refresh(recount=True), None
        else:
            refreshed, checked = scores_nightly()
        if refreshed.recounted:
            self.stdout.write(
                f"Every score counted again ({refreshed.reason}): {refreshed.libraries} libraries."
            )
        else:
            self.stdout.write(
                f"Scores carried forward: {refreshed.signals} new signals, "
                f"{refreshed.changed} of {refreshed.libraries} libraries changed, "
                f"{refreshed.recounted_libraries} counted again."
            )
        if checked is not None:
            self._checked(checked)

    def _checked(self, checked):
        line = (
            f"Checked against a full count: largest relative difference "
            f"{checked.difference:.2e} (libraries {checked.libraries:.2e}, parts "
            f"{checked.parts:.2e}, librarians {checked.librarians:.2e}), "
            f"{checked.parts_miscounted} parts miscounted."
        )
        self.stdout.write(line if checked.agrees else self.style.ERROR(line))
