"""Coordinator pages for libraries, librarians and mailing lists, the CSV import/export, and
the shortlist (scores per region, its CSV, and what it writes: ranks, a refresh).

Every view here requires a login (LoginRequiredMiddleware) and the model permission it acts
with (PermissionRequiredMixin): the Coordinators group holds them all.
"""

import csv

from celery.result import EagerResult
from django.contrib import messages
from django.contrib.auth.mixins import PermissionRequiredMixin
from django.core.paginator import Paginator
from django.db.models import Count, OuterRef, Prefetch, Subquery
from django.db.models.functions import Coalesce
from django.http import FileResponse, HttpResponseRedirect, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views import View
from django.views.generic import CreateView, DetailView, ListView, UpdateView

from core.downloads import csv_download
from core.mixins import PAGE_SIZE, FormPageMixin, VisibleObjectsMixin
from core.text import unique_slug

from . import imports, scoring, services
from .forms import (
    ActivitySignalForm,
    ImportConfirmForm,
    ImportUploadForm,
    LibrarianForm,
    LibraryFilterForm,
    LibraryForm,
    LibraryStatusForm,
    MailingListForm,
    ShortlistForm,
    shortlist_per_region,
    shortlist_url,
)
from .models import Librarian, Library, LibraryStatusChange, MailingList, Region
from .selectors import shortlist_build, shortlist_csv_rows
from .tasks import scores_refresh_task

IMPORT_SESSION_KEY = "libraries_import"


class LibraryListView(PermissionRequiredMixin, ListView):
    permission_required = "libraries.view_library"
    paginate_by = PAGE_SIZE

    def get_queryset(self):
        self.filter_form = LibraryFilterForm(self.request.GET or None, user=self.request.user)
        # Librarians counted by a correlated subquery, not a join and GROUP BY: the database
        # walks the (name, city) index, stops at the page's last row and counts for those
        # rows only, and the paginator's COUNT does not group every librarian first.
        librarians = (
            Librarian.objects.filter(library=OuterRef("pk"))
            .order_by()
            .values("library")
            .annotate(n=Count("pk"))
            .values("n")
        )
        queryset = (
            Library.objects.visible_to(self.request.user)
            .select_related("region")
            .annotate(librarian_count=Coalesce(Subquery(librarians), 0))
            .order_by("name", "city")
        )
        return self.filter_form.filter(queryset)

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        query = self.request.GET.copy()
        query.pop("page", None)
        context.update(filter_form=self.filter_form, querystring=query.urlencode())
        return context


class LibraryDetailView(PermissionRequiredMixin, DetailView):
    permission_required = "libraries.view_library"
    recent_signals = 20
    trend_days = 30

    def get_queryset(self):
        return (
            Library.objects.visible_to(self.request.user)
            .select_related("region")
            .prefetch_related(
                "librarians",
                Prefetch(
                    "mailing_lists", queryset=MailingList.objects.visible_to(self.request.user)
                ),
                Prefetch(
                    "status_changes",
                    queryset=LibraryStatusChange.objects.select_related("changed_by"),
                ),
            )
        )

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        library = self.object
        signals = library.signals.select_related("librarian", "recorded_by")
        basis = scoring.score_basis()
        library.score_scale = basis.scale if basis else None
        # Oldest first, as the trend reads.
        snapshots = scoring.score_trend(library, basis=basis, days=self.trend_days)
        context.update(
            signals=signals[: self.recent_signals],
            signal_count=signals.count(),
            status_form=LibraryStatusForm(initial={"status": library.status}),
            signal_form=ActivitySignalForm(library=library),
            explanation=scoring.score_explain(library, basis=basis),
            snapshots=snapshots,
            sparkline=_sparkline([snapshot.score for snapshot in snapshots]),
        )
        return context


def _sparkline(values: list[float], *, width: int = 240, height: int = 40) -> str:
    """The points of an SVG polyline drawing ``values`` left to right, or "" for fewer than 2.

    Drawn on the server: the numbers are in the table next to it, and no script is needed.
    """
    if len(values) < 2:
        return ""
    low, high = min(values), max(values)
    span = (high - low) or 1.0
    step = width / (len(values) - 1)
    return " ".join(
        f"{i * step:.1f},{height - (value - low) / span * height:.1f}"
        for i, value in enumerate(values)
    )


