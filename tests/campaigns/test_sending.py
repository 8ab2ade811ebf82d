"""Sending over a real SMTP server on loopback: the message, exactly once, failures."""

from datetime import timedelta

import pytest
from django.utils import timezone

from campaigns import sending, services
from campaigns.models import Campaign, Delivery, Suppression
from campaigns.sending import batch_send
from campaigns.tasks import campaign_send_task
from tests.clock import FakeClock
from tests.factories import LibrarianFactory, MailingListFactory

pytestmark = pytest.mark.django_db(transaction=True)

ANNE, LUC, JONAS = (
    "anne@bibliotheque-morges.ch",
    "luc@bibliotheque-nyon.ch",
    "jonas@bibliothek-avenches.ch",
)


def _time_passes():
    """Every back-off runs out (as if the next attempt's time had come)."""
    Delivery.objects.filter(state=Delivery.State.QUEUED).update(
        next_attempt_at=timezone.now() - timedelta(seconds=1)
    )


def test_each_librarian_gets_one_well_formed_message_in_their_language(invitation, smtp):
    services.campaign_launch(campaign=invitation)

    invitation.refresh_from_db()
    assert invitation.status == Campaign.Status.SENT and invitation.finished_at
    assert smtp.recorder.count_by_address() == {ANNE: 1, LUC: 1, JONAS: 1}
    message = smtp.recorder.to(JONAS)[0]
    assert message["Subject"] == "Wikipedia in Bibliothek Avenches"  # the German message
    assert smtp.recorder.to(ANNE)[0]["Subject"] == "Wikipédia à Bibliothèque de Morges"
    assert message.get_content_type() == "multipart/alternative"
    text, html = (part.get_content() for part in message.iter_parts())
    assert "Hello Jonas Meier," in text and "Would Bibliothek Avenches welcome" in text
    assert '<a href="https://example.org/offer"' in html and "<p>Hello Jonas Meier,</p>" in html
    assert message["From"] == "Wikimedia CH <outreach@example.org>"
    delivery = Delivery.objects.get(email=JONAS)
    assert message["Message-ID"] == delivery.message_id
    assert delivery.message_id.endswith("@outreach.example.org>")
    assert delivery.state == Delivery.State.SENT and delivery.attempts == 1 and delivery.sent_at
    # RFC 2369 and RFC 8058: a mailto and an https one-click URL, and the one-click POST.
    unsubscribe = message["List-Unsubscribe"].strip()
    assert unsubscribe.startswith("<mailto:outreach@example.org?subject=unsubscribe%20")
    assert ", <https://outreach.example.org/email/unsubscribe/" in unsubscribe
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    # The answer links are in both parts.
    assert text.count("https://outreach.example.org/email/answer/") == 3
    assert html.count('href="https://outreach.example.org/email/answer/') == 3


def test_sending_again_sends_nothing_twice(invitation, smtp):
    services.campaign_launch(campaign=invitation)
    campaign_send_task.delay(invitation.pk)
    batch_send(campaign_id=invitation.pk)
    assert services.deliveries_create(campaign=invitation) == 0  # all already received
    assert Delivery.objects.count() == 3
    assert sum(smtp.recorder.count_by_address().values()) == 3


def test_an_address_listed_twice_gets_one_message(invitation, smtp, librarians):
    mailing_list = MailingListFactory(posting_address="ANNE@bibliotheque-morges.ch")
    invitation.mailing_lists.add(mailing_list)
    invitation.librarians.add(librarians[0])
    services.campaign_launch(campaign=invitation)
    assert smtp.recorder.count_by_address() == {ANNE: 1, LUC: 1, JONAS: 1}


def test_a_mailing_list_gets_one_post_from_the_address_subscribed_to_it(invitation, smtp):
    invitation.filter_librarians = False
    invitation.save()
    vaud_list = MailingListFactory(
        name="Bibliothécaires vaudois",
        posting_address="biblio-vd@lists.example.org",
        subscribed_as="chapter-lists@example.org",
    )
    invitation.mailing_lists.add(vaud_list)
    services.campaign_launch(campaign=invitation)
    [post] = smtp.recorder.to("biblio-vd@lists.example.org")
    assert post["From"] == "Outreach <chapter-lists@example.org>"
    text = post.get_body(("plain",)).get_content()
    assert "Hello Bibliothécaires vaudois," in text
    # A list post has no personal answer or unsubscribe links: the list does that.
    assert "/email/answer/" not in text and post["List-Unsubscribe"] is None
    assert Delivery.objects.get().mailing_list == vaud_list


