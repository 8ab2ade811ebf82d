"""Pulling a drive's contributions from a real HTTP server speaking the MediaWiki API, which
holds the wiki recorded in shared/fixtures/mediawiki-1.39 (tests.wiki_server)."""

from datetime import UTC, date, datetime, timedelta

import pytest
from django.urls import reverse

from drives import wiki
from drives.models import Contribution, Drive, DriveContribution, PullCursor, PullRun, WikiAccount
from drives.pulls import contributions_pull
from drives.selectors import drive_leaderboard, drives_to_reread
from drives.services import contribution_count_in
from drives.tasks import contributions_pull_task
from libraries.models import ActivitySignal, Librarian
from tests.factories import LibrarianFactory, LibraryFactory

pytestmark = pytest.mark.django_db
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


@pytest.fixture
def librarians(db):
    """The recorded wiki's accounts, as librarians of four libraries; one has no account."""
    named, libraries = {}, {}
    for username, library in [
        ("Demo Librarian", "Bibliothèque de Morges"),
        ("Exemple Bibliothécaire", "Bibliothèque de Nyon"),
        ("Sample Archivist", "Archives cantonales"),
        ("Demo Bot", "Archives cantonales"),
        ("No Such User", "Bibliothèque d'Aigle"),
    ]:
        if library not in libraries:
            libraries[library] = LibraryFactory(name=library)
        named[username] = LibrarianFactory(wiki_username=username, library=libraries[library])
    LibrarianFactory(wiki_username="")  # never asked about
    return named


@pytest.fixture
def drive(db):
    return Drive.objects.create(
        title="#1lib1ref",
        hashtags="#1lib1ref #1bib1ref",
        wikis="demo",
        starts_on=date(2023, 1, 1),
        ends_on=date(2026, 11, 30),
    )


def _kept(drive, **filters):
    return set(
        Contribution.objects.in_drive(drive).filter(**filters).values_list("revid", flat=True)
    )


def test_a_pull_keeps_the_tagged_edits_of_known_librarians(demo, librarians, drive):
    run = contributions_pull(drive=drive, now=NOW)

    assert run.status == PullRun.Status.DONE, run.errors
    # Tagged: 2, 3, 5, 6, 8, 9, 11 (a talk page: tagged, no reference), 13, 17. Not 16: its
    # author is in the bot group. Not 4, 7, 10, 12, 14, 15: no hashtag, no reference added.
    assert _kept(drive, tagged=True) == {2, 3, 5, 6, 8, 9, 11, 13, 17}
    assert _kept(drive, tagged=False) == set()
    refs = dict(Contribution.objects.values_list("revid", "references_added"))
    assert refs[2] == 1 and refs[3] == 1 and refs[6] == 2 and refs[9] == 2 and refs[11] == 0
    lausanne = Contribution.objects.get(revid=8)
    assert lausanne.librarian == librarians["Demo Librarian"]
    assert lausanne.library.name == "Bibliothèque de Morges"
    assert lausanne.summary == "Added citation (#1lib1ref)" and lausanne.page == "Lausanne"
    assert (run.users, run.edits_kept, run.untagged_kept) == (3, 9, 0)


def test_requests_are_batched_never_per_user_nor_per_revision(demo, librarians, drive):
    wiki.reset_request_count()
    demo.requests.clear()
    run = contributions_pull(drive=drive, now=NOW)
    by_kind = [r.get("list") or r.get("prop") or r.get("action") for r in demo.requests]
    assert by_kind.count("users") == 1  # five names, one request
    assert by_kind.count("usercontribs") == 1  # three accounts, one page
    # The texts of the 9 kept revisions and their parents: 15 ids, one batch.
    assert by_kind.count("revisions") == 1
    assert run.requests == wiki.request_count()


def test_pulling_again_adds_nothing_twice_and_asks_only_for_what_is_new(demo, librarians, drive):
    contributions_pull(drive=drive, now=NOW)
    signals, stored = ActivitySignal.objects.count(), Contribution.objects.count()
    demo.requests.clear()
    again = contributions_pull(drive=drive, now=NOW)
    assert again.status == "done" and again.edits_kept == 0
    assert len(_kept(drive)) == 9 and Contribution.objects.count() == stored
    assert ActivitySignal.objects.count() == signals
    # The accounts are known; of the window, only the last DRIVES_PULL_OVERLAP_HOURS are
    # read again (late edits), and no text: what they hold is stored.
    assert not [r for r in demo.requests if r.get("list") == "users"]
    [contribs] = [r for r in demo.requests if r.get("list") == "usercontribs"]
    assert (contribs["ucstart"], contribs["ucend"]) == (
        "2026-11-21T12:00:00Z",
        "2026-11-23T12:00:00Z",
    )
    assert not [r for r in demo.requests if r.get("prop") == "revisions"]


