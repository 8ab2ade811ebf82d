"""The coordinator's campaign pages, through the test client: write, preview, send, follow."""

from datetime import timedelta

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse
from django.utils import timezone

from campaigns import services
from campaigns.models import Campaign, Delivery
from tests.factories import LibrarianFactory, LibraryFactory, MailingListFactory, UserFactory

pytestmark = pytest.mark.django_db

ANNE, LUC, JONAS = (
    "anne@bibliotheque-morges.ch",
    "luc@bibliotheque-nyon.ch",
    "jonas@bibliothek-avenches.ch",
)


def _messages(response) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


def _url(name: str, *args) -> str:
    return reverse(f"campaigns:{name}", args=args)


def _campaigns_with_deliveries(count: int, region) -> None:
    for n in range(count):
        campaign = Campaign.objects.create(title=f"Campaign {n}", status=Campaign.Status.SENT)
        library = LibraryFactory(region=region)
        Delivery.objects.create(
            campaign=campaign, email=f"a{n}@example.org", library=library, state="sent"
        )
        Delivery.objects.create(
            campaign=campaign,
            email=f"b{n}@example.org",
            library=library,
            state="failed",
            answer="yes",
        )


# List, create, edit ------------------------------------------------------------------------


def test_the_list_shows_each_campaign_with_its_counts(coordinator_client, vaud):
    _campaigns_with_deliveries(2, vaud)
    response = coordinator_client.get(_url("campaign-list"))
    assert response.status_code == 200
    rows = list(response.context["object_list"])
    assert {(c.sent_count, c.failed_count, c.answered_count) for c in rows} == {(1, 1, 1)}


def test_the_list_filters_by_status_and_ignores_an_unknown_one(coordinator_client, invitation):
    Campaign.objects.create(title="Sent already", status=Campaign.Status.SENT)
    response = coordinator_client.get(_url("campaign-list"), {"status": "sent"})
    assert [c.title for c in response.context["object_list"]] == ["Sent already"]
    response = coordinator_client.get(_url("campaign-list"), {"status": "bogus"})
    assert response.status_code == 200
    assert len(response.context["object_list"]) == 2


@pytest.mark.parametrize("rows", [2, 20])
def test_the_list_takes_the_same_queries_whatever_the_rows(
    coordinator_client, vaud, rows, django_assert_num_queries
):
    _campaigns_with_deliveries(rows, vaud)
    # session, user, permissions (user and group), count, page
    with django_assert_num_queries(6):
        response = coordinator_client.get(_url("campaign-list"))
    assert response.status_code == 200


def test_a_coordinator_creates_a_campaign_with_its_audience(coordinator_client, vaud):
    mailing_list = MailingListFactory()
    librarian = LibrarianFactory()
    response = coordinator_client.post(
        _url("campaign-create"),
        {
            "title": "Wikipermanences in Vaud",
            "kind": "invitation",
            "default_language": "fr",
            "mailing_lists": [mailing_list.pk],
            "filter_librarians": "on",
            "regions": [vaud.pk],
            "library_statuses": ["prospect", "contacted"],
            "languages": ["fr", "de"],
            "min_score": "0.5",
            "librarians": librarian.email.upper(),
        },
    )
    campaign = Campaign.objects.get(title="Wikipermanences in Vaud")
    assert response.status_code == 302
    assert response["Location"] == campaign.get_absolute_url()
    assert campaign.library_statuses == ["prospect", "contacted"]
    assert campaign.languages == ["fr", "de"]
    assert list(campaign.regions.all()) == [vaud]
    assert list(campaign.librarians.all()) == [librarian]
    assert list(campaign.mailing_lists.all()) == [mailing_list]
    assert campaign.created_by.username == "coordinator"


