"""Meetup pages: the coordinator's (series, meetings) and the public's (list, series, sign-up).

Coordinator views require a login (LoginRequiredMiddleware) and the model permission they
act with; public views are marked @login_not_required and show no personal data.
"""

from django.contrib import messages
from django.contrib.auth.decorators import login_not_required
from django.contrib.auth.mixins import PermissionRequiredMixin
from django.db.models import Count, Min, Q
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.decorators import method_decorator
from django.utils.formats import date_format
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views import View
from django.views.generic import CreateView, DetailView, ListView, UpdateView

from core.links import LinkError
from core.mixins import PAGE_SIZE, FormPageMixin, VisibleObjectsMixin
from core.pagecache import cache_public_page
from core.text import unique_slug

from . import links, services
from .forms import (
    AnswerForm,
    MeetingCancelForm,
    MeetingMoveForm,
    MeetupSeriesForm,
    OneOffMeetingForm,
    PublicMeetupFilterForm,
    SignupForm,
)
from .models import RSVP, Meeting, MeetupSeries


class SeriesListView(PermissionRequiredMixin, ListView):
    permission_required = "meetings.view_meetupseries"
    paginate_by = PAGE_SIZE

    def get_context_data(self, **kwargs):
        one_offs = (
            Meeting.objects.visible_to(self.request.user)
            .upcoming()
            .filter(series__isnull=True)
            .order_by("start")[:20]
        )
        return super().get_context_data(one_offs=one_offs, **kwargs)

    def get_queryset(self):
        now = timezone.now()
        upcoming = Q(meetings__start__gte=now, meetings__cancelled_at__isnull=True)
        return (
            MeetupSeries.objects.visible_to(self.request.user)
            .select_related("host_library", "host_library__region")
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


class SeriesUpdateView(SeriesFormMixin, PermissionRequiredMixin, VisibleObjectsMixin, UpdateView):
    permission_required = "meetings.change_meetupseries"


class SeriesDetailView(PermissionRequiredMixin, VisibleObjectsMixin, DetailView):
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
        context["past_meetings"] = (
            self.object.meetings.filter(end__lt=timezone.now(), cancelled_at__isnull=True)
            .annotate(present=Count("rsvps", filter=Q(rsvps__attended=True)))
            .order_by("-start")[:6]
        )
        return context


class MeetingCancelView(PermissionRequiredMixin, View):
    permission_required = "meetings.change_meeting"

    def post(self, request, pk):
        meeting = get_object_or_404(
            Meeting.objects.visible_to(request.user).select_related("series"), pk=pk
        )
        form = MeetingCancelForm(request.POST)
        form.is_valid()
        services.meeting_cancel(meeting=meeting, reason=form.cleaned_data.get("reason", ""))
        messages.success(request, _("The meeting of %s is cancelled.") % _local(meeting))
        return redirect(meeting.series or "meetings:series-list")


class MeetingMoveView(PermissionRequiredMixin, View):
    permission_required = "meetings.change_meeting"
    template_name = "meetings/meeting_move.html"

    def get(self, request, pk):
        meeting = get_object_or_404(
            Meeting.objects.visible_to(request.user).select_related("series"), pk=pk
        )
        local_start = meeting.start.astimezone(meeting.zone).replace(tzinfo=None)
        form = MeetingMoveForm(meeting=meeting, initial={"start": local_start})
        return render(request, self.template_name, {"meeting": meeting, "form": form})

    def post(self, request, pk):
        meeting = get_object_or_404(
            Meeting.objects.visible_to(request.user).select_related("series"), pk=pk
        )
        form = MeetingMoveForm(request.POST, meeting=meeting)
        if not form.is_valid():
            return render(request, self.template_name, {"meeting": meeting, "form": form})
        services.meeting_move(meeting=meeting, start=form.cleaned_data["start"])
        messages.success(request, _("The meeting now starts on %s.") % _local(meeting))
        return redirect(meeting.series or "meetings:series-list")


def _local(meeting: Meeting) -> str:
    """The meeting's start in its own time zone, written the way the active language does."""
    return date_format(meeting.start.astimezone(meeting.zone), "SHORT_DATETIME_FORMAT")


# Public pages -------------------------------------------------------------------------------
# No login, and no personal data: counts of seats, never who signed up.


def _public_meetings():
    # Seats counted for the page's rows only (with_seats): the database walks the index on
    # start and stops at the page's last row.
    return (
        Meeting.objects.public()
        .upcoming()
        .select_related("series", "host_library", "host_library__region")
        .with_seats()
        .order_by("start")
    )


@method_decorator(login_not_required, name="dispatch")
@method_decorator(cache_public_page(60), name="dispatch")
class PublicMeetupListView(ListView):
    template_name = "meetings/public_meetup_list.html"
    paginate_by = PAGE_SIZE

    def get_queryset(self):
        self.filter_form = PublicMeetupFilterForm(self.request.GET or None)
        return self.filter_form.filter(_public_meetings())

    def get_context_data(self, **kwargs):
        query = self.request.GET.copy()
        query.pop("page", None)
        return super().get_context_data(
            filter_form=self.filter_form, querystring=query.urlencode(), **kwargs
        )


@method_decorator(login_not_required, name="dispatch")
@method_decorator(cache_public_page(60), name="dispatch")
class PublicSeriesView(DetailView):
    template_name = "meetings/public_series.html"
    queryset = MeetupSeries.objects.filter(status=MeetupSeries.Status.ACTIVE).select_related(
        "host_library", "host_library__region"
    )

    def get_context_data(self, **kwargs):
        meetings = _public_meetings().filter(series=self.object)[:6]
        return super().get_context_data(meetings=meetings, **kwargs)


@method_decorator(login_not_required, name="dispatch")
class PublicMeetingView(View):
    """A meeting's page and its sign-up form."""

    template_name = "meetings/public_meeting.html"

    def get_meeting(self, pk):
        return get_object_or_404(_public_meetings().select_related("series__host_library"), pk=pk)

    def render_page(self, request, meeting, form, status=200):
        context = {
            "meeting": meeting,
            "form": form,
            "seats_left": None
            if meeting.capacity is None
            else max(meeting.capacity - meeting.seats, 0),
        }
        return render(request, self.template_name, context, status=status)

    def get(self, request, pk):
        return self.render_page(request, self.get_meeting(pk), SignupForm())

    def post(self, request, pk):
        meeting = self.get_meeting(pk)
        form = SignupForm(request.POST)
        if not form.is_valid():
            return self.render_page(request, meeting, form)
        try:
            rsvp = services.rsvp_signup(
                meeting=meeting, language=request.LANGUAGE_CODE, **form.cleaned_data
            )
        except services.SignupError as error:
            form.add_error(None, str(error))
            return self.render_page(request, meeting, form)
        if rsvp.waitlisted_at:
            messages.info(
                request,
                _(
                    "The meeting is full: you are on the waiting list. We email you if a "
                    "seat frees up."
                ),
            )
        else:
            messages.success(
                request, _("You are signed up. A confirmation is on its way by email.")
            )
        return redirect("meetings:meeting-public", pk=meeting.pk)


@method_decorator(login_not_required, name="dispatch")
class RSVPManageView(View):
    """From the link in a confirmation email: change or cancel a sign-up (on POST only)."""

    template_name = "meetings/rsvp_manage.html"

    def dispatch(self, request, token):
        try:
            self.rsvp = links.rsvp_from_token(token)
        except LinkError as error:
            return render(
                request, "meetings/link_invalid.html", {"expired": error.expired}, status=400
            )
        return super().dispatch(request, token)

    def get(self, request, token):
        initial = {
            "name": self.rsvp.name,
            "email": self.rsvp.email,
            "role": self.rsvp.role,
            "guests": self.rsvp.guests,
        }
        return render(
            request, self.template_name, {"rsvp": self.rsvp, "form": SignupForm(initial=initial)}
        )

    def post(self, request, token):
        rsvp = self.rsvp
        if "cancel" in request.POST:
            services.rsvp_cancel(rsvp=rsvp, language=request.LANGUAGE_CODE)
            messages.success(
                request, _("Your sign-up is cancelled. Thank you for letting us know.")
            )
            return redirect("meetings:rsvp-manage", token=token)
        data = request.POST.copy()
        data["email"] = rsvp.email  # the link belongs to this address: it cannot be changed here
        form = SignupForm(data)
        if not form.is_valid():
            return render(request, self.template_name, {"rsvp": rsvp, "form": form})
        try:
            services.rsvp_signup(
                meeting=rsvp.meeting, language=request.LANGUAGE_CODE, **form.cleaned_data
            )
        except services.SignupError as error:
            form.add_error(None, str(error))
            return render(request, self.template_name, {"rsvp": rsvp, "form": form})
        messages.success(request, _("Your sign-up is updated."))
        return redirect("meetings:rsvp-manage", token=token)


@method_decorator(login_not_required, name="dispatch")
class LibrarianAnswerView(View):
    """A librarian's answer link from an email: GET confirms, only POST records.

    Mail scanners open links to check them; opening this one changes nothing.
    """

    template_name = "meetings/librarian_answer.html"

    def dispatch(self, request, token):
        try:
            self.librarian, self.meeting = links.librarian_answer_load(token)
        except LinkError as error:
            return render(
                request, "meetings/link_invalid.html", {"expired": error.expired}, status=400
            )
        return super().dispatch(request, token)

    def render_page(self, request, form, **context):
        current = self.meeting.rsvps.filter(email__iexact=self.librarian.email).first()
        context.update(form=form, meeting=self.meeting, librarian=self.librarian, current=current)
        return render(request, self.template_name, context)

    def get(self, request, token):
        answer = request.GET.get("answer")
        initial = {"answer": answer} if answer in RSVP.Answer.values else {}
        return self.render_page(request, AnswerForm(initial=initial))

    def post(self, request, token):
        form = AnswerForm(request.POST)
        if not form.is_valid():
            return self.render_page(request, form)
        try:
            services.librarian_answer(
                librarian=self.librarian,
                meeting=self.meeting,
                answer=form.cleaned_data["answer"],
                language=request.LANGUAGE_CODE,
            )
        except services.SignupError as error:
            form.add_error(None, str(error))
            return self.render_page(request, form)
        messages.success(request, _("Thank you: your answer is recorded."))
        return redirect("meetings:librarian-answer", token=token)


class MeetingAttendanceView(PermissionRequiredMixin, View):
    """After a meeting: one page, one form, tick who came."""

    permission_required = "meetings.change_rsvp"
    template_name = "meetings/meeting_attendance.html"

    def get_meeting(self, pk):
        return get_object_or_404(
            Meeting.objects.visible_to(self.request.user).select_related("series", "host_library"),
            pk=pk,
        )

    def get(self, request, pk):
        meeting = self.get_meeting(pk)
        rsvps = meeting.rsvps.exclude(answer=RSVP.Answer.NO).select_related("librarian__library")
        return render(request, self.template_name, {"meeting": meeting, "rsvps": rsvps})

    def post(self, request, pk):
        meeting = self.get_meeting(pk)
        present = {int(v) for v in request.POST.getlist("present") if v.isdigit()}
        services.attendance_record(meeting=meeting, present=present, recorded_by=request.user)
        messages.success(
            request, _("Attendance recorded: %(count)d present.") % {"count": len(present)}
        )
        return redirect(meeting.series or "meetings:series-list")


class MeetingCreateView(FormPageMixin, PermissionRequiredMixin, CreateView):
    """A one-off meeting: an office hour across time zones, a conference workshop."""

    permission_required = "meetings.add_meeting"
    form_class = OneOffMeetingForm
    heading = gettext_lazy("New one-off meeting")
    cancel_url_name = "meetings:series-list"

    def get_success_url(self):
        return reverse("meetings:meeting-public", args=[self.object.pk])

    def form_valid(self, form):
        messages.success(self.request, _("Meeting “%s” created.") % form.instance.title)
        return super().form_valid(form)
