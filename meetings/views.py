"""Coordinator pages for meetup series and their meetings.

Every view requires a login (LoginRequiredMiddleware) and the model permission it acts with.
"""

from django.contrib import messages
from django.contrib.auth.mixins import PermissionRequiredMixin
from django.db.models import Count, Min, Q
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views import View
from django.views.generic import CreateView, DetailView, ListView, UpdateView

from libraries.services import unique_slug
from libraries.views import PAGE_SIZE, FormPageMixin

from . import services
from .forms import MeetingCancelForm, MeetingMoveForm, MeetupSeriesForm
from .models import Meeting, MeetupSeries


class SeriesListView(PermissionRequiredMixin, ListView):
    permission_required = "meetings.view_meetupseries"
    paginate_by = PAGE_SIZE

    def get_queryset(self):
        now = timezone.now()
        upcoming = Q(meetings__start__gte=now, meetings__cancelled_at__isnull=True)
        return (
            MeetupSeries.objects.select_related("host_library", "host_library__region")
            .annotate(next_start=Min("meetings__start", filter=upcoming))
            .order_by("title")
        )


class SeriesFormMixin(FormPageMixin):
    """Create and edit pages with a preview of the next dates (htmx, or a plain button)."""

    template_name = "meetings/meetupseries_form.html"
    model = MeetupSeries
    form_class = MeetupSeriesForm

    def post(self, request, *args, **kwargs):
        self.object = self.get_object() if "slug" in kwargs else None
        form = self.get_form()
        if "preview" in request.POST or request.headers.get("HX-Request"):
            template = (
                "meetings/partials/_next_dates.html"
                if request.headers.get("HX-Request")
                else self.template_name
            )
            context = self.get_context_data(form=form, next_dates=form.next_dates())
            return render(request, template, context)
        return self.form_valid(form) if form.is_valid() else self.form_invalid(form)

    def form_valid(self, form):
        self.object = form.save()
        services.meetings_materialise(series=self.object)
        messages.success(self.request, _("Series “%s” saved.") % self.object.title)
        return HttpResponseRedirect(self.get_success_url())

    def get_success_url(self):
        return self.object.get_absolute_url()


class SeriesCreateView(SeriesFormMixin, PermissionRequiredMixin, CreateView):
    permission_required = "meetings.add_meetupseries"
    heading = gettext_lazy("New meetup series")
    cancel_url_name = "meetings:series-list"

    def form_valid(self, form):
        form.instance.slug = unique_slug(MeetupSeries, form.cleaned_data["title"])
        return super().form_valid(form)


class SeriesUpdateView(SeriesFormMixin, PermissionRequiredMixin, UpdateView):
    permission_required = "meetings.change_meetupseries"


class SeriesDetailView(PermissionRequiredMixin, DetailView):
    permission_required = "meetings.view_meetupseries"
    queryset = MeetupSeries.objects.select_related("host_library", "host_library__region")

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["meetings"] = (
            self.object.meetings.filter(end__gte=timezone.now())
            .annotate(
                yes_count=Count("rsvps", filter=Q(rsvps__answer="yes", rsvps__waitlisted_at=None))
            )
            .order_by("start")
        )
        return context


class MeetingCancelView(PermissionRequiredMixin, View):
    permission_required = "meetings.change_meeting"

    def post(self, request, pk):
        meeting = get_object_or_404(Meeting.objects.select_related("series"), pk=pk)
        form = MeetingCancelForm(request.POST)
        form.is_valid()
        services.meeting_cancel(meeting=meeting, reason=form.cleaned_data.get("reason", ""))
        messages.success(request, _("The meeting of %s is cancelled.") % _local(meeting))
        return redirect(meeting.series or "meetings:series-list")


class MeetingMoveView(PermissionRequiredMixin, View):
    permission_required = "meetings.change_meeting"
    template_name = "meetings/meeting_move.html"

    def get(self, request, pk):
        meeting = get_object_or_404(Meeting.objects.select_related("series"), pk=pk)
        local_start = meeting.start.astimezone(meeting.zone).replace(tzinfo=None)
        form = MeetingMoveForm(meeting=meeting, initial={"start": local_start})
        return render(request, self.template_name, {"meeting": meeting, "form": form})

    def post(self, request, pk):
        meeting = get_object_or_404(Meeting.objects.select_related("series"), pk=pk)
        form = MeetingMoveForm(request.POST, meeting=meeting)
        if not form.is_valid():
            return render(request, self.template_name, {"meeting": meeting, "form": form})
        services.meeting_move(meeting=meeting, start=form.cleaned_data["start"])
        messages.success(request, _("The meeting now starts on %s.") % _local(meeting))
        return redirect(meeting.series or "meetings:series-list")


def _local(meeting: Meeting) -> str:
    return meeting.start.astimezone(meeting.zone).strftime("%Y-%m-%d %H:%M")