class LibraryCreateView(FormPageMixin, PermissionRequiredMixin, CreateView):
    permission_required = "libraries.add_library"
    heading = gettext_lazy("New library")
    cancel_url_name = "libraries:library-list"
    model = Library
    form_class = LibraryForm

    def form_valid(self, form):
        self.object = services.library_create(
            created_by=self.request.user, source="manual", **form.cleaned_data
        )
        messages.success(self.request, _("Library “%s” created.") % self.object.name)
        return HttpResponseRedirect(self.object.get_absolute_url())


class LibraryUpdateView(FormPageMixin, PermissionRequiredMixin, VisibleObjectsMixin, UpdateView):
    permission_required = "libraries.change_library"
    model = Library
    form_class = LibraryForm

    def form_valid(self, form):
        messages.success(self.request, _("Library “%s” saved.") % form.instance.name)
        return super().form_valid(form)


class LibraryStatusChangeView(PermissionRequiredMixin, View):
    permission_required = "libraries.change_library"

    def post(self, request, slug):
        library = get_object_or_404(Library.objects.visible_to(request.user), slug=slug)
        form = LibraryStatusForm(request.POST)
        if form.is_valid():
            change = services.library_status_change(
                library=library,
                status=form.cleaned_data["status"],
                reason=form.cleaned_data["reason"],
                changed_by=request.user,
            )
            if change is None:
                messages.info(request, _("The library already had this status."))
            else:
                messages.success(
                    request,
                    _("Status changed to “%s”.") % library.get_status_display(),
                )
        else:
            for errors in form.errors.values():
                for error in errors:
                    messages.error(request, error)
        return redirect(library)


class ActivitySignalCreateView(PermissionRequiredMixin, View):
    permission_required = "libraries.add_activitysignal"

    def post(self, request, slug):
        library = get_object_or_404(Library.objects.visible_to(request.user), slug=slug)
        form = ActivitySignalForm(request.POST, library=library)
        if form.is_valid():
            services.signal_record(
                library=library,
                librarian=form.cleaned_data["librarian"],
                kind=form.cleaned_data["kind"],
                occurred_at=form.cleaned_data["occurred_at"],
                note=form.cleaned_data["note"],
                source="manual",
                recorded_by=request.user,
            )
            messages.success(request, _("Signal recorded."))
        else:
            for field, errors in form.errors.items():
                label = form.fields[field].label if field in form.fields else ""
                for error in errors:
                    messages.error(request, f"{label}: {error}" if label else error)
        return redirect(library)


class LibrarianListView(PermissionRequiredMixin, ListView):
    permission_required = "libraries.view_librarian"
    paginate_by = PAGE_SIZE

    def get_queryset(self):
        self.q = self.request.GET.get("q", "")
        self.region = self.request.GET.get("region", "")
        queryset = (
            Librarian.objects.visible_to(self.request.user)
            .select_related("library", "library__region")
            .search(self.q)
        )
        if self.region:
            queryset = queryset.filter(library__region__slug=self.region)
        return queryset

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        query = self.request.GET.copy()
        query.pop("page", None)
        context.update(
            q=self.q,
            region=self.region,
            regions=Region.objects.visible_to(self.request.user),
            querystring=query.urlencode(),
        )
        return context


class LibrarianCreateView(FormPageMixin, PermissionRequiredMixin, CreateView):
    permission_required = "libraries.add_librarian"
    heading = gettext_lazy("New librarian")
    cancel_url_name = "libraries:librarian-list"
    model = Librarian
    form_class = LibrarianForm

    def get_initial(self):
        initial = super().get_initial()
        library = (
            Library.objects.visible_to(self.request.user)
            .filter(slug=self.request.GET.get("library", ""))
            .first()
        )
        if library:
            initial["library"] = library
            if library.language_list:
                initial["language"] = library.language_list[0]
        return initial

    def form_valid(self, form):
        response = super().form_valid(form)
        messages.success(self.request, _("Librarian “%s” added.") % self.object.name)
        return response

    def get_success_url(self):
        return self.object.library.get_absolute_url()


