"""The coordinator dashboard's reads: where the outreach stands, and what to do next.

``dashboard_build`` gathers every block of the dashboard for one user: the pipeline (per
status, per region, moves this month, latest moves), the coming meetings with their seats and
helpers, the answers that arrived since the user's last visit, the campaigns in progress, the
top of the shortlist and the #1lib1ref activity per week. Every figure is a SQL aggregate over
a queryset that starts from ``visible_to(user)``: an ambassador sees their regions only, and
the number of queries does not grow with the rows.

The blocks that can be exported as CSV (``dashboard_table_rows``) are built by the same
functions as the page, so the file and the page always agree.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from django.db.models import (
    Case,
    Count,
    F,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
    When,
)
from django.db.models.functions import Coalesce
from django.utils import formats, timezone
from django.utils.translation import gettext as _

from campaigns.models import Campaign, Delivery
from campaigns.selectors import campaigns_with_counts
from core.roles import sees_every_region
from drives.models import ContributionTally, Drive
from drives.selectors import TALLY_WEEKS
from libraries.models import Librarian, Library, LibraryStatusChange, MailingList, Region
from meetings.models import RSVP, Meeting

from .models import DashboardVisit

# A reload, or coming back from a library's page, within this time is the same visit: what
# was new when it began stays listed until the user leaves for longer.
VISIT_GAP = timedelta(minutes=30)
# What a first visit shows as "new": the last week.
FIRST_VISIT_LOOKBACK = timedelta(days=7)
LATEST_CHANGES = 6
UPCOMING_MEETINGS = 8
NEW_ANSWERS_LISTED = 5
CAMPAIGNS_LISTED = 8
CAMPAIGN_RECENTLY_SENT = timedelta(days=30)
SHORTLIST_TOP = 5
# The year of weeks the tallies cover (campaigns.services).
ACTIVITY_WEEKS = TALLY_WEEKS

STATUSES = Library.Status
CAMPAIGNS_IN_PROGRESS = (
    Campaign.Status.SENDING,
    Campaign.Status.PAUSED,
    Campaign.Status.SCHEDULED,
)


# Pipeline ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StatusCount:
    value: str
    label: str
    libraries: int
    # Libraries that moved to this status this month (creations not counted).
    moved_in: int

    def share_of(self, total: int) -> float:
        return 100 * self.libraries / total if total else 0.0


def bar_step(percent: float) -> int:
    """A percentage as one of the 21 widths of the dashboard's bars (``dash-bar-0`` to
    ``dash-bar-20``, 5 % each): classes rather than inline styles, for a strict CSP."""
    return round(min(max(percent, 0.0), 100.0) / 5)


@dataclass(frozen=True)
class RegionRow:
    region: Region
    counts: list[int]  # in the order of Library.Status

    @property
    def total(self) -> int:
        return sum(self.counts)


@dataclass
class Pipeline:
    statuses: list[StatusCount]
    regions: list[RegionRow]
    month_start: datetime
    moves_this_month: int = 0
    added_this_month: int = 0
    latest_changes: list[LibraryStatusChange] = field(default_factory=list)
    librarians: int = 0
    mailing_lists: int = 0

    @property
    def total(self) -> int:
        return sum(status.libraries for status in self.statuses)

    @property
    def bars(self) -> list[tuple[StatusCount, int]]:
        """Each status with its share of the libraries as a bar width (see bar_step)."""
        return [(status, bar_step(status.share_of(self.total))) for status in self.statuses]


def pipeline_by_region(*, user) -> list[RegionRow]:
    """Every region the user sees, with its libraries per status: one query."""
    regions = Region.objects.visible_to(user).annotate(
        **{
            f"n_{value}": Count("libraries", filter=Q(libraries__status=value))
            for value in STATUSES.values
        }
    )
    return [
        RegionRow(region, [getattr(region, f"n_{value}") for value in STATUSES.values])
        for region in regions.order_by("name")
    ]


def _month_start(now: datetime) -> datetime:
    local = timezone.localtime(now)
    return local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def _month_by_status(*, user, now: datetime) -> dict[str, dict[str, int]]:
    """Per status reached this month: the libraries that moved to it, the moves (every step
    counts, not only the last one of each library) and the libraries created in it. One query."""
    month = {value: {"libraries": 0, "moves": 0, "added": 0} for value in STATUSES.values}
    moved = ~Q(from_status="")
    for row in (
        LibraryStatusChange.objects.visible_to(user)
        .filter(changed_at__gte=_month_start(now), changed_at__lte=now)
        .order_by()
        .values("to_status")
        .annotate(
            # A library that went back and forth counts once per status it reached.
            libraries=Count("library", distinct=True, filter=moved),
            moves=Count("pk", filter=moved),
            added=Count("pk", filter=~moved),
        )
    ):
        month[row.pop("to_status")] = row
    return month


def _statuses(regions: list[RegionRow], month: dict[str, dict[str, int]]) -> list[StatusCount]:
    return [
        StatusCount(
            value=value,
            label=str(label),
            libraries=sum(row.counts[index] for row in regions),
            moved_in=month[value]["libraries"],
        )
        for index, (value, label) in enumerate(STATUSES.choices)
    ]


def pipeline_build(*, user, now: datetime) -> Pipeline:
    """The funnel, the region table, this month's moves, the latest moves and the sizes of
    the address book: five queries."""
    regions = pipeline_by_region(user=user)
    month = _month_by_status(user=user, now=now)
    latest = (
        LibraryStatusChange.objects.visible_to(user)
        .exclude(from_status="")
        .select_related("library", "changed_by")
        .order_by("-changed_at", "-pk")[:LATEST_CHANGES]
    )
    return Pipeline(
        statuses=_statuses(regions, month),
        regions=regions,
        month_start=_month_start(now),
        moves_this_month=sum(row["moves"] for row in month.values()),
        added_this_month=sum(row["added"] for row in month.values()),
        latest_changes=list(latest),
        librarians=Librarian.objects.visible_to(user).count(),
        mailing_lists=MailingList.objects.visible_to(user).count(),
    )


# Meetings ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MeetingRow:
    meeting: Meeting
    seats: int  # confirmed attendees and their guests
    waitlisted: int
    hosts: int
    mentors: int
    greeters: int

    @property
    def helpers(self) -> int:
        return self.hosts + self.mentors + self.greeters

    @property
    def capacity(self) -> int | None:
        return self.meeting.capacity

    @property
    def fill_percent(self) -> float:
        if not self.capacity:
            return 0.0
        return min(100.0, 100 * self.seats / self.capacity)

    @property
    def fill_step(self) -> int:
        return bar_step(self.fill_percent)

    @property
    def is_full(self) -> bool:
        return bool(self.capacity) and self.seats >= self.capacity


def upcoming_meetings(*, user) -> list[MeetingRow]:
    """The next meetings, not cancelled, with their seats taken (confirmed attendees and their
    guests, as the sign-up counts them), waiting list and helpers: one query, the RSVPs counted
    in correlated subqueries for the page's rows only."""
    rsvps = (
        RSVP.objects.visible_to(user).filter(meeting=OuterRef("pk")).order_by().values("meeting")
    )

    def count(condition: Q) -> Coalesce:
        return Coalesce(Subquery(rsvps.filter(condition).annotate(n=Count("pk")).values("n")), 0)

    yes = Q(answer=RSVP.Answer.YES)
    meetings = (
        Meeting.objects.visible_to(user)
        .upcoming()
        .select_related("series", "host_library")
        .with_seats()
        .annotate(
            waitlisted=count(yes & Q(role=RSVP.Role.ATTENDEE, waitlisted_at__isnull=False)),
            hosts=count(yes & Q(role=RSVP.Role.HOST)),
            mentors=count(yes & Q(role=RSVP.Role.MENTOR)),
            greeters=count(yes & Q(role=RSVP.Role.GREETER)),
        )
        .order_by("start", "pk")[:UPCOMING_MEETINGS]
    )
    return [
        MeetingRow(
            meeting=meeting,
            seats=meeting.seats,
            waitlisted=meeting.waitlisted,
            hosts=meeting.hosts,
            mentors=meeting.mentors,
            greeters=meeting.greeters,
        )
        for meeting in meetings
    ]


