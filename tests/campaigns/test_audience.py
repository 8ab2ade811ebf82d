"""Who a campaign reaches: filters, exclusions with their reason, languages, follow-ups."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from campaigns import services
from campaigns.audience import audience_build
from campaigns.models import Campaign, Delivery, Message
from campaigns.rendering import MessageError, Renderer, template_check
from tests.factories import LibrarianFactory, LibraryFactory, MailingListFactory, RegionFactory

pytestmark = pytest.mark.django_db


def _emails(audience):
    return [recipient.email for recipient in audience.recipients]


@pytest.fixture
def geneva(db):
    return RegionFactory(name="Genève", slug="geneve")


def test_filters_by_region_status_language_score_and_shortlist(vaud, geneva):
    morges = LibraryFactory(region=vaud, status="contacted", score=12.5)
    nyon = LibraryFactory(region=vaud, status="prospect", score=3.0)
    carouge = LibraryFactory(region=geneva, status="contacted", score=40.0)
    a = LibrarianFactory(email="a@morges.ch", library=morges, shortlist_rank=2)
    b = LibrarianFactory(email="b@nyon.ch", library=nyon, language="de", shortlist_rank=1)
    c = LibrarianFactory(email="c@carouge.ch", library=carouge)
    campaign = Campaign.objects.create(title="Vaud", filter_librarians=True)
    assert sorted(_emails(audience_build(campaign))) == sorted([a.email, b.email, c.email])
    campaign.regions.add(vaud)
    assert sorted(_emails(audience_build(campaign))) == [a.email, b.email]
    campaign.library_statuses = ["contacted"]
    assert _emails(audience_build(campaign)) == [a.email]
    campaign.library_statuses, campaign.languages = [], ["de"]
    assert _emails(audience_build(campaign)) == [b.email]
    campaign.languages, campaign.min_score = [], 10
    assert _emails(audience_build(campaign)) == [a.email]
    campaign.min_score, campaign.shortlist_only = None, True
    # Ranked by the library's score when there is one, then by hand.
    assert _emails(audience_build(campaign)) == [a.email, b.email]
    campaign.filter_librarians = False
    campaign.librarians.add(c)  # picked by hand, whatever the filters
    assert _emails(audience_build(campaign)) == [c.email]


def test_exclusions_say_why(vaud, librarians, invitation):
    anne, luc, jonas = librarians
    services.address_unsubscribe(email=anne.email)
    services.address_bounce(email=luc.email, detail="550 no such user")
    nobody = LibrarianFactory(email="", library=LibraryFactory(region=vaud), name="Sans Adresse")
    Delivery.objects.create(campaign=invitation, email=jonas.email.upper(), language="de")
    audience = audience_build(invitation)
    assert audience.recipients == []
    reasons = {(entry.name, entry.reason) for entry in audience.excluded}
    assert reasons == {
        ("Anne Dubois", "unsubscribed"),
        ("Luc Martin", "bounced"),
        ("Jonas Meier", "already_received"),
        (nobody.name, "no_email"),
    }
    assert dict(audience.excluded_counts)["already received this campaign"] == 1


def test_each_recipient_gets_their_language_or_the_default(vaud, librarians, invitation):
    italian = LibrarianFactory(language="it", library=LibraryFactory(region=vaud))
    languages = {r.email: r.language for r in audience_build(invitation).recipients}
    assert languages[librarians[2].email] == "de"  # the campaign has German
    assert languages[italian.email] == "fr"  # it has no Italian: the default


def test_deliveries_are_created_in_a_few_bulk_statements(vaud, invitation, monkeypatch):
    library = LibraryFactory(region=vaud)
    LibrarianFactory.create_batch(250, library=library)
    monkeypatch.setattr(services, "DELIVERIES_BATCH", 100)
    with CaptureQueriesContext(connection) as queries:
        created = services.deliveries_create(campaign=invitation)
    assert created == 253
    inserts = [q for q in queries.captured_queries if q["sql"].startswith("INSERT")]
    fields = [f for f in Delivery._meta.concrete_fields if not f.primary_key]
    batch = min(100, connection.ops.bulk_batch_size(fields, [None] * 253))  # SQLite: fewer
    assert len(inserts) == -(-253 // batch)  # 3 on PostgreSQL
    assert len(queries.captured_queries) - len(inserts) <= 8  # reads, whatever the size
    assert services.deliveries_create(campaign=invitation) == 0  # nobody twice


def test_the_follow_up_goes_to_the_shortlist_of_libraries_that_did_not_answer(
    vaud, librarians, invitation
):
    anne, luc, jonas = librarians
    vaud_list = MailingListFactory(region=vaud)
    invitation.mailing_lists.add(vaud_list)
    invitation.regions.clear()
    invitation.filter_librarians = False
    invitation.save()
    services.campaign_launch(campaign=invitation)  # to the list only
    invitation.librarians.add(anne)
    services.deliveries_create(campaign=invitation)
    services.invitation_answer(
        delivery=Delivery.objects.get(email=anne.email), answer="no", comment="Pas le temps."
    )
    for librarian, rank in ((anne, 1), (luc, 2)):
        librarian.shortlist_rank = rank
        librarian.save()
    colleague = LibrarianFactory(library=anne.library, shortlist_rank=3)  # Morges answered
    elsewhere = LibrarianFactory(shortlist_rank=4)  # another region

    follow_up = services.campaign_follow_up_create(campaign=invitation)
    assert follow_up.kind == Campaign.Kind.FOLLOW_UP and follow_up.status == "draft"
    assert follow_up.follow_up_of == invitation
    audience = audience_build(follow_up)
    assert _emails(audience) == [luc.email]
    excluded = {entry.email: entry.reason for entry in audience.excluded}
    assert excluded == {anne.email: "answered", colleague.email: "answered"}
    assert elsewhere.email not in excluded
    message = follow_up.messages.get(language="fr")
    assert message.subject.startswith("Re: Wikipédia")
    assert "> Would {{ library }} welcome a free Wikipedia introduction?" in message.body
    template_check(message.body)


def test_templates_with_unknown_variables_or_bad_syntax_are_refused():
    template_check("Hello {{ recipient }}, {% if meetup %}{{ meetup.date }}{% endif %}")
    with pytest.raises(MessageError, match="Unknown variable: password"):
        template_check("Hello {{ password }}")
    with pytest.raises(MessageError, match="not a valid template"):
        template_check("Hello {% load static %}")
    with pytest.raises(MessageError, match="not a valid template"):
        template_check("Hello {% if meetup %}{{ recipient }}")


def test_a_subject_stays_one_header_line_whatever_the_variables_hold():
    rendered = Renderer(subject="Hi {{ recipient }}", body="x").render(
        {"recipient": "Anne\r\nBcc: everyone@example.org"}
    )
    assert rendered.subject == "Hi Anne Bcc: everyone@example.org"
    assert "\n" not in rendered.subject


def test_messages_are_one_per_language(invitation):
    from django.db import IntegrityError, transaction

    with pytest.raises(IntegrityError), transaction.atomic():
        Message.objects.create(campaign=invitation, language="fr", subject="x", body="y")


def test_the_follow_up_quotes_the_offer_without_its_greeting_and_answer_links():
    body = services._follow_up_body(
        "Hello {{ recipient }},\n\nOur offer.\n\n{{ answer_links }}\n\nRegards", "en"
    )
    quoted = [line for line in body.splitlines() if line.startswith(">")]
    assert quoted == ["> Our offer.", ">", "> Regards"]
    assert body.count("{{ answer_links }}") == 1 and body.startswith("Hello {{ recipient }},")
