"""Pulling a drive's edits from the wikis.

For every librarian with a wiki username, on every wiki of a drive, inside its window:
``list=usercontribs`` for up to 50 users per request, page after page, then the texts of the
new revisions and their parents in batches of 50 to count the references added. Each page is
stored as it arrives (each revision once, on wiki + revision id, linked to every drive it
counts in) and the continuation token recorded, so a pull that fails keeps what it stored
and the next one resumes where it stopped. All the
talking to the wikis goes through ``drives.wiki``; which edits count is ``drives.rules``.
"""

from __future__ import annotations

import hashlib
import time
from contextlib import contextmanager
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from libraries.models import Librarian

from . import wiki
from .models import Contribution, Drive, DriveContribution, PullCursor, PullRun, WikiAccount
from .rules import (
    UNTAGGED_NAMESPACES,
    drive_wikis,
    drive_window,
    hashtag_pattern,
    hashtags_parse,
    references_added,
    summary_matches,
)
from .services import (
    contribution_tallies_refresh,
    leads_note,
    linked_leads,
    pull_runs_interrupt,
    signals_from_contributions,
)

# How long a "no such user" answer is trusted before asking the wiki again.
ACCOUNT_RECHECK = timedelta(days=30)


def _users_key(names: list[str]) -> str:
    return hashlib.sha256("\n".join(names).encode()).hexdigest()


def _accounts_check(wiki_code: str, librarians: list[Librarian], now: datetime) -> dict:
    """The librarians whose account exists on the wiki and is not a bot, by the wiki's
    spelling of their name; the wiki is asked only about names it was not asked about lately
    (a missing name is flagged on the librarian, not asked again at every pull)."""
    known = {
        account.librarian_id: account
        for account in WikiAccount.objects.filter(wiki=wiki_code, librarian__in=librarians)
    }
    ask = [
        librarian
        for librarian in librarians
        if (account := known.get(librarian.pk)) is None
        or account.username != librarian.wiki_username
        or (not account.exists and account.checked_at < now - ACCOUNT_RECHECK)
    ]
    if ask:
        answers = wiki.users_info(wiki_code, sorted({lib.wiki_username for lib in ask}))
        for librarian in ask:
            info = answers[librarian.wiki_username]
            known[librarian.pk], _created = WikiAccount.objects.update_or_create(
                librarian=librarian,
                wiki=wiki_code,
                defaults={
                    "username": librarian.wiki_username,
                    "wiki_name": info.name,
                    "exists": info.exists and info.valid,
                    "bot": info.bot,
                },
            )
    return {
        known[librarian.pk].wiki_name: librarian
        for librarian in librarians
        if known[librarian.pk].exists and not known[librarian.pk].bot
    }


