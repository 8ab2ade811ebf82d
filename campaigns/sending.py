"""Sending a campaign: workers claim deliveries, send them over one SMTP connection per
batch, and record what became of each.

The database's state is the only truth:

- ``deliveries_claim`` locks the campaign row (which serialises claimers and paces them
  across every worker), picks due deliveries with ``SKIP LOCKED`` and moves them to
  ``sending`` with ``claimed_at``, in one committed transaction. Two workers never hold the
  same delivery.
- ``batch_send`` sends them one by one and marks each ``sent`` (with its Message-ID) right
  after the server accepted it, in one statement of its own. A worker killed mid-batch
  leaves its deliveries in ``sending``; once their lease (``CAMPAIGNS_CLAIM_LEASE``) has run
  out, any worker claims them again. Only the message in flight at the moment of the kill
  (accepted by the server, not yet marked) can thus be sent twice; nobody is lost.
- What a batch's messages share is made once (``Rendering``: the templates compiled, the
  email's layout, the links' shapes, the sender's header); what names a recipient (their
  variables, language and signed links) is made for each of them.
- Transient failures (SMTP 4xx, connection refused, dropped or timed out) put the delivery
  back to ``queued`` with an exponential back-off; permanent ones (5xx) mark it ``failed``
  and the address bounced. A server that is down makes every delivery wait; the campaign
  resumes by itself when it is back.
"""

from __future__ import annotations

import contextlib
import functools
import smtplib
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import formataddr, parseaddr

from django.conf import settings
from django.core.mail import get_connection
from django.db import connection as database
from django.db import transaction
from django.db.models import Exists, F, Min, OuterRef, Q
from django.db.models.functions import Lower
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from core.mail import MailBatch, site_url
from meetings.links import librarian_answer_token

from . import links, services
from .models import Campaign, Delivery, Message, Suppression
from .rendering import Renderer


@dataclass
class BatchResult:
    claimed: int = 0
    sent: int = 0
    retried: int = 0
    failed: int = 0
    suppressed: int = 0
    # When this campaign next has work for a worker: now, later, or never (finished).
    next_at: datetime | None = None
    finished: bool = False


def _lease() -> timedelta:
    return timedelta(seconds=settings.CAMPAIGNS_CLAIM_LEASE_SECONDS)


def _claimable(now: datetime) -> Q:
    return Q(state=Delivery.State.QUEUED) & (
        Q(next_attempt_at=None) | Q(next_attempt_at__lte=now)
    ) | Q(state=Delivery.State.SENDING, claimed_at__lt=now - _lease())


def backoff(attempts: int) -> timedelta:
    """Wait before the next attempt after ``attempts`` tries: doubling, capped."""
    seconds = settings.CAMPAIGNS_RETRY_BASE_SECONDS * 2 ** max(attempts - 1, 0)
    return timedelta(seconds=min(seconds, settings.CAMPAIGNS_RETRY_MAX_SECONDS))


@dataclass
class Claim:
    ids: list[int]
    # Pacing: wait ``delay`` seconds (the end of the slot another worker reserved), then
    # send one message every ``interval`` seconds. Both 0 when pacing is off.
    delay: float = 0.0
    interval: float = 0.0


