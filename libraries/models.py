"""Regions, libraries, mailing lists, librarians and the activity signals observed about them."""

import zoneinfo

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models.functions import Lower
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from core.roles import visible_region_ids


def normalize_languages(codes: list[str] | str) -> str:
    """Language codes as ``Library.languages`` keeps them: "de,fr", sorted, lower-case."""
    if isinstance(codes, str):
        codes = codes.replace(";", ",").replace("|", ",").replace(" ", ",").split(",")
    return ",".join(sorted({c.strip().lower() for c in codes if c.strip()}))


def validate_time_zone(value: str) -> None:
    if value not in zoneinfo.available_timezones():
        raise ValidationError(_("%(value)s is not an IANA time zone."), params={"value": value})


class HttpsURLField(models.URLField):
    """A URL field whose forms take "www.bibliotheque.ch" as https://www.bibliotheque.ch."""

    def formfield(self, **kwargs):
        return super().formfield(**{"assume_scheme": "https", **kwargs})


class RegionScopedQuerySet(models.QuerySet):
    """Rows a user may see: every row for coordinators, their regions' rows for ambassadors.

    The one place where ambassadors are kept to their regions: every coordinator view,
    form and selector starts from ``Model.objects.visible_to(user)``. ``region_path`` is
    the lookup from the model to its region; rows without a region are coordinators' only.
    """

    region_path = "region"

    def with_scale(self) -> "RegionScopedQuerySet":
        """Each row with the scores' scale (``score_scale``), so that ``score``, ``activity``
        and ``contribution`` read no other row: a subquery the database evaluates once."""
        return self.annotate(score_scale=models.Subquery(ScoreBasis.objects.values("scale")[:1]))

    def visible_to(self, user) -> "RegionScopedQuerySet":
        region_ids = visible_region_ids(user)
        if region_ids is None:
            return self
        return self.filter(**{f"{self.region_path}__in": region_ids})


class RegionQuerySet(RegionScopedQuerySet):
    region_path = "pk"


class ThroughLibraryQuerySet(RegionScopedQuerySet):
    """Rows that belong to a library: its region is theirs."""

    region_path = "library__region"


class Region(models.Model):
    """A place with its own language and time zone (a canton, a country).

    Its ambassadors are regional volunteers who see and act on its libraries only.
    """

    name = models.CharField(_("name"), max_length=100, unique=True)
    slug = models.SlugField(_("slug"), max_length=100, unique=True)
    language = models.CharField(
        _("language"), max_length=8, choices=settings.CONTENT_LANGUAGES, default="fr"
    )
    time_zone = models.CharField(
        _("time zone"), max_length=64, default="Europe/Zurich", validators=[validate_time_zone]
    )
    ambassadors = models.ManyToManyField(
        settings.AUTH_USER_MODEL,
        blank=True,
        related_name="ambassador_regions",
        verbose_name=_("ambassadors"),
        help_text=_("Regional volunteers who see and act on this region's libraries only."),
    )

    objects = RegionQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        verbose_name = _("region")
        verbose_name_plural = _("regions")
        permissions = [
            # Coordinators hold it; ambassadors see only the regions they are ambassadors of.
            ("view_all_regions", _("Can see and act on every region")),
        ]

    def __str__(self) -> str:
        return self.name


class LibraryQuerySet(RegionScopedQuerySet):
    def speaking(self, language: str) -> "LibraryQuerySet":
        """Libraries whose comma-separated ``languages`` include ``language``."""
        return self.filter(languages__regex=rf"(^|,){language}(,|$)")

    def search(self, text: str) -> "LibraryQuerySet":
        text = text.strip()
        if not text:
            return self
        # A subquery rather than a join: no duplicate rows, and annotations stay whole.
        matching_librarians = Librarian.objects.filter(
            models.Q(name__icontains=text) | models.Q(email__icontains=text)
        ).values("library_id")
        return self.filter(
            models.Q(name__icontains=text)
            | models.Q(city__icontains=text)
            | models.Q(pk__in=matching_librarians)
        )