def test_librarians_are_picked_by_address_and_an_unknown_one_is_named(
    coordinator_client, vaud, make_ambassador, client
):
    known = LibrarianFactory(library=LibraryFactory(region=vaud))
    elsewhere = LibrarianFactory()
    data = {"title": "By hand", "kind": "invitation", "default_language": "fr"}
    response = coordinator_client.post(
        _url("campaign-create"),
        {**data, "librarians": f"{known.email}\nnobody@example.org"},
    )
    assert response.status_code == 200
    assert "nobody@example.org" in str(response.context["form"].errors["librarians"])
    assert not Campaign.objects.filter(title="By hand").exists()

    # An ambassador cannot add a librarian of another region, even knowing the address.
    client.force_login(make_ambassador(vaud))
    response = client.post(
        _url("campaign-create"),
        {**data, "regions": [vaud.pk], "librarians": f"{known.email}, {elsewhere.email}"},
    )
    assert elsewhere.email in str(response.context["form"].errors["librarians"])
    client.post(_url("campaign-create"), {**data, "regions": [vaud.pk], "librarians": known.email})
    campaign = Campaign.objects.get(title="By hand")
    assert list(campaign.librarians.all()) == [known]
    page = client.get(_url("campaign-update", campaign.pk)).content.decode()
    assert f"{known.email}</textarea>" in page


def test_a_title_on_two_lines_is_refused(coordinator_client):
    response = coordinator_client.post(
        _url("campaign-create"),
        {
            "title": "Wiki\r\nBcc: everyone@example.org",
            "kind": "invitation",
            "default_language": "fr",
        },
    )
    assert response.status_code == 200
    assert "This field must fit on one line." in response.context["form"].errors["title"]
    assert not Campaign.objects.exists()


def test_a_sent_campaign_cannot_be_edited(coordinator_client, invitation):
    invitation.status = Campaign.Status.SENT
    invitation.save()
    response = coordinator_client.post(
        _url("campaign-update", invitation.pk), {"title": "Changed", "kind": "invitation"}
    )
    assert response.status_code == 302
    invitation.refresh_from_db()
    assert invitation.title == "Wikipermanences in Vaud"
    assert "A campaign that was sent can no longer be changed." in _messages(response)


# Messages ----------------------------------------------------------------------------------


def test_a_message_is_written_in_a_language(coordinator_client, invitation):
    response = coordinator_client.get(_url("message-create", invitation.pk))
    assert "answer_links" in response.content.decode()  # the variables are listed
    response = coordinator_client.post(
        _url("message-create", invitation.pk),
        {"language": "it", "subject": "Wikipedia a {{ library }}", "body": "Ciao {{ recipient }}"},
    )
    assert response.status_code == 302
    assert invitation.messages.get(language="it").body == "Ciao {{ recipient }}"


def test_a_message_with_an_unknown_variable_is_refused_with_the_error_shown(
    coordinator_client, invitation
):
    response = coordinator_client.post(
        _url("message-update", invitation.pk, "fr"),
        {"subject": "Bonjour {{ librarian_name }}", "body": "Bonjour {{ firstname }} {% if %}"},
    )
    assert response.status_code == 200
    errors = response.context["form"].errors
    assert "Unknown variable: librarian_name" in errors["subject"][0]
    assert "not a valid template" in errors["body"][0]
    assert "Unknown variable: librarian_name" in response.content.decode()
    assert invitation.messages.get(language="fr").subject == "Wikipédia à {{ library }}"


def test_a_subject_on_two_lines_is_refused(coordinator_client, invitation):
    response = coordinator_client.post(
        _url("message-update", invitation.pk, "fr"), {"subject": "Bonjour\nvous", "body": "Hi"}
    )
    assert "This field must fit on one line." in response.context["form"].errors["subject"]


def test_a_language_already_written_cannot_be_written_twice(coordinator_client, invitation):
    response = coordinator_client.post(
        _url("message-create", invitation.pk), {"language": "fr", "subject": "A", "body": "B"}
    )
    assert response.status_code == 200
    assert "language" in response.context["form"].errors
    assert invitation.messages.filter(language="fr").count() == 1


