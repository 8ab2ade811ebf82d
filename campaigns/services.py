"""Writes of campaigns: launching, pausing, answers, unsubscribes, follow-ups, and the
campaign made from the shortlist.

Sending itself (claiming deliveries, SMTP, retries) is in ``campaigns.sending``.
"""

from __future__ import annotations

import re
from datetime import datetime

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from libraries.models import ActivitySignal, Librarian, Library
from libraries.services import library_status_change, signal_record

from .audience import audience_build
from .models import Campaign, Delivery, Message, Suppression, address_key

DELIVERIES_BATCH = 2000
# Answering yes moves a library forward to "interested", never back from "partner".
MOVES_TO_INTERESTED = {Library.Status.PROSPECT, Library.Status.CONTACTED, Library.Status.DORMANT}
SIGNAL_OF_ANSWER = {
    Delivery.Answer.YES: ActivitySignal.Kind.INVITATION_YES,
    Delivery.Answer.MAYBE: ActivitySignal.Kind.INVITATION_MAYBE,
    Delivery.Answer.NO: ActivitySignal.Kind.INVITATION_NO,
}


class CampaignError(ValueError):
    """The campaign cannot do this now; the message says why, for the coordinator."""


# Launch ------------------------------------------------------------------------------------


@transaction.atomic
def campaign_launch(
    *, campaign: Campaign, launched_by: AbstractBaseUser | None = None, now: datetime | None = None
) -> Campaign:
    """Send ``campaign`` now, or at its ``scheduled_at`` if that is still ahead.

    Sending starts by writing one queued delivery per address of the audience, in a few bulk
    statements; workers then send them (``campaigns.sending``).
    """
    now = now or timezone.now()
    campaign = Campaign.objects.select_for_update().get(pk=campaign.pk)
    if not campaign.is_editable:
        raise CampaignError(_("This campaign was already sent or cancelled."))
    if not campaign.messages.filter(language=campaign.default_language).exists():
        raise CampaignError(_("Write the message in the default language first."))
    if campaign.scheduled_at and campaign.scheduled_at > now:
        campaign.status = Campaign.Status.SCHEDULED
        campaign.save(update_fields=["status", "updated_at"])
        return campaign
    return _start(campaign, now=now)


def _start(campaign: Campaign, *, now: datetime) -> Campaign:
    deliveries_create(campaign=campaign)
    campaign.status, campaign.started_at, campaign.heartbeat_at = (
        Campaign.Status.SENDING,
        now,
        now,
    )
    campaign.save(update_fields=["status", "started_at", "heartbeat_at", "updated_at"])
    _dispatch_after_commit(campaign)
    return campaign


def deliveries_create(*, campaign: Campaign) -> int:
    """One queued delivery per address of the audience; return how many are new.

    Bulk inserts; an address that already has a delivery for this campaign keeps it (the
    unique constraint makes a second one impossible).
    """
    rows = [
        Delivery(
            campaign=campaign,
            email=recipient.email,
            language=recipient.language,
            librarian_id=recipient.librarian_id,
            library_id=recipient.library_id,
            mailing_list_id=recipient.mailing_list_id,
        )
        for recipient in audience_build(campaign).recipients
    ]
    Delivery.objects.bulk_create(rows, batch_size=DELIVERIES_BATCH, ignore_conflicts=True)
    return len(rows)


def _dispatch_after_commit(campaign: Campaign) -> None:
    from .tasks import campaign_dispatch_task

    transaction.on_commit(lambda: campaign_dispatch_task.delay(campaign.pk))


@transaction.atomic
def campaigns_start_due(*, now: datetime | None = None) -> list[int]:
    """Start every scheduled campaign whose time has come; return their ids."""
    now = now or timezone.now()
    started = []
    due = Campaign.objects.select_for_update(skip_locked=True).filter(
        status=Campaign.Status.SCHEDULED, scheduled_at__lte=now
    )
    for campaign in due:
        _start(campaign, now=now)
        started.append(campaign.pk)
    return started


@transaction.atomic
def campaign_pause(*, campaign: Campaign) -> Campaign:
    """Stop sending after the messages in flight; ``campaign_resume`` goes on from there."""
    updated = Campaign.objects.filter(pk=campaign.pk, status=Campaign.Status.SENDING).update(
        status=Campaign.Status.PAUSED, updated_at=timezone.now()
    )
    if not updated:
        raise CampaignError(_("Only a campaign that is sending can be paused."))
    campaign.refresh_from_db()
    return campaign


@transaction.atomic
def campaign_resume(*, campaign: Campaign) -> Campaign:
    updated = Campaign.objects.filter(pk=campaign.pk, status=Campaign.Status.PAUSED).update(
        status=Campaign.Status.SENDING, heartbeat_at=timezone.now(), updated_at=timezone.now()
    )
    if not updated:
        raise CampaignError(_("Only a paused campaign can be resumed."))
    campaign.refresh_from_db()
    _dispatch_after_commit(campaign)
    return campaign