# Answers since the last visit ---------------------------------------------------------------


def dashboard_visit_record(*, user, now: datetime) -> datetime:
    """Record that ``user`` looks at the dashboard at ``now``; return where "new" starts.

    The first visit shows the last week; a visit after a pause shows what came since the
    previous one was last seen; a reload within ``VISIT_GAP`` keeps the same start. Two
    queries: the row is read, then written with one UPDATE (the first time, one upsert).

    The dashboard's one write, kept beside its reads: what "new" means is defined by it.
    """
    visit = DashboardVisit.objects.filter(user=user).values_list("since", "seen_at").first()
    if visit is not None:
        previous_since, seen_at = visit
        since = previous_since if now - seen_at < VISIT_GAP else seen_at
        DashboardVisit.objects.filter(user=user).update(since=since, seen_at=now)
        return since
    since = now - FIRST_VISIT_LOOKBACK
    # An upsert: two tabs opening the very first visit at once cannot both insert the row.
    DashboardVisit.objects.bulk_create(
        [DashboardVisit(user=user, since=since, seen_at=now)],
        update_conflicts=True,
        unique_fields=["user"],
        update_fields=["since", "seen_at"],
    )
    return since


@dataclass
class Answers:
    since: datetime
    invitation_counts: dict[str, int]  # answer -> count, and "total"
    invitations: list[Delivery]
    rsvp_counts: dict[str, int]
    rsvps: list[RSVP]

    @property
    def total(self) -> int:
        return self.invitation_counts["total"] + self.rsvp_counts["total"]

    @property
    def more_invitations(self) -> int:
        return max(self.invitation_counts["total"] - len(self.invitations), 0)

    @property
    def more_rsvps(self) -> int:
        return max(self.rsvp_counts["total"] - len(self.rsvps), 0)