def test_a_permanent_refusal_fails_the_delivery_and_bounces_the_address(invitation, smtp):
    smtp.recorder.refuse[LUC] = "550 5.1.1 No such user here"
    services.campaign_launch(campaign=invitation)

    luc = Delivery.objects.get(email=LUC)
    assert luc.state == Delivery.State.FAILED and luc.error.startswith("550 5.1.1 No such user")
    assert Suppression.objects.get(email=LUC).reason == Suppression.Reason.BOUNCED
    assert smtp.recorder.count_by_address() == {ANNE: 1, JONAS: 1}
    invitation.refresh_from_db()
    assert invitation.status == Campaign.Status.SENT
    # A later campaign leaves the bounced address out, and says why.
    later = Campaign.objects.create(title="Later", filter_librarians=True)
    excluded = services.audience_build(later).excluded
    assert [(e.email, e.reason) for e in excluded] == [(LUC, "bounced")]


def test_a_transient_refusal_is_retried_with_growing_back_off(invitation, smtp, settings):
    smtp.recorder.refuse[LUC] = "451 4.3.0 Mailbox busy, try later"
    settings.CAMPAIGNS_MAX_ATTEMPTS = 3
    services.campaign_launch(campaign=invitation)

    luc = Delivery.objects.get(email=LUC)
    assert luc.state == Delivery.State.QUEUED and luc.attempts == 1
    assert luc.error.startswith("451 4.3.0")
    # The back-off the worker decided, counted from the moment it recorded the refusal.
    assert luc.next_attempt_at - luc.updated_at == timedelta(seconds=60)
    invitation.refresh_from_db()
    assert invitation.status == Campaign.Status.SENDING  # waits for the retry

    _time_passes()
    campaign_send_task.delay(invitation.pk)
    luc.refresh_from_db()
    assert luc.attempts == 2
    assert luc.next_attempt_at - luc.updated_at == timedelta(seconds=120)  # doubled

    del smtp.recorder.refuse[LUC]
    _time_passes()
    campaign_send_task.delay(invitation.pk)
    luc.refresh_from_db()
    assert luc.state == Delivery.State.SENT and luc.attempts == 3
    assert smtp.recorder.count_by_address() == {ANNE: 1, LUC: 1, JONAS: 1}
    invitation.refresh_from_db()
    assert invitation.status == Campaign.Status.SENT


def test_a_transient_refusal_gives_up_after_the_last_attempt(invitation, smtp, settings):
    smtp.recorder.refuse[LUC] = "451 4.3.0 Mailbox busy, try later"
    settings.CAMPAIGNS_MAX_ATTEMPTS = 2
    services.campaign_launch(campaign=invitation)
    _time_passes()
    campaign_send_task.delay(invitation.pk)
    luc = Delivery.objects.get(email=LUC)
    assert luc.state == Delivery.State.FAILED and "after 2 attempts" in luc.error
    assert not Suppression.objects.exists()  # never refused for good: not a bounce
    invitation.refresh_from_db()
    assert invitation.status == Campaign.Status.SENT


def test_the_server_down_then_up_the_campaign_waits_and_resumes(invitation, smtp):
    smtp.stop()
    services.campaign_launch(campaign=invitation)

    assert set(Delivery.objects.values_list("state", flat=True)) == {"queued"}
    assert all("Connection refused" in d.error for d in Delivery.objects.all())
    invitation.refresh_from_db()
    assert invitation.status == Campaign.Status.SENDING
    campaign_send_task.delay(invitation.pk)  # too early: the back-off has not run out
    assert set(Delivery.objects.values_list("attempts", flat=True)) == {1}

    smtp.start()
    _time_passes()
    campaign_send_task.delay(invitation.pk)
    assert smtp.recorder.count_by_address() == {ANNE: 1, LUC: 1, JONAS: 1}
    invitation.refresh_from_db()
    assert invitation.status == Campaign.Status.SENT


