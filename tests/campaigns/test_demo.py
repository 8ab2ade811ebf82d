"""The demo's campaigns: the Vaud invitation with its answers, the shortlist, the follow-up."""

from io import StringIO

import pytest
from django.core.management import call_command

from campaigns.audience import audience_build
from campaigns.models import Campaign, Delivery
from libraries.models import Librarian

pytestmark = pytest.mark.django_db


@pytest.fixture
def demo(db):
    call_command("load_demo", stdout=StringIO())


def test_the_vaud_invitation_went_to_its_list_and_librarians_and_got_answers(demo):
    invitation = Campaign.objects.get(kind=Campaign.Kind.INVITATION)
    assert invitation.status == Campaign.Status.SENT
    deliveries = invitation.deliveries.all()
    assert set(deliveries.values_list("state", flat=True)) == {Delivery.State.SENT}
    assert deliveries.filter(mailing_list__name="Biblio-Vaud").count() == 1
    assert set(
        deliveries.exclude(library=None).values_list("library__region__slug", flat=True)
    ) == {"vaud"}
    answers = set(deliveries.exclude(answer="").values_list("answer", flat=True))
    assert answers == {"yes", "maybe", "no"}
    # A library that said yes is at least interested.
    for delivery in deliveries.filter(answer="yes").select_related("library"):
        assert delivery.library.status in ("interested", "partner")


def test_the_follow_up_is_ready_for_the_shortlisted_librarians_of_silent_libraries(demo):
    follow_up = Campaign.objects.get(kind=Campaign.Kind.FOLLOW_UP)
    assert follow_up.status == Campaign.Status.DRAFT
    assert Librarian.objects.exclude(shortlist_rank=None).count() == 12
    audience = audience_build(follow_up)
    assert audience.recipients
    answered = set(
        follow_up.follow_up_of.deliveries.exclude(answer="").values_list("library_id", flat=True)
    )
    assert not {recipient.library_id for recipient in audience.recipients} & answered
    assert "> " in follow_up.messages.get(language="fr").body
