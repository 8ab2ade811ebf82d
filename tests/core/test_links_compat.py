"""Links in emails already sent keep working: tokens minted by the code before the house move
(tests/fixtures/signed_links/before_the_move.json) still open their pages.

The signing salts and payloads are a contract with every inbox: a change to them breaks each
answer, unsubscribe and RSVP link already delivered. The tokens were minted at ``minted_at``
with the development key; the signer's clock is set back to that moment, so the test does not
depend on when it runs.
"""

import json
from datetime import timedelta
from pathlib import Path

import pytest
from django.core import signing
from django.utils import timezone

from campaigns.models import Campaign, Delivery, Message, Suppression
from meetings.models import RSVP, Meeting
from tests.factories import LibrarianFactory, LibraryFactory

pytestmark = pytest.mark.django_db

FIXTURE = json.loads(
    (Path(__file__).parent.parent / "fixtures/signed_links/before_the_move.json").read_text()
)
TOKENS = FIXTURE["tokens"]


class _Clock:
    """``time.time`` as the signer reads it, one hour after the tokens were minted."""

    @staticmethod
    def time() -> float:
        return FIXTURE["minted_at"] + 3600


@pytest.fixture
def minted(settings, monkeypatch):
    settings.SECRET_KEY = FIXTURE["secret_key"]
    monkeypatch.setattr(signing, "time", _Clock)
    library = LibraryFactory(name="Bibliothèque de Morges")
    campaign = Campaign.objects.create(title="Wikipermanences à Morges")
    Message.objects.create(campaign=campaign, language="fr", subject="Bonjour", body="Bonjour")
    Delivery.objects.create(
        pk=FIXTURE["delivery"],
        campaign=campaign,
        email="anne.muller@example.org",
        language="fr",
        library=library,
    )
    start = timezone.now() + timedelta(days=10)
    meeting = Meeting.objects.create(
        pk=FIXTURE["meeting"], host_library=library, start=start, end=start + timedelta(hours=2)
    )
    RSVP.objects.create(
        pk=FIXTURE["rsvp"]["pk"],
        meeting=meeting,
        name="Anne Muller",
        email=FIXTURE["rsvp"]["email"],
        answer=RSVP.Answer.YES,
    )
    LibrarianFactory(pk=FIXTURE["librarian"], library=library, name="Jean Rochat")
    return campaign


@pytest.mark.parametrize(
    ("path", "purpose", "expected"),
    [
        ("/email/answer/{}/?answer=yes", "campaign-answer", "Wikipermanences à Morges"),
        ("/email/unsubscribe/{}/", "campaign-unsubscribe", "Stop receiving our emails"),
        ("/email/preferences/{}/", "campaign-preferences", "anne.muller@example.org"),
        ("/meetups/rsvp/{}/", "rsvp", "Anne Muller"),
        ("/meetups/answer/{}/", "meeting-answer", "Jean Rochat"),
    ],
)
def test_a_link_minted_before_the_move_opens_its_page(client, minted, path, purpose, expected):
    response = client.get(path.format(TOKENS[purpose]))
    assert response.status_code == 200, response.content.decode()[:500]
    assert expected in response.content.decode()


def test_an_answer_from_a_link_minted_before_the_move_is_recorded(client, minted):
    client.post(f"/email/answer/{TOKENS['campaign-answer']}/", {"answer": "yes"})
    assert Delivery.objects.get(pk=FIXTURE["delivery"]).answer == "yes"


def test_a_one_click_unsubscribe_minted_before_the_move_unsubscribes(client, minted):
    response = client.post(
        f"/email/unsubscribe/{TOKENS['campaign-unsubscribe']}/",
        {"List-Unsubscribe": "One-Click"},
    )
    assert response.status_code == 200
    assert Suppression.objects.filter(email="anne.muller@example.org").exists()


def test_a_minted_link_still_names_one_purpose_only(client, minted):
    # The RSVP token does not answer an invitation, nor the answer token manage an RSVP.
    assert client.get(f"/email/answer/{TOKENS['rsvp']}/").status_code == 400
    assert client.get(f"/meetups/rsvp/{TOKENS['campaign-answer']}/").status_code == 400
