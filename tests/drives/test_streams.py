"""Live capture from an EventStreams-shaped Server-Sent Events server on loopback: the
drives' tagged edits are kept as they come, the connection drops and the capture resumes
from the last event it read, nothing is stored twice."""

from datetime import timedelta

import pytest
from django.utils import timezone

from drives.models import Contribution, Drive, Lead, StreamPosition
from drives.streams import sse_events, stream_consume
from tests.factories import LibrarianFactory
from tests.sse_server import SSEServer, event_id

pytestmark = pytest.mark.django_db


def _change(revid, *, user="Demo Librarian", wiki="frwiki", comment="Source #1lib1ref", **extra):
    return {
        "$schema": "/mediawiki/recentchange/1.0.0",
        "meta": {"domain": "fr.wikipedia.org", "stream": "mediawiki.recentchange"},
        "type": "edit",
        "namespace": 0,
        "title": f"Page {revid}",
        "comment": comment,
        "timestamp": int(timezone.now().timestamp()),
        "user": user,
        "bot": False,
        "minor": False,
        "length": {"old": 100, "new": 180},
        "revision": {"old": revid - 1, "new": revid},
        "server_name": "fr.wikipedia.org",
        "wiki": wiki,
        **extra,
    }


def test_server_sent_events_are_read_as_the_standard_says():
    lines = [": comment\n", "event: message\n", "id: 7\n", 'data: {"a":\n', "data: 1}\n", "\n"]
    [event] = list(sse_events(iter(lines)))
    assert (event.event, event.id, event.data) == ("message", "7", '{"a":\n1}')


def test_the_live_capture_keeps_the_drives_edits_and_resumes_after_a_drop(settings):
    today = timezone.localdate()
    drive = Drive.objects.create(
        title="#1lib1ref",
        hashtags="#1lib1ref",
        wikis="frwiki",
        starts_on=today - timedelta(days=5),
        ends_on=today + timedelta(days=5),
    )
    librarian = LibrarianFactory(wiki_username="Demo Librarian")
    events = [
        _change(101),  # a librarian's tagged edit: kept
        _change(102, wiki="dewiki"),  # not one of the drive's wikis
        _change(103, bot=True),  # a bot
        _change(104, user="Nouvelle Participante"),  # someone the directory does not know
        _change(105, comment="typo"),  # no hashtag
        {"type": "log", "wiki": "frwiki", "comment": "#1lib1ref", "user": "X", "timestamp": 0},
    ]
    with SSEServer(events) as server:
        server.drop_after = 3  # the network drops after the third event
        settings.DRIVES_EVENTSTREAMS_URL = server.url
        pauses = []
        last = event_id(1005)
        stream_consume(
            stop=lambda: StreamPosition.objects.get().last_event_id == last,
            sleep=pauses.append,
        )
    # Two connections; the second from the last event read.
    assert server.last_event_ids == ["", event_id(1002)]
    assert pauses == [1.0]
    assert set(Contribution.objects.values_list("revid", flat=True)) == {101, 104}
    kept = Contribution.objects.get(revid=101)
    assert (kept.librarian, kept.library, kept.texts_read) == (librarian, librarian.library, False)
    assert set(
        Contribution.objects.in_drive(drive, counted=True).values_list("revid", flat=True)
    ) == {
        101,
        104,
    }
    assert list(Lead.objects.values_list("username", flat=True)) == ["Nouvelle Participante"]


def test_the_capture_resumes_from_the_position_it_saved(settings):
    today = timezone.localdate()
    Drive.objects.create(
        title="#1lib1ref", hashtags="#1lib1ref", wikis="frwiki", starts_on=today, ends_on=today
    )
    with SSEServer([_change(201), _change(202)]) as server:
        StreamPosition.objects.create(url=server.url, last_event_id=event_id(1000))
        last = event_id(1001)
        stream_consume(
            url=server.url,
            stop=lambda: StreamPosition.objects.get().last_event_id == last,
            sleep=lambda seconds: None,
        )
    assert server.last_event_ids[0] == event_id(1000)
    assert list(Contribution.objects.values_list("revid", flat=True)) == [202]