def contributions_pull(
    *, drive: Drive, now: datetime | None = None, whole: bool = False
) -> PullRun:
    """Pull the drive's edits from its wikis; return the run's record.

    Each pull reads from where the last one got, less DRIVES_PULL_OVERLAP_HOURS; ``whole``
    reads the whole window again (once after it closed, for the edits that came late).

    Never raises for a wiki's failure: the run is marked failed with the error, what was
    stored stays, and the next pull resumes from the stored cursors. A drive whose pull is
    alive elsewhere is not pulled twice at once: that run is returned as it stands.
    """
    now = now or timezone.now()
    pull_runs_interrupt()
    with transaction.atomic():
        Drive.objects.select_for_update().filter(pk=drive.pk).first()  # one starter at a time
        live = PullRun.objects.live().filter(drive=drive).first()
        if live is not None:
            return live
        run = PullRun.objects.create(drive=drive, heartbeat_at=timezone.now())
    run.requests_before = requests_before = wiki.request_count()
    pattern = hashtag_pattern(hashtags_parse(drive.hashtags))
    start, end = drive_window(drive, now=now)
    librarians = list(
        Librarian.objects.exclude(wiki_username="").select_related("library").order_by("pk")
    )
    wiki_code = ""
    try:
        if problem := wiki.contact_problem(drive_wikis(drive)):
            raise ValueError(problem)
        if start >= end:
            raise ValueError(_("The drive's window has not started yet."))
        for wiki_code in drive_wikis(drive):
            if wiki_code not in settings.WIKIS:
                raise ValueError(_("Unknown wiki: %(code)s") % {"code": wiki_code})
            with _wiki_turn(run, wiki_code):
                by_name = _accounts_check(wiki_code, librarians, now)
                run.users += len(by_name)
                names = sorted(by_name)
                for first in range(0, len(names), wiki.USERS_PER_REQUEST):
                    batch = names[first : first + wiki.USERS_PER_REQUEST]
                    _pull_batch(run, drive, wiki_code, batch, by_name, pattern, start, end, whole)
                # Everyone's tagged edits, the participants the directory does not know too.
                _capture_recent(run, drive, wiki_code, by_name, pattern, start, end, whole, now=now)
                # What could not be read on an earlier pull (or just now) is asked again.
                texts_read_again(drive=drive, wiki_code=wiki_code)
    except wiki.WikiError as error:
        if error.transient:
            message = _(
                "%(wiki)s could not be reached or kept failing (%(error)s). What was stored is "
                "kept; the next pull resumes where this one stopped."
            )
        else:
            message = _("%(wiki)s refused the request (%(error)s).")
        run.status, run.errors = (
            PullRun.Status.FAILED,
            message % {"wiki": wiki_code, "error": error},
        )
    except ValueError as error:
        run.status, run.errors = PullRun.Status.FAILED, str(error)
    else:
        run.status, run.errors = PullRun.Status.DONE, ""
        if whole:
            Drive.objects.filter(pk=drive.pk).update(window_reread_at=timezone.now())
    run.requests = wiki.request_count() - requests_before
    run.finished_at = timezone.now()
    run.save()
    # What was stored counts on the dashboard at once, even when the run failed part way.
    contribution_tallies_refresh()
    return run


# One pull at a time per wiki across every worker (API etiquette: requests in series): the
# others wait their turn, beating, at most this long.
WIKI_TURN_POLL = 5.0
WIKI_TURN_WAIT = 30 * 60


@contextmanager
def _wiki_turn(run: PullRun, wiki_code: str):
    """Hold ``wiki_code`` for this pull: a PostgreSQL advisory lock, released at the end or
    by the database when the worker's connection dies with it. SQLite (``make run``: one
    process) needs none."""
    if connection.vendor != "postgresql":
        yield
        return
    digest = hashlib.sha256(f"drives.wiki:{wiki_code}".encode()).digest()
    key = int.from_bytes(digest[:8], "big", signed=True)
    waited = 0.0
    with connection.cursor() as cursor:
        while True:
            cursor.execute("SELECT pg_try_advisory_lock(%s)", [key])
            if cursor.fetchone()[0]:
                break
            if waited >= WIKI_TURN_WAIT:
                raise ValueError(
                    _(
                        "Another pull from %(wiki)s went on for more than %(minutes)d minutes: "
                        "this one stopped; the next pull resumes where it stopped."
                    )
                    % {"wiki": wiki_code, "minutes": WIKI_TURN_WAIT // 60}
                )
            run.errors = _(
                "Waiting for another pull from %(wiki)s to finish: the wikis are asked one "
                "request at a time."
            ) % {"wiki": wiki_code}
            _beat(run, "errors")
            time.sleep(WIKI_TURN_POLL)
            waited += WIKI_TURN_POLL
    if run.errors:
        run.errors = ""
        _beat(run, "errors")
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s)", [key])


def _beat(run: PullRun, *fields: str) -> None:
    """Progress for the drive's page, page by page, and the proof that the run is alive."""
    run.requests = wiki.request_count() - run.requests_before
    run.heartbeat_at = timezone.now()
    run.save(
        update_fields=[
            "users", "requests", "edits_seen", "edits_kept", "untagged_kept", "heartbeat_at",
            *fields,
        ]
    )  # fmt: skip