class Library(models.Model):
    """A library, and where it stands in the outreach pipeline."""

    class Status(models.TextChoices):
        PROSPECT = "prospect", _("Prospect")
        CONTACTED = "contacted", _("Contacted")
        INTERESTED = "interested", _("Interested")
        PARTNER = "partner", _("Partner")
        DORMANT = "dormant", _("Dormant")

    name = models.CharField(_("name"), max_length=200)
    slug = models.SlugField(_("slug"), max_length=220, unique=True)
    region = models.ForeignKey(
        Region, on_delete=models.PROTECT, related_name="libraries", verbose_name=_("region")
    )
    city = models.CharField(_("city"), max_length=100)
    address = models.TextField(_("address"), blank=True)
    website = HttpsURLField(_("website"), blank=True)
    # Content-language codes, comma-separated and sorted ("de,fr"): most libraries speak
    # one language, bilingual regions have some with two. A string filters the same way on
    # SQLite and PostgreSQL (see LibraryQuerySet.speaking).
    languages = models.CharField(_("languages"), max_length=50, default="fr")
    status = models.CharField(
        _("status"), max_length=16, choices=Status.choices, default=Status.PROSPECT
    )
    status_changed_at = models.DateTimeField(_("status changed"), null=True, blank=True)
    # The activity score at the scores' basis (ScoreBasis.epoch), written by the score
    # refresh only when the library's signals change; empty until the refresh first runs.
    # ``score`` is the score itself, as of the last refresh.
    score_base = models.FloatField(_("activity score"), null=True, blank=True, editable=False)
    notes = models.TextField(_("notes"), blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    objects = LibraryQuerySet.as_manager()

    score = property(lambda self: scaled(self, self.score_base))

    class Meta:
        ordering = ["name", "city"]
        verbose_name = _("library")
        verbose_name_plural = _("libraries")
        constraints = [
            # The import matches libraries by name and city: two rows that differ only by
            # case are the same library.
            models.UniqueConstraint(
                Lower("name"), Lower("city"), name="library_name_city_unique_ci"
            ),
        ]
        indexes = [
            models.Index(fields=["status"]),
            models.Index(fields=["region", "status"]),
            # The library list's order: its pages are read off the index.
            models.Index(fields=["name", "city"]),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.city})"

    def get_absolute_url(self) -> str:
        return reverse("libraries:library-detail", kwargs={"slug": self.slug})

    @property
    def language_list(self) -> list[str]:
        return [code for code in self.languages.split(",") if code]

    def get_languages_display(self) -> str:
        names = dict(settings.CONTENT_LANGUAGES)
        return ", ".join(str(names.get(code, code)) for code in self.language_list)


class LibraryStatusChange(models.Model):
    """One step of a library through the pipeline: who or what moved it, when and why."""

    library = models.ForeignKey(
        Library, on_delete=models.CASCADE, related_name="status_changes", verbose_name=_("library")
    )
    from_status = models.CharField(
        _("from status"), max_length=16, choices=Library.Status.choices, blank=True
    )
    to_status = models.CharField(_("to status"), max_length=16, choices=Library.Status.choices)
    changed_at = models.DateTimeField(_("changed"), db_index=True)
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("changed by"),
    )
    # What made the change when no person did, or how they did it: "manual", "import",
    # "campaign answer", …
    source = models.CharField(_("source"), max_length=100, blank=True)
    reason = models.TextField(_("reason"), blank=True)

    objects = ThroughLibraryQuerySet.as_manager()

    class Meta:
        ordering = ["-changed_at", "-id"]
        verbose_name = _("status change")
        verbose_name_plural = _("status changes")

    def __str__(self) -> str:
        return f"{self.library}: {self.from_status or '∅'} → {self.to_status}"


class MailingList(models.Model):
    """A channel libraries use to talk to each other, usually a regional mailing list."""

    name = models.CharField(_("name"), max_length=200, unique=True)
    slug = models.SlugField(_("slug"), max_length=220, unique=True)
    posting_address = models.EmailField(_("posting address"))
    # Most list software holds posts from non-members for moderation: the chapter posts
    # from the address it is subscribed with.
    subscribed_as = models.EmailField(_("subscribed as"), blank=True)
    network = models.CharField(_("network"), max_length=200, blank=True)
    region = models.ForeignKey(
        Region,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="mailing_lists",
        verbose_name=_("region"),
    )
    language = models.CharField(
        _("language"), max_length=8, choices=settings.CONTENT_LANGUAGES, default="fr"
    )
    moderators = models.CharField(_("moderated by"), max_length=200, blank=True)
    members = models.ManyToManyField(
        Library, blank=True, related_name="mailing_lists", verbose_name=_("member libraries")
    )
    notes = models.TextField(_("notes"), blank=True)

    objects = RegionScopedQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        verbose_name = _("mailing list")
        verbose_name_plural = _("mailing lists")

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("libraries:mailinglist-detail", kwargs={"slug": self.slug})


