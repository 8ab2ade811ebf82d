"""Coordinator pages of a #1lib1ref drive: the list, the form, totals, leaderboard, edits over
time, the contributions with their diffs, pulls from the wikis; and the opt-in public
leaderboard. The pages of the time when drives were campaigns redirect here for good.

Every coordinator view requires a login (LoginRequiredMiddleware) and the model permission it
acts with; every query starts from what the user may see (``visible_to``).
"""

from urllib.parse import quote

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_not_required
from django.contrib.auth.mixins import PermissionRequiredMixin
from django.core.paginator import Paginator
from django.db.models import Count, OuterRef, Q, Subquery
from django.db.models.functions import Coalesce
from django.http import HttpResponsePermanentRedirect
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.decorators import method_decorator
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views import View
from django.views.generic import CreateView, ListView, UpdateView

from core.mixins import PAGE_SIZE, FormPageMixin, VisibleObjectsMixin
from libraries.models import Librarian

from . import selectors, services
from .forms import DriveForm, LeadFilterForm, LeadLibrarianForm, LeadLinkForm
from .models import Contribution, Drive, DriveContribution, Lead, PullRun, WikiAccount
from .pulls import recent_changes_horizon
from .rules import drive_wikis
from .tasks import contributions_pull_task
from .wiki import contact_problem

CONTRIBUTIONS_PAGE_SIZE = 50


def _drive(request, pk: int) -> Drive:
    return get_object_or_404(Drive.objects.visible_to(request.user), pk=pk)


def diff_url(contribution: Contribution) -> str:
    """The revision's diff on its wiki (index.php beside the API URL)."""
    api = settings.WIKIS.get(contribution.wiki, "")
    if not api:
        return ""
    base = api.rsplit("/", 1)[0]
    return f"{base}/index.php?diff={contribution.revid}&oldid={contribution.parentid or 'prev'}"


def _runs_context(drive: Drive) -> dict:
    runs = list(drive.pull_runs.all()[:5])
    return {"drive": drive, "runs": runs, "running": any(r.status == "running" for r in runs)}


class DriveListView(PermissionRequiredMixin, ListView):
    permission_required = "drives.view_drive"
    paginate_by = PAGE_SIZE
    template_name = "drives/drive_list.html"

    def get_queryset(self):
        # The counted edits that the user may see, by a correlated subquery per drive shown.
        counted = (
            DriveContribution.objects.counted()
            .filter(
                drive=OuterRef("pk"),
                contribution__in=Contribution.objects.visible_to(self.request.user),
            )
            .order_by()
            .values("drive")
            .annotate(n=Count("pk"))
            .values("n")
        )
        return Drive.objects.visible_to(self.request.user).annotate(
            counted_edits=Coalesce(Subquery(counted), 0)
        )


class DriveFormMixin(FormPageMixin):
    model = Drive
    form_class = DriveForm

    def form_valid(self, form):
        drive = form.save(commit=False)
        self.object = services.drive_save(
            drive=drive, regions=list(form.cleaned_data["regions"]), created_by=self.request.user
        )
        messages.success(self.request, _("Drive “%s” saved.") % self.object.title)
        return redirect(self.object)

    def get_success_url(self):
        return self.object.get_absolute_url()


class DriveCreateView(DriveFormMixin, PermissionRequiredMixin, CreateView):
    permission_required = "drives.add_drive"
    heading = gettext_lazy("New contribution drive")
    cancel_url_name = "drives:drive-list"


class DriveUpdateView(DriveFormMixin, PermissionRequiredMixin, VisibleObjectsMixin, UpdateView):
    permission_required = "drives.change_drive"