def test_an_unknown_username_is_flagged_and_not_asked_again(demo, librarians, drive):
    contributions_pull(drive=drive, now=NOW)
    missing = WikiAccount.objects.get(librarian=librarians["No Such User"])
    assert not missing.exists
    assert WikiAccount.objects.get(librarian=librarians["Demo Bot"]).bot
    drive.ends_on = date(2026, 12, 31)  # more to pull
    drive.save()
    demo.requests.clear()
    contributions_pull(drive=drive, now=datetime(2026, 11, 24, tzinfo=UTC))
    assert not [r for r in demo.requests if r.get("list") == "users"]


def test_a_pull_that_fails_mid_way_keeps_what_it_stored_and_resumes(
    demo, librarians, drive, monkeypatch
):
    monkeypatch.setattr(wiki, "CONTRIBUTIONS_PER_REQUEST", 3)  # several pages
    # From the second page of usercontribs on, every attempt fails: the wiki died.
    pages = []
    original = wiki.contributions

    def failing(*args, **kwargs):
        for page in original(*args, **kwargs):
            pages.append(page)
            yield page
            if len(pages) == 1:
                demo.fail_next(50, "http503", match={"list": "usercontribs"})

    monkeypatch.setattr(wiki, "contributions", failing)
    failed = contributions_pull(drive=drive, now=NOW)
    assert failed.status == PullRun.Status.FAILED and failed.errors
    stored = len(_kept(drive))
    assert 0 < stored < 9
    cursor = PullCursor.objects.get()
    assert cursor.token and cursor.covered_until is None

    demo._faults.clear()  # the wiki is back
    monkeypatch.setattr(wiki, "contributions", original)
    demo.requests.clear()
    resumed = contributions_pull(drive=drive, now=NOW)
    assert resumed.status == PullRun.Status.DONE
    first = next(r for r in demo.requests if r.get("list") == "usercontribs")
    assert first.get("uccontinue")  # from where it stopped, not from the start
    assert _kept(drive, tagged=True) == {2, 3, 5, 6, 8, 9, 11, 13, 17}


def test_untagged_edits_that_add_references_are_kept_apart_until_counted_in(
    demo, librarians, drive
):
    text17 = demo.revisions[17].text
    demo.add_revision(
        revid=18,
        parentid=17,
        pageid=3,
        ns=0,
        title="Bibliothèque cantonale",
        user="Sample Archivist",
        timestamp="2026-11-22T10:00:00Z",
        comment="source",
        text=text17 + "\nAjout.<ref>Rapport 2024, p. 3.</ref>",
    )
    run = contributions_pull(drive=drive, now=NOW)
    assert run.untagged_kept == 1
    untagged = DriveContribution.objects.get(contribution__revid=18)
    assert not untagged.tagged and untagged.contribution.references_added == 1
    assert not untagged.counts
    assert not ActivitySignal.objects.filter(source="demo:18").exists()  # never silently
    contribution_count_in(link=untagged, counted=True)
    kinds = list(ActivitySignal.objects.filter(source="demo:18").values_list("kind", flat=True))
    assert sorted(kinds) == ["reference_added", "tagged_edit"]
    contribution_count_in(link=untagged, counted=False)
    assert not ActivitySignal.objects.filter(source="demo:18").exists()


def test_kept_edits_become_signals_of_the_library(demo, librarians, drive):
    contributions_pull(drive=drive, now=NOW)
    morges = librarians["Demo Librarian"].library
    signals = ActivitySignal.objects.filter(library=morges)
    assert signals.filter(kind="tagged_edit").count() == 5  # revisions 2, 5, 8, 11, 13
    assert signals.filter(kind="reference_added").count() == sum(
        Contribution.objects.filter(library=morges).values_list("references_added", flat=True)
    )


def test_a_wiki_that_is_down_fails_the_run_with_a_clear_message(demo, librarians, drive):
    demo.stop()
    run = contributions_pull(drive=drive, now=NOW)
    assert run.status == PullRun.Status.FAILED
    assert run.errors.startswith("demo could not be reached or kept failing")
    assert "the next pull resumes" in run.errors
    assert not Contribution.objects.exists()


