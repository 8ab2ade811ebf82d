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
from libraries.models import (
    Librarian,
    Library,
    MailingList,
    Region,
    RegionScopedQuerySet,
    ThroughLibraryQuerySet,
)


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


class DriveRowQuerySet(ThroughCampaignQuerySet):
    campaign_path = "drive"


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
    # Contribution drives (#1lib1ref): which edits count.
    hashtags = models.CharField(
        _("hashtags"), max_length=200, blank=True, help_text=_("For example #1lib1ref #1bib1ref.")
    )
    wikis = models.CharField(
        _("wikis"), max_length=200, blank=True, help_text=_("For example frwiki dewiki.")
    )
    starts_on = models.DateField(_("starts on"), null=True, blank=True)
    ends_on = models.DateField(_("ends on"), null=True, blank=True)
    public_leaderboard = models.BooleanField(
        _("public leaderboard"),
        default=False,
        help_text=_("Publish the drive's leaderboard of libraries (names only) for them to share."),
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

    # Lower-cased (see address_key).
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


class PullRun(models.Model):
    """One pull of a contribution drive's edits from the wikis: what it did and where it stopped."""

    class Status(models.TextChoices):
        RUNNING = "running", _("Running")
        DONE = "done", _("Done")
        FAILED = "failed", _("Failed")

    drive = models.ForeignKey(
        Campaign, on_delete=models.CASCADE, related_name="pull_runs", verbose_name=_("drive")
    )
    status = models.CharField(
        _("status"), max_length=16, choices=Status.choices, default=Status.RUNNING
    )
    started_at = models.DateTimeField(_("started"), auto_now_add=True)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)
    users = models.PositiveIntegerField(_("users"), default=0)
    requests = models.PositiveIntegerField(_("requests"), default=0)
    edits_seen = models.PositiveIntegerField(_("edits seen"), default=0)
    edits_kept = models.PositiveIntegerField(_("edits kept"), default=0)
    untagged_kept = models.PositiveIntegerField(_("untagged edits kept apart"), default=0)
    errors = models.TextField(_("errors"), blank=True)

    objects = DriveRowQuerySet.as_manager()

    class Meta:
        ordering = ["-started_at", "-pk"]
        verbose_name = _("pull run")
        verbose_name_plural = _("pull runs")

    def __str__(self) -> str:
        return f"{self.drive} — {self.started_at:%Y-%m-%d %H:%M}"


class PullCursor(models.Model):
    """How far a drive's pull got for one batch of usernames on one wiki.

    Everything before ``covered_until`` is stored. A pull that failed mid-way keeps the
    continuation ``token`` of the last page it stored (valid for ``window_end``), and the next
    pull resumes from there.
    """

    drive = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="pull_cursors")
    wiki = models.CharField(max_length=50)
    # The batch's usernames, sorted and hashed: a changed batch starts its own cursor.
    users_key = models.CharField(max_length=64)
    covered_until = models.DateTimeField(null=True, blank=True)
    token = models.CharField(max_length=255, blank=True)
    window_end = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["drive", "wiki", "users_key"], name="pull_cursor_once_per_batch"
            )
        ]

    def __str__(self) -> str:
        return f"{self.drive} {self.wiki} {self.users_key[:8]}"


class WikiAccount(models.Model):
    """What a wiki said about a librarian's username: missing names are not asked again
    until the username changes."""

    librarian = models.ForeignKey(Librarian, on_delete=models.CASCADE, related_name="wiki_accounts")
    wiki = models.CharField(_("wiki"), max_length=50)
    # As the librarian's record had it when asked, and as the wiki spells it.
    username = models.CharField(_("username"), max_length=255)
    wiki_name = models.CharField(_("name on the wiki"), max_length=255, blank=True)
    exists = models.BooleanField(_("exists"))
    bot = models.BooleanField(_("bot"), default=False)
    checked_at = models.DateTimeField(_("checked"), auto_now=True)

    class Meta:
        verbose_name = _("wiki account")
        verbose_name_plural = _("wiki accounts")
        constraints = [
            models.UniqueConstraint(fields=["librarian", "wiki"], name="wiki_account_once")
        ]

    def __str__(self) -> str:
        return f"{self.username}@{self.wiki}"