def _cursor_pull(cursor, run, start, end, whole, fetch, store, *, earliest=None) -> None:
    """Pull one cursor's pages: from where it stopped when its last pull failed (the same
    window, the page after the last one stored), else from where it got less the overlap
    (``whole``: from the window's start); never before ``earliest``. Each page is stored,
    then the cursor moves past it: a failure keeps what came and resumes from there."""
    if cursor.token:
        resume_from = cursor.token
        window_start, window_end = cursor.window_start or start, cursor.window_end
    else:
        resume_from, window_end = None, end
        if whole or cursor.covered_until is None:
            window_start = start
        else:
            # Edits dated before the last pull may become visible only now (replica lag, an
            # undeleted page, an import): the last hours are read again, and stored once.
            overlap = timedelta(hours=settings.DRIVES_PULL_OVERLAP_HOURS)
            window_start = max(start, cursor.covered_until - overlap)
        if earliest is not None:
            window_start = max(window_start, earliest)
    if window_start >= window_end:
        return
    for edits, token in fetch(start=window_start, end=window_end, resume_from=resume_from):
        store(edits)
        cursor.token, cursor.window_start, cursor.window_end = token or "", window_start, window_end
        cursor.save(update_fields=["token", "window_start", "window_end", "updated_at"])
        _beat(run)
    cursor.covered_until, cursor.token = window_end, ""
    cursor.save(update_fields=["covered_until", "token", "updated_at"])


def _pull_batch(run, drive, wiki_code, names, by_name, pattern, start, end, whole) -> None:
    """The edits of one batch of up to 50 usernames (list=usercontribs)."""
    cursor, _created = PullCursor.objects.get_or_create(
        drive=drive, wiki=wiki_code, users_key=_users_key(names)
    )
    _cursor_pull(
        cursor,
        run,
        start,
        end,
        whole,
        fetch=lambda **window: wiki.contributions(wiki_code, names, **window),
        store=lambda edits: _page_store(run, drive, wiki_code, edits, by_name, pattern),
    )


# The cursor of a drive's wiki-wide capture (list=recentchanges), beside those of its
# batches of usernames (a sha256, never this).
RECENT_CHANGES_KEY = "recentchanges"


def recent_changes_horizon(now: datetime | None = None) -> datetime:
    """The oldest change the wikis still list ($wgRCMaxAge: WIKI_RC_MAX_AGE_DAYS)."""
    return (now or timezone.now()) - timedelta(days=settings.WIKI_RC_MAX_AGE_DAYS)


def _capture_recent(run, drive, wiki_code, by_name, pattern, start, end, whole, *, now) -> None:
    """The tagged edits of everyone on the wiki within the window, page by page from the
    wiki's recent changes, resumable like a batch of usernames. What lies beyond the wiki's
    horizon is not listed: the librarians' own edits there come from their usernames."""
    cursor, _created = PullCursor.objects.get_or_create(
        drive=drive, wiki=wiki_code, users_key=RECENT_CHANGES_KEY
    )
    # The leads a coordinator linked count for their librarians from now on.
    by_name = {**linked_leads(wiki_code), **by_name}
    _cursor_pull(
        cursor,
        run,
        start,
        end,
        whole,
        fetch=lambda **window: wiki.recent_changes(wiki_code, **window),
        store=lambda edits: _page_store(
            run, drive, wiki_code, edits, by_name, pattern, anyone=True
        ),
        earliest=recent_changes_horizon(now),
    )


def _texts_read(revid: int, parentid: int, texts: dict[int, str]) -> bool:
    """Both texts arrived (a page's first revision has no parent): else its references are
    unknown, never "every reference of the page added" for a parent that did not come."""
    return revid in texts and (not parentid or parentid in texts)


def texts_read_again(*, drive: Drive, wiki_code: str) -> int:
    """Read again the texts of the drive's edits whose references are unknown; count the
    references of those that arrive now (and their signals). Return how many were read."""
    unread = list(Contribution.objects.filter(links__drive=drive, wiki=wiki_code, texts_read=False))
    if not unread:
        return 0
    texts = wiki.revision_texts(
        wiki_code, sorted({c.revid for c in unread} | {c.parentid for c in unread if c.parentid})
    )
    done = []
    for contribution in unread:
        if _texts_read(contribution.revid, contribution.parentid, texts):
            contribution.references_added = references_added(
                texts[contribution.revid], texts.get(contribution.parentid, "")
            )
            contribution.texts_read = True
            done.append(contribution)
    with transaction.atomic():
        Contribution.objects.bulk_update(done, ["references_added", "texts_read"])
        # Kept apart only because its references were unknown: it adds none after all.
        DriveContribution.objects.filter(
            contribution__in=[c for c in done if c.references_added == 0],
            tagged=False,
            counted_in=False,
        ).delete()
        signals_from_contributions([c.pk for c in done], again=True)
    return len(done)


