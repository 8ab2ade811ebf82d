"""Contribution drives (#1lib1ref): which edits count, how many references they add, and
pulling them from the wikis.

``contributions_pull`` fetches the edits of every librarian with a wiki username, on every
wiki of a drive, inside its window: ``list=usercontribs`` for up to 50 users per request,
page after page, then the texts of the kept revisions and their parents in batches of 50 to
count the references added. Each page is stored as it arrives (upsert on wiki + revision id)
and the continuation token recorded, so a pull that fails keeps what it stored and the next
one resumes where it stopped. All the talking to the wikis goes through ``campaigns.wiki``.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterable
from datetime import datetime, time, timedelta

import mwparserfromhell
from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from libraries.models import ActivitySignal, Librarian

from . import wiki
from .models import Campaign, Contribution, PullCursor, PullRun, WikiAccount
from .services import contribution_tallies_refresh

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
# How long a "no such user" answer is trusted before asking the wiki again.
ACCOUNT_RECHECK = timedelta(days=30)


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


# Pulling ----------------------------------------------------------------------------------------


def drive_window(drive: Campaign, *, now: datetime) -> tuple[datetime, datetime]:
    """The drive's window as aware datetimes: from the start of its first day to the end of
    its last (or now, if sooner)."""
    zone = timezone.get_default_timezone()
    start = datetime.combine(drive.starts_on, time.min, tzinfo=zone)
    end = datetime.combine(drive.ends_on + timedelta(days=1), time.min, tzinfo=zone)
    return start, min(end, now)


def drive_wikis(drive: Campaign) -> list[str]:
    return [code for code in re.split(r"[\s,;]+", drive.wikis) if code]


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


def contributions_pull(*, drive: Campaign, now: datetime | None = None) -> PullRun:
    """Pull the drive's edits from its wikis; return the run's record.

    Never raises for a wiki's failure: the run is marked failed with the error, what was
    stored stays, and the next pull resumes from the stored cursors.
    """
    now = now or timezone.now()
    run = PullRun.objects.create(drive=drive)
    run.requests_before = requests_before = wiki.request_count()
    pattern = hashtag_pattern(hashtags_parse(drive.hashtags))
    start, end = drive_window(drive, now=now)
    librarians = list(
        Librarian.objects.exclude(wiki_username="").select_related("library").order_by("pk")
    )
    wiki_code = ""
    try:
        if start >= end:
            raise ValueError(_("The drive's window has not started yet."))
        for wiki_code in drive_wikis(drive):
            if wiki_code not in settings.WIKIS:
                raise ValueError(_("Unknown wiki: %(code)s") % {"code": wiki_code})
            by_name = _accounts_check(wiki_code, librarians, now)
            run.users += len(by_name)
            names = sorted(by_name)
            for first in range(0, len(names), wiki.USERS_PER_REQUEST):
                batch = names[first : first + wiki.USERS_PER_REQUEST]
                _pull_batch(run, drive, wiki_code, batch, by_name, pattern, start, end)
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
        run.status = PullRun.Status.DONE
    run.requests = wiki.request_count() - requests_before
    run.finished_at = timezone.now()
    run.save()
    # What was stored counts on the dashboard at once, even when the run failed part way.
    contribution_tallies_refresh()
    return run


def _pull_batch(run, drive, wiki_code, names, by_name, pattern, start, end) -> None:
    cursor, _created = PullCursor.objects.get_or_create(
        drive=drive, wiki=wiki_code, users_key=_users_key(names)
    )
    if cursor.token:
        # Resume the interrupted pull: same window, from the page after the last one stored.
        resume_from, window_end = cursor.token, cursor.window_end
    else:
        resume_from, window_end = None, end
    window_start = max(start, cursor.covered_until or start)
    if window_start >= window_end:
        return
    pages = wiki.contributions(
        wiki_code, names, start=window_start, end=window_end, resume_from=resume_from
    )
    for edits, token in pages:
        _page_store(run, drive, wiki_code, edits, by_name, pattern)
        cursor.token, cursor.window_end = token or "", window_end
        cursor.save(update_fields=["token", "window_end", "updated_at"])
        # Progress for the drive's page, page by page.
        run.requests = wiki.request_count() - run.requests_before
        run.save(update_fields=["users", "requests", "edits_seen", "edits_kept", "untagged_kept"])
    cursor.covered_until, cursor.token = window_end, ""
    cursor.save(update_fields=["covered_until", "token", "updated_at"])


def _page_store(run, drive, wiki_code, edits, by_name, pattern) -> None:
    """Keep a page's tagged edits and the untagged ones that add references."""
    run.edits_seen += len(edits)
    tagged = [edit for edit in edits if summary_matches(pattern, edit.comment)]
    tagged_ids = {edit.revid for edit in tagged}
    candidates = [
        edit
        for edit in edits
        if edit.revid not in tagged_ids and edit.ns in UNTAGGED_NAMESPACES and edit.sizediff > 0
    ]
    wanted = tagged + candidates
    if not wanted:
        return
    texts = wiki.revision_texts(
        wiki_code, sorted({e.revid for e in wanted} | {e.parentid for e in wanted if e.parentid})
    )
    rows = []
    for edit in wanted:
        added = references_added(texts.get(edit.revid, ""), texts.get(edit.parentid, ""))
        is_tagged = edit.revid in tagged_ids
        if not is_tagged and added == 0:
            continue
        librarian = by_name.get(edit.user)
        rows.append(
            Contribution(
                drive=drive,
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
                tagged=is_tagged,
            )
        )
    with transaction.atomic():
        existing = set(
            Contribution.objects.filter(
                wiki=wiki_code, revid__in=[row.revid for row in rows]
            ).values_list("revid", flat=True)
        )
        new = [row for row in rows if row.revid not in existing]
        Contribution.objects.bulk_create(new, ignore_conflicts=True)
        signals_from_contributions(
            Contribution.objects.filter(wiki=wiki_code, revid__in=[r.revid for r in new])
        )
    run.edits_kept += sum(1 for row in new if row.tagged)
    run.untagged_kept += sum(1 for row in new if not row.tagged)