@transaction.atomic
def deliveries_claim(*, campaign_id: int, now: datetime | None = None) -> Claim:
    """Claim the next batch of due deliveries, and the pace to send them at.

    Suppressed addresses found among them (unsubscribed or bounced since the deliveries were
    queued) are marked ``suppressed`` here instead of being claimed.
    """
    now = now or timezone.now()
    campaign = Campaign.objects.select_for_update().filter(pk=campaign_id).first()
    if campaign is None or campaign.status != Campaign.Status.SENDING:
        return Claim(ids=[])
    rate = settings.CAMPAIGNS_RATE_PER_SECOND
    size = settings.CAMPAIGNS_BATCH_SIZE
    if rate:
        # About ten seconds of sending per batch: a pause or a cancel takes effect soon.
        size = max(1, min(size, int(rate * 10)))
    # A delivery whose every attempt ended with its worker dead (a message that crashes the
    # worker, say) is given up rather than claimed forever.
    Delivery.objects.filter(
        campaign_id=campaign_id,
        state=Delivery.State.SENDING,
        claimed_at__lt=now - _lease(),
        attempts__gte=settings.CAMPAIGNS_MAX_ATTEMPTS,
    ).update(
        state=Delivery.State.FAILED,
        error=_("Gave up: the worker stopped while sending it, at every attempt."),
        updated_at=now,
    )
    due = list(
        Delivery.objects.select_for_update(skip_locked=True)
        .filter(_claimable(now), campaign_id=campaign_id)
        .order_by("pk")
        .values_list("pk", flat=True)[:size]
    )
    suppressed = Delivery.objects.filter(pk__in=due).filter(
        Exists(Suppression.objects.filter(email=Lower(OuterRef("email"))))
        | Q(librarian__unsubscribed_at__isnull=False)
    )
    suppressed_ids = set(suppressed.values_list("pk", flat=True))
    if suppressed_ids:
        Delivery.objects.filter(pk__in=suppressed_ids).update(
            state=Delivery.State.SUPPRESSED, error=_("unsubscribed or bounced"), updated_at=now
        )
    claimed = [pk for pk in due if pk not in suppressed_ids]
    Delivery.objects.filter(pk__in=claimed).update(
        state=Delivery.State.SENDING, claimed_at=now, attempts=F("attempts") + 1, updated_at=now
    )
    claim = Claim(ids=claimed)
    campaign.heartbeat_at = now
    fields = ["heartbeat_at"]
    if rate and claimed:
        # Reserve the time this batch takes, from wherever the last batch of any worker ends.
        start = max(now, campaign.paced_until or now)
        claim.delay, claim.interval = (start - now).total_seconds(), 1 / rate
        campaign.paced_until = start + timedelta(seconds=len(claimed) / rate)
        fields.append("paced_until")
    campaign.save(update_fields=fields)
    return claim


def batch_send(*, campaign_id: int, connection=None) -> BatchResult:
    """Claim one batch of ``campaign_id`` and send it over one SMTP connection."""
    result = BatchResult()
    claim = deliveries_claim(campaign_id=campaign_id)
    result.claimed = len(claim.ids)
    if claim.ids:
        deliveries = list(
            Delivery.objects.filter(pk__in=claim.ids, state=Delivery.State.SENDING)
            .select_related("library", "librarian", "mailing_list")
            .order_by("pk")
        )
        # One campaign object, its messages fetched once, shared by the whole batch.
        campaign = (
            Campaign.objects.select_related("meeting__host_library", "meeting__series")
            .prefetch_related("messages")
            .get(pk=campaign_id)
        )
        for delivery in deliveries:
            delivery.campaign = campaign
        _send_all(deliveries, claim, result, connection)
    _after_batch(campaign_id, result)
    return result


def _send_all(deliveries: list[Delivery], claim: Claim, result: BatchResult, connection):
    connection = connection or get_connection(fail_silently=False)
    try:
        connection.open()
    except (OSError, smtplib.SMTPException) as error:
        _retry(deliveries, error, result)
        return
    try:
        # One cursor for the batch's marks, one statement each: nothing else per message.
        with database.cursor() as marks:
            _send_each(deliveries, claim, result, Rendering(connection=connection), marks)
    finally:
        with contextlib.suppress(OSError, smtplib.SMTPException):
            connection.close()


def _send_each(
    deliveries: list[Delivery], claim: Claim, result: BatchResult, rendering: Rendering, marks
) -> None:
    next_at = time.monotonic() + claim.delay
    for index, delivery in enumerate(deliveries):
        delay = next_at - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        next_at = max(next_at, time.monotonic()) + claim.interval
        try:
            message_id = delivery_send(delivery, rendering=rendering)
        except smtplib.SMTPRecipientsRefused as error:
            code, reason = next(iter(error.recipients.values()), (0, b""))
            _refused(delivery, code, reason, result, bounce=True)
        except smtplib.SMTPResponseException as error:
            # Refused at MAIL FROM or DATA: this message, not the address, is the problem.
            _refused(delivery, error.smtp_code, error.smtp_error, result, bounce=False)
            if error.smtp_code == 421:  # the server is closing the connection (RFC 5321)
                _retry(deliveries[index + 1 :], error, result, tried=False)
                return
        except (OSError, smtplib.SMTPException) as error:
            # The connection is gone (dropped, timed out): this one and the rest wait;
            # the next batch opens a new connection.
            _retry([delivery], error, result)
            _retry(deliveries[index + 1 :], error, result, tried=False)
            return
        else:
            # Marked sent at once, in a statement of its own (autocommit), before the next
            # message is handed over: a worker killed mid-batch can only have sent twice
            # the message the server accepted and this statement had not yet recorded.
            _mark_sent(marks, delivery, message_id)
            result.sent += 1