def test_the_drive_page_shows_totals_leaderboard_and_diffs(
    demo, librarians, drive, coordinator_client
):
    contributions_pull(drive=drive, now=NOW)
    page = coordinator_client.get(reverse("drives:drive-detail", args=[drive.pk]))
    assert page.status_code == 200
    assert page.context["totals"]["edits"] == 9
    assert page.context["totals"]["libraries"] == 3
    assert "No Such User" in page.content.decode()  # flagged: the username was not found
    board = page.context["leaderboard"]
    assert board[0]["library__name"] == "Bibliothèque de Morges"
    html = page.content.decode()
    assert f"{demo.origin}/w/index.php?diff=8&amp;oldid=0" in html.replace("prev", "0")
    assert "Chart" in html or "drive-chart" in html


def test_the_public_leaderboard_only_when_the_drive_opted_in(demo, librarians, drive, client):
    contributions_pull(drive=drive, now=NOW)
    url = reverse("drives:drive-leaderboard-public", args=[drive.pk])
    assert client.get(url).status_code == 404
    drive.public_leaderboard = True
    drive.save()
    html = client.get(url).content.decode()
    assert "Bibliothèque de Morges" in html
    for librarian in librarians.values():  # names of libraries only, no people
        assert librarian.name not in html and librarian.email not in html


def test_a_coordinator_starts_a_pull_from_the_drive_page(
    demo, librarians, drive, coordinator_client
):
    response = coordinator_client.post(reverse("drives:drive-pull", args=[drive.pk]))
    assert response.status_code == 302
    assert PullRun.objects.get().status == "done"  # tasks run in-process in tests
    runs = coordinator_client.get(reverse("drives:drive-runs", args=[drive.pk]))
    assert "Done" in runs.content.decode()


def test_two_drives_over_the_same_dates_both_count_the_shared_edits_once_each(
    demo, librarians, drive
):
    year = Drive.objects.create(
        title="#1lib1ref, the whole year",
        hashtags="#1lib1ref",
        wikis="demo",
        starts_on=date(2023, 1, 1),
        ends_on=date(2026, 11, 30),
    )
    contributions_pull(drive=drive, now=NOW)
    texts_before = len([r for r in demo.requests if r.get("prop") == "revisions"])
    run = contributions_pull(drive=year, now=NOW)

    assert run.status == PullRun.Status.DONE, run.errors
    # The year counts what it matches (#1lib1ref only), the first drive stored already.
    assert _kept(year, tagged=True) == _kept(drive, tagged=True) - {
        revid
        for revid, summary in Contribution.objects.values_list("revid", "summary")
        if "1lib1ref" not in summary.lower()
    }
    assert _kept(year, tagged=True) and run.edits_kept == len(_kept(year, tagged=True))
    # Stored once, and their texts were not read again.
    assert Contribution.objects.filter(revid__in=_kept(year)).count() == len(_kept(year))
    assert len([r for r in demo.requests if r.get("prop") == "revisions"]) == texts_before
    board = {row["library__name"]: row for row in drive_leaderboard(year)}
    assert board["Bibliothèque de Morges"]["edits"] >= 1
    # One edit is one edit of its library, however many drives count it.
    morges = librarians["Demo Librarian"].library
    assert ActivitySignal.objects.filter(library=morges, kind="tagged_edit").count() == 5


def test_a_batch_of_large_articles_counts_exactly(demo, librarians, drive):
    # Each response holds about one and a half texts: every batch continues (rvcontinue).
    demo.max_result_size = 3 * max(len(r.text.encode()) for r in demo.revisions.values()) // 2
    run = contributions_pull(drive=drive, now=NOW)
    assert run.status == PullRun.Status.DONE, run.errors
    assert len([r for r in demo.requests if r.get("rvcontinue")]) > 1
    refs = dict(Contribution.objects.values_list("revid", "references_added"))
    assert refs[2] == 1 and refs[3] == 1 and refs[6] == 2 and refs[9] == 2 and refs[11] == 0
    assert not Contribution.objects.filter(texts_read=False).exists()


