"""Page-shaped reads of campaigns: the list's counts and a campaign's live statistics.

Every figure is a SQL aggregate: the number of queries does not grow with the rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db.models import Count, F, Q, QuerySet, Value
from django.db.models.functions import Coalesce

from .models import Campaign, Delivery

# The per-library table of a large campaign stops here; the per-region table has everyone.
LIBRARY_ROWS = 200

State, Answer = Delivery.State, Delivery.Answer


def campaigns_with_counts(queryset: QuerySet[Campaign] | None = None) -> QuerySet[Campaign]:
    """Campaigns with ``sent_count``, ``failed_count`` and ``answered_count``, newest first."""
    queryset = Campaign.objects.all() if queryset is None else queryset
    return queryset.annotate(
        sent_count=Count("deliveries", filter=Q(deliveries__state=State.SENT)),
        failed_count=Count("deliveries", filter=Q(deliveries__state=State.FAILED)),
        answered_count=Count("deliveries", filter=~Q(deliveries__answer="")),
    ).order_by("-created_at", "-pk")


def _table_counts() -> dict:
    """The columns of the per-region and per-library tables, over grouped deliveries."""
    return {
        "sent": Count("pk", filter=Q(state=State.SENT)),
        "failed": Count("pk", filter=Q(state=State.FAILED)),
        "yes": Count("pk", filter=Q(answer=Answer.YES)),
        "maybe": Count("pk", filter=Q(answer=Answer.MAYBE)),
        "no": Count("pk", filter=Q(answer=Answer.NO)),
    }


@dataclass
class CampaignStats:
    total: int = 0
    states: list[tuple[str, str, int]] = field(default_factory=list)  # value, label, count
    answers: list[tuple[str, str, int]] = field(default_factory=list)
    regions: list[dict] = field(default_factory=list)
    libraries: list[dict] = field(default_factory=list)
    library_count: int = 0

    @property
    def more_libraries(self) -> int:
        return max(self.library_count - len(self.libraries), 0)


def campaign_stats(campaign: Campaign) -> CampaignStats:
    """Deliveries by state, answers, and sent / failed / yes / maybe / no per region and per
    library: four queries, whatever the size of the campaign."""
    deliveries = Delivery.objects.filter(campaign=campaign).order_by()
    totals = deliveries.aggregate(
        total=Count("pk"),
        **{f"state_{state}": Count("pk", filter=Q(state=state)) for state in State.values},
        **{f"answer_{answer}": Count("pk", filter=Q(answer=answer)) for answer in Answer.values},
    )
    # A list post has no library: it counts in the list's region.
    regions = (
        deliveries.annotate(
            region_name=Coalesce(
                F("library__region__name"), F("mailing_list__region__name"), Value("")
            )
        )
        .values("region_name")
        .annotate(**_table_counts())
        .order_by("region_name")
    )
    libraries = (
        deliveries.exclude(library=None)
        .values("library_id", "library__name", "library__slug", "library__city")
        .annotate(**_table_counts())
        .order_by("library__name", "library_id")
    )
    library_count = deliveries.exclude(library=None).values("library_id").distinct().count()
    return CampaignStats(
        total=totals["total"],
        states=[(value, label, totals[f"state_{value}"]) for value, label in State.choices],
        answers=[(value, label, totals[f"answer_{value}"]) for value, label in Answer.choices],
        regions=list(regions),
        libraries=list(libraries[:LIBRARY_ROWS]),
        library_count=library_count,
    )