class DriveDetailView(PermissionRequiredMixin, View):
    permission_required = "drives.view_drive"

    def get(self, request, pk):
        drive = _drive(request, pk)
        user = request.user
        show = request.GET.get("show", "counted")
        if show == "untagged":
            contributions = (
                Contribution.objects.visible_to(user).in_drive(drive).filter(tagged=False)
            )
        else:
            contributions = selectors.drive_counted(drive, user=user)
        contributions = contributions.select_related("librarian", "library")
        page = Paginator(
            contributions.order_by("-timestamp", "-revid"), CONTRIBUTIONS_PAGE_SIZE
        ).get_page(request.GET.get("page"))
        for contribution in page:
            contribution.diff_url = diff_url(contribution)
        days = selectors.drive_edits_by_day(drive, user=user)
        horizon = timezone.localdate(recent_changes_horizon())
        context = {
            # Before it, the wikis list no more recent changes: strangers' edits are lost.
            "horizon": horizon if drive.starts_on and drive.starts_on < horizon else None,
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
            "leads": selectors.leads_with_activity(user=user, drive=drive)[:20],
            "untagged_count": Contribution.objects.visible_to(user)
            .in_drive(drive)
            .filter(tagged=False, counted_in=False)
            .count(),
        }
        return render(request, "drives/drive_detail.html", context)


class DriveRunsView(PermissionRequiredMixin, View):
    """The pull runs partial, polled while a pull is running."""

    permission_required = "drives.view_drive"

    def get(self, request, pk):
        return render(
            request, "drives/partials/_drive_runs.html", _runs_context(_drive(request, pk))
        )


class DrivePullView(PermissionRequiredMixin, View):
    permission_required = "drives.change_drive"

    def post(self, request, pk):
        drive = _drive(request, pk)
        services.pull_runs_interrupt()  # a pull whose worker died no longer blocks the button
        if problem := contact_problem(drive_wikis(drive)):
            messages.error(request, problem)
        elif PullRun.objects.live().filter(drive=drive).exists():
            messages.info(request, _("A pull is already running."))
        else:
            contributions_pull_task.delay(drive.pk)
            messages.success(request, _("Pull started: the runs below show its progress."))
        return redirect(drive)


class ContributionCountInView(PermissionRequiredMixin, View):
    """Count an untagged edit in a drive (it added references but forgot the hashtag), or out
    again. ``pk`` names the edit's link to the drive (a DriveContribution)."""

    permission_required = "drives.change_drive"

    def post(self, request, pk):
        link = get_object_or_404(
            DriveContribution.objects.select_related("contribution").filter(
                drive__in=Drive.objects.visible_to(request.user),
                contribution__in=Contribution.objects.visible_to(request.user),
            ),
            pk=pk,
            tagged=False,
        )
        counted = request.POST.get("counted") == "1"
        services.contribution_count_in(link=link, counted=counted)
        return redirect(reverse("drives:drive-detail", args=[link.drive_id]) + "?show=untagged")


@method_decorator(login_not_required, name="dispatch")
class PublicLeaderboardView(View):
    """Library names and counts only; only for drives that opted in."""

    def get(self, request, pk):
        drive = get_object_or_404(Drive, pk=pk, public_leaderboard=True)
        return render(
            request,
            "drives/drive_leaderboard_public.html",
            {
                "drive": drive,
                "totals": selectors.drive_totals(drive),
                "leaderboard": selectors.drive_leaderboard(drive),
            },
        )


class MovedPermanentlyView(View):
    """A page of the time when drives were campaigns: its new address, for good.

    A drive kept the id of the campaign it was (drives.migrations.0002), so the old address
    names the new one. GET and HEAD get a 301; a form posted from a page opened before the
    move gets a 308, which browsers follow with the same method and body.
    """

    url_name = ""

    def dispatch(self, request, pk):
        url = reverse(self.url_name, args=[pk])
        if request.META.get("QUERY_STRING"):
            url += "?" + request.META["QUERY_STRING"]
        response = HttpResponsePermanentRedirect(url)
        if request.method not in ("GET", "HEAD"):
            response.status_code = 308
        return response


# Leads: participants the directory does not know ----------------------------------------


def user_page_url(wiki_code: str, username: str) -> str:
    """The account's contributions on its wiki (index.php beside the API URL)."""
    api = settings.WIKIS.get(wiki_code, "")
    if not api:
        return ""
    base = api.rsplit("/", 1)[0]
    return f"{base}/index.php?title=Special:Contributions/{quote(username.replace(' ', '_'))}"


