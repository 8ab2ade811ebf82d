"""#1lib1ref drives: which edits count, the edits pulled from the wikis, and how far each pull got.

A ``Drive`` says which edits count (hashtags, wikis, a window). Its pulls (``PullRun``) store
each matching revision once as a ``Contribution`` (wiki + revision id) and remember where they
stopped (``PullCursor``); what a wiki said about a librarian's username is a ``WikiAccount``.
``ContributionTally`` holds the counted edits per region and week, for the dashboard.
"""

from datetime import timedelta

from django.conf import settings
from django.db import models
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from core.roles import visible_region_ids
from libraries.models import (
    Librarian,
    Library,
    Region,
    RegionScopedQuerySet,
    ThroughLibraryQuerySet,
)


class DriveQuerySet(models.QuerySet):
    def visible_to(self, user) -> "DriveQuerySet":
        """Every drive for coordinators; for an ambassador, the drives whose regions are all
        theirs (at least one): a drive without a region is the coordinators' own."""
        region_ids = visible_region_ids(user)
        if region_ids is None:
            return self
        regions = Drive.regions.through.objects.filter(drive_id=models.OuterRef("pk"))
        return self.filter(models.Exists(regions.filter(region_id__in=region_ids))).exclude(
            models.Exists(regions.exclude(region_id__in=region_ids))
        )


class ThroughDriveQuerySet(models.QuerySet):
    """Rows of a drive: whoever sees the drive sees them."""

    def visible_to(self, user) -> "ThroughDriveQuerySet":
        if visible_region_ids(user) is None:
            return self
        return self.filter(drive__in=Drive.objects.visible_to(user))


class Drive(models.Model):
    """A contribution drive such as #1lib1ref: which edits count, and where they are counted."""

    title = models.CharField(_("title"), max_length=200)
    hashtags = models.CharField(
        _("hashtags"), max_length=200, help_text=_("For example #1lib1ref #1bib1ref.")
    )
    wikis = models.CharField(_("wikis"), max_length=200, help_text=_("For example frwiki dewiki."))
    # Required by the form; null only for drives that came without dates from campaigns.
    starts_on = models.DateField(_("starts on"), null=True, blank=True)
    ends_on = models.DateField(_("ends on"), null=True, blank=True)
    public_leaderboard = models.BooleanField(
        _("public leaderboard"),
        default=False,
        help_text=_("Publish the drive's leaderboard of libraries (names only) for them to share."),
    )
    regions = models.ManyToManyField(
        Region, blank=True, related_name="+", verbose_name=_("regions")
    )
    # When the whole window was read again after it closed, for the edits that came late.
    window_reread_at = models.DateTimeField(null=True, blank=True, editable=False)
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

    objects = DriveQuerySet.as_manager()

    class Meta:
        # The latest first; a drive without dates (one that came from campaigns) last.
        ordering = [models.F("starts_on").desc(nulls_last=True), "-pk"]
        verbose_name = _("contribution drive")
        verbose_name_plural = _("contribution drives")

    def __str__(self) -> str:
        return self.title

    def get_absolute_url(self) -> str:
        return reverse("drives:drive-detail", kwargs={"pk": self.pk})


class PullRunQuerySet(ThroughDriveQuerySet):
    def live(self, *, now=None) -> "PullRunQuerySet":
        """Runs whose worker was heard of within the lease (DRIVES_PULL_LEASE_SECONDS)."""
        return self.filter(status=PullRun.Status.RUNNING, heartbeat_at__gte=_lease_start(now))

    def stale(self, *, now=None) -> "PullRunQuerySet":
        """Runs still marked running whose worker has not been heard of for a lease: dead."""
        return self.filter(status=PullRun.Status.RUNNING).filter(
            models.Q(heartbeat_at__lt=_lease_start(now)) | models.Q(heartbeat_at__isnull=True)
        )


def _lease_start(now):
    return (now or timezone.now()) - timedelta(seconds=settings.DRIVES_PULL_LEASE_SECONDS)