def test_a_connection_dropped_mid_batch_sends_the_rest_later(invitation, smtp):
    # Sent in the order of names: Anne, Jonas, Luc. The server closes the connection after
    # refusing Jonas's message with a 421 (RFC 5321:
    # "service not available, closing transmission channel").
    original = smtp.recorder.handle_DATA

    async def drop_on_jonas(server, session, envelope):
        if JONAS in envelope.rcpt_tos:
            await server.push("421 4.3.2 Shutting down")
            server.transport.close()
            return None
        return await original(server, session, envelope)

    smtp.recorder.handle_DATA = drop_on_jonas
    services.campaign_launch(campaign=invitation)
    states = dict(Delivery.objects.values_list("email", "state"))
    assert states == {ANNE: "sent", JONAS: "queued", LUC: "queued"}
    assert Delivery.objects.get(email=JONAS).attempts == 1
    assert Delivery.objects.get(email=LUC).attempts == 0  # not tried: the line was down

    smtp.recorder.handle_DATA = original
    _time_passes()
    campaign_send_task.delay(invitation.pk)
    assert smtp.recorder.count_by_address() == {ANNE: 1, LUC: 1, JONAS: 1}


def test_a_worker_that_died_mid_batch_leaves_its_claims_to_the_next_after_the_lease(
    invitation, smtp
):
    invitation.status = Campaign.Status.SENDING
    invitation.save()
    services.deliveries_create(campaign=invitation)
    # A worker claimed all three, sent Anne's, and was killed before marking it sent.
    now = timezone.now()
    Delivery.objects.update(state=Delivery.State.SENDING, claimed_at=now, attempts=1)
    assert batch_send(campaign_id=invitation.pk).claimed == 0  # the lease still holds
    Delivery.objects.update(claimed_at=now - timedelta(seconds=301))
    result = batch_send(campaign_id=invitation.pk)
    assert result.claimed == 3 and result.sent == 3
    assert set(Delivery.objects.values_list("attempts", flat=True)) == {2}


def test_unsubscribed_before_the_campaign_is_left_out(invitation, smtp, librarians):
    services.address_unsubscribe(email="Luc@Bibliotheque-Nyon.ch")
    audience = services.audience_build(invitation)
    assert [(e.email, e.reason) for e in audience.excluded] == [(LUC, "unsubscribed")]
    services.campaign_launch(campaign=invitation)
    assert smtp.recorder.count_by_address() == {ANNE: 1, JONAS: 1}
    assert not Delivery.objects.filter(email=LUC).exists()


def test_unsubscribed_during_the_campaign_is_suppressed(invitation, smtp, settings):
    smtp.stop()  # the deliveries wait in the queue
    services.campaign_launch(campaign=invitation)
    services.address_unsubscribe(email=LUC)
    assert Delivery.objects.get(email=LUC).state == Delivery.State.SUPPRESSED

    # And one unsubscribed by hand by a coordinator, after the deliveries were queued:
    jonas = invitation.deliveries.get(email=JONAS).librarian
    jonas.unsubscribed_at = timezone.now()
    jonas.save()
    smtp.start()
    _time_passes()
    campaign_send_task.delay(invitation.pk)
    assert smtp.recorder.count_by_address() == {ANNE: 1}
    assert Delivery.objects.get(email=JONAS).state == Delivery.State.SUPPRESSED
    invitation.refresh_from_db()
    assert invitation.status == Campaign.Status.SENT


def test_a_paused_campaign_sends_nothing_until_resumed(invitation, smtp):
    smtp.stop()
    services.campaign_launch(campaign=invitation)
    services.campaign_pause(campaign=invitation)
    smtp.start()
    _time_passes()
    campaign_send_task.delay(invitation.pk)
    assert smtp.recorder.count_by_address() == {}
    services.campaign_resume(campaign=invitation)
    assert smtp.recorder.count_by_address() == {ANNE: 1, LUC: 1, JONAS: 1}


