"""Who a campaign reaches, and who it leaves out and why.

``audience_build`` is a read: it turns the campaign's audience settings (mailing lists,
librarians by filter, librarians picked by hand) into one ``Recipient`` per address, and an
``Excluded`` entry for everyone left out, with the reason. The launch writes its result as
deliveries; the audience screen shows it before anything is sent.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _

from core.text import normalize_email
from libraries.models import Librarian
from libraries.scoring import scores_at_least

from .models import Campaign, Delivery, Suppression

REASONS = {
    "unsubscribed": _("unsubscribed"),
    "bounced": _("bounced"),
    "already_received": _("already received this campaign"),
    "no_email": _("no email address"),
    "answered": _("their library already answered the first campaign"),
}


@dataclass(frozen=True)
class Recipient:
    email: str
    name: str
    language: str
    librarian_id: int | None = None
    library_id: int | None = None
    mailing_list_id: int | None = None
    from_email: str = ""


@dataclass(frozen=True)
class Excluded:
    name: str
    email: str
    reason: str

    @property
    def reason_display(self) -> str:
        return REASONS[self.reason]


@dataclass
class Audience:
    recipients: list[Recipient] = field(default_factory=list)
    excluded: list[Excluded] = field(default_factory=list)

    @property
    def excluded_counts(self) -> list[tuple[str, int]]:
        counts = Counter(entry.reason for entry in self.excluded)
        return [(REASONS[reason], counts[reason]) for reason in REASONS if counts[reason]]


def campaign_librarians(campaign: Campaign):
    """The librarians a campaign's settings name: by filter and by hand, in shortlist order."""
    query = Q(pk__in=campaign.librarians.values("pk")) if campaign.pk else Q(pk__in=[])
    if campaign.filter_librarians:
        matching = Q(pk__isnull=False)  # no filter: every librarian
        if campaign.pk and campaign.regions.exists():
            matching &= Q(library__region__in=campaign.regions.all())
        if campaign.library_statuses:
            matching &= Q(library__status__in=campaign.library_statuses)
        if campaign.languages:
            matching &= Q(language__in=campaign.languages)
        if campaign.min_score is not None:
            matching &= scores_at_least(campaign.min_score, path="library__")
        if campaign.shortlist_only:
            matching &= Q(shortlist_rank__isnull=False)
        query |= matching
    return Librarian.objects.filter(query).order_by(
        F("library__score_base").desc(nulls_last=True),
        F("shortlist_rank").asc(nulls_last=True),
        "name",
        "pk",
    )


def audience_build(campaign: Campaign) -> Audience:
    """Every address the campaign would write to now, once, and everyone left out."""
    languages = set(campaign.messages.values_list("language", flat=True))

    def language_for(language: str) -> str:
        return language if language in languages else campaign.default_language

    suppressed = dict(Suppression.objects.values_list("email", "reason"))
    received = {email.lower() for email in campaign.deliveries.values_list("email", flat=True)}
    answered_libraries = set()
    if campaign.follow_up_of_id:
        answered_libraries = set(
            Delivery.objects.filter(campaign_id=campaign.follow_up_of_id)
            .exclude(answer="")
            .exclude(library=None)
            .values_list("library_id", flat=True)
        )

    audience, seen = Audience(), set()

    def consider(recipient: Recipient, *, unsubscribed: bool = False) -> None:
        if not recipient.email:
            audience.excluded.append(Excluded(recipient.name, "", "no_email"))
            return
        key = recipient.email.lower()
        if key in seen:
            return
        seen.add(key)
        reason = None
        if unsubscribed or suppressed.get(key) == Suppression.Reason.UNSUBSCRIBED:
            reason = "unsubscribed"
        elif key in suppressed:
            reason = "bounced"
        elif key in received:
            reason = "already_received"
        elif recipient.library_id in answered_libraries:
            reason = "answered"
        if reason:
            audience.excluded.append(Excluded(recipient.name, recipient.email, reason))
        else:
            audience.recipients.append(recipient)

    if campaign.pk:
        for mailing_list in campaign.mailing_lists.order_by("name"):
            consider(
                Recipient(
                    email=normalize_email(mailing_list.posting_address),
                    name=mailing_list.name,
                    language=language_for(mailing_list.language),
                    mailing_list_id=mailing_list.pk,
                    from_email=mailing_list.subscribed_as,
                )
            )
    rows = campaign_librarians(campaign).values_list(
        "pk", "name", "email", "language", "library_id", "unsubscribed_at"
    )
    for pk, name, email, language, library_id, unsubscribed_at in rows:
        consider(
            Recipient(
                email=normalize_email(email or ""),
                name=name,
                language=language_for(language),
                librarian_id=pk,
                library_id=library_id,
            ),
            unsubscribed=unsubscribed_at is not None,
        )
    return audience