class LibrarianUpdateView(FormPageMixin, PermissionRequiredMixin, VisibleObjectsMixin, UpdateView):
    permission_required = "libraries.change_librarian"
    model = Librarian
    form_class = LibrarianForm

    def form_valid(self, form):
        response = super().form_valid(form)
        messages.success(self.request, _("Librarian “%s” saved.") % self.object.name)
        return response

    def get_success_url(self):
        return self.object.library.get_absolute_url()


class MailingListListView(PermissionRequiredMixin, ListView):
    permission_required = "libraries.view_mailinglist"
    paginate_by = PAGE_SIZE

    def get_queryset(self):
        return (
            MailingList.objects.visible_to(self.request.user)
            .select_related("region")
            .annotate(member_count=Count("members"))
            .order_by("name")
        )


class MailingListDetailView(PermissionRequiredMixin, VisibleObjectsMixin, DetailView):
    permission_required = "libraries.view_mailinglist"
    model = MailingList

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        members = self.object.members.visible_to(self.request.user).select_related("region")
        context["members"] = Paginator(members, PAGE_SIZE).get_page(self.request.GET.get("page"))
        return context


class MailingListCreateView(FormPageMixin, PermissionRequiredMixin, CreateView):
    permission_required = "libraries.add_mailinglist"
    heading = gettext_lazy("New mailing list")
    cancel_url_name = "libraries:mailinglist-list"
    model = MailingList
    form_class = MailingListForm

    def form_valid(self, form):
        form.instance.slug = unique_slug(MailingList, form.instance.name)
        messages.success(self.request, _("Mailing list “%s” created.") % form.instance.name)
        return super().form_valid(form)


class MailingListUpdateView(
    FormPageMixin, PermissionRequiredMixin, VisibleObjectsMixin, UpdateView
):
    permission_required = "libraries.change_mailinglist"
    model = MailingList
    form_class = MailingListForm

    def form_valid(self, form):
        messages.success(self.request, _("Mailing list “%s” saved.") % form.instance.name)
        return super().form_valid(form)


class LibraryExportView(PermissionRequiredMixin, View):
    """The library list, with the filters currently applied, as a CSV the import accepts."""

    permission_required = "libraries.view_librarian"

    def get(self, request):
        libraries = LibraryFilterForm(request.GET or None, user=request.user).filter(
            Library.objects.visible_to(request.user)
        )
        writer = csv.writer(_Echo())
        # The BOM tells spreadsheet programs the file is UTF-8; the import accepts it back.
        rows = (writer.writerow(row) for row in imports.libraries_export_rows(libraries))
        response = StreamingHttpResponse(_chain_bom(rows), content_type="text/csv; charset=utf-8")
        filename = f"libraries-{timezone.localdate().isoformat()}.csv"
        response["Content-Disposition"] = f'attachment; filename="{filename}"'
        return response


class _Echo:
    """A file whose write() returns the line, so csv.writer can feed a streaming response."""

    def write(self, value):
        return value


def _chain_bom(rows):
    yield "\ufeff"
    yield from rows


class LibraryImportExampleView(PermissionRequiredMixin, View):
    permission_required = "libraries.add_library"

    def get(self, request):
        return FileResponse(
            open(imports.EXAMPLE_PATH, "rb"),  # noqa: SIM115 - FileResponse closes it
            as_attachment=True,
            filename="libraries-example.csv",
            content_type="text/csv; charset=utf-8",
        )


class ImportPermissionMixin(PermissionRequiredMixin):
    permission_required = (
        "libraries.add_library",
        "libraries.change_library",
        "libraries.add_librarian",
        "libraries.change_librarian",
    )
    template_name = "libraries/library_import.html"

    def render_page(self, request, **context):
        context.setdefault("form", ImportUploadForm())
        context.setdefault("columns", imports.IMPORT_COLUMNS)
        status = 400 if context.get("file_error") else 200
        return render(request, self.template_name, context, status=status)


class LibraryImportView(ImportPermissionMixin, View):
    """Upload a CSV and see what importing it would do, without writing anything."""

    def get(self, request):
        return self.render_page(request)

    def post(self, request):
        form = ImportUploadForm(request.POST, request.FILES)
        if not form.is_valid():
            return self.render_page(request, form=form)
        upload = form.cleaned_data["file"]
        try:
            text = imports.decode_upload(upload.read())
            report = imports.libraries_import(text=text, imported_by=request.user, dry_run=True)
        except imports.ImportFileError as error:
            return self.render_page(request, form=form, file_error=str(error))
        # The confirmation imports exactly the file that was previewed.
        request.session[IMPORT_SESSION_KEY] = {"name": upload.name, "text": text}
        return self.render_page(
            request,
            report=report,
            filename=upload.name,
            confirm_form=ImportConfirmForm(),
        )


