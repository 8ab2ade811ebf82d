"""Which edits count in a drive, and how many references they add: pure rules, no database.

An edit counts when its summary carries one of the drive's hashtags as a whole tag; untagged
edits of known librarians that add references are kept apart for a coordinator to count in.
References are counted in the wikitext with mwparserfromhell.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from datetime import datetime, time, timedelta

import mwparserfromhell
from django.utils import timezone

from .models import Drive

# Citation templates counted as references when they stand outside a <ref> (short footnotes
# such as {{sfn}} are references by themselves). Names are compared lower-cased, with
# underscores as spaces; redirects differ per wiki, so this is the common set.
CITATION_TEMPLATES = {
    "sfn", "sfnp", "sfnm", "harvnb", "harv", "efn", "r", "rp",
    "cite web", "cite book", "cite news", "cite journal", "cite magazine", "cite encyclopedia",
    "citation", "lien web", "ouvrage", "article", "chapitre", "harvsp",
    "literatur", "internetquelle", "cite av media",
}  # fmt: skip
# Where a known librarian's edit without the hashtag is worth a coordinator's look.
UNTAGGED_NAMESPACES = {0}


# Hashtags ---------------------------------------------------------------------------------------


def hashtags_parse(text: str) -> list[str]:
    """``"#1lib1ref, #1bib1ref  1Lib1Ref"`` → ``["1lib1ref", "1bib1ref"]`` (lower-cased, no #)."""
    tags = []
    for word in re.split(r"[\s,;]+", unicodedata.normalize("NFKC", text)):
        tag = word.lstrip("#").casefold()
        if tag and tag not in tags:
            tags.append(tag)
    return tags


def hashtag_pattern(tags: Iterable[str]) -> re.Pattern | None:
    """A pattern finding any of ``tags`` as a whole hashtag in an edit summary.

    Case-insensitive, the full-width ＃ as well as # (the summary is NFKC-normalised first),
    wherever it stands — ``(#1lib1ref)``, ``#1Bib1Ref:``, at the very start — but not as
    part of a longer tag (``#1lib1refs``) or of a word or an HTML entity (``&#1lib1ref``).
    """
    tags = [re.escape(tag) for tag in tags]
    if not tags:
        return None
    return re.compile(rf"(?<![\w&])#(?:{'|'.join(tags)})(?![\w-])", re.IGNORECASE)


def summary_matches(pattern: re.Pattern | None, summary: str) -> bool:
    return bool(pattern and pattern.search(unicodedata.normalize("NFKC", summary or "")))


# References -------------------------------------------------------------------------------------


def references_count(wikitext: str) -> int:
    """References in a revision: <ref> tags with content (a named reuse ``<ref name=x />`` is
    not a new reference) plus citation templates standing outside any <ref>."""
    if not wikitext:
        return 0
    code = mwparserfromhell.parse(wikitext)
    count, inside = 0, set()
    for tag in code.filter_tags(recursive=True, matches=lambda node: node.tag.lower() == "ref"):
        if tag.self_closing or not str(tag.contents).strip():
            continue
        count += 1
        inside.update(id(t) for t in tag.contents.filter_templates(recursive=True))
    for template in code.filter_templates(recursive=True):
        name = str(template.name).strip().replace("_", " ").lower()
        if name in CITATION_TEMPLATES and id(template) not in inside:
            count += 1
    return count


def references_added(new: str, parent: str) -> int:
    return max(references_count(new) - references_count(parent), 0)


# The drive's window and wikis --------------------------------------------------------------


def drive_window(drive: Drive, *, now: datetime) -> tuple[datetime, datetime]:
    """The drive's window as aware datetimes: from the start of its first day to the end of
    its last (or now, if sooner)."""
    zone = timezone.get_default_timezone()
    start = datetime.combine(drive.starts_on, time.min, tzinfo=zone)
    end = datetime.combine(drive.ends_on + timedelta(days=1), time.min, tzinfo=zone)
    return start, min(end, now)


def drive_wikis(drive: Drive) -> list[str]:
    return [code for code in re.split(r"[\s,;]+", drive.wikis) if code]