def _mark_sent(cursor, delivery: Delivery, message_id: str) -> None:
    """``sent``, with its Message-ID: the ORM's ``filter().update()`` as one statement.

    Written out because it runs once per message: building it with the ORM took more of the
    worker's time than PostgreSQL took to run it (bench/mailing.py).
    """
    now = database.ops.adapt_datetimefield_value(timezone.now())
    sent, sending = Delivery.State.SENT.value, Delivery.State.SENDING.value
    cursor.execute(_mark_sent_sql(), [sent, now, message_id, "", now, delivery.pk, sending])


@functools.cache
def _mark_sent_sql() -> str:
    table, column = Delivery._meta.db_table, Delivery._meta.get_field
    quote = database.ops.quote_name
    assigned = ", ".join(
        f"{quote(column(name).column)} = %s"
        for name in ("state", "sent_at", "message_id", "error", "updated_at")
    )
    return (
        f"UPDATE {quote(table)} SET {assigned} "
        f"WHERE {quote(column('id').column)} = %s AND {quote(column('state').column)} = %s"
    )


def _describe(error: Exception) -> str:
    if isinstance(error, smtplib.SMTPResponseException):
        reason = error.smtp_error
        if isinstance(reason, bytes):
            reason = reason.decode(errors="replace")
        return f"{error.smtp_code} {reason}"
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__


def _refused(delivery: Delivery, code: int, reason, result: BatchResult, *, bounce: bool):
    if isinstance(reason, bytes):
        reason = reason.decode(errors="replace")
    error = smtplib.SMTPResponseException(code, reason)
    if code < 500:
        _retry([delivery], error, result)
        return
    now = timezone.now()
    Delivery.objects.filter(pk=delivery.pk, state=Delivery.State.SENDING).update(
        state=Delivery.State.FAILED, error=_describe(error)[:2000], updated_at=now
    )
    result.failed += 1
    if bounce:
        services.address_bounce(email=delivery.email, detail=_describe(error))


def _retry(deliveries: list[Delivery], error: Exception, result: BatchResult, *, tried=True):
    """Back to ``queued`` after a transient failure, or ``failed`` after the last attempt.

    Deliveries that were claimed but not tried (the connection dropped before their turn)
    get their attempt back.
    """
    now, message = timezone.now(), _describe(error)[:2000]
    for delivery in deliveries:
        attempts = delivery.attempts if tried else delivery.attempts - 1
        rows = Delivery.objects.filter(pk=delivery.pk, state=Delivery.State.SENDING)
        if attempts >= settings.CAMPAIGNS_MAX_ATTEMPTS:
            rows.update(
                state=Delivery.State.FAILED,
                attempts=attempts,
                error=_("Gave up after %(n)s attempts: %(error)s")
                % {"n": attempts, "error": message},
                updated_at=now,
            )
            result.failed += 1
        else:
            rows.update(
                state=Delivery.State.QUEUED,
                attempts=attempts,
                next_attempt_at=now + backoff(max(attempts, 1)),
                error=message,
                updated_at=now,
            )
            result.retried += 1


def _after_batch(campaign_id: int, result: BatchResult) -> None:
    """Tell when the campaign has work again, and finish it when nothing is left."""
    now = timezone.now()
    pending = Delivery.objects.filter(
        campaign_id=campaign_id, state__in=[Delivery.State.QUEUED, Delivery.State.SENDING]
    )
    if Campaign.objects.filter(pk=campaign_id, status=Campaign.Status.SENDING).exists():
        if not pending.exists():
            Campaign.objects.filter(pk=campaign_id, status=Campaign.Status.SENDING).update(
                status=Campaign.Status.SENT, finished_at=now, updated_at=now
            )
            result.finished = True
            return
        if pending.filter(_claimable(now)).exists():
            result.next_at = now
            return
        # Waiting: for a back-off to run out, or for another worker's claim (its lease).
        times = pending.aggregate(
            retry=Min("next_attempt_at", filter=Q(state=Delivery.State.QUEUED)),
            claim=Min("claimed_at", filter=Q(state=Delivery.State.SENDING)),
        )
        candidates = [times["retry"]] if times["retry"] else []
        if times["claim"]:
            candidates.append(times["claim"] + _lease())
        result.next_at = min(candidates) if candidates else now