def test_texts_that_cannot_be_read_count_no_reference_and_are_read_again(demo, librarians, drive):
    demo.max_result_size = 10  # no text fits: the wiki sends none
    first = contributions_pull(drive=drive, now=NOW)
    assert first.status == PullRun.Status.DONE, first.errors
    # The edits are kept (tagged ones count as edits), their references unknown: none is
    # counted, never "every reference of the page added" for a parent that did not come.
    assert _kept(drive, tagged=True) == {2, 3, 5, 6, 8, 9, 11, 13, 17}
    assert set(Contribution.objects.values_list("texts_read", flat=True)) == {False}
    assert sum(Contribution.objects.values_list("references_added", flat=True)) == 0
    assert not ActivitySignal.objects.filter(kind="reference_added").exists()

    demo.max_result_size = 8 * 1024 * 1024  # the texts come through again
    contributions_pull(drive=drive, now=NOW)
    refs = dict(Contribution.objects.values_list("revid", "references_added"))
    assert refs[2] == 1 and refs[6] == 2 and refs[9] == 2
    assert not Contribution.objects.filter(texts_read=False).exists()
    assert _kept(drive, tagged=False) == set()  # none of the untagged ones adds a reference
    morges = librarians["Demo Librarian"].library
    assert ActivitySignal.objects.filter(library=morges, kind="reference_added").count() == sum(
        Contribution.objects.filter(library=morges, links__drive=drive)
        .counted()
        .values_list("references_added", flat=True)
    )
    assert ActivitySignal.objects.filter(library=morges, kind="tagged_edit").count() == 5


def test_a_username_typed_in_decomposed_unicode_with_underscores_is_found(demo, librarians, drive):
    # "Exemple Bibliothécaire" as a keyboard may write it: e + combining acute, underscores.
    librarian = librarians["Exemple Bibliothécaire"]
    Librarian.objects.filter(pk=librarian.pk).update(wiki_username="exemple_Bibliothe\u0301caire")
    run = contributions_pull(drive=drive, now=NOW)
    account = WikiAccount.objects.get(librarian=librarian)
    assert account.exists and account.wiki_name == "Exemple Bibliothécaire"
    assert run.users == 3
    nyon = set(
        Contribution.objects.in_drive(drive)
        .filter(librarian=librarian)
        .values_list("revid", flat=True)
    )
    assert nyon == {3, 6, 9}


def _late_revision(demo, revid, when):
    """A tagged edit by Demo Librarian that the wiki shows only from now on, dated ``when``."""
    demo.add_revision(
        revid=revid,
        parentid=0,
        pageid=100 + revid,
        ns=0,
        title=f"Page apparue tard {revid}",
        user="Demo Librarian",
        timestamp=when.strftime("%Y-%m-%dT%H:%M:%SZ"),
        comment="Source ajoutée #1lib1ref",
        text="Texte.<ref>Une source.</ref>",
    )


def test_an_edit_that_appears_after_a_pull_but_is_dated_before_it_is_found_next_time(
    demo, librarians, drive
):
    contributions_pull(drive=drive, now=NOW)
    # Replica lag, an undeleted page, an import: dated two hours before the last pull.
    _late_revision(demo, 40, NOW - timedelta(hours=2))
    run = contributions_pull(drive=drive, now=NOW + timedelta(hours=1))
    assert run.edits_kept == 1 and 40 in _kept(drive, tagged=True)
    # Read again at the next pull too: stored once, counted once.
    again = contributions_pull(drive=drive, now=NOW + timedelta(hours=2))
    assert again.edits_kept == 0 and Contribution.objects.filter(revid=40).count() == 1
    assert ActivitySignal.objects.filter(source="demo:40", kind="tagged_edit").count() == 1


def test_the_night_after_the_window_closed_reads_it_whole_once(demo, librarians, drive):
    drive.ends_on = date(2026, 11, 23)
    drive.save()
    contributions_pull(drive=drive, now=NOW)
    # Beyond the overlap of the hourly pulls: dated five days before the window closed.
    _late_revision(demo, 41, NOW - timedelta(days=5))
    night = datetime(2026, 11, 25, 1, 30, tzinfo=UTC)  # 02:30 in Zurich
    assert drives_to_reread(now=night) == [drive.pk]
    contributions_pull_task.delay(drive.pk, whole=True)
    assert 41 in _kept(drive, tagged=True)
    drive.refresh_from_db()
    assert drive.window_reread_at is not None
    assert drives_to_reread(now=night + timedelta(days=1)) == []  # once


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_wiki_is_pulled_by_one_pull_at_a_time(demo, librarians, drive, monkeypatch):
    import hashlib

    import psycopg
    from django.db import connection

    from drives import pulls

    # Another worker's pull holds the wiki, from a connection of its own.
    params = connection.get_connection_params()
    other = psycopg.connect(
        host=params.get("host"),
        port=params.get("port"),
        user=params.get("user"),
        dbname=params.get("dbname"),
        autocommit=True,
    )
    key = int.from_bytes(hashlib.sha256(b"drives.wiki:demo").digest()[:8], "big", signed=True)
    other.execute("SELECT pg_advisory_lock(%s)", [key])
    waits = []

    class Clock:
        @staticmethod
        def sleep(seconds):
            run = PullRun.objects.get()
            waits.append((seconds, run.errors, len(demo.requests)))
            other.execute("SELECT pg_advisory_unlock(%s)", [key])  # the other pull ends

    monkeypatch.setattr(pulls, "time", Clock)
    demo.requests.clear()
    run = contributions_pull(drive=drive, now=NOW)
    other.close()

    # It waited its turn before asking the wiki anything, said so, then pulled everything.
    [(seconds, said, asked)] = waits
    assert seconds == pulls.WIKI_TURN_POLL and asked == 0
    assert said.startswith("Waiting for another pull from demo to finish")
    assert run.status == PullRun.Status.DONE and run.errors == ""
    assert _kept(drive, tagged=True) == {2, 3, 5, 6, 8, 9, 11, 13, 17}


