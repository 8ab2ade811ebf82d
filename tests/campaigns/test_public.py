"""Links in campaign emails: answers, one-click unsubscribe, preferences; taken from the
emails the SMTP server on loopback received."""

import re
from urllib.parse import urlsplit

import pytest
from django.test import Client

from campaigns import services
from campaigns.models import Delivery, Suppression
from libraries.models import ActivitySignal, Library

pytestmark = pytest.mark.django_db(transaction=True)

ANNE = "anne@bibliotheque-morges.ch"


def _links(smtp, address: str) -> dict[str, str]:
    """The answer / unsubscribe / preferences links of the text part, as local paths."""
    message = smtp.recorder.to(address)[-1]
    text = message.get_body(("plain",)).get_content()
    links = {}
    for url in re.findall(r"https://outreach\.example\.org\S+", text):
        parts = urlsplit(url)
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        answer = parts.query.removeprefix("answer=")
        key = answer if "answer=" in parts.query else path.split("/")[2]
        links[key] = path
    header = message["List-Unsubscribe"]
    links["one-click"] = urlsplit(re.search(r"<(https://[^>]+)>", header).group(1)).path
    return links


@pytest.fixture
def sent(invitation, smtp):
    services.campaign_launch(campaign=invitation)
    return _links(smtp, ANNE)


def test_opening_an_answer_link_changes_nothing_and_preselects_the_answer(sent, client):
    page = client.get(sent["yes"])
    assert page.status_code == 200
    assert re.search(r'name="answer" value="yes"[^>]*checked', page.content.decode())
    assert not re.search(r'value="no"[^>]*checked', page.content.decode())
    assert Delivery.objects.get(email=ANNE).answer == ""
    assert not ActivitySignal.objects.exists()
    assert Library.objects.get(name="Bibliothèque de Morges").status == "prospect"


def test_a_yes_moves_the_library_to_interested_and_records_a_signal(sent, client):
    response = client.post(sent["yes"], {"answer": "yes"}, follow=True)
    assert "Thank you: your answer is recorded." in response.content.decode()
    library = Library.objects.get(name="Bibliothèque de Morges")
    assert library.status == Library.Status.INTERESTED
    change = library.status_changes.latest("changed_at")
    assert change.source.startswith("campaign ") and "Wikipermanences in Vaud" in change.reason
    [signal] = ActivitySignal.objects.all()
    assert (signal.kind, signal.library, signal.librarian.email) == (
        "invitation_yes",
        library,
        ANNE,
    )


def test_answering_again_changes_the_answer_and_keeps_one_signal(sent, client):
    client.post(sent["no"], {"answer": "no", "comment": "Pas cette année, merci."})
    delivery = Delivery.objects.get(email=ANNE)
    assert (delivery.answer, delivery.answer_comment) == ("no", "Pas cette année, merci.")
    assert Library.objects.get(name="Bibliothèque de Morges").status == "prospect"
    client.post(sent["maybe"], {"answer": "maybe"})
    assert list(ActivitySignal.objects.values_list("kind", flat=True)) == ["invitation_maybe"]
    assert Delivery.objects.get(email=ANNE).answer == "maybe"


def test_a_partner_library_is_not_moved_back_by_a_yes(sent, client):
    Library.objects.filter(name="Bibliothèque de Morges").update(status="partner")
    client.post(sent["yes"], {"answer": "yes"})
    assert Library.objects.get(name="Bibliothèque de Morges").status == "partner"


@pytest.mark.parametrize(
    "mangle",
    [
        lambda path: path.replace("/answer/", "/answer/x"),  # altered
        lambda path: path.split("?")[0][:-12] + "/",  # cut
        lambda path: "/email/answer/not-a-token/",  # malformed
    ],
)
def test_a_tampered_answer_link_gets_a_plain_400_page(sent, client, mangle):
    for method in (client.get, client.post):
        response = method(mangle(sent["yes"]), {"answer": "yes"})
        assert response.status_code == 400
        assert "This link does not work" in response.content.decode()
    assert not Delivery.objects.exclude(answer="").exists()


def test_an_answer_link_cannot_unsubscribe_and_the_reverse(sent, client):
    token = sent["yes"].split("/")[3]
    assert client.post(f"/email/unsubscribe/{token}/").status_code == 400
    token = sent["one-click"].split("/")[3]
    assert client.post(f"/email/answer/{token}/", {"answer": "yes"}).status_code == 400
    assert not Suppression.objects.exists()


def test_one_click_unsubscribe_is_a_post_from_the_mail_program(sent, smtp, invitation):
    mail_program = Client(enforce_csrf_checks=True)  # it has no CSRF token
    assert mail_program.get(sent["one-click"]).status_code == 200  # a prefetch: nothing
    assert not Suppression.objects.exists()
    response = mail_program.post(sent["one-click"], {"List-Unsubscribe": "One-Click"})
    assert response.status_code == 200
    assert Suppression.objects.get().email == ANNE
    librarian = Delivery.objects.get(email=ANNE).librarian
    librarian.refresh_from_db()
    assert librarian.unsubscribed_at is not None


def test_the_unsubscribe_page_asks_then_confirms(sent, client):
    page = client.get(sent["unsubscribe"]).content.decode()
    assert "Stop receiving our emails" in page
    done = client.post(sent["unsubscribe"]).content.decode()
    assert "You will not receive our emails any more." in done
    assert Suppression.objects.filter(email=ANNE, reason="unsubscribed").exists()


def test_preferences_change_the_language_and_subscribe_again_with_consent(sent, client):
    client.post(sent["unsubscribe"])
    page = client.get(sent["preferences"]).content.decode()
    assert ANNE in page
    client.post(sent["preferences"], {"language": "de", "subscribed": "on"})
    librarian = Delivery.objects.get(email=ANNE).librarian
    librarian.refresh_from_db()
    assert librarian.language == "de" and librarian.unsubscribed_at is None
    assert librarian.consent_source and librarian.consent_at
    assert not Suppression.objects.exists()
    client.post(sent["preferences"], {"language": "de"})  # box unticked: unsubscribes
    assert Suppression.objects.filter(email=ANNE).exists()