# One message ---------------------------------------------------------------------------------

EMAIL = "campaigns/campaign"
# Stands for a token in a link's shape: a signed token's characters (URL-safe base64, ":" and
# ".") are left as they are by reverse(), as these are.
_TOKEN = "token-placeholder"


class Rendering:
    """What a batch makes once for all its deliveries, whatever their language: each message's
    templates compiled (and the HTML of their words), the email's layout loaded, the sender's
    header, the shape of each link. What names a recipient (their variables, their signed
    links, their language) is made again for each delivery."""

    def __init__(self, *, connection=None) -> None:
        self.mail = MailBatch(EMAIL, connection=connection)
        self._renderers: dict[int, Renderer] = {}
        self._links: dict[str, tuple[str, str]] = {}

    def renderer(self, message: Message) -> Renderer:
        renderer = self._renderers.get(message.pk)
        if renderer is None:
            renderer = Renderer(subject=message.subject, body=message.body)
            if message.pk is not None:
                self._renderers[message.pk] = renderer
        return renderer

    def link(self, name: str, token: str) -> str:
        """``site_url(reverse(name, args=[token]))``, reversed once per batch."""
        shape = self._links.get(name)
        if shape is None:
            head, _placeholder, tail = site_url(reverse(name, args=[_TOKEN])).rpartition(_TOKEN)
            shape = self._links[name] = (head, tail)
        return f"{shape[0]}{token}{shape[1]}"


def delivery_variables(delivery: Delivery, *, rendering: Rendering | None = None) -> dict:
    """The variables a coordinator's template may use, for one delivery."""
    campaign = delivery.campaign
    rendering = rendering or Rendering()

    def link(name: str, purpose: str) -> str:
        return rendering.link(name, links.delivery_token(delivery, purpose=purpose))

    personal = delivery.mailing_list_id is None
    variables = {
        "recipient": delivery.librarian.name
        if delivery.librarian
        else (delivery.mailing_list.name if delivery.mailing_list else ""),
        "library": delivery.library.name if delivery.library else "",
        "answer_links": "",
        "unsubscribe_url": "",
        "preferences_url": "",
    }
    if personal:
        variables["unsubscribe_url"] = link("campaigns:unsubscribe", links.UNSUBSCRIBE_PURPOSE)
        variables["preferences_url"] = link("campaigns:preferences", links.PREFERENCES_PURPOSE)
    if personal and campaign.asks_for_answers:
        # One link, the answer in its query: the three differ by nothing else.
        answer_url = link("campaigns:answer", links.ANSWER_PURPOSE)
        answers = {answer: f"{answer_url}?answer={answer}" for answer in Delivery.Answer.values}
        variables.update({f"answer_{answer}_url": url for answer, url in answers.items()})
        variables["answer_links"] = "\n".join(
            [
                _("Yes, we are interested: %(url)s") % {"url": answers["yes"]},
                _("Maybe, tell us more: %(url)s") % {"url": answers["maybe"]},
                _("No, thank you: %(url)s") % {"url": answers["no"]},
            ]
        )
    meeting = campaign.meeting
    if meeting is not None:
        with timezone.override(meeting.time_zone):
            date = timezone.localtime(meeting.start)
        library = meeting.host_library
        variables["meetup"] = {
            "title": meeting.display_title,
            "date": f"{_date(date)}",
            "place": f"{library.name}, {library.address or library.city}" if library else "",
            "url": site_url(reverse("meetings:meeting-public", args=[meeting.pk])),
        }
        if delivery.librarian_id and meeting.end > timezone.now():
            token = librarian_answer_token(librarian=delivery.librarian, meeting=meeting)
            variables["rsvp_url"] = rendering.link("meetings:librarian-answer", token)
    return variables


def _date(moment: datetime) -> str:
    from django.utils.formats import date_format

    return date_format(moment, "l j F Y, H:i")


