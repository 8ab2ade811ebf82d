"""Campaigns: a message written once per language, sent to an audience, one delivery per address.

A ``Delivery`` is the row behind every email a campaign sends: it is unique per campaign and
address (sending twice is impossible by construction), and carries its state from ``queued``
through ``sending`` to ``sent``, ``failed`` or ``suppressed``. Answers and unsubscribes come
back through signed links that name a delivery.
"""

from django.conf import settings
from django.db import models
from django.db.models.functions import Lower
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from core.roles import visible_region_ids
from libraries.models import Librarian, Library, MailingList, Region


def address_key(email: str) -> str:
    """An address as suppressions and duplicates compare it: trimmed, lower-cased."""
    return email.strip().lower()


class CampaignQuerySet(models.QuerySet):
    def visible_to(self, user) -> "CampaignQuerySet":
        """Every campaign for coordinators; for an ambassador, the campaigns whose whole
        audience lies in their regions: at least one region, every region theirs, and no
        mailing list or hand-picked librarian from elsewhere."""
        region_ids = visible_region_ids(user)
        if region_ids is None:
            return self
        regions = Campaign.regions.through.objects.filter(campaign_id=models.OuterRef("pk"))
        lists = Campaign.mailing_lists.through.objects.filter(campaign_id=models.OuterRef("pk"))
        picked = Campaign.librarians.through.objects.filter(campaign_id=models.OuterRef("pk"))
        return (
            self.filter(models.Exists(regions.filter(region_id__in=region_ids)))
            .exclude(models.Exists(regions.exclude(region_id__in=region_ids)))
            .exclude(models.Exists(lists.exclude(mailinglist__region_id__in=region_ids)))
            .exclude(models.Exists(picked.exclude(librarian__library__region_id__in=region_ids)))
        )


class ThroughCampaignQuerySet(models.QuerySet):
    def visible_to(self, user) -> "ThroughCampaignQuerySet":
        if visible_region_ids(user) is None:
            return self
        return self.filter(**{f"{self.campaign_path}__in": Campaign.objects.visible_to(user)})


class DeliveryQuerySet(ThroughCampaignQuerySet):
    campaign_path = "campaign"