class PullRun(models.Model):
    """One pull of a drive's edits from the wikis: what it did and where it stopped.

    A running pull beats (``heartbeat_at``) at every page it stores; one not heard of for a
    lease died with its worker and is closed as interrupted: what it stored stays, and the
    next pull resumes from the cursors.
    """

    class Status(models.TextChoices):
        RUNNING = "running", _("Running")
        DONE = "done", _("Done")
        FAILED = "failed", _("Failed")
        INTERRUPTED = "interrupted", _("Interrupted")

    drive = models.ForeignKey(
        Drive, on_delete=models.CASCADE, related_name="pull_runs", verbose_name=_("drive")
    )
    status = models.CharField(
        _("status"), max_length=16, choices=Status.choices, default=Status.RUNNING
    )
    started_at = models.DateTimeField(_("started"), auto_now_add=True)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)
    heartbeat_at = models.DateTimeField(_("last heard of"), null=True, blank=True)
    users = models.PositiveIntegerField(_("users"), default=0)
    requests = models.PositiveIntegerField(_("requests"), default=0)
    edits_seen = models.PositiveIntegerField(_("edits seen"), default=0)
    edits_kept = models.PositiveIntegerField(_("edits kept"), default=0)
    untagged_kept = models.PositiveIntegerField(_("untagged edits kept apart"), default=0)
    errors = models.TextField(_("errors"), blank=True)

    objects = PullRunQuerySet.as_manager()

    class Meta:
        ordering = ["-started_at", "-pk"]
        verbose_name = _("pull run")
        verbose_name_plural = _("pull runs")

    def __str__(self) -> str:
        return f"{self.drive} — {self.started_at:%Y-%m-%d %H:%M}"


class PullCursor(models.Model):
    """How far a drive's pull got for one batch of usernames on one wiki.

    Everything before ``covered_until`` is stored. A pull that failed mid-way keeps the
    continuation ``token`` of the last page it stored (valid for its window), and the next
    pull resumes from there.
    """

    drive = models.ForeignKey(Drive, on_delete=models.CASCADE, related_name="pull_cursors")
    wiki = models.CharField(max_length=50)
    # The batch's usernames, sorted and hashed: a changed batch starts its own cursor.
    users_key = models.CharField(max_length=64)
    covered_until = models.DateTimeField(null=True, blank=True)
    token = models.CharField(max_length=255, blank=True)
    # The window the token belongs to: a resumed pull asks with the same one.
    window_start = models.DateTimeField(null=True, blank=True)
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
        """The edits that count in at least one drive: tagged with its hashtags, or counted in
        by a coordinator. Each is one edit, however many drives it counts in."""
        return self.filter(
            models.Exists(
                DriveContribution.objects.counted().filter(contribution=models.OuterRef("pk"))
            )
        )

    def in_drive(self, drive: "Drive", *, counted: bool = False) -> "ContributionQuerySet":
        """The edits ``drive`` kept, each with what it is for that drive: ``tagged``,
        ``counted_in`` and ``link_id`` (its DriveContribution); only those that count in it
        with ``counted``."""
        rows = self.filter(links__drive=drive).annotate(
            tagged=models.F("links__tagged"),
            counted_in=models.F("links__counted_in"),
            link_id=models.F("links__pk"),
        )
        if counted:
            rows = rows.filter(models.Q(tagged=True) | models.Q(counted_in=True))
        return rows