def test_a_cancelled_campaign_sends_nothing_more(invitation, smtp):
    smtp.stop()
    services.campaign_launch(campaign=invitation)
    services.campaign_cancel(campaign=invitation)
    smtp.start()
    _time_passes()
    campaign_send_task.delay(invitation.pk)
    assert smtp.recorder.count_by_address() == {}
    assert set(Delivery.objects.values_list("state", flat=True)) == {"suppressed"}


def test_a_scheduled_campaign_starts_when_its_time_comes(invitation, smtp, librarians):
    invitation.scheduled_at = timezone.now() + timedelta(hours=2)
    invitation.save()
    services.campaign_launch(campaign=invitation)
    invitation.refresh_from_db()
    assert invitation.status == Campaign.Status.SCHEDULED and not Delivery.objects.exists()
    assert services.campaigns_start_due() == []
    # A librarian added meanwhile is in: the audience is taken when sending starts.
    LibrarianFactory(email="new@bibliotheque-morges.ch", library=librarians[0].library)
    assert services.campaigns_start_due(now=timezone.now() + timedelta(hours=3)) == [invitation.pk]
    assert len(smtp.recorder.count_by_address()) == 4


def test_pacing_spaces_the_messages(invitation, smtp, settings, monkeypatch):
    settings.CAMPAIGNS_RATE_PER_SECOND = 10
    # The worker's pacing clock is the test's: it records when each message is handed to
    # the SMTP server, whatever else the machine is doing.
    clock, handed_over = FakeClock(), []
    send = sending.delivery_send

    def timed_send(delivery, **kwargs):
        handed_over.append(clock.elapsed)
        return send(delivery, **kwargs)

    monkeypatch.setattr(sending, "time", clock)
    monkeypatch.setattr(sending, "delivery_send", timed_send)
    services.campaign_launch(campaign=invitation)
    invitation.refresh_from_db()
    assert handed_over == pytest.approx([0.0, 0.1, 0.2])  # three messages at 10 per second
    assert smtp.recorder.count_by_address() == {ANNE: 1, LUC: 1, JONAS: 1}
    assert invitation.paced_until is not None


def test_an_address_unsubscribed_in_another_case_is_suppressed_at_sending(invitation, smtp):
    smtp.stop()
    services.campaign_launch(campaign=invitation)
    # Written straight into the table (as an older import would): no service ran.
    Suppression.objects.create(email=LUC, reason=Suppression.Reason.UNSUBSCRIBED)
    Delivery.objects.filter(email=LUC).update(email="Luc@bibliotheque-nyon.ch")
    smtp.start()
    _time_passes()
    campaign_send_task.delay(invitation.pk)
    assert smtp.recorder.count_by_address() == {ANNE: 1, JONAS: 1}


def test_the_tick_starts_due_campaigns_and_picks_up_stalled_ones(invitation, smtp):
    from campaigns.tasks import campaigns_tick_task

    smtp.stop()
    services.campaign_launch(campaign=invitation)
    # Its chain stopped (a lost task), a while ago.
    Campaign.objects.filter(pk=invitation.pk).update(
        heartbeat_at=timezone.now() - timedelta(hours=1)
    )
    smtp.start()
    _time_passes()
    campaigns_tick_task.delay()
    assert smtp.recorder.count_by_address() == {ANNE: 1, LUC: 1, JONAS: 1}


def test_pacing_holds_across_workers_claiming_side_by_side(invitation, settings):
    from campaigns.sending import deliveries_claim

    settings.CAMPAIGNS_RATE_PER_SECOND, settings.CAMPAIGNS_BATCH_SIZE = 10, 2
    Campaign.objects.filter(pk=invitation.pk).update(status=Campaign.Status.SENDING)
    services.deliveries_create(campaign=invitation)
    now = timezone.now()
    first = deliveries_claim(campaign_id=invitation.pk, now=now)
    second = deliveries_claim(campaign_id=invitation.pk, now=now)  # another worker, same moment
    assert (len(first.ids), first.delay, first.interval) == (2, 0.0, 0.1)
    assert len(second.ids) == 1 and not set(first.ids) & set(second.ids)
    assert second.delay == pytest.approx(0.2)  # after the first worker's two messages