@transaction.atomic
def campaign_cancel(*, campaign: Campaign) -> Campaign:
    """Cancel: nothing more is sent; what is queued is marked suppressed, the rest stays."""
    campaign = Campaign.objects.select_for_update().get(pk=campaign.pk)
    if campaign.status in (Campaign.Status.SENT, Campaign.Status.CANCELLED):
        raise CampaignError(_("This campaign is already finished."))
    now = timezone.now()
    campaign.deliveries.filter(state=Delivery.State.QUEUED).update(
        state=Delivery.State.SUPPRESSED, error=_("campaign cancelled"), updated_at=now
    )
    campaign.status, campaign.finished_at = Campaign.Status.CANCELLED, now
    campaign.save(update_fields=["status", "finished_at", "updated_at"])
    return campaign


# Answers, unsubscribes, preferences ----------------------------------------------------------


@transaction.atomic
def invitation_answer(*, delivery: Delivery, answer: str, comment: str = "") -> Delivery:
    """Record a library's yes / maybe / no to an invitation; answering again changes it.

    The answer becomes one activity signal of the library (replaced when the answer changes),
    and a yes moves the library to ``interested`` unless it is already further along.
    """
    if answer not in Delivery.Answer.values:
        raise ValueError(f"unknown answer {answer!r}")
    delivery = Delivery.objects.select_for_update().select_related("campaign").get(pk=delivery.pk)
    now = timezone.now()
    delivery.answer, delivery.answer_comment, delivery.answered_at = answer, comment.strip(), now
    delivery.save(update_fields=["answer", "answer_comment", "answered_at", "updated_at"])
    if delivery.library_id is None:
        return delivery
    library = Library.objects.get(pk=delivery.library_id)
    source = f"campaign {delivery.campaign_id} delivery {delivery.pk}"
    ActivitySignal.objects.filter(source=source, kind__in=SIGNAL_OF_ANSWER.values()).delete()
    librarian = delivery.librarian if delivery.librarian_id else None
    if librarian is not None and librarian.library_id != library.pk:
        librarian = None  # moved to another library since
    signal_record(
        library=library,
        librarian=librarian,
        kind=SIGNAL_OF_ANSWER[answer],
        occurred_at=now,
        source=source,
        note=delivery.answer_comment,
    )
    if answer == Delivery.Answer.YES and library.status in MOVES_TO_INTERESTED:
        library_status_change(
            library=library,
            status=Library.Status.INTERESTED,
            source=f"campaign {delivery.campaign_id}",
            reason=_("Answered yes to “%(campaign)s”.") % {"campaign": delivery.campaign.title},
        )
    return delivery


@transaction.atomic
def address_unsubscribe(*, email: str, detail: str = "") -> None:
    """Stop every campaign from writing to ``email``, including deliveries already queued."""
    key, now = address_key(email), timezone.now()
    Suppression.objects.update_or_create(
        email=key, defaults={"reason": Suppression.Reason.UNSUBSCRIBED, "detail": detail}
    )
    Librarian.objects.filter(email__iexact=key, unsubscribed_at=None).update(
        unsubscribed_at=now, updated_at=now
    )
    Delivery.objects.filter(email__iexact=key, state=Delivery.State.QUEUED).update(
        state=Delivery.State.SUPPRESSED, error=_("unsubscribed"), updated_at=now
    )


@transaction.atomic
def address_bounce(*, email: str, detail: str) -> None:
    """A permanent refusal by the recipient's server: no campaign writes there again."""
    key, now = address_key(email), timezone.now()
    Suppression.objects.get_or_create(
        email=key, defaults={"reason": Suppression.Reason.BOUNCED, "detail": detail[:1000]}
    )
    Delivery.objects.filter(email__iexact=key, state=Delivery.State.QUEUED).update(
        state=Delivery.State.SUPPRESSED, error=_("bounced"), updated_at=now
    )


@transaction.atomic
def preferences_update(*, delivery: Delivery, language: str, subscribed: bool) -> None:
    """The recipient's own choices from the preferences page: language, and whether to receive
    campaigns. Subscribing again is a consent given by the person, and recorded as such."""
    key, now = address_key(delivery.email), timezone.now()
    librarians = Librarian.objects.filter(email__iexact=key)
    librarians.exclude(language=language).update(language=language, updated_at=now)
    if not subscribed:
        address_unsubscribe(email=key, detail=_("preferences page"))
        return
    if Suppression.objects.filter(email=key, reason=Suppression.Reason.UNSUBSCRIBED).delete()[0]:
        librarians.update(
            unsubscribed_at=None,
            consent_source=_("subscribed again on the preferences page"),
            consent_at=now.date(),
            updated_at=now,
        )