class Campaign(models.Model):
    """A piece of outreach with a goal, its audience, and where its sending stands."""

    class Kind(models.TextChoices):
        INVITATION = "invitation", _("Invitation")
        FOLLOW_UP = "follow_up", _("Follow-up to the shortlist")
        MEETUP_ANNOUNCEMENT = "meetup_announcement", _("Meetup announcement")
        CONTRIBUTION_DRIVE = "contribution_drive", _("Contribution drive")

    class Status(models.TextChoices):
        DRAFT = "draft", _("Draft")
        SCHEDULED = "scheduled", _("Scheduled")
        SENDING = "sending", _("Sending")
        PAUSED = "paused", _("Paused")
        SENT = "sent", _("Sent")
        CANCELLED = "cancelled", _("Cancelled")

    title = models.CharField(_("title"), max_length=200)
    kind = models.CharField(_("kind"), max_length=32, choices=Kind.choices, default=Kind.INVITATION)
    status = models.CharField(
        _("status"), max_length=16, choices=Status.choices, default=Status.DRAFT
    )
    default_language = models.CharField(
        _("default language"),
        max_length=8,
        choices=settings.CONTENT_LANGUAGES,
        default="fr",
        help_text=_("Recipients whose language has no message get this one."),
    )
    meeting = models.ForeignKey(
        "meetings.Meeting",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="campaigns",
        verbose_name=_("meetup"),
        help_text=_("The meetup the message is about, if any."),
    )
    follow_up_of = models.ForeignKey(
        "self",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="follow_ups",
        verbose_name=_("follow-up of"),
    )
    # A campaign may invite librarians to a #1lib1ref drive (drives.Drive); the drive counts
    # the edits, the campaign only writes to people. Named by its label: campaigns and drives
    # stand side by side and import nothing of each other.
    drive = models.ForeignKey(
        "drives.Drive",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="campaigns",
        verbose_name=_("contribution drive"),
        help_text=_("The contribution drive the message invites to, if any."),
    )

    # Audience: mailing lists, librarians by filter, librarians picked by hand.
    mailing_lists = models.ManyToManyField(
        MailingList, blank=True, related_name="campaigns", verbose_name=_("mailing lists")
    )
    filter_librarians = models.BooleanField(
        _("librarians matching the filters"),
        default=False,
        help_text=_("Send to every librarian who matches the filters below."),
    )
    regions = models.ManyToManyField(
        Region, blank=True, related_name="+", verbose_name=_("regions")
    )
    library_statuses = models.JSONField(_("library statuses"), default=list, blank=True)
    languages = models.JSONField(_("languages"), default=list, blank=True)
    min_score = models.FloatField(_("minimum score"), null=True, blank=True)
    shortlist_only = models.BooleanField(_("shortlisted librarians only"), default=False)
    librarians = models.ManyToManyField(
        Librarian, blank=True, related_name="+", verbose_name=_("librarians picked by hand")
    )

    scheduled_at = models.DateTimeField(_("send at"), null=True, blank=True)
    started_at = models.DateTimeField(_("started"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)
    # Pacing across every worker: the next free sending slot (see campaigns.sending).
    paced_until = models.DateTimeField(null=True, blank=True, editable=False)
    # Last time a worker made progress on it: a stalled campaign is picked up again.
    heartbeat_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("created by"),
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    objects = CampaignQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("campaign")
        verbose_name_plural = _("campaigns")
        indexes = [models.Index(fields=["status"])]

    def __str__(self) -> str:
        return self.title

    def get_absolute_url(self) -> str:
        return reverse("campaigns:campaign-detail", kwargs={"pk": self.pk})

    @property
    def is_editable(self) -> bool:
        return self.status in (self.Status.DRAFT, self.Status.SCHEDULED)

    @property
    def asks_for_answers(self) -> bool:
        """Invitations and their follow-ups carry yes / maybe / no links."""
        return self.kind in ANSWERING_KINDS

    def message_for(self, language: str) -> "Message | None":
        """The message in ``language``, or in the default language (prefetch ``messages``)."""
        messages = {message.language: message for message in self.messages.all()}
        return messages.get(language) or messages.get(self.default_language)


ANSWERING_KINDS = {Campaign.Kind.INVITATION, Campaign.Kind.FOLLOW_UP}


class Message(models.Model):
    """The campaign's email in one language: a subject and one body template.

    The body is plain text with variables (``{{ recipient }}``, ``{{ answer_links }}``, …);
    the text part is the body rendered, the HTML part the same with paragraphs and links.
    """

    campaign = models.ForeignKey(
        Campaign, on_delete=models.CASCADE, related_name="messages", verbose_name=_("campaign")
    )
    language = models.CharField(_("language"), max_length=8, choices=settings.CONTENT_LANGUAGES)
    subject = models.CharField(_("subject"), max_length=200)
    body = models.TextField(_("body"))
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        ordering = ["language"]
        verbose_name = _("message")
        verbose_name_plural = _("messages")
        constraints = [
            models.UniqueConstraint(
                fields=["campaign", "language"], name="message_one_per_language"
            )
        ]

    def __str__(self) -> str:
        return f"{self.campaign} ({self.language})"


class Delivery(models.Model):
    """One message to one address, and what became of it."""

    class State(models.TextChoices):
        QUEUED = "queued", _("Queued")
        SENDING = "sending", _("Sending")
        SENT = "sent", _("Sent")
        FAILED = "failed", _("Failed")
        SUPPRESSED = "suppressed", _("Suppressed")

    class Answer(models.TextChoices):
        YES = "yes", _("Yes")
        MAYBE = "maybe", _("Maybe")
        NO = "no", _("No")

    class Moderation(models.TextChoices):
        HELD = "held", _("Held for moderation")
        APPROVED = "approved", _("Approved")
        REJECTED = "rejected", _("Rejected")

    campaign = models.ForeignKey(
        Campaign, on_delete=models.CASCADE, related_name="deliveries", verbose_name=_("campaign")
    )
    email = models.EmailField(_("email"))
    language = models.CharField(_("language"), max_length=8)
    librarian = models.ForeignKey(
        Librarian,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="deliveries",
        verbose_name=_("librarian"),
    )
    library = models.ForeignKey(
        Library,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="deliveries",
        verbose_name=_("library"),
    )
    mailing_list = models.ForeignKey(
        MailingList,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="deliveries",
        verbose_name=_("mailing list"),
    )
    state = models.CharField(_("state"), max_length=16, choices=State.choices, default=State.QUEUED)
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    next_attempt_at = models.DateTimeField(_("next attempt"), null=True, blank=True)
    claimed_at = models.DateTimeField(_("claimed"), null=True, blank=True)
    sent_at = models.DateTimeField(_("sent"), null=True, blank=True)
    message_id = models.CharField(_("Message-ID"), max_length=255, blank=True)
    error = models.TextField(_("error"), blank=True)
    moderation = models.CharField(
        _("moderation"), max_length=16, choices=Moderation.choices, blank=True
    )
    answer = models.CharField(_("answer"), max_length=8, choices=Answer.choices, blank=True)
    answer_comment = models.TextField(_("comment"), blank=True)
    answered_at = models.DateTimeField(_("answered"), null=True, blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    objects = DeliveryQuerySet.as_manager()

    class Meta:
        ordering = ["pk"]
        verbose_name = _("delivery")
        verbose_name_plural = _("deliveries")
        constraints = [
            # One address, one delivery: Anne@Example.org and anne@example.org are one.
            models.UniqueConstraint("campaign", Lower("email"), name="delivery_once_per_address")
        ]
        indexes = [
            models.Index(fields=["campaign", "state", "next_attempt_at"]),
            # What workers claim from, in order: only the rows still to send, so a claim
            # does not walk past everything already sent.
            models.Index(
                fields=["campaign", "id"],
                condition=models.Q(state__in=["queued", "sending"]),
                name="delivery_to_send",
            ),
            # The dashboard's "answers since your last visit": only answered rows.
            models.Index(
                fields=["answered_at"],
                condition=models.Q(answered_at__isnull=False),
                name="delivery_answered",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.campaign} → {self.email}"


class Suppression(models.Model):
    """An address no campaign may write to again: it unsubscribed or bounced."""

    class Reason(models.TextChoices):
        UNSUBSCRIBED = "unsubscribed", _("Unsubscribed")
        BOUNCED = "bounced", _("Bounced")

    # Lower-cased (address_key).
    email = models.EmailField(_("email"), unique=True)
    reason = models.CharField(_("reason"), max_length=16, choices=Reason.choices)
    detail = models.TextField(_("detail"), blank=True)
    created_at = models.DateTimeField(_("since"), auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("suppressed address")
        verbose_name_plural = _("suppressed addresses")

    def __str__(self) -> str:
        return f"{self.email} ({self.get_reason_display()})"
