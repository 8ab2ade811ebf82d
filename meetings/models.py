"""Meetup series (regular Wikipermanences), their meetings, and who comes."""

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import models
from django.db.models.functions import Coalesce, Lower
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from libraries.models import (
    HttpsURLField,
    Librarian,
    Library,
    RegionScopedQuerySet,
    validate_time_zone,
)

from .recurrence import Rule


class SeriesQuerySet(RegionScopedQuerySet):
    region_path = "host_library__region"


class MeetupSeries(models.Model):
    """A regular meetup at a host library, held on a fixed rule (every first Thursday at noon)."""

    class Status(models.TextChoices):
        DRAFT = "draft", _("Draft")
        ACTIVE = "active", _("Active")
        ENDED = "ended", _("Ended")

    title = models.CharField(_("title"), max_length=200)
    slug = models.SlugField(_("slug"), max_length=220, unique=True)
    host_library = models.ForeignKey(
        Library,
        on_delete=models.PROTECT,
        related_name="meetup_series",
        verbose_name=_("host library"),
    )
    venue = models.TextField(
        _("venue"), blank=True, help_text=_("Room, floor, how to find it in the library.")
    )
    language = models.CharField(
        _("language"), max_length=8, choices=settings.CONTENT_LANGUAGES, default="fr"
    )
    time_zone = models.CharField(
        _("time zone"), max_length=64, default="Europe/Zurich", validators=[validate_time_zone]
    )
    # An RFC 5545 RRULE value, e.g. "FREQ=MONTHLY;BYDAY=+1TH" (see meetings.recurrence).
    rrule = models.CharField(_("recurrence rule"), max_length=200)
    start_date = models.DateField(_("first date"))
    start_time = models.TimeField(_("start time"))
    duration = models.DurationField(_("duration"), default=timedelta(hours=2))
    capacity = models.PositiveIntegerField(
        _("capacity"), null=True, blank=True, help_text=_("Empty for no limit.")
    )
    online_url = HttpsURLField(_("online link"), blank=True)
    description = models.TextField(_("description"), blank=True)
    audience = models.TextField(_("who it is for"), blank=True)
    what_to_bring = models.TextField(_("what to bring"), blank=True)
    status = models.CharField(
        _("status"), max_length=16, choices=Status.choices, default=Status.ACTIVE
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    objects = SeriesQuerySet.as_manager()

    class Meta:
        ordering = ["title"]
        verbose_name = _("meetup series")
        verbose_name_plural = _("meetup series")

    def __str__(self) -> str:
        return self.title

    def get_absolute_url(self) -> str:
        return reverse("meetings:series-detail", kwargs={"slug": self.slug})

    @property
    def rule(self) -> Rule:
        return Rule.from_rrule(self.rrule)

    def describe_rule(self) -> str:
        return self.rule.describe(self.start_time)


class MeetingQuerySet(RegionScopedQuerySet):
    # One-off meetings without a host library (online office hours) are coordinators' only.
    region_path = "host_library__region"

    def upcoming(self) -> "MeetingQuerySet":
        return self.filter(end__gte=timezone.now(), cancelled_at__isnull=True)

    def public(self) -> "MeetingQuerySet":
        return self.filter(
            models.Q(series__isnull=True) | models.Q(series__status=MeetupSeries.Status.ACTIVE)
        )

    def with_seats(self) -> "MeetingQuerySet":
        """Each meeting with ``seats``, the seats its RSVPs hold (``RSVPQuerySet.seats``).

        A correlated subquery rather than a join and GROUP BY: the database walks the meetings'
        index and counts for the rows it keeps only, a page's worth when the list is cut.
        """
        seats = (
            RSVP.objects.filter(meeting=models.OuterRef("pk"))
            .seated()
            .order_by()
            .values("meeting")
            .annotate(n=models.Sum(models.F("guests") + 1))
            .values("n")
        )
        return self.annotate(seats=Coalesce(models.Subquery(seats), 0))


class Meeting(models.Model):
    """One occurrence of a series, or a one-off event such as an office hour.

    An occurrence keeps the start its rule gave it (``original_start``, the iCalendar
    RECURRENCE-ID) even when it is moved, so that the series can be materialised again
    without recreating it and calendar clients can match the override to the rule.
    """

    series = models.ForeignKey(
        MeetupSeries,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="meetings",
        verbose_name=_("series"),
    )
    title = models.CharField(_("title"), max_length=200, blank=True)
    host_library = models.ForeignKey(
        Library,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="meetings",
        verbose_name=_("host library"),
    )
    original_start = models.DateTimeField(_("start given by the rule"), null=True, blank=True)
    start = models.DateTimeField(_("start"), db_index=True)
    end = models.DateTimeField(_("end"))
    time_zone = models.CharField(
        _("time zone"), max_length=64, default="Europe/Zurich", validators=[validate_time_zone]
    )
    agenda = models.TextField(_("agenda"), blank=True)
    capacity = models.PositiveIntegerField(_("capacity"), null=True, blank=True)
    online_url = HttpsURLField(_("online link"), blank=True)
    # IANA zones in which an online meeting's time is also shown, comma-separated.
    display_time_zones = models.CharField(_("also show the time in"), max_length=500, blank=True)
    cancelled_at = models.DateTimeField(_("cancelled"), null=True, blank=True)
    cancel_reason = models.CharField(_("why cancelled"), max_length=300, blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    objects = MeetingQuerySet.as_manager()

    class Meta:
        ordering = ["start"]
        verbose_name = _("meeting")
        verbose_name_plural = _("meetings")
        constraints = [
            # Materialising a series twice cannot create an occurrence twice.
            models.UniqueConstraint(
                fields=["series", "original_start"], name="meeting_one_per_rule_start"
            ),
            models.CheckConstraint(
                condition=models.Q(end__gt=models.F("start")), name="meeting_ends_after_start"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.display_title} — {timezone.localtime(self.start, self.zone):%Y-%m-%d %H:%M}"

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)

    @property
    def display_title(self) -> str:
        return self.title or (self.series.title if self.series_id else "")

    def times_elsewhere(self) -> list[tuple[str, datetime]]:
        """The start in each zone the coordinator picked, for visitors around the world."""
        zones = [z for z in self.display_time_zones.split(",") if z]
        return [(zone, self.start.astimezone(ZoneInfo(zone))) for zone in zones]

    @property
    def is_cancelled(self) -> bool:
        return self.cancelled_at is not None

    @property
    def is_moved(self) -> bool:
        return self.original_start is not None and self.start != self.original_start


class RSVPQuerySet(RegionScopedQuerySet):
    region_path = "meeting__host_library__region"

    def seated(self) -> "RSVPQuerySet":
        """The RSVPs that hold seats: confirmed attendees, not waiting. Helpers (host, mentor,
        greeter) come to welcome them and take none. The one rule of seats (``holds_seat`` is
        the same for one RSVP in memory)."""
        return self.filter(
            answer=RSVP.Answer.YES, role=RSVP.Role.ATTENDEE, waitlisted_at__isnull=True
        )

    def seats(self) -> int:
        """Seats these RSVPs hold: each seated attendee and their guests."""
        return self.seated().aggregate(n=Coalesce(models.Sum(models.F("guests") + 1), 0))["n"]


class RSVP(models.Model):
    """One person's answer for one meeting; answering again changes it."""

    class Answer(models.TextChoices):
        YES = "yes", _("Yes")
        MAYBE = "maybe", _("Maybe")
        NO = "no", _("No")

    class Role(models.TextChoices):
        ATTENDEE = "attendee", _("Attendee")
        HOST = "host", _("Host")
        MENTOR = "mentor", _("Mentor")
        GREETER = "greeter", _("Greeter")

    meeting = models.ForeignKey(
        Meeting, on_delete=models.CASCADE, related_name="rsvps", verbose_name=_("meeting")
    )
    librarian = models.ForeignKey(
        Librarian,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="rsvps",
        verbose_name=_("librarian"),
    )
    name = models.CharField(_("name"), max_length=200)
    email = models.EmailField(_("email"))
    answer = models.CharField(_("answer"), max_length=8, choices=Answer.choices)
    role = models.CharField(_("role"), max_length=16, choices=Role.choices, default=Role.ATTENDEE)
    guests = models.PositiveSmallIntegerField(_("guests"), default=0)
    waitlisted_at = models.DateTimeField(_("on the waiting list since"), null=True, blank=True)
    attended = models.BooleanField(_("attended"), null=True, blank=True)
    created_at = models.DateTimeField(_("answered"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    objects = RSVPQuerySet.as_manager()

    class Meta:
        ordering = ["created_at"]
        verbose_name = _("RSVP")
        verbose_name_plural = _("RSVPs")
        constraints = [
            models.UniqueConstraint(
                "meeting", Lower("email"), name="rsvp_one_per_person_and_meeting"
            ),
        ]
        # The dashboard's "answers since your last visit".
        indexes = [models.Index(fields=["created_at"])]

    def __str__(self) -> str:
        return f"{self.name}: {self.get_answer_display()} ({self.meeting})"

    @property
    def holds_seat(self) -> bool:
        """Whether this RSVP is one of ``RSVP.objects.seated()``."""
        return (
            self.answer == self.Answer.YES
            and self.role == self.Role.ATTENDEE
            and self.waitlisted_at is None
        )


class MeetingMail(models.Model):
    """An email to one person about one meeting, as a row with a state (meetings.mailing).

    The row exists before the email is sent and moves ``pending → sending → sent``. The
    switch to ``sending`` is committed before the SMTP conversation, so a second run finds it
    and sends nothing: a worker that dies mid-send leaves a ``sending`` row, which the sweeper
    marks ``failed`` instead of sending again (at most once, never twice). An SMTP failure
    puts it back to ``pending`` until ``next_attempt_at``, and ``failed`` after the last try.
    """

    class State(models.TextChoices):
        PENDING = "pending", _("Pending")
        SENDING = "sending", _("Sending")
        SENT = "sent", _("Sent")
        FAILED = "failed", _("Failed")

    state = models.CharField(
        _("state"), max_length=16, choices=State.choices, default=State.PENDING
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    state_changed_at = models.DateTimeField(_("state changed"), default=timezone.now)
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    next_attempt_at = models.DateTimeField(_("next attempt"), null=True, blank=True)
    message_id = models.CharField(_("Message-ID"), max_length=255, blank=True)
    error = models.CharField(_("error"), max_length=500, blank=True)

    class Meta:
        abstract = True


class Reminder(MeetingMail):
    """One reminder email to one person for one meeting, N days before."""

    rsvp = models.ForeignKey(
        RSVP, on_delete=models.CASCADE, related_name="reminders", verbose_name=_("RSVP")
    )
    days_before = models.PositiveSmallIntegerField(_("days before"))

    class Meta:
        ordering = ["created_at"]
        verbose_name = _("reminder")
        verbose_name_plural = _("reminders")
        constraints = [
            models.UniqueConstraint(
                fields=["rsvp", "days_before"], name="reminder_once_per_rsvp_and_offset"
            ),
        ]
        indexes = [models.Index(fields=["state", "state_changed_at"])]

    def __str__(self) -> str:
        return f"{self.rsvp} −{self.days_before}d: {self.state}"


class RSVPMail(MeetingMail):
    """The email that tells one person what became of their sign-up: confirmed, on the waiting
    list, or seated from it.

    Written in the same transaction as the sign-up, so that no outcome goes untold (a sweeper
    sends what a lost task left). It is rendered from the RSVP as it is when it is sent: a
    second change before then is told by the same email, so there is at most one pending
    email of each kind per sign-up.
    """

    class Kind(models.TextChoices):
        CONFIRMED = "rsvp_confirmed", _("Sign-up confirmed")
        WAITLISTED = "rsvp_waitlisted", _("On the waiting list")
        PROMOTED = "rsvp_promoted", _("Seated from the waiting list")

    rsvp = models.ForeignKey(
        RSVP, on_delete=models.CASCADE, related_name="mails", verbose_name=_("RSVP")
    )
    kind = models.CharField(_("kind"), max_length=32, choices=Kind.choices)
    # The language the person signed up in (the page's).
    language = models.CharField(_("language"), max_length=8)

    class Meta:
        ordering = ["created_at", "pk"]
        verbose_name = _("sign-up email")
        verbose_name_plural = _("sign-up emails")
        constraints = [
            models.UniqueConstraint(
                fields=["rsvp", "kind"],
                condition=models.Q(state="pending"),
                name="rsvp_mail_one_pending_per_kind",
            ),
        ]
        indexes = [models.Index(fields=["state", "state_changed_at"])]

    def __str__(self) -> str:
        return f"{self.rsvp} {self.kind}: {self.state}"
