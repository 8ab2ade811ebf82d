"""The issue's "done when", through the pages: a coordinator writes an invitation, sends it
to the Vaud mailing list, follows up with the shortlisted librarians of the libraries that
stayed silent, and sees the library that said yes become interested."""

import re
from urllib.parse import urlsplit

import pytest
from django.test import Client
from django.urls import reverse

from campaigns.models import Campaign
from libraries.models import Library
from tests.factories import LibrarianFactory, LibraryFactory, MailingListFactory

pytestmark = pytest.mark.django_db(transaction=True)

BODY = """Bonjour {{ recipient }},

Nous offrons aux bibliothèques des Wikipermanences gratuites.

{{ answer_links }}
"""


def test_invitation_to_the_list_follow_up_to_the_shortlist_and_a_yes(
    coordinator_client, vaud, smtp
):
    silent = LibraryFactory(name="Bibliothèque de Morges", region=vaud, status="contacted")
    answered = LibraryFactory(name="Bibliothèque de Nyon", region=vaud, status="contacted")
    anne = LibrarianFactory(library=silent, email="anne@morges.example.org", shortlist_rank=1)
    luc = LibrarianFactory(library=answered, email="luc@nyon.example.org", shortlist_rank=2)
    LibrarianFactory(library=silent, email="not-shortlisted@morges.example.org")
    vaud_list = MailingListFactory(
        name="Biblio-Vaud",
        posting_address="biblio-vaud@listes.example.org",
        subscribed_as="chapitre@example.org",
        region=vaud,
    )

    # 1. The invitation, to the list.
    coordinator_client.post(
        reverse("campaigns:campaign-create"),
        {
            "title": "Wikipermanences vaudoises",
            "kind": "invitation",
            "default_language": "fr",
            "mailing_lists": [vaud_list.pk],
        },
    )
    invitation = Campaign.objects.get(title="Wikipermanences vaudoises")
    coordinator_client.post(
        reverse("campaigns:message-create", args=[invitation.pk]),
        {"language": "fr", "subject": "Une Wikipermanence chez vous ?", "body": BODY},
    )
    coordinator_client.post(reverse("campaigns:campaign-launch", args=[invitation.pk]))
    [post] = smtp.recorder.to("biblio-vaud@listes.example.org")
    assert post["From"].endswith("<chapitre@example.org>")
    # Nyon answered the list (by email); the coordinator gives its librarian the answer by
    # hand: a direct delivery of the invitation, answered "maybe".
    invitation.librarians.add(luc)
    from campaigns import services

    services.deliveries_create(campaign=invitation)
    services.invitation_answer(delivery=invitation.deliveries.get(email=luc.email), answer="maybe")

    # 2. The follow-up to the shortlisted librarians of the libraries that stayed silent.
    response = coordinator_client.post(
        reverse("campaigns:campaign-follow-up", args=[invitation.pk])
    )
    follow_up = Campaign.objects.get(follow_up_of=invitation)
    assert response["Location"] == follow_up.get_absolute_url()
    audience = coordinator_client.get(reverse("campaigns:campaign-audience", args=[follow_up.pk]))
    assert anne.name in audience.content.decode()
    coordinator_client.post(reverse("campaigns:campaign-launch", args=[follow_up.pk]))
    assert set(smtp.recorder.count_by_address()) == {
        "biblio-vaud@listes.example.org",
        anne.email,
    }
    email = smtp.recorder.to(anne.email)[0]
    text = email.get_body(("plain",)).get_content()
    assert "> Nous offrons aux bibliothèques des Wikipermanences gratuites." in text

    # 3. Anne answers yes from the link in the email she received.
    yes = re.search(r"https://outreach\.example\.org(/email/answer/\S+answer=yes)", text)
    librarian = Client()
    assert librarian.get(yes.group(1)).status_code == 200
    assert Library.objects.get(pk=silent.pk).status == "contacted"  # opening changes nothing
    path = urlsplit(yes.group(1)).path
    librarian.post(path, {"answer": "yes", "comment": "Avec plaisir !"})

    # 4. The coordinator sees the answer arrive and the library become interested.
    assert Library.objects.get(pk=silent.pk).status == Library.Status.INTERESTED
    stats = coordinator_client.get(reverse("campaigns:campaign-stats", args=[follow_up.pk]))
    answers = {value: count for value, _label, count in stats.context["stats"].answers}
    assert answers == {"yes": 1, "maybe": 0, "no": 0}
    library_page = coordinator_client.get(silent.get_absolute_url()).content.decode()
    assert "Interested" in library_page