# Preview and test send ---------------------------------------------------------------------


def test_the_preview_renders_the_message_for_a_real_librarian(
    coordinator_client, invitation, librarians
):
    luc = librarians[1]
    response = coordinator_client.get(
        _url("campaign-preview", invitation.pk),
        {"language": "fr", "recipient": f"librarian-{luc.pk}"},
    )
    assert response.status_code == 200
    preview = response.context["preview"]
    assert preview["subject"] == "Wikipédia à Bibliothèque de Nyon"
    assert "Hello Luc Martin" in preview["text"]
    assert "List-Unsubscribe-Post" in preview["headers"]
    page = response.content.decode()
    assert 'sandbox="" ' in page
    assert 'srcdoc="&lt;!doctype html&gt;' in page  # the whole email stays inside the attribute
    assert "Hello Luc Martin" in page


def test_the_preview_escapes_what_the_email_leaves_raw(coordinator_client, invitation, librarians):
    luc = librarians[1]
    luc.name = "<script>alert(1)</script>"
    luc.save()
    response = coordinator_client.get(
        _url("campaign-preview", invitation.pk),
        {"language": "fr", "recipient": f"librarian-{luc.pk}"},
    )
    page = response.content.decode()
    assert "<script>alert(1)</script>" not in page
    assert "Hello &lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_the_preview_lists_the_audience_and_refuses_someone_else(
    coordinator_client, invitation, librarians
):
    response = coordinator_client.get(_url("campaign-preview", invitation.pk))
    choices = dict(response.context["form"].fields["recipient"].choices)
    assert f"librarian-{librarians[0].pk}" in choices
    outsider = LibrarianFactory()
    response = coordinator_client.get(
        _url("campaign-preview", invitation.pk),
        {"language": "fr", "recipient": f"librarian-{outsider.pk}"},
    )
    assert response.status_code == 200
    assert response.context["preview"] is None
    assert "recipient" in response.context["form"].errors


def test_the_preview_of_a_launched_campaign_offers_its_recipients(
    coordinator_client, invitation, librarians
):
    services.deliveries_create(campaign=invitation)
    Campaign.objects.filter(pk=invitation.pk).update(status=Campaign.Status.SENT)
    response = coordinator_client.get(_url("campaign-preview", invitation.pk))
    choices = dict(response.context["form"].fields["recipient"].choices)
    assert set(choices) == {f"librarian-{librarian.pk}" for librarian in librarians}
    assert response.context["preview"]["subject"] == "Wikipédia à Bibliothèque de Morges"


def test_a_test_send_arrives_at_the_coordinators_address(
    coordinator_client, coordinator, invitation, librarians, smtp
):
    jonas = librarians[2]
    response = coordinator_client.post(
        _url("campaign-test-send", invitation.pk),
        {"language": "de", "recipient": f"librarian-{jonas.pk}"},
    )
    assert response.status_code == 302
    [message] = smtp.recorder.to(coordinator.email)
    assert message["Subject"] == "Wikipedia in Bibliothek Avenches"
    assert not smtp.recorder.to(jonas.email)
    assert f"Test sent to {coordinator.email}." in _messages(response)
    assert not Delivery.objects.exists()


def test_a_test_send_to_a_server_that_is_down_shows_the_error(
    coordinator_client, invitation, librarians, smtp
):
    smtp.stop()
    response = coordinator_client.post(
        _url("campaign-test-send", invitation.pk),
        {"language": "fr", "recipient": f"librarian-{librarians[0].pk}"},
        follow=True,
    )
    assert response.status_code == 200
    assert any(m.startswith("The test could not be sent") for m in _messages(response))


def test_a_test_send_without_an_address_says_so(client, invitation, librarians, coordinator):
    coordinator.email = ""
    coordinator.save()
    client.force_login(coordinator)
    response = client.post(
        _url("campaign-test-send", invitation.pk),
        {"language": "fr", "recipient": f"librarian-{librarians[0].pk}"},
    )
    assert response.status_code == 302
    assert any("no email address" in m for m in _messages(response))