def test_a_delivery_that_kills_its_worker_every_time_is_given_up(invitation, smtp, settings):
    settings.CAMPAIGNS_MAX_ATTEMPTS = 3
    Campaign.objects.filter(pk=invitation.pk).update(status=Campaign.Status.SENDING)
    services.deliveries_create(campaign=invitation)
    stale = timezone.now() - timedelta(seconds=301)
    Delivery.objects.filter(email=LUC).update(state="sending", claimed_at=stale, attempts=3)
    batch_send(campaign_id=invitation.pk)
    luc = Delivery.objects.get(email=LUC)
    assert luc.state == Delivery.State.FAILED and "worker stopped" in luc.error
    assert smtp.recorder.count_by_address() == {ANNE: 1, JONAS: 1}


# A batch renders once what its messages share, and each recipient's own part for them. -------


def _tokens(text: str, kind: str) -> set[str]:
    import re

    return set(re.findall(rf"https://outreach\.example\.org/email/{kind}/([^/\s\"<>]+)/", text))


def test_a_batch_gives_each_recipient_their_own_variables_language_and_links(
    invitation, smtp, librarians
):
    from django.utils import translation
    from django.utils.translation import gettext as _

    from campaigns import links

    anne, luc, jonas = librarians
    # French and German recipients in turn, two of them at one library (one subject for both).
    more = [
        LibrarianFactory(name="Sophie Keller", language="de", library=luc.library),
        LibrarianFactory(name="Claire Favre", library=anne.library),
        LibrarianFactory(name="Lukas Huber", language="de", library=jonas.library),
    ]
    recipients = [anne, luc, jonas, *more]
    Campaign.objects.filter(pk=invitation.pk).update(status=Campaign.Status.SENDING)
    services.deliveries_create(campaign=invitation)
    assert batch_send(campaign_id=invitation.pk).sent == len(recipients)  # one batch

    names = {librarian.name for librarian in recipients}
    for librarian in recipients:
        delivery = Delivery.objects.get(email=librarian.email)
        [message] = smtp.recorder.to(librarian.email)
        text = message.get_body(("plain",)).get_content()
        html = message.get_body(("html",)).get_content()
        library = librarian.library.name
        expected_subject = (
            f"Wikipedia in {library}" if librarian.language == "de" else (f"Wikipédia à {library}")
        )
        assert message["Subject"] == expected_subject
        assert f"Hello {librarian.name}," in text and f"<p>Hello {librarian.name},</p>" in html
        assert f"Would {library} welcome" in text and f"Would {library} welcome" in html
        for other in names - {librarian.name}:
            assert other not in text and other not in html
        # Their own signed links, in both parts and in the List-Unsubscribe header.
        for kind, purpose in [
            ("answer", links.ANSWER_PURPOSE),
            ("unsubscribe", links.UNSUBSCRIBE_PURPOSE),
            ("preferences", links.PREFERENCES_PURPOSE),
        ]:
            [token] = _tokens(text, kind)
            assert _tokens(html, kind) == {token}
            assert links.delivery_from_token(token, purpose=purpose) == delivery
        assert _tokens(message["List-Unsubscribe"], "unsubscribe") == _tokens(text, "unsubscribe")
        # The answer links in the recipient's language.
        [answer] = _tokens(text, "answer")
        yes = f"https://outreach.example.org/email/answer/{answer}/?answer=yes"
        with translation.override(librarian.language):
            assert _("Yes, we are interested: %(url)s") % {"url": yes} in text
        assert f'<a href="{yes}" rel="nofollow">{yes}</a>' in html


def test_a_batch_hands_each_message_over_only_once_the_one_before_is_marked_sent(
    invitation, smtp, monkeypatch
):
    import smtplib

    events = []
    sendmail, mark_sent = smtplib.SMTP.sendmail, sending._mark_sent

    def handing_over(self, sender, recipients, content, *args, **kwargs):
        events.append(("hand over", recipients[0]))
        return sendmail(self, sender, recipients, content, *args, **kwargs)

    def marking(cursor, delivery, message_id):
        events.append(("marked", delivery.email))
        return mark_sent(cursor, delivery, message_id)

    monkeypatch.setattr(smtplib.SMTP, "sendmail", handing_over)
    monkeypatch.setattr(sending, "_mark_sent", marking)
    services.campaign_launch(campaign=invitation)
    # In the order of the deliveries, each one marked before the next is handed over.
    order = list(Delivery.objects.order_by("pk").values_list("email", flat=True))
    assert events == [(event, email) for email in order for event in ("hand over", "marked")]
    assert set(Delivery.objects.values_list("state", flat=True)) == {"sent"}


