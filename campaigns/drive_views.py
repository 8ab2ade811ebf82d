"""Pages of a contribution drive (#1lib1ref): totals, leaderboard, edits over time, the
contributions with their diffs, pulls from the wikis; and the opt-in public leaderboard."""

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_not_required
from django.contrib.auth.mixins import PermissionRequiredMixin
from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.decorators import method_decorator
from django.utils.translation import gettext as _
from django.views import View

from libraries.models import Librarian

from . import selectors
from .models import Campaign, Contribution, PullRun, WikiAccount
from .tasks import contributions_pull_task

PAGE_SIZE = 50


def _drive(request, pk: int) -> Campaign:
    return get_object_or_404(
        Campaign.objects.visible_to(request.user), pk=pk, kind=Campaign.Kind.CONTRIBUTION_DRIVE
    )


def diff_url(contribution: Contribution) -> str:
    """The revision's diff on its wiki (index.php beside the API URL)."""
    api = settings.WIKIS.get(contribution.wiki, "")
    if not api:
        return ""
    base = api.rsplit("/", 1)[0]
    return f"{base}/index.php?diff={contribution.revid}&oldid={contribution.parentid or 'prev'}"


def _runs_context(drive: Campaign) -> dict:
    runs = list(drive.pull_runs.all()[:5])
    return {"drive": drive, "runs": runs, "running": any(r.status == "running" for r in runs)}


class DriveDetailView(PermissionRequiredMixin, View):
    permission_required = "campaigns.view_campaign"

    def get(self, request, pk):
        drive = _drive(request, pk)
        user = request.user
        show = request.GET.get("show", "counted")
        if show == "untagged":
            contributions = Contribution.objects.visible_to(user).filter(drive=drive, tagged=False)
        else:
            contributions = selectors.drive_counted(drive, user=user)
        contributions = contributions.select_related("librarian", "library")
        page = Paginator(contributions.order_by("-timestamp", "-revid"), PAGE_SIZE).get_page(
            request.GET.get("page")
        )
        for contribution in page:
            contribution.diff_url = diff_url(contribution)
        days = selectors.drive_edits_by_day(drive, user=user)
        context = {
            **_runs_context(drive),
            "totals": selectors.drive_totals(drive, user=user),
            "leaderboard": selectors.drive_leaderboard(drive, user=user),
            "days": days,
            "chart": {
                "labels": [day["day"].isoformat() for day in days],
                "edits": [day["edits"] for day in days],
                "references": [day["references"] for day in days],
            },
            "page_obj": page,
            "show": show,
            "querystring": f"show={show}",
            # Flagged on the librarians: not asked again until their username changes.
            "missing_accounts": WikiAccount.objects.filter(
                exists=False,
                wiki__in=drive.wikis.replace(",", " ").split(),
                librarian__in=Librarian.objects.visible_to(user),
            ).select_related("librarian__library")[:100],
            "untagged_count": Contribution.objects.visible_to(user)
            .filter(drive=drive, tagged=False, counted_in=False)
            .count(),
        }
        return render(request, "campaigns/drive_detail.html", context)


class DriveRunsView(PermissionRequiredMixin, View):
    """The pull runs partial, polled while a pull is running."""

    permission_required = "campaigns.view_campaign"

    def get(self, request, pk):
        return render(
            request, "campaigns/partials/_drive_runs.html", _runs_context(_drive(request, pk))
        )


class DrivePullView(PermissionRequiredMixin, View):
    permission_required = "campaigns.change_campaign"

    def post(self, request, pk):
        drive = _drive(request, pk)
        if drive.pull_runs.filter(status=PullRun.Status.RUNNING).exists():
            messages.info(request, _("A pull is already running."))
        else:
            contributions_pull_task.delay(drive.pk)
            messages.success(request, _("Pull started: the runs below show its progress."))
        return redirect("campaigns:drive-detail", pk=drive.pk)


class ContributionCountInView(PermissionRequiredMixin, View):
    """Count an untagged edit in (it added references but forgot the hashtag), or out again."""

    permission_required = "campaigns.change_campaign"

    def post(self, request, pk):
        contribution = get_object_or_404(
            Contribution.objects.visible_to(request.user), pk=pk, tagged=False
        )
        from .contributions import contribution_count_in  # imports the wiki client

        counted = request.POST.get("counted") == "1"
        contribution_count_in(contribution=contribution, counted=counted)
        return redirect(
            reverse("campaigns:drive-detail", args=[contribution.drive_id]) + "?show=untagged"
        )


@method_decorator(login_not_required, name="dispatch")
class PublicLeaderboardView(View):
    """Library names and counts only; only for drives that opted in."""

    def get(self, request, pk):
        drive = get_object_or_404(
            Campaign, pk=pk, kind=Campaign.Kind.CONTRIBUTION_DRIVE, public_leaderboard=True
        )
        return render(
            request,
            "campaigns/drive_leaderboard_public.html",
            {
                "drive": drive,
                "totals": selectors.drive_totals(drive),
                "leaderboard": selectors.drive_leaderboard(drive),
            },
        )