class LeadListView(PermissionRequiredMixin, ListView):
    """Who used a drive's hashtags without being in the directory, with what they did."""

    permission_required = "drives.view_lead"
    paginate_by = PAGE_SIZE
    template_name = "drives/lead_list.html"

    def get_queryset(self):
        self.filter_form = LeadFilterForm(
            self.request.GET or {"status": "new"}, user=self.request.user
        )
        status, wiki_code, region = "new", "", None
        if self.filter_form.is_valid():
            status = self.filter_form.cleaned_data["status"] or None
            wiki_code = self.filter_form.cleaned_data["wiki"]
            region = self.filter_form.cleaned_data["region"]
        leads = selectors.leads_with_activity(user=self.request.user, status=status)
        if region is not None:
            # A region's leads: linked to its librarians, or on a wiki of its language.
            leads = leads.filter(
                Q(librarian__library__region=region)
                | Q(librarian__isnull=True, language=region.language)
            )
        return leads.filter(wiki=wiki_code) if wiki_code else leads

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        page = context["object_list"]
        pages = selectors.lead_pages(page)
        for lead in page:
            lead.pages = pages.get(lead.pk, [])
            lead.user_url = user_page_url(lead.wiki, lead.username)
        query = self.request.GET.copy()
        query.pop("page", None)
        context.update(filter_form=self.filter_form, querystring=query.urlencode())
        return context


def _lead(request, pk: int) -> Lead:
    return get_object_or_404(Lead.objects.visible_to(request.user), pk=pk)


class LeadDetailView(PermissionRequiredMixin, View):
    permission_required = "drives.view_lead"

    def get(self, request, pk, link_form=None, librarian_form=None, status=200):
        lead = _lead(request, pk)
        edits = (
            Contribution.objects.filter(wiki=lead.wiki, username=lead.username)
            .counted()
            .prefetch_related("drives")
            .order_by("-timestamp")
        )
        page = Paginator(edits, CONTRIBUTIONS_PAGE_SIZE).get_page(request.GET.get("page"))
        for contribution in page:
            contribution.diff_url = diff_url(contribution)
        context = {
            "lead": lead,
            "page_obj": page,
            "user_url": user_page_url(lead.wiki, lead.username),
            "link_form": link_form or LeadLinkForm(user=request.user),
            "librarian_form": librarian_form
            or LeadLibrarianForm(
                user=request.user,
                initial={"name": lead.username, "language": lead.language or "fr"},
            ),
        }
        return render(request, "drives/lead_detail.html", context, status=status)


class LeadLinkView(PermissionRequiredMixin, View):
    """The lead is a librarian of the directory: their edits count for their library."""

    permission_required = ("drives.change_lead", "libraries.change_librarian")

    def post(self, request, pk):
        lead = _lead(request, pk)
        form = LeadLinkForm(request.POST, user=request.user)
        if not form.is_valid():
            return LeadDetailView().get(request, pk, link_form=form, status=400)
        services.lead_link(lead=lead, librarian=form.librarian, decided_by=request.user)
        messages.success(
            request,
            _("%(username)s is %(librarian)s: their edits count for %(library)s.")
            % {
                "username": lead.username,
                "librarian": form.librarian.name,
                "library": form.librarian.library.name,
            },
        )
        return redirect(lead)


class LeadLibrarianCreateView(PermissionRequiredMixin, View):
    """A librarian, and their library if it is new, made from the lead."""

    permission_required = (
        "drives.change_lead",
        "libraries.add_librarian",
        "libraries.add_library",
    )

    def post(self, request, pk):
        lead = _lead(request, pk)
        form = LeadLibrarianForm(request.POST, user=request.user)
        if form.is_valid():
            try:
                librarian = services.lead_librarian_create(
                    lead=lead, row=form.import_row(), decided_by=request.user
                )
            except services.LeadError as error:
                for message in error.messages:
                    form.add_error(None, message)
            else:
                messages.success(
                    request,
                    _("%(name)s of %(library)s is in the directory; their edits count.")
                    % {"name": librarian.name, "library": librarian.library.name},
                )
                return redirect(lead)
        return LeadDetailView().get(request, pk, librarian_form=form, status=400)


class LeadDismissView(PermissionRequiredMixin, View):
    permission_required = "drives.change_lead"

    def post(self, request, pk):
        lead = _lead(request, pk)
        services.lead_dismiss(lead=lead, decided_by=request.user)
        messages.success(
            request, _("%(username)s is no longer listed.") % {"username": lead.username}
        )
        return redirect("drives:lead-list")
