"""Which edits count for a drive, and how many references they add — on the revisions
recorded from a real MediaWiki 1.39 (shared/fixtures/mediawiki-1.39)."""

import json

import pytest

from drives.rules import (
    hashtag_pattern,
    hashtags_parse,
    references_added,
    references_count,
    summary_matches,
)
from tests.wiki_server import fixtures_dir


@pytest.fixture(scope="module")
def texts() -> dict[int, str]:
    exchange = json.loads((fixtures_dir() / "16_revisions_by_revids_with_parents.json").read_text())
    pages = exchange["response"]["body"]["query"]["pages"].values()
    return {r["revid"]: r["slots"]["main"]["*"] for page in pages for r in page["revisions"]}


DRIVE = hashtag_pattern(hashtags_parse("#1lib1ref #1bib1ref, #1Lib1RefCH"))


@pytest.mark.parametrize(
    "summary",
    [
        "Création de l'article #1lib1ref",  # revision 2
        "#1Bib1Ref: référence",  # 3: at the very start, then a colon
        "Added citation (#1lib1ref)",  # 8: after a bracket
        "ajout de source #1lib1ref #1bib1ref",  # 9
        "＃1lib1ref full-width",
        "#１ｌｉｂ１ｒｅｆ full-width letters",
        "#1LIB1REF",
        "source.#1lib1ref",
        "#1lib1refch local variant",
    ],
)
def test_summaries_that_carry_a_hashtag(summary):
    assert summary_matches(DRIVE, summary)


@pytest.mark.parametrize(
    "summary",
    [
        "typo",  # 4
        "",  # 15: empty summary
        "#1lib1refs",  # a longer tag
        "#1lib1ref-2027",
        "1lib1ref without the sign",
        "mail#1lib1ref",  # inside a word
        "&#1lib1ref",  # an HTML entity, not a tag
    ],
)
def test_summaries_that_do_not(summary):
    assert not summary_matches(DRIVE, summary)


def test_hashtags_are_read_from_what_a_coordinator_types():
    assert hashtags_parse("#1lib1ref, #1Bib1Ref  ＃1lib1ref\n1lib1refCH") == [
        "1lib1ref",
        "1bib1ref",
        "1lib1refch",
    ]
    assert hashtag_pattern([]) is None and not summary_matches(None, "#1lib1ref")


def test_references_counted_as_the_readme_table_says(texts):
    # <ref> with content, and {{sfn}} outside a ref; a named reuse is not a new reference.
    assert references_count(texts[2]) == 1
    assert references_count(texts[3]) == 2  # one <ref>, one {{sfn}}
    assert references_count(texts[6]) == 3
    assert references_count(texts[15]) == 3  # + <ref name="hist" /> reuse only
    assert references_count(texts[9]) == 4  # 2 <ref> with content + 2 {{sfn}}; 1 reuse
    assert references_count(texts[11]) == 0  # a talk page


def test_references_added_against_the_parent(texts):
    assert references_added(texts[3], texts[2]) == 1
    assert references_added(texts[4], texts[3]) == 0  # typo
    assert references_added(texts[6], texts[5]) == 2
    assert references_added(texts[13], texts[4]) == 2
    assert references_added(texts[9], texts[8]) == 2
    assert references_added(texts[5], "") == 1  # a page creation
    assert references_added(texts[2], texts[3]) == 0  # removing never counts negative


def test_citation_templates_inside_a_ref_count_once():
    text = "A<ref>{{cite web|url=https://example.org|title=X}}</ref> B{{Lien web|url=x}} C<ref/>"
    assert references_count(text) == 2
