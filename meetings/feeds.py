"""Public calendar feeds (.ics): thin views over meetings.calendar.

Calendar apps poll a subscription again and again, and it changes rarely: each response is
cacheable for five minutes, and carries an ETag and a Last-Modified computed without
building the file, so that a poll with If-None-Match or If-Modified-Since gets a 304.
"""

from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.utils.cache import get_conditional_response, patch_cache_control
from django.utils.decorators import method_decorator
from django.utils.http import content_disposition_header, http_date
from django.views import View

from libraries.models import Library, Region

from . import calendar
from .models import MeetupSeries

CACHE_SECONDS = 300


@method_decorator(login_not_required, name="dispatch")
class CalendarView(View):
    """Serves one .ics file; subclasses say which (``get_version``, ``get_content``)."""

    http_method_names = ["get", "head", "options"]
    as_attachment = False

    def get_version(self) -> calendar.Version:
        raise NotImplementedError

    def get_content(self) -> bytes:
        raise NotImplementedError

    def get_filename(self) -> str:
        raise NotImplementedError

    def get(self, request: HttpRequest, **kwargs) -> HttpResponse:
        version = self.get_version()
        last_modified = int(version.last_modified.timestamp())
        response = get_conditional_response(request, etag=version.etag, last_modified=last_modified)
        if response is None:
            response = HttpResponse(self.get_content(), content_type="text/calendar; charset=utf-8")
            response["Content-Disposition"] = content_disposition_header(
                self.as_attachment, self.get_filename()
            )
        response["ETag"] = version.etag
        response["Last-Modified"] = http_date(last_modified)
        patch_cache_control(response, public=True, max_age=CACHE_SECONDS)
        return response


class FeedView(CalendarView):
    """A subscription: ``get_feed`` tells which series and meetings it holds."""

    def get_feed(self) -> calendar.Feed:
        raise NotImplementedError

    def get(self, request, **kwargs):
        self.feed = self.get_feed()
        return super().get(request, **kwargs)

    def get_version(self):
        return calendar.feed_version(self.feed)

    def get_content(self):
        return calendar.feed_to_calendar(self.feed)

    def get_filename(self):
        return f"{self.feed.slug}.ics"


class AllFeedView(FeedView):
    def get_feed(self):
        return calendar.feed_all()


class SeriesFeedView(FeedView):
    def get_feed(self):
        # Draft and ended series have no feed (nor a public page).
        series = get_object_or_404(
            MeetupSeries, slug=self.kwargs["slug"], status=MeetupSeries.Status.ACTIVE
        )
        return calendar.feed_series(series)


class LibraryFeedView(FeedView):
    def get_feed(self):
        library = get_object_or_404(
            Library.objects.select_related("region"), slug=self.kwargs["slug"]
        )
        return calendar.feed_library(library)


class RegionFeedView(FeedView):
    def get_feed(self):
        return calendar.feed_region(get_object_or_404(Region, slug=self.kwargs["slug"]))


class MeetingCalendarView(CalendarView):
    """One meeting's file, for "add to my calendar": downloaded, not subscribed to."""

    as_attachment = True

    def get(self, request, pk):
        self.meeting = get_object_or_404(calendar.meetings_public(), pk=pk)
        return super().get(request, pk=pk)

    def get_version(self):
        return calendar.meeting_version(self.meeting)

    def get_content(self):
        return calendar.meeting_to_calendar(self.meeting)

    def get_filename(self):
        return f"meeting-{self.meeting.pk}.ics"