# Audience ----------------------------------------------------------------------------------


def test_the_audience_screen_shows_who_is_left_out_and_why(
    coordinator_client, invitation, librarians
):
    services.address_unsubscribe(email=LUC)
    response = coordinator_client.get(_url("campaign-audience", invitation.pk))
    assert response.status_code == 200
    assert {r.email for r, _library in response.context["recipients"]} == {ANNE, JONAS}
    [(label, count, entries)] = response.context["excluded_groups"]
    assert (str(label), count, [e.email for e in entries]) == ("unsubscribed", 1, [LUC])
    page = response.content.decode()
    assert "Luc Martin" in page and "Unsubscribed" in page


def test_the_audience_screen_counts_the_rest_beyond_the_first_hundred(
    coordinator_client, invitation, vaud
):
    library = LibraryFactory(region=vaud)
    LibrarianFactory.create_batch(100, library=library)
    response = coordinator_client.get(_url("campaign-audience", invitation.pk))
    assert len(response.context["recipients"]) == 100
    assert response.context["more_recipients"] == 3


# Actions -----------------------------------------------------------------------------------


def test_launching_sends_to_the_audience(
    coordinator_client, invitation, smtp, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = coordinator_client.post(_url("campaign-launch", invitation.pk))
    assert response.status_code == 302
    assert "Sending started." in _messages(response)
    assert set(Delivery.objects.values_list("email", "state")) == {
        (ANNE, "sent"),
        (LUC, "sent"),
        (JONAS, "sent"),
    }
    assert smtp.recorder.count_by_address() == {ANNE: 1, LUC: 1, JONAS: 1}


def test_scheduling_keeps_the_time_and_sends_nothing_yet(coordinator_client, invitation):
    when = timezone.localtime() + timedelta(days=2)
    response = coordinator_client.post(
        _url("campaign-launch", invitation.pk), {"scheduled_at": when.strftime("%Y-%m-%dT%H:%M")}
    )
    assert response.status_code == 302
    invitation.refresh_from_db()
    assert invitation.status == Campaign.Status.SCHEDULED
    assert invitation.scheduled_at.replace(second=0, microsecond=0) == when.replace(
        second=0, microsecond=0
    )
    assert not Delivery.objects.exists()


def test_scheduling_in_the_past_is_refused(coordinator_client, invitation):
    response = coordinator_client.post(
        _url("campaign-launch", invitation.pk), {"scheduled_at": "2020-01-01T10:00"}
    )
    assert response.status_code == 302
    invitation.refresh_from_db()
    assert invitation.status == Campaign.Status.DRAFT and invitation.scheduled_at is None
    assert any("future" in m for m in _messages(response))


def test_a_launch_the_service_refuses_shows_why_and_keeps_nothing(coordinator_client, invitation):
    invitation.messages.filter(language="fr").delete()
    when = (timezone.localtime() + timedelta(days=2)).strftime("%Y-%m-%dT%H:%M")
    response = coordinator_client.post(
        _url("campaign-launch", invitation.pk), {"scheduled_at": when}
    )
    assert response.status_code == 302
    assert "Write the message in the default language first." in _messages(response)
    invitation.refresh_from_db()
    assert invitation.status == Campaign.Status.DRAFT and invitation.scheduled_at is None


def test_pausing_and_resuming(coordinator_client, invitation):
    Campaign.objects.filter(pk=invitation.pk).update(status=Campaign.Status.SENDING)
    coordinator_client.post(_url("campaign-pause", invitation.pk))
    invitation.refresh_from_db()
    assert invitation.status == Campaign.Status.PAUSED
    response = coordinator_client.post(_url("campaign-pause", invitation.pk))
    assert "Only a campaign that is sending can be paused." in _messages(response)
    coordinator_client.post(_url("campaign-resume", invitation.pk))
    invitation.refresh_from_db()
    assert invitation.status == Campaign.Status.SENDING


def test_cancelling_asks_first_then_cancels(coordinator_client, invitation):
    response = coordinator_client.get(_url("campaign-cancel", invitation.pk))
    assert response.status_code == 200
    assert "Yes, cancel the campaign" in response.content.decode()
    invitation.refresh_from_db()
    assert invitation.status == Campaign.Status.DRAFT
    response = coordinator_client.post(_url("campaign-cancel", invitation.pk))
    invitation.refresh_from_db()
    assert invitation.status == Campaign.Status.CANCELLED
    response = coordinator_client.post(_url("campaign-cancel", invitation.pk))
    assert "This campaign is already finished." in _messages(response)


def test_the_follow_up_is_created_as_a_draft(coordinator_client, invitation):
    Campaign.objects.filter(pk=invitation.pk).update(status=Campaign.Status.SENT)
    response = coordinator_client.post(_url("campaign-follow-up", invitation.pk))
    follow_up = Campaign.objects.get(follow_up_of=invitation)
    assert response["Location"] == follow_up.get_absolute_url()
    assert follow_up.status == Campaign.Status.DRAFT
    assert follow_up.kind == Campaign.Kind.FOLLOW_UP
    assert follow_up.messages.count() == 2


def test_a_follow_up_of_a_draft_is_refused(coordinator_client, invitation):
    response = coordinator_client.post(_url("campaign-follow-up", invitation.pk))
    assert response["Location"] == invitation.get_absolute_url()
    assert "A follow-up is made from an invitation that was sent." in _messages(response)
    assert Campaign.objects.count() == 1


def test_actions_need_a_post(coordinator_client, invitation):
    for name in ("campaign-launch", "campaign-pause", "campaign-resume", "campaign-follow-up"):
        assert coordinator_client.get(_url(name, invitation.pk)).status_code == 405


# Detail and statistics ---------------------------------------------------------------------


def _sent_deliveries(campaign, librarians):
    anne, luc, jonas = librarians
    Delivery.objects.create(
        campaign=campaign,
        email=ANNE,
        librarian=anne,
        library=anne.library,
        state="sent",
        answer="yes",
    )
    Delivery.objects.create(
        campaign=campaign,
        email=LUC,
        librarian=luc,
        library=luc.library,
        state="failed",
        error="550 No such user",
    )
    Delivery.objects.create(
        campaign=campaign, email=JONAS, librarian=jonas, library=jonas.library, state="queued"
    )


def test_the_campaign_page_shows_messages_audience_and_actions(coordinator_client, invitation):
    response = coordinator_client.get(invitation.get_absolute_url())
    assert response.status_code == 200
    assert len(response.context["audience"].recipients) == 3
    assert response.context["actions"]["launch"] and not response.context["actions"]["pause"]
    page = response.content.decode()
    assert "Wikipédia à {{ library }}" in page
    assert "Send now" in page
    assert 'hx-trigger="every 3s"' not in page  # a draft has no live figures


def test_the_stats_count_states_answers_regions_and_libraries(
    coordinator_client, invitation, librarians
):
    _sent_deliveries(invitation, librarians)
    Campaign.objects.filter(pk=invitation.pk).update(status=Campaign.Status.SENDING)
    response = coordinator_client.get(_url("campaign-stats", invitation.pk))
    assert response.status_code == 200
    assert [t.name for t in response.templates] == ["campaigns/partials/_campaign_stats.html"]
    stats = response.context["stats"]
    assert {value: count for value, _label, count in stats.states} == {
        "queued": 1,
        "sending": 0,
        "sent": 1,
        "failed": 1,
        "suppressed": 0,
    }
    assert {value: count for value, _label, count in stats.answers} == {
        "yes": 1,
        "maybe": 0,
        "no": 0,
    }
    [region] = stats.regions
    assert (region["region_name"], region["sent"], region["failed"], region["yes"]) == (
        "Vaud",
        1,
        1,
        1,
    )
    morges = next(
        row for row in stats.libraries if row["library__name"] == "Bibliothèque de Morges"
    )
    assert (morges["sent"], morges["yes"]) == (1, 1)
    page = response.content.decode()
    assert 'hx-trigger="every 3s"' in page  # sending: refreshed live
    assert _url("campaign-stats", invitation.pk) in page


def test_the_stats_stop_refreshing_once_the_campaign_is_sent(coordinator_client, invitation):
    Campaign.objects.filter(pk=invitation.pk).update(status=Campaign.Status.SENT)
    response = coordinator_client.get(_url("campaign-stats", invitation.pk))
    assert "hx-trigger" not in response.content.decode()


@pytest.mark.parametrize("rows", [2, 20])
def test_the_stats_take_the_same_queries_whatever_the_rows(
    coordinator_client, vaud, rows, django_assert_num_queries
):
    campaign = Campaign.objects.create(title="Big", status=Campaign.Status.SENDING)
    for n in range(rows):
        library = LibraryFactory(region=vaud)
        Delivery.objects.create(campaign=campaign, email=f"x{n}@example.org", library=library)
    # session, user, permissions (user and group), the campaign, then four aggregates
    with django_assert_num_queries(9):
        response = coordinator_client.get(_url("campaign-stats", campaign.pk))
    assert len(response.context["stats"].libraries) == rows


# Deliveries and moderation -----------------------------------------------------------------


def test_the_deliveries_list_filters_by_state_and_shows_errors(
    coordinator_client, invitation, librarians
):
    _sent_deliveries(invitation, librarians)
    response = coordinator_client.get(_url("delivery-list", invitation.pk), {"state": "failed"})
    assert [d.email for d in response.context["object_list"]] == [LUC]
    assert "550 No such user" in response.content.decode()


def test_the_moderation_of_a_list_post_is_recorded(coordinator_client, invitation):
    mailing_list = MailingListFactory()
    delivery = Delivery.objects.create(
        campaign=invitation, email=mailing_list.posting_address, mailing_list=mailing_list
    )
    response = coordinator_client.post(
        _url("delivery-moderation", delivery.pk),
        {"moderation": "approved", "querystring": "state=sent&page=2"},
    )
    assert response["Location"] == _url("delivery-list", invitation.pk) + "?state=sent&page=2"
    delivery.refresh_from_db()
    assert delivery.moderation == "approved"
    response = coordinator_client.post(
        _url("delivery-moderation", delivery.pk), {"moderation": "bogus"}
    )
    delivery.refresh_from_db()
    assert delivery.moderation == "approved"
    assert response.status_code == 302


def test_a_post_to_a_person_has_no_moderation(coordinator_client, invitation, librarians):
    delivery = Delivery.objects.create(campaign=invitation, email=ANNE, librarian=librarians[0])
    response = coordinator_client.post(
        _url("delivery-moderation", delivery.pk), {"moderation": "held"}
    )
    assert "Only a post to a mailing list is moderated." in _messages(response)
    delivery.refresh_from_db()
    assert delivery.moderation == ""


# Who may see -------------------------------------------------------------------------------


def test_anonymous_visitors_are_sent_to_the_login_page(client, invitation):
    response = client.get(invitation.get_absolute_url())
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_users_without_the_permission_are_refused(client, invitation):
    client.force_login(UserFactory(username="someone"))
    assert client.get(invitation.get_absolute_url()).status_code == 403
    assert client.post(_url("campaign-launch", invitation.pk)).status_code == 403
    invitation.refresh_from_db()
    assert invitation.status == Campaign.Status.DRAFT


def test_the_navigation_links_to_the_campaigns(coordinator_client):
    response = coordinator_client.get(_url("campaign-list"))
    assert f'href="{_url("campaign-list")}"' in response.content.decode()