def _answer_counts(queryset: QuerySet, choices) -> dict[str, int]:
    return queryset.aggregate(
        total=Count("pk"), **{value: Count("pk", filter=Q(answer=value)) for value in choices}
    )


def answers_since(*, user, since: datetime, now: datetime) -> Answers:
    """Invitation answers and meetup RSVPs that arrived since ``since``, the latest first, with
    their counts per answer: four queries."""
    deliveries = (
        Delivery.objects.visible_to(user)
        .filter(answered_at__gte=since, answered_at__lte=now)
        .exclude(answer="")
    )
    rsvps = RSVP.objects.visible_to(user).filter(created_at__gte=since, created_at__lte=now)
    return Answers(
        since=since,
        invitation_counts=_answer_counts(deliveries, Delivery.Answer.values),
        invitations=list(
            deliveries.select_related("campaign", "librarian", "library", "mailing_list").order_by(
                "-answered_at", "-pk"
            )[:NEW_ANSWERS_LISTED]
        ),
        rsvp_counts=_answer_counts(rsvps, RSVP.Answer.values),
        rsvps=list(
            rsvps.select_related("meeting", "meeting__series").order_by("-created_at", "-pk")[
                :NEW_ANSWERS_LISTED
            ]
        ),
    )


# Campaigns -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class CampaignRow:
    campaign: Campaign
    total: int
    sent: int
    failed: int
    answered: int

    @property
    def progress_percent(self) -> float:
        return 100 * self.sent / self.total if self.total else 0.0

    @property
    def progress_step(self) -> int:
        return bar_step(self.progress_percent)

    @property
    def answer_rate_percent(self) -> float | None:
        return 100 * self.answered / self.sent if self.sent else None