def test_a_message_that_cannot_be_rendered_stops_the_batch_at_its_turn(
    invitation, smtp, monkeypatch
):
    variables = sending.delivery_variables
    order = []

    def failing(delivery, **kwargs):
        order.append(delivery.email)
        if len(order) == 2:
            raise RuntimeError("a template this worker cannot render")
        return variables(delivery, **kwargs)

    monkeypatch.setattr(sending, "delivery_variables", failing)
    Campaign.objects.filter(pk=invitation.pk).update(status=Campaign.Status.SENDING)
    services.deliveries_create(campaign=invitation)
    with pytest.raises(RuntimeError):
        batch_send(campaign_id=invitation.pk)
    first, second, third = Delivery.objects.order_by("pk")
    # The one before was sent and marked; the rest wait in `sending` for their lease, as
    # after a worker that died (and are given up after CAMPAIGNS_MAX_ATTEMPTS).
    assert first.state == Delivery.State.SENT
    assert (second.state, third.state) == (Delivery.State.SENDING, Delivery.State.SENDING)
    assert smtp.recorder.count_by_address() == {first.email: 1}


def test_a_batch_makes_links_as_reverse_does():
    from django.urls import reverse

    from campaigns.sending import Rendering
    from core.mail import site_url

    rendering = Rendering()
    for token in ["eyJkIjoxfQ:1xZYBq:XgsQmQPR5KmBVRZCaAodlPQTseNsnw0xcQWGM0PR7ME", ".eJy_-:a:b"]:
        for name in ["campaigns:answer", "campaigns:unsubscribe", "meetings:librarian-answer"]:
            assert rendering.link(name, token) == site_url(reverse(name, args=[token]))


@pytest.mark.parametrize(
    "text",
    [
        "Hello Anne,\n\nSee https://example.org/offer. Or www.example.org, (https://x.org/a)!\n",
        'Quotes "https://example.org/q" <b>not html</b> & mail anne@example.org\n\n\nEnd',
        "Tab\tand\r\nCRLF https://example.org/a?b=c&d=e\u00a0nbsp\n",
        "",
    ],
)
def test_a_batch_writes_the_html_part_as_urlize_and_linebreaks_do(text):
    from django.template.defaultfilters import linebreaks_filter, urlize

    from campaigns.rendering import Renderer

    renderer = Renderer(subject="", body="")
    expected = linebreaks_filter(urlize(text, autoescape=True), autoescape=True)
    assert renderer.html(text) == expected
    assert renderer.html(text) == expected  # and again, from what it remembered


@pytest.mark.parametrize("run_seconds, batches, handed_over", [(0, 1, 1), (600, 3, 0)])
def test_a_run_through_the_broker_sends_batches_for_its_time_then_hands_over(
    invitation, smtp, settings, monkeypatch, run_seconds, batches, handed_over
):
    from campaigns import tasks

    settings.CAMPAIGNS_BATCH_SIZE = 1
    monkeypatch.setattr(tasks, "RUN_SECONDS", run_seconds)
    # Through a broker (the conftest puts it back to in-process after the test).
    campaign_send_task.app.conf.task_always_eager = False
    next_runs = []
    monkeypatch.setattr(
        campaign_send_task, "apply_async", lambda args, countdown: next_runs.append(countdown)
    )
    Campaign.objects.filter(pk=invitation.pk).update(status=Campaign.Status.SENDING)
    services.deliveries_create(campaign=invitation)

    assert campaign_send_task(invitation.pk)["sent"] == batches  # one message a batch
    assert sum(smtp.recorder.count_by_address().values()) == batches
    assert next_runs == [0] * handed_over  # the next run of the chain, at once
    invitation.refresh_from_db()
    assert invitation.status == (Campaign.Status.SENT if batches == 3 else Campaign.Status.SENDING)
