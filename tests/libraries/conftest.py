"""Fixtures for the libraries tests: the regions and lists the import example file names."""

import pytest

from tests.factories import MailingListFactory, RegionFactory

ROMANDIE_REGIONS = [
    ("vaud", "Vaud"),
    ("geneve", "Genève"),
    ("neuchatel", "Neuchâtel"),
    ("fribourg", "Fribourg"),
    ("valais", "Valais"),
    ("jura", "Jura"),
]
ROMANDIE_LISTS = [
    ("bibliromandie", "BiblioRomandie"),
    ("biblio-vaud", "Biblio-Vaud"),
    ("lecture-publique-ge", "Lecture publique Genève"),
    ("arc-jurassien", "Réseau Arc jurassien"),
]


@pytest.fixture
def romandie_regions(db):
    """The six regions of the demo data, by slug."""
    return {slug: RegionFactory(slug=slug, name=name) for slug, name in ROMANDIE_REGIONS}


@pytest.fixture
def romandie_lists(db):
    """The four mailing lists of the demo data, by name."""
    return {name: MailingListFactory(slug=slug, name=name) for slug, name in ROMANDIE_LISTS}