def campaigns_in_progress(*, user, now: datetime) -> list[CampaignRow]:
    """Campaigns sending, paused or scheduled, then those finished in the last 30 days, with
    their deliveries, sent, failed and answered: one query (campaigns_with_counts)."""
    campaigns = (
        campaigns_with_counts(
            Campaign.objects.visible_to(user).filter(
                Q(status__in=CAMPAIGNS_IN_PROGRESS)
                | Q(status=Campaign.Status.SENT, finished_at__gte=now - CAMPAIGN_RECENTLY_SENT)
            )
        )
        .annotate(total_count=Count("deliveries"))
        .order_by(
            Case(
                *(
                    When(status=status, then=Value(position))
                    for position, status in enumerate(CAMPAIGNS_IN_PROGRESS)
                ),
                default=Value(len(CAMPAIGNS_IN_PROGRESS)),
                output_field=IntegerField(),
            ),
            F("finished_at").desc(nulls_first=True),
            "-created_at",
            "-pk",
        )[:CAMPAIGNS_LISTED]
    )
    return [
        CampaignRow(
            campaign=campaign,
            total=campaign.total_count,
            sent=campaign.sent_count,
            failed=campaign.failed_count,
            answered=campaign.answered_count,
        )
        for campaign in campaigns
    ]


# Shortlist -----------------------------------------------------------------------------------


def shortlist_top(*, user) -> list[Library]:
    """The libraries with the highest activity score (zero and not yet computed left out)."""
    return list(
        Library.objects.visible_to(user)
        .filter(score_base__gt=0)
        .select_related("region")
        .with_scale()
        .order_by("-score_base", "name", "pk")[:SHORTLIST_TOP]
    )


# #1lib1ref activity --------------------------------------------------------------------------


@dataclass(frozen=True)
class Week:
    start: date  # a Monday
    edits: int
    references: int


@dataclass
class Activity:
    weeks: list[Week]
    librarians: int = 0
    libraries: int = 0
    latest_drive: Drive | None = None
    # When the tallies were last rebuilt (after a pull, a count-in, every night); None: never.
    computed_at: datetime | None = None

    @property
    def edits(self) -> int:
        return sum(week.edits for week in self.weeks)

    @property
    def references(self) -> int:
        return sum(week.references for week in self.weeks)

    @property
    def active_weeks(self) -> list[Week]:
        return [week for week in self.weeks if week.edits or week.references]

    @property
    def first_week(self) -> date | None:
        return self.weeks[0].start if self.weeks else None


def contributions_by_week(*, user) -> tuple[list[Week], ContributionTally | None]:
    """Counted edits and references added per week (Monday to Sunday, local time) over the
    year the tallies cover, weeks without edits included, and the year's totals: one query
    of the tallies (drives.services.contribution_tallies_refresh), a few hundred rows at
    most whatever the number of contributions."""
    weekly: dict[date, list[int]] = {}
    year = ContributionTally(week=None, edits=0, references=0, librarians=0, libraries=0)
    computed = None
    for tally in ContributionTally.objects.visible_to(user).order_by():
        computed = max(computed or tally.computed_at, tally.computed_at)
        if tally.whole_year:
            year.week = tally.week
            for name in ("edits", "references", "librarians", "libraries"):
                setattr(year, name, getattr(year, name) + getattr(tally, name))
        else:
            counts = weekly.setdefault(tally.week, [0, 0])
            counts[0] += tally.edits
            counts[1] += tally.references
    if computed is None:
        return [], None
    year.computed_at = computed
    weeks = []
    for offset in range(ACTIVITY_WEEKS):
        monday = year.week + timedelta(weeks=offset)
        edits, references = weekly.get(monday, (0, 0))
        weeks.append(Week(monday, edits, references))
    return weeks, year