class LibraryImportConfirmView(ImportPermissionMixin, View):
    """Write the previewed file: all of it, or only its valid rows when the coordinator says so."""

    def post(self, request):
        pending = request.session.get(IMPORT_SESSION_KEY)
        if not pending:
            messages.error(request, _("Nothing to import: upload the file again."))
            return redirect("libraries:library-import")
        form = ImportConfirmForm(request.POST)
        form.is_valid()
        try:
            report = imports.libraries_import(
                text=pending["text"],
                imported_by=request.user,
                skip_invalid=form.cleaned_data.get("skip_invalid", False),
            )
        except imports.ImportFileError as error:
            del request.session[IMPORT_SESSION_KEY]
            return self.render_page(request, file_error=str(error))
        if not report.written:
            return self.render_page(
                request, report=report, filename=pending["name"], confirm_form=form
            )
        del request.session[IMPORT_SESSION_KEY]
        messages.success(
            request,
            _(
                "Imported %(name)s. New libraries: %(libraries_created)d; libraries updated: "
                "%(libraries_updated)d; new librarians: %(librarians_created)d; librarians "
                "updated: %(librarians_updated)d; list memberships added: %(memberships_added)d; "
                "rows skipped: %(skipped)d."
            )
            % {
                "name": pending["name"],
                "libraries_created": report.libraries_created,
                "libraries_updated": report.libraries_updated,
                "librarians_created": report.librarians_created,
                "librarians_updated": report.librarians_updated,
                "memberships_added": report.memberships_added,
                "skipped": report.invalid_rows,
            },
        )
        return redirect(reverse("libraries:library-list"))


# The shortlist -------------------------------------------------------------------------------


class ShortlistView(PermissionRequiredMixin, View):
    """Per region, the libraries with the highest scores, why, and their most active people."""

    permission_required = "libraries.view_library"
    template_name = "libraries/shortlist.html"

    def get(self, request):
        per_region = shortlist_per_region(request.GET)
        return render(
            request,
            self.template_name,
            {
                "shortlist": shortlist_build(user=request.user, per_region=per_region),
                "form": ShortlistForm(initial={"n": per_region}),
                "per_region": per_region,
                "refreshed_at": scoring.scores_refreshed_at(),
            },
        )


class ShortlistExportView(PermissionRequiredMixin, View):
    """The shortlist as a CSV, one row per librarian (a library with nobody gets one row)."""

    permission_required = ("libraries.view_library", "libraries.view_librarian")

    def get(self, request):
        shortlist = shortlist_build(user=request.user, per_region=shortlist_per_region(request.GET))
        return csv_download(shortlist_csv_rows(shortlist), name="shortlist")


class ScoresRefreshView(PermissionRequiredMixin, View):
    """Bring every score to now, as the nightly task does (in-process without a broker)."""

    permission_required = "libraries.change_library"

    def post(self, request):
        result = scores_refresh_task.delay()
        if isinstance(result, EagerResult):
            messages.success(
                request, _("Scores refreshed for %(count)d libraries.") % {"count": result.get()}
            )
        else:
            messages.success(request, _("Score refresh started: reload the page in a moment."))
        return redirect(shortlist_url(request.POST))


class ShortlistRanksView(PermissionRequiredMixin, View):
    """Give the librarians shown their shortlist rank, 1 first, and clear everyone else's."""

    permission_required = ("libraries.view_library", "libraries.change_librarian")

    def post(self, request):
        librarians = shortlist_build(
            user=request.user, per_region=shortlist_per_region(request.POST)
        ).librarians()
        count = services.shortlist_ranks_save(librarians=librarians, user=request.user)
        messages.success(
            request,
            _(
                "%(count)d librarians ranked: campaigns for “shortlisted librarians only” "
                "now reach them."
            )
            % {"count": count},
        )
        return redirect(shortlist_url(request.POST))