def _page_store(run, drive, wiki_code, edits, by_name, pattern, *, anyone=False) -> None:
    """Keep a page's tagged edits and the untagged ones that add references, for ``drive``.

    Every edit whose texts were read is stored once, with the references it adds; an edit
    already stored (another drive, an earlier pull) is linked, not read again. A page of
    ``anyone``'s edits (the wiki's recent changes) keeps the tagged ones only: an untagged
    edit is worth a look only from a librarian of the directory; their texts are read
    after the capture, in full batches.
    """
    run.edits_seen += len(edits)
    tagged_ids = {edit.revid for edit in edits if summary_matches(pattern, edit.comment)}
    wanted = [
        edit
        for edit in edits
        if edit.revid in tagged_ids
        or (not anyone and edit.ns in UNTAGGED_NAMESPACES and edit.sizediff > 0)
    ]
    if not wanted:
        return
    stored = {
        contribution.revid: contribution
        for contribution in Contribution.objects.filter(
            wiki=wiki_code, revid__in=[edit.revid for edit in wanted]
        )
    }
    new_edits = [edit for edit in wanted if edit.revid not in stored]
    texts = {}
    # Of a page of recent changes, a few edits each: their texts are read afterwards, 50 at a
    # time for the whole capture (texts_read_again), not a request per page.
    if new_edits and not anyone:
        texts = wiki.revision_texts(
            wiki_code,
            sorted({e.revid for e in new_edits} | {e.parentid for e in new_edits if e.parentid}),
        )
    rows = []
    for edit in new_edits:
        # Stored even when it counts nowhere (untagged, no reference added): the next drive
        # over the same edits reads what was found here instead of the texts again.
        read = _texts_read(edit.revid, edit.parentid, texts)
        added = references_added(texts[edit.revid], texts.get(edit.parentid, "")) if read else 0
        librarian = by_name.get(edit.user)
        rows.append(
            Contribution(
                librarian=librarian,
                library_id=librarian.library_id if librarian else None,
                wiki=wiki_code,
                revid=edit.revid,
                parentid=edit.parentid,
                page=edit.title[:255],
                ns=edit.ns,
                username=edit.user,
                timestamp=edit.timestamp,
                summary=edit.comment,
                size_change=edit.sizediff,
                references_added=added,
                texts_read=read,
            )
        )
    with transaction.atomic():
        Contribution.objects.bulk_create(rows, ignore_conflicts=True)
        stored.update(
            (contribution.revid, contribution)
            for contribution in Contribution.objects.filter(
                wiki=wiki_code, revid__in=[row.revid for row in rows]
            )
        )
        # Linked when it carries the drive's hashtags, or adds references (kept apart), or
        # may: an untagged edit whose texts are unread is kept apart until they are read.
        keep = [
            stored[edit.revid]
            for edit in wanted
            if edit.revid in stored
            and (
                edit.revid in tagged_ids
                or stored[edit.revid].references_added > 0
                or not stored[edit.revid].texts_read
            )
        ]
        linked = set(
            DriveContribution.objects.filter(drive=drive, contribution__in=keep).values_list(
                "contribution_id", flat=True
            )
        )
        links = [
            DriveContribution(
                drive=drive, contribution=contribution, tagged=contribution.revid in tagged_ids
            )
            for contribution in keep
            if contribution.pk not in linked
        ]
        DriveContribution.objects.bulk_create(links, ignore_conflicts=True)
        signals_from_contributions([link.contribution_id for link in links])
        # Someone the directory does not know used the hashtags: a lead to look at.
        leads_note(
            wiki_code,
            {c.username for c in keep if c.librarian_id is None and c.revid in tagged_ids},
        )
    run.edits_kept += sum(1 for link in links if link.tagged)
    run.untagged_kept += sum(1 for link in links if not link.tagged)
