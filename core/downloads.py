"""Files coordinators download: one place that writes a CSV spreadsheet programs open right."""

import csv
from collections.abc import Iterable

from django.http import HttpResponse
from django.utils import timezone


def csv_download(rows: Iterable[list], *, name: str) -> HttpResponse:
    """``rows`` as an attached CSV file named ``<name>-<today>.csv``, in UTF-8 with a BOM:
    the BOM tells spreadsheet programs the file is UTF-8 (the import accepts it back)."""
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    filename = f"{name}-{timezone.localdate().isoformat()}.csv"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response.write("\ufeff")
    csv.writer(response).writerows(rows)
    return response