# Signals ------------------------------------------------------------------------------------------


def _signal_source(contribution: Contribution) -> str:
    return f"{contribution.wiki}:{contribution.revid}"


def signals_from_contributions(contributions) -> int:
    """One ``tagged_edit`` signal per counted contribution and one ``reference_added`` per
    reference it added, for its library; idempotent (the source names the revision)."""
    counted = [c for c in contributions if c.counts and c.library_id]
    sources = {_signal_source(c) for c in counted}
    already = set(
        ActivitySignal.objects.filter(
            source__in=sources,
            kind__in=[ActivitySignal.Kind.TAGGED_EDIT, ActivitySignal.Kind.REFERENCE_ADDED],
        ).values_list("source", flat=True)
    )
    signals = []
    for contribution in counted:
        source = _signal_source(contribution)
        if source in already:
            continue
        common = {
            "library_id": contribution.library_id,
            "librarian_id": contribution.librarian_id,
            "occurred_at": contribution.timestamp,
            "source": source,
        }
        signals.append(ActivitySignal(kind=ActivitySignal.Kind.TAGGED_EDIT, **common))
        signals += [
            ActivitySignal(kind=ActivitySignal.Kind.REFERENCE_ADDED, **common)
            for _ in range(min(contribution.references_added, 20))
        ]
    ActivitySignal.objects.bulk_create(signals)
    return len(signals)


@transaction.atomic
def contribution_count_in(*, contribution: Contribution, counted: bool) -> Contribution:
    """A coordinator counts an untagged edit in (or out again), with its signals."""
    contribution.counted_in = counted
    contribution.save(update_fields=["counted_in"])
    if counted:
        signals_from_contributions([contribution])
    else:
        ActivitySignal.objects.filter(source=_signal_source(contribution)).delete()
    contribution_tallies_refresh()
    return contribution


def drives_due(*, now: datetime) -> list[int]:
    """Drives to pull now: open ones every time, those ended in the last week at night; never
    one whose pull is still running (started within the hour)."""
    today = timezone.localdate(now)
    drives = Campaign.objects.filter(
        kind=Campaign.Kind.CONTRIBUTION_DRIVE, starts_on__lte=today, ends_on__isnull=False
    ).exclude(wikis="")
    if timezone.localtime(now).hour == 2:
        drives = drives.filter(ends_on__gte=today - timedelta(days=7))
    else:
        drives = drives.filter(ends_on__gte=today - timedelta(days=1))
    running = PullRun.objects.filter(
        status=PullRun.Status.RUNNING, started_at__gte=now - timedelta(hours=1)
    ).values("drive_id")
    return list(drives.exclude(pk__in=running).values_list("pk", flat=True))