def _stranger_revision(demo, revid, when, user="Nouvelle Participante", comment=None):
    """A tagged edit by someone the directory does not know."""
    demo.add_user(user, 100 + revid)
    demo.add_revision(
        revid=revid,
        parentid=0,
        pageid=200 + revid,
        ns=0,
        title=f"Bibliothèque de quartier {revid}",
        user=user,
        timestamp=when.strftime("%Y-%m-%dT%H:%M:%SZ"),
        comment=comment or "Ajout d'une source #1bib1ref",
        text="Texte.<ref>Une source.</ref><ref>Une autre.</ref>",
    )


def test_participants_the_directory_does_not_know_are_captured_from_recent_changes(
    demo, librarians, drive
):
    demo.now = NOW
    _stranger_revision(demo, 50, NOW - timedelta(days=2))
    _stranger_revision(demo, 51, NOW - timedelta(days=1), comment="typo")  # no hashtag
    _stranger_revision(demo, 52, NOW - timedelta(days=45))  # beyond the 30 days kept
    run = contributions_pull(drive=drive, now=NOW)

    assert run.status == PullRun.Status.DONE, run.errors
    stranger = Contribution.objects.get(revid=50)
    assert (stranger.username, stranger.librarian, stranger.library) == (
        "Nouvelle Participante",
        None,
        None,
    )
    assert stranger.references_added == 2 and 50 in _kept(drive, tagged=True)
    assert not Contribution.objects.filter(revid__in=[51, 52]).exists()
    # The librarians' edits come both ways, and are stored once.
    assert _kept(drive, tagged=True) == {2, 3, 5, 6, 8, 9, 11, 13, 17, 50}
    rc = [r for r in demo.requests if r.get("list") == "recentchanges"]
    assert rc and all(r["rcshow"] == "!bot" for r in rc)
    assert rc[0]["rcstart"] == "2026-10-24T12:00:00Z"  # the wiki's horizon, not 2023
    assert not ActivitySignal.objects.filter(source="demo:50").exists()  # no library yet


def test_a_wide_capture_that_fails_mid_way_resumes_from_its_page(
    demo, librarians, drive, monkeypatch
):
    demo.now = NOW
    for n in range(6):
        _stranger_revision(demo, 60 + n, NOW - timedelta(hours=10 - n), user=f"Participant {n}")
    monkeypatch.setattr(wiki, "RECENT_CHANGES_PER_REQUEST", 4)
    pages = []
    original = wiki.recent_changes

    def failing(*args, **kwargs):
        for page in original(*args, **kwargs):
            pages.append(page)
            yield page
            if len(pages) == 1:
                demo.fail_next(50, "http503", match={"list": "recentchanges"})

    monkeypatch.setattr(wiki, "recent_changes", failing)
    failed = contributions_pull(drive=drive, now=NOW)
    assert failed.status == PullRun.Status.FAILED
    cursor = PullCursor.objects.get(users_key="recentchanges")
    assert cursor.token and cursor.covered_until is None

    demo._faults.clear()
    monkeypatch.setattr(wiki, "recent_changes", original)
    demo.requests.clear()
    assert contributions_pull(drive=drive, now=NOW).status == PullRun.Status.DONE
    first = next(r for r in demo.requests if r.get("list") == "recentchanges")
    assert first.get("rccontinue") == cursor.token
    assert {60, 61, 62, 63, 64, 65} <= _kept(drive, tagged=True)