class LibrarianQuerySet(RegionScopedQuerySet):
    region_path = "library__region"

    def search(self, text: str) -> "LibrarianQuerySet":
        text = text.strip()
        if not text:
            return self
        return self.filter(
            models.Q(name__icontains=text)
            | models.Q(email__icontains=text)
            | models.Q(wiki_username__icontains=text)
            | models.Q(library__name__icontains=text)
        )

    def reachable(self) -> "LibrarianQuerySet":
        return self.filter(unsubscribed_at__isnull=True).exclude(email="")

    def shortlist(self) -> "LibrarianQuerySet":
        """Shortlisted librarians, ranked: by their library's score when scores exist,
        then by the rank a coordinator gave by hand."""
        return self.filter(shortlist_rank__isnull=False).order_by(
            models.F("library__score_base").desc(nulls_last=True), "shortlist_rank", "name"
        )


class Librarian(models.Model):
    """A person at a library. Their email is personal data: never shown on a public page."""

    library = models.ForeignKey(
        Library, on_delete=models.CASCADE, related_name="librarians", verbose_name=_("library")
    )
    name = models.CharField(_("name"), max_length=200)
    email = models.EmailField(_("email"))
    role = models.CharField(_("role"), max_length=200, blank=True)
    language = models.CharField(
        _("language"), max_length=8, choices=settings.CONTENT_LANGUAGES, default="fr"
    )
    wiki_username = models.CharField(_("wiki username"), max_length=255, blank=True)
    home_wiki = models.CharField(
        _("home wiki"), max_length=50, blank=True, help_text=_("For example frwiki or dewiki.")
    )
    consent_source = models.CharField(
        _("consent source"),
        max_length=200,
        blank=True,
        help_text=_("Where the address comes from and why we may write to it."),
    )
    consent_at = models.DateField(_("consent date"), null=True, blank=True)
    unsubscribed_at = models.DateTimeField(_("unsubscribed"), null=True, blank=True)
    shortlist_rank = models.PositiveSmallIntegerField(
        _("shortlist rank"),
        null=True,
        blank=True,
        help_text=_(
            "On the shortlist of librarians to contact directly: 1 first. Empty: not on it."
        ),
    )
    notes = models.TextField(_("notes"), blank=True)
    # The weighted, decayed sum of the signals naming this librarian at the scores' basis,
    # written by the score refresh with the libraries' scores (libraries.scoring); ``activity``
    # is the sum itself, as of the last refresh. db_default as well: rows inserted in SQL
    # (the benchmarks fill their databases so) count 0 until their signals are refreshed.
    activity_base = models.FloatField(_("activity"), default=0.0, db_default=0.0, editable=False)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    objects = LibrarianQuerySet.as_manager()

    activity = property(lambda self: scaled(self, self.activity_base) or 0.0)

    class Meta:
        ordering = ["name"]
        verbose_name = _("librarian")
        verbose_name_plural = _("librarians")
        constraints = [
            # One person, one address: Anne@Example.org and anne@example.org are the same.
            models.UniqueConstraint(Lower("email"), name="librarian_email_unique_ci"),
        ]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("libraries:librarian-update", kwargs={"pk": self.pk})


# What a signal's scores depend on: changing one of these counts its library and librarian
# again at the next score refresh (libraries.scoring).
SCORED_FIELDS = ("library_id", "librarian_id", "kind", "occurred_at")


def signals_recount(pairs) -> None:
    """Mark each (library_id, librarian_id) of ``pairs`` for a recount at the next refresh."""
    ScoreRecount.objects.bulk_create(
        ScoreRecount(library_id=library_id, librarian_id=librarian_id)
        for library_id, librarian_id in set(pairs)
    )


class ActivitySignalQuerySet(ThroughLibraryQuerySet):
    """The nightly score refresh adds the signals recorded since the last one; one edited or
    deleted afterwards would stay counted as it was. So deleting or updating signals marks
    their libraries and librarians for a recount (``ScoreRecount``), in the same
    transaction, with one more query for all of them. Deleting a library or a librarian
    needs none: their sums go with them (a librarian's signals stay their library's)."""

    def _pairs(self):
        return self.order_by().values_list("library_id", "librarian_id").distinct()

    def delete(self):
        signals_recount(self._pairs())
        return super().delete()

    delete.alters_data = True
    delete.queryset_only = True

    def update(self, **kwargs):
        if not {field.removesuffix("_id") for field in SCORED_FIELDS} & {
            field.removesuffix("_id") for field in kwargs
        }:
            return super().update(**kwargs)
        pks = list(self.values_list("pk", flat=True))
        signals_recount(self._pairs())
        updated = super().update(**kwargs)
        signals_recount(ActivitySignal.objects.filter(pk__in=pks)._pairs())
        return updated

    update.alters_data = True
    update.queryset_only = False