@transaction.atomic
def delivery_moderation_record(*, delivery: Delivery, moderation: str) -> Delivery:
    """What the list's moderators did with a post: held, approved or rejected."""
    if moderation not in Delivery.Moderation.values:
        raise CampaignError(_("Unknown moderation outcome."))
    if delivery.mailing_list_id is None:
        raise CampaignError(_("Only a post to a mailing list is moderated."))
    delivery.moderation = moderation
    delivery.save(update_fields=["moderation", "updated_at"])
    return delivery


# Follow-ups --------------------------------------------------------------------------------


@transaction.atomic
def campaign_follow_up_create(
    *, campaign: Campaign, created_by: AbstractBaseUser | None = None
) -> Campaign:
    """A draft follow-up of a sent invitation to the shortlisted librarians of the libraries
    that did not answer it, each message quoting the original offer."""
    campaign = Campaign.objects.get(pk=campaign.pk)
    if not campaign.asks_for_answers or campaign.status not in (
        Campaign.Status.SENDING,
        Campaign.Status.PAUSED,
        Campaign.Status.SENT,
    ):
        raise CampaignError(_("A follow-up is made from an invitation that was sent."))
    follow_up = Campaign.objects.create(
        title=_("Follow-up: %(title)s") % {"title": campaign.title},
        kind=Campaign.Kind.FOLLOW_UP,
        default_language=campaign.default_language,
        meeting=campaign.meeting,
        follow_up_of=campaign,
        filter_librarians=True,
        shortlist_only=True,
        created_by=created_by,
    )
    follow_up.regions.set(_campaign_regions(campaign))
    for message in campaign.messages.all():
        Message.objects.create(
            campaign=follow_up,
            language=message.language,
            subject=_follow_up_subject(message.subject, message.language),
            body=_follow_up_body(message.body, message.language),
        )
    return follow_up


def _campaign_regions(campaign: Campaign) -> set[int]:
    """The regions an invitation reached: its own, its lists', its librarians' libraries'."""
    regions = set(campaign.regions.values_list("pk", flat=True))
    regions |= set(campaign.mailing_lists.exclude(region=None).values_list("region_id", flat=True))
    regions |= set(
        Library.objects.filter(
            Q(deliveries__campaign=campaign) & ~Q(deliveries__library=None)
        ).values_list("region_id", flat=True)
    )
    return regions


def _follow_up_subject(subject: str, language: str) -> str:
    from django.utils import translation

    with translation.override(language):
        return (_("Re: %(subject)s") % {"subject": subject})[:200]


def _follow_up_body(body: str, language: str) -> str:
    from django.utils import translation

    # The offer is quoted without its greeting and its answer links: the follow-up has its own.
    lines = body.strip().splitlines()
    if lines and "{{ recipient }}" in lines[0]:
        lines = lines[1:]
    lines = [line for line in lines if not re.fullmatch(r"\s*\{\{\s*answer_links\s*\}\}\s*", line)]
    lines = [
        line
        for n, line in enumerate(lines)
        if line.strip() or (n > 0 and lines[n - 1].strip())  # one blank line at most
    ]
    while lines and not lines[0].strip():
        lines = lines[1:]
    quoted = "\n".join(f"> {line}" if line.strip() else ">" for line in lines)
    with translation.override(language):
        intro = _(
            "Hello {{ recipient }},\n\n"
            "We wrote to the libraries of your region a few weeks ago and are writing to you "
            "directly, as we would be glad to hear from {{ library }}. Our offer again:"
        )
        answer = _("Could you tell us what you think?")
    return f"{intro}\n\n{quoted}\n\n{answer}\n\n{{{{ answer_links }}}}\n"


# From the shortlist ------------------------------------------------------------------------


@transaction.atomic
def shortlist_campaign_create(
    *, librarians: list[Librarian], created_by: AbstractBaseUser | None = None
) -> Campaign:
    """A draft follow-up campaign whose audience is ``librarians``, picked by hand.

    The coordinator then writes its messages on the campaign's page; nothing is sent here.
    """
    if not librarians:
        raise ValueError("A campaign needs at least one librarian.")
    campaign = Campaign.objects.create(
        # Translators: the title of a campaign made from the shortlist page, with its date.
        title=_("Shortlist %(date)s") % {"date": timezone.localdate().isoformat()},
        kind=Campaign.Kind.FOLLOW_UP,
        created_by=created_by,
    )
    campaign.librarians.set(librarians)
    # The regions of the audience: they say whose campaign it is (an ambassador's, if theirs).
    campaign.regions.set(
        Library.objects.filter(pk__in={librarian.library_id for librarian in librarians})
        .values_list("region_id", flat=True)
        .distinct()
    )
    return campaign