def activity_build(*, user) -> Activity:
    """Edits per week, who made them, and the latest drive to link to: two queries."""
    weeks, year = contributions_by_week(user=user)
    latest_drive = (
        Drive.objects.visible_to(user)
        .order_by(F("starts_on").desc(nulls_last=True), "-created_at", "-pk")
        .first()
    )
    return Activity(
        weeks=weeks,
        librarians=year.librarians if year else 0,
        libraries=year.libraries if year else 0,
        latest_drive=latest_drive,
        computed_at=year.computed_at if year else None,
    )


# The whole page ------------------------------------------------------------------------------


@dataclass
class Dashboard:
    now: datetime
    pipeline: Pipeline
    meetings: list[MeetingRow]
    answers: Answers
    campaigns: list[CampaignRow]
    shortlist: list[Library]
    activity: Activity
    # False for an ambassador: the page says whose regions it shows.
    sees_every_region: bool = True

    @property
    def pipeline_chart(self) -> dict:
        """The region × status table, for the stacked bar chart (json_script)."""
        return {
            "labels": [row.region.name for row in self.pipeline.regions],
            "datasets": [
                {
                    "status": status.value,
                    "label": status.label,
                    "data": [row.counts[index] for row in self.pipeline.regions],
                }
                for index, status in enumerate(self.pipeline.statuses)
            ],
        }

    @property
    def activity_chart(self) -> dict:
        """Edits and references per week, for the bar chart (json_script); the labels are
        dates in the active language."""
        return {
            "labels": [
                formats.date_format(week.start, "MONTH_DAY_FORMAT") for week in self.activity.weeks
            ],
            "titles": [
                # Translators: a week in the chart of tagged edits, e.g. "Week of 5 January 2026".
                _("Week of %(date)s") % {"date": formats.date_format(week.start)}
                for week in self.activity.weeks
            ],
            "edits": [week.edits for week in self.activity.weeks],
            "references": [week.references for week in self.activity.weeks],
        }


def dashboard_build(*, user, now: datetime | None = None) -> Dashboard:
    """Everything the dashboard shows to ``user``; records the visit.

    16 queries whatever the number of rows: the visit 2 (read, then one UPDATE or upsert), the
    pipeline 5, the coming meetings 1, the answers since the last visit 4, the campaigns 1,
    the shortlist 1, the #1lib1ref activity 2 (its tallies, and the latest drive). An
    ambassador's regions add one (once per request, core.roles); a coordinator's role is
    read from the permissions the view's permission check already loaded.
    """
    now = now or timezone.now()
    since = dashboard_visit_record(user=user, now=now)
    return Dashboard(
        now=now,
        pipeline=pipeline_build(user=user, now=now),
        meetings=upcoming_meetings(user=user),
        answers=answers_since(user=user, since=since, now=now),
        campaigns=campaigns_in_progress(user=user, now=now),
        shortlist=shortlist_top(user=user),
        activity=activity_build(user=user),
        sees_every_region=sees_every_region(user),
    )


# CSV exports ---------------------------------------------------------------------------------

EXPORT_TABLES = ("regions", "contributions")


def dashboard_table_rows(*, user, table: str) -> list[list]:
    """One of the dashboard's charts as rows for a CSV file, header first (the page's own
    selectors, so the file and the page agree): one query (and an ambassador's regions)."""
    if table == "regions":
        header = [_("Region")] + [str(label) for label in STATUSES.labels] + [_("Total")]
        return [header] + [
            [row.region.name, *row.counts, row.total] for row in pipeline_by_region(user=user)
        ]
    if table == "contributions":
        return [[_("Week starting"), _("Edits"), _("References added")]] + [
            [week.start.isoformat(), week.edits, week.references]
            for week in contributions_by_week(user=user)[0]
        ]
    raise ValueError(table)
