"""Live capture from Wikimedia EventStreams: every edit of the drives' wikis as it is made.

The ``recentchange`` stream (https://stream.wikimedia.org/v2/stream/recentchange) is a
Server-Sent Events feed of every change of every Wikimedia wiki. ``stream_consume`` reads it
and keeps the edits that carry an open drive's hashtags on one of its wikis, whoever made
them, at once: no request to the wikis (their references are counted by the next pull,
which reads the texts it has not read). It saves the position it reached (the event id) and
resumes from it after a reconnection (the ``Last-Event-ID`` header), so nothing is lost
while the connection drops, and nothing is stored twice (one row per wiki and revision).

Off unless DRIVES_EVENTSTREAMS_URL is set; ``manage.py drives_stream`` is the long-running
worker that reconnects with a growing pause.
"""

from __future__ import annotations

import json
import logging
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from libraries.models import Librarian

from . import wiki
from .models import Contribution, Drive, DriveContribution, StreamPosition
from .rules import drive_wikis, hashtag_pattern, hashtags_parse, summary_matches
from .services import leads_note, linked_leads, signals_from_contributions

logger = logging.getLogger(__name__)


@dataclass
class Event:
    id: str
    event: str
    data: str


def sse_events(lines: Iterator[str]) -> Iterator[Event]:
    """Server-Sent Events from a stream's lines (the WHATWG rules: ``data`` lines joined by
    a line break, a blank line dispatches, lines starting with a colon are comments)."""
    data: list[str] = []
    event_id, event_type = "", ""
    for raw in lines:
        line = raw.rstrip("\r\n")
        if not line:
            if data:
                yield Event(id=event_id, event=event_type or "message", data="\n".join(data))
            data, event_type = [], ""
            continue
        if line.startswith(":"):
            continue
        name, _colon, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if name == "data":
            data.append(value)
        elif name == "id":
            event_id = value
        elif name == "event":
            event_type = value


def _open(url: str, last_event_id: str) -> Iterator[str]:
    headers = {
        "Accept": "text/event-stream",
        "User-Agent": f"{wiki.USER_AGENT_PRODUCT} ({settings.WIKI_USER_AGENT_CONTACT})",
    }
    if last_event_id:
        headers["Last-Event-ID"] = last_event_id
    request = urllib.request.Request(url, headers=headers)
    with urllib.request.urlopen(request, timeout=settings.DRIVES_EVENTSTREAMS_TIMEOUT) as response:
        for line in response:
            yield line.decode("utf-8")


class _Drives:
    """The drives an edit may count in, by wiki, reloaded now and then (a drive edited or
    opened meanwhile)."""

    def __init__(self, *, reload_every: float = 60.0, clock: Callable[[], float] = time.monotonic):
        self.reload_every, self.clock, self.loaded_at = reload_every, clock, None
        self.by_wiki: dict[str, list[tuple[Drive, object]]] = {}

    def for_wiki(self, wiki_code: str) -> list[tuple[Drive, object]]:
        if self.loaded_at is None or self.clock() - self.loaded_at > self.reload_every:
            today = timezone.localdate()
            self.by_wiki = {}
            for drive in Drive.objects.filter(starts_on__lte=today, ends_on__gte=today):
                pattern = hashtag_pattern(hashtags_parse(drive.hashtags))
                for code in drive_wikis(drive):
                    self.by_wiki.setdefault(code, []).append((drive, pattern))
            self.loaded_at = self.clock()
        return self.by_wiki.get(wiki_code, [])


def event_store(change: dict, drives: _Drives) -> int:
    """Keep one ``recentchange`` event if it is an edit with an open drive's hashtags on one
    of its wikis; return in how many drives it counts."""
    if change.get("type") not in ("edit", "new") or change.get("bot"):
        return 0
    wiki_code, revision = change.get("wiki", ""), change.get("revision") or {}
    if "new" not in revision or "user" not in change:
        return 0
    comment = change.get("comment", "")
    matching = [
        drive for drive, pattern in drives.for_wiki(wiki_code) if summary_matches(pattern, comment)
    ]
    if not matching:
        return 0
    when = datetime.fromtimestamp(int(change["timestamp"]), tz=UTC)
    matching = [
        drive for drive in matching if drive.starts_on <= timezone.localdate(when) <= drive.ends_on
    ]
    if not matching:
        return 0
    user = change["user"]
    librarian = linked_leads(wiki_code).get(user) or (
        Librarian.objects.filter(wiki_username=user).select_related("library").first()
    )
    length = change.get("length") or {}
    with transaction.atomic():
        contribution, _created = Contribution.objects.get_or_create(
            wiki=wiki_code,
            revid=int(revision["new"]),
            defaults={
                "librarian": librarian,
                "library_id": librarian.library_id if librarian else None,
                "parentid": int(revision.get("old") or 0),
                "page": change.get("title", "")[:255],
                "ns": int(change.get("namespace", 0)),
                "username": user,
                "timestamp": when,
                "summary": comment,
                "size_change": int(length.get("new") or 0) - int(length.get("old") or 0),
                # The next pull reads the texts and counts the references.
                "texts_read": False,
            },
        )
        DriveContribution.objects.bulk_create(
            [DriveContribution(drive=drive, contribution=contribution) for drive in matching],
            ignore_conflicts=True,
        )
        signals_from_contributions([contribution.pk])
        if contribution.librarian_id is None:
            leads_note(wiki_code, {user})
    return len(matching)


def stream_consume(
    *,
    url: str | None = None,
    opener: Callable[[str, str], Iterator[str]] = _open,
    stop: Callable[[], bool] = lambda: False,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Read the stream until ``stop()`` says so, reconnecting after every failure with a
    doubling pause (1 s to a minute) and resuming from the last event stored."""
    url = url or settings.DRIVES_EVENTSTREAMS_URL
    position, _created = StreamPosition.objects.get_or_create(url=url)
    drives, pause = _Drives(), 1.0
    while not stop():
        try:
            for event in sse_events(opener(url, position.last_event_id)):
                pause = 1.0
                if event.event == "message":
                    try:
                        event_store(json.loads(event.data), drives)
                    except (ValueError, TypeError, KeyError) as error:
                        logger.warning("EventStreams: an event could not be read: %s", error)
                if event.id:
                    position.last_event_id = event.id
                    position.save(update_fields=["last_event_id", "updated_at"])
                if stop():
                    return
        except (OSError, ValueError) as error:
            logger.warning("EventStreams: %s; reconnecting in %.0f s", error, pause)
        if stop():
            return
        sleep(pause)
        pause = min(pause * 2, 60.0)