class ContributionQuerySet(ThroughLibraryQuerySet):
    def counted(self) -> "ContributionQuerySet":
        """The edits that count: tagged, or untagged ones a coordinator counted in."""
        return self.filter(models.Q(tagged=True) | models.Q(counted_in=True))


class Contribution(models.Model):
    """One wiki revision by a known librarian inside a drive's window.

    ``tagged`` edits carry one of the drive's hashtags and count. Untagged ones that add
    references are kept apart: a coordinator may count them in (``counted_in``), never silently.
    """

    drive = models.ForeignKey(
        Campaign, on_delete=models.CASCADE, related_name="contributions", verbose_name=_("drive")
    )
    librarian = models.ForeignKey(
        Librarian,
        on_delete=models.SET_NULL,
        null=True,
        related_name="contributions",
        verbose_name=_("librarian"),
    )
    library = models.ForeignKey(
        Library,
        on_delete=models.SET_NULL,
        null=True,
        related_name="contributions",
        verbose_name=_("library"),
    )
    wiki = models.CharField(_("wiki"), max_length=50)
    revid = models.PositiveBigIntegerField(_("revision"))
    parentid = models.PositiveBigIntegerField(_("parent revision"), default=0)
    page = models.CharField(_("page"), max_length=255)
    ns = models.IntegerField(_("namespace"), default=0)
    username = models.CharField(_("username"), max_length=255)
    timestamp = models.DateTimeField(_("time"))
    summary = models.TextField(_("summary"), blank=True)
    size_change = models.IntegerField(_("size change"), default=0)
    references_added = models.PositiveIntegerField(_("references added"), default=0)
    tagged = models.BooleanField(_("tagged"), default=True)
    counted_in = models.BooleanField(_("counted in"), default=False)
    created_at = models.DateTimeField(_("stored"), auto_now_add=True)

    objects = ContributionQuerySet.as_manager()

    class Meta:
        ordering = ["-timestamp", "-revid"]
        verbose_name = _("contribution")
        verbose_name_plural = _("contributions")
        constraints = [
            models.UniqueConstraint(fields=["wiki", "revid"], name="contribution_once_per_wiki")
        ]
        indexes = [models.Index(fields=["drive", "tagged", "timestamp"])]

    def __str__(self) -> str:
        return f"{self.wiki}:{self.revid}"

    @property
    def counts(self) -> bool:
        return self.tagged or self.counted_in


class ContributionTally(models.Model):
    """Counted #1lib1ref edits of one region: per week (Monday, local time), or over the whole
    trailing year (``week`` is then its first Monday and ``whole_year`` is set).

    Rebuilt from the contributions after every pull, every count-in and every night
    (``campaigns.services.contribution_tallies_refresh``), so that the dashboard reads a
    year of activity from a few hundred rows whatever the number of contributions. Distinct
    librarians and libraries add up across regions: each belongs to one region.
    """

    region = models.ForeignKey(Region, on_delete=models.CASCADE, related_name="+")
    week = models.DateField(_("week"))
    whole_year = models.BooleanField(default=False)
    edits = models.PositiveIntegerField(default=0)
    references = models.PositiveIntegerField(default=0)
    librarians = models.PositiveIntegerField(default=0)
    libraries = models.PositiveIntegerField(default=0)
    computed_at = models.DateTimeField()

    objects = RegionScopedQuerySet.as_manager()

    class Meta:
        verbose_name = _("contribution tally")
        verbose_name_plural = _("contribution tallies")
        constraints = [
            models.UniqueConstraint(
                fields=["region", "whole_year", "week"], name="contribution_tally_once"
            )
        ]

    def __str__(self) -> str:
        return f"{self.region} {self.week}: {self.edits}"