def delivery_render(
    delivery: Delivery, *, message: Message, rendering: Rendering | None = None
) -> dict:
    """Subject, text and HTML of one delivery, in the delivery's language."""
    rendering = rendering or Rendering()
    with translation.override(delivery.language):
        variables = delivery_variables(delivery, rendering=rendering)
        rendered = rendering.renderer(message).render(variables)
    return {
        "subject": rendered.subject,
        "body_text": rendered.text,
        "body_html": rendered.html,
        "unsubscribe_url": variables["unsubscribe_url"],
        "preferences_url": variables["preferences_url"],
        "campaign": delivery.campaign,
    }


def delivery_headers(delivery: Delivery, context: dict) -> dict[str, str]:
    """List-Unsubscribe (RFC 2369) with a mailto and a one-click https URL (RFC 8058)."""
    if not context["unsubscribe_url"]:
        return {}
    mailto = settings.CAMPAIGNS_UNSUBSCRIBE_MAILTO or _mailbox(settings.DEFAULT_FROM_EMAIL)
    token = context["unsubscribe_url"].rstrip("/").rsplit("/", 1)[-1]
    return {
        "List-Unsubscribe": f"<mailto:{mailto}?subject=unsubscribe%20{token}>, "
        f"<{context['unsubscribe_url']}>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }


@functools.lru_cache(maxsize=16)
def _mailbox(address: str) -> str:
    """The bare address of ``Name <address>`` (parsed once, not once per message)."""
    return parseaddr(address)[1]


def delivery_from_email(delivery: Delivery) -> str:
    """The chapter's name and address; a list post comes from the address subscribed to it,
    as list software holds posts from non-members."""
    if delivery.mailing_list_id and delivery.mailing_list.subscribed_as:
        return formataddr((settings.SITE_NAME, delivery.mailing_list.subscribed_as))
    return settings.DEFAULT_FROM_EMAIL


def delivery_send(
    delivery: Delivery,
    *,
    connection=None,
    rendering: Rendering | None = None,
    to: str | None = None,
) -> str:
    """Render and send one delivery (to ``to`` instead for a test); return its Message-ID.

    A batch passes its ``rendering``, which holds its connection; one delivery sent alone
    may pass a ``connection``.
    """
    rendering = rendering or Rendering(connection=connection)
    message = delivery.campaign.message_for(delivery.language)
    context = delivery_render(delivery, message=message, rendering=rendering)
    return rendering.mail.send(
        to=to or delivery.email,
        context=context,
        language=delivery.language,
        headers=delivery_headers(delivery, context),
        from_email=delivery_from_email(delivery),
    )


# Previews and tests ----------------------------------------------------------------------------


def delivery_example(
    campaign: Campaign, *, language: str, librarian=None, mailing_list=None
) -> Delivery:
    """An unsaved delivery of ``campaign`` to a real recipient, for a preview or a test.

    Its links are shaped like the real ones but lead to the "link does not work" page: they
    name no delivery.
    """
    return Delivery(
        campaign=campaign,
        email=(
            librarian.email if librarian else mailing_list.posting_address if mailing_list else ""
        ),
        language=language,
        librarian=librarian,
        library=librarian.library if librarian else None,
        mailing_list=mailing_list,
    )


def campaign_preview(campaign: Campaign, *, language: str, librarian=None, mailing_list=None):
    """Subject, text and HTML of the message in ``language`` as ``librarian`` (or the list)
    would receive it: a dict with ``subject``, ``text``, ``html``."""
    from core.mail import mail_render

    delivery = delivery_example(
        campaign, language=language, librarian=librarian, mailing_list=mailing_list
    )
    message = campaign.message_for(language)
    if message is None:
        raise services.CampaignError(_("Write the message in the default language first."))
    context = delivery_render(delivery, message=message)
    subject, text, html = mail_render(EMAIL, context, language=language)
    return {
        "subject": subject,
        "text": text,
        "html": html,
        "headers": delivery_headers(delivery, context),
    }


def campaign_test_send(
    campaign: Campaign, *, language: str, to: str, librarian=None, mailing_list=None
) -> str:
    """Send the message in ``language``, rendered for ``librarian`` (or the list), to ``to``
    (the coordinator) now; SMTP errors are raised for the page to show."""
    delivery = delivery_example(
        campaign, language=language, librarian=librarian, mailing_list=mailing_list
    )
    return delivery_send(delivery, to=to)