class ActivitySignal(models.Model):
    """One observed fact about a library (and optionally one of its librarians).

    Signals are what scores are made of. Other apps record them as things happen; a
    coordinator records the rest by hand.
    """

    class Kind(models.TextChoices):
        LIST_REPLY = "list_reply", _("Replied on a mailing list")
        INVITATION_YES = "invitation_yes", _("Accepted an invitation")
        INVITATION_MAYBE = "invitation_maybe", _("Answered “maybe” to an invitation")
        INVITATION_NO = "invitation_no", _("Declined an invitation")
        RSVP_YES = "rsvp_yes", _("Said yes to a meetup")
        ATTENDED = "attended", _("Attended a meetup")
        HOSTED_MEETUP = "hosted_meetup", _("Hosted a meetup")
        TAGGED_EDIT = "tagged_edit", _("Made a tagged edit")
        REFERENCE_ADDED = "reference_added", _("Added a reference")
        STORY = "story", _("Shared a success story")
        CONTACT = "contact", _("Was in contact")

    library = models.ForeignKey(
        Library, on_delete=models.CASCADE, related_name="signals", verbose_name=_("library")
    )
    librarian = models.ForeignKey(
        Librarian,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="signals",
        verbose_name=_("librarian"),
    )
    kind = models.CharField(_("kind"), max_length=32, choices=Kind.choices)
    occurred_at = models.DateTimeField(_("when"))
    # Where the fact was observed: "manual", "import", "campaign 12", a wiki revision, …
    source = models.CharField(_("source"), max_length=200, blank=True)
    note = models.TextField(_("note"), blank=True)
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("recorded by"),
    )
    created_at = models.DateTimeField(_("recorded"), auto_now_add=True)

    objects = ActivitySignalQuerySet.as_manager()

    class Meta:
        ordering = ["-occurred_at", "-id"]
        verbose_name = _("activity signal")
        verbose_name_plural = _("activity signals")
        indexes = [models.Index(fields=["library", "-occurred_at"])]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} — {self.library}"

    def save(self, *args, **kwargs):
        # An edit: the library and librarian before and after it are counted again.
        if not self._state.adding and self.pk is not None:
            before = ActivitySignal.objects.filter(pk=self.pk).values_list(*SCORED_FIELDS).first()
            after = tuple(getattr(self, field) for field in SCORED_FIELDS)
            if before is not None and before != after:
                signals_recount([before[:2], after[:2]])
        super().save(*args, **kwargs)

    save.alters_data = True

    def delete(self, *args, **kwargs):
        signals_recount([(self.library_id, self.librarian_id)])
        return super().delete(*args, **kwargs)

    delete.alters_data = True


class LibraryScorePart(models.Model):
    """What one kind of signal adds to a library's score, as the last refresh computed it.

    The refresh (libraries.scoring) adds each night's new signals to the parts of their
    library and kind, and recounts a library's parts from all its signals when one was
    edited or deleted: a library's parts add up to its score, and the pages that explain a
    score read them rather than the signals. ``base`` is the contribution at the scores'
    basis; ``contribution``, as of the last refresh. A library has no parts before its
    first refresh, nor while it has no signal.
    """

    library = models.ForeignKey(
        Library,
        on_delete=models.CASCADE,
        related_name="score_parts",
        verbose_name=_("library"),
        # The unique (library, kind) index starts with the library: it serves lookups by
        # library, and a second index would only slow the refresh's writes.
        db_index=False,
        # No constraint in the database: a full recount rewrites every row (150,000 for
        # 20,000 libraries), and checking each one's library costs as much as inserting
        # them. The rows come from signals, whose library does exist, and deleting a library
        # still deletes its parts (Django's CASCADE runs in the ORM either way).
        db_constraint=False,
    )
    kind = models.CharField(_("kind"), max_length=32, choices=ActivitySignal.Kind.choices)
    signal_count = models.PositiveIntegerField(_("signals"))
    base = models.FloatField(_("contribution"))

    objects = ThroughLibraryQuerySet.as_manager()

    contribution = property(lambda self: scaled(self, self.base))

    class Meta:
        # library_id, not library: ordering by the relation would join Library for its order.
        ordering = ["library_id", "-base", "kind"]
        verbose_name = _("score part")
        verbose_name_plural = _("score parts")
        constraints = [
            models.UniqueConstraint(fields=["library", "kind"], name="score_part_one_per_kind"),
        ]

    def __str__(self) -> str:
        return f"{self.library}: {self.get_kind_display()} {self.contribution or 0:.1f}"