class Contribution(models.Model):
    """One wiki revision, stored once (wiki + revision id) whatever the drives it counts in.

    What it is for each drive (tagged with its hashtags, or kept apart and counted in by a
    coordinator) is its ``DriveContribution``; an edit in the window and with the hashtags of
    two drives counts in both, and is one edit in its library's activity.
    """

    drives = models.ManyToManyField(
        Drive,
        through="DriveContribution",
        related_name="contributions",
        verbose_name=_("drives"),
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
    # False while the revision's text or its parent's could not be read (deleted, hidden,
    # too large to be sent): its references are unknown, counted as none, and read again.
    texts_read = models.BooleanField(_("texts read"), default=True)
    created_at = models.DateTimeField(_("stored"), auto_now_add=True)

    objects = ContributionQuerySet.as_manager()

    class Meta:
        ordering = ["-timestamp", "-revid"]
        verbose_name = _("contribution")
        verbose_name_plural = _("contributions")
        constraints = [
            models.UniqueConstraint(fields=["wiki", "revid"], name="contribution_once_per_wiki")
        ]
        indexes = [models.Index(fields=["timestamp"])]

    def __str__(self) -> str:
        return f"{self.wiki}:{self.revid}"


class DriveContributionQuerySet(models.QuerySet):
    def counted(self) -> "DriveContributionQuerySet":
        """The links that count: tagged, or untagged ones a coordinator counted in."""
        return self.filter(models.Q(tagged=True) | models.Q(counted_in=True))


class DriveContribution(models.Model):
    """What one stored edit is for one drive.

    ``tagged`` edits carry one of the drive's hashtags and count. Untagged ones that add
    references are kept apart: a coordinator may count them in (``counted_in``), never silently.
    """

    drive = models.ForeignKey(
        Drive, on_delete=models.CASCADE, related_name="links", verbose_name=_("drive")
    )
    contribution = models.ForeignKey(
        Contribution, on_delete=models.CASCADE, related_name="links", verbose_name=_("contribution")
    )
    tagged = models.BooleanField(_("tagged"), default=True)
    counted_in = models.BooleanField(_("counted in"), default=False)
    created_at = models.DateTimeField(_("stored"), auto_now_add=True)

    objects = DriveContributionQuerySet.as_manager()

    class Meta:
        verbose_name = _("contribution to a drive")
        verbose_name_plural = _("contributions to drives")
        constraints = [
            models.UniqueConstraint(
                fields=["drive", "contribution"], name="drive_contribution_once"
            )
        ]
        indexes = [models.Index(fields=["drive", "tagged", "counted_in"])]

    def __str__(self) -> str:
        return f"{self.drive}: {self.contribution}"

    @property
    def counts(self) -> bool:
        return self.tagged or self.counted_in


class LeadQuerySet(models.QuerySet):
    def visible_to(self, user) -> "LeadQuerySet":
        """Every lead for coordinators; for an ambassador, those linked to their regions'
        librarians, and those not linked yet whose wiki speaks a language of their regions
        (an account on frwiki may be anywhere French is spoken)."""
        region_ids = visible_region_ids(user)
        if region_ids is None:
            return self
        languages = Region.objects.filter(pk__in=region_ids).values("language")
        return self.filter(
            models.Q(librarian__library__region__in=region_ids)
            | models.Q(librarian__isnull=True, language__in=languages)
        )


class Lead(models.Model):
    """A wiki account that used a drive's hashtags but is no librarian of the directory: an
    active participant the chapter does not know yet (the method's "identify the active
    librarians"). A coordinator links it to a librarian, makes one from it, or dismisses it;
    a linked lead's edits count for the librarian's library."""

    class Status(models.TextChoices):
        NEW = "new", _("To look at")
        LINKED = "linked", _("Linked to a librarian")
        DISMISSED = "dismissed", _("Dismissed")

    wiki = models.CharField(_("wiki"), max_length=50)
    # As the wiki spells it.
    username = models.CharField(_("username"), max_length=255)
    # The wiki's language ("fr" for frwiki), which says whose region it may be.
    language = models.CharField(_("language"), max_length=12, blank=True)
    status = models.CharField(
        _("status"), max_length=16, choices=Status.choices, default=Status.NEW
    )
    librarian = models.ForeignKey(
        Librarian,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="leads",
        verbose_name=_("librarian"),
    )
    first_seen_at = models.DateTimeField(_("first seen"), auto_now_add=True)
    decided_at = models.DateTimeField(_("decided"), null=True, blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("decided by"),
    )

    objects = LeadQuerySet.as_manager()

    class Meta:
        ordering = ["-first_seen_at", "pk"]
        verbose_name = _("lead")
        verbose_name_plural = _("leads")
        constraints = [models.UniqueConstraint(fields=["wiki", "username"], name="lead_once")]
        indexes = [models.Index(fields=["status", "language"])]

    def __str__(self) -> str:
        return f"{self.username}@{self.wiki}"

    def get_absolute_url(self) -> str:
        return reverse("drives:lead-detail", kwargs={"pk": self.pk})


class ContributionTally(models.Model):
    """Counted #1lib1ref edits of one region: per week (Monday, local time), or over the whole
    trailing year (``week`` is then its first Monday and ``whole_year`` is set).

    Rebuilt from the contributions after every pull, every count-in and every night
    (``drives.services.contribution_tallies_refresh``), so that the dashboard reads a year of
    activity from a few hundred rows whatever the number of contributions. Distinct
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


class StreamPosition(models.Model):
    """Where the live capture of an event stream got: the id of the last event it read, sent
    back as ``Last-Event-ID`` when it reconnects (drives.streams)."""

    url = models.URLField(max_length=500, unique=True)
    last_event_id = models.TextField(blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return self.url