class ScoreBasis(models.Model):
    """Where the stored scores stand: one row, written by every refresh (libraries.scoring).

    A decayed sum carries forward: a signal of weight *w* dated *t* counts
    ``w * 2 ** ((t - epoch) / H)`` at the basis, and every stored sum (library scores, their
    parts, librarians' activity) is a sum of such terms, so a night's refresh only adds the
    terms of the signals that arrived. The score at the last refresh is the stored sum times
    ``scale`` (``2 ** -((as_of - epoch) / H)``), the same factor for every row: it moves all
    of them by decaying, and their order not at all. Signals up to ``watermark`` (an id)
    are counted. ``weights`` and ``half_life_days`` are those the sums were made with: when
    the settings differ, the next refresh recounts everything.
    """

    epoch = models.DateTimeField(_("basis"))
    as_of = models.DateTimeField(_("computed"))
    scale = models.FloatField(_("scale"))
    watermark = models.BigIntegerField(_("last signal counted"), default=0)
    half_life_days = models.FloatField(_("half-life in days"))
    weights = models.JSONField(_("weights"))
    recounted_at = models.DateTimeField(_("last full recount"))
    checked_at = models.DateTimeField(_("last check"), null=True, blank=True)
    check_difference = models.FloatField(_("largest relative difference"), null=True, blank=True)

    class Meta:
        verbose_name = _("score basis")
        verbose_name_plural = _("score basis")

    def __str__(self) -> str:
        return f"scores as of {self.as_of:%Y-%m-%d %H:%M}"


class ScoreRecount(models.Model):
    """A library or a librarian whose sums the next refresh counts again from all their signals.

    Written when a signal is edited or deleted (``ActivitySignal.save`` and ``delete``, and
    their queryset's), and by the refresh itself for a signal dated after its time (which
    counts as new until then). Not foreign keys: a deleted library or librarian leaves
    nothing to recount, and that is all.
    """

    library_id = models.BigIntegerField(null=True)
    librarian_id = models.BigIntegerField(null=True)

    def __str__(self) -> str:
        return f"recount library {self.library_id}, librarian {self.librarian_id}"


def scaled(row, base: float | None) -> float | None:
    """A stored sum as of the last refresh: ``base`` times the basis's scale.

    The scale comes from the row when its queryset annotated it (``with_scale()``: the lists
    do, one subquery in their own query), else from the basis, read once per row.
    """
    if base is None:
        return None
    if not hasattr(row, "score_scale"):
        row.score_scale = ScoreBasis.objects.values_list("scale", flat=True).first()
    return None if row.score_scale is None else base * row.score_scale


class LibraryScoreSnapshot(models.Model):
    """A library's score as a refresh computed it: the trend.

    A row for each day on which the library's signals changed (and for every library on the
    day of a full recount); between two rows the score only decayed, so the trend of the
    days without a row follows from the row before (``scoring.score_trend``). Refreshing
    again on the same day overwrites that day's row (libraries.scoring).
    """

    library = models.ForeignKey(
        Library,
        on_delete=models.CASCADE,
        related_name="score_snapshots",
        verbose_name=_("library"),
        # The unique (library, date) index starts with the library: a second index on it
        # alone would only slow the nightly insert of every library's row.
        db_index=False,
    )
    date = models.DateField(_("date"))
    score = models.FloatField(_("score"))
    computed_at = models.DateTimeField(_("computed"))

    objects = ThroughLibraryQuerySet.as_manager()

    class Meta:
        ordering = ["library", "-date"]
        verbose_name = _("score snapshot")
        verbose_name_plural = _("score snapshots")
        constraints = [
            # Also the index of "the last 30 days of this library", and the conflict target
            # of the refresh's upsert.
            models.UniqueConstraint(fields=["library", "date"], name="score_snapshot_one_per_day"),
        ]

    def __str__(self) -> str:
        return f"{self.library}: {self.score:.1f} ({self.date})"
