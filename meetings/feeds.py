"""Public calendar feeds (.ics): thin views over meetings.calendar.

Calendar apps poll a subscription again and again, and it changes rarely: each response is
cacheable for five minutes, and carries an ETag and a Last-Modified computed without
building the file, so that a poll with If-None-Match or If-Modified-Since gets a 304.
"""

import gzip

from django.contrib.auth.decorators import login_not_required
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.utils.cache import get_conditional_response, patch_cache_control, patch_vary_headers
from django.utils.decorators import method_decorator
from django.utils.http import content_disposition_header, http_date
from django.utils.translation import get_language
from django.views import View

from libraries.models import Library, Region

from . import calendar
from .models import MeetupSeries

CACHE_SECONDS = 300
VERSION_SECONDS = 60
CONTENT_SECONDS = 60 * 60 * 24
# Files this process built or fetched lately, by cache key: a feed of the whole site weighs
# hundreds of kilobytes, which the shared cache would otherwise unpickle on every request.
_recent_files: dict[str, bytes] = {}
RECENT_FILES = 32


def _cached_file(key: str, build) -> bytes:
    """The file under ``key`` (which names its content): from this process, the shared
    cache, or ``build()`` — built once per content, whichever process asks first."""
    content = _recent_files.get(key)
    if content is None:
        content = cache.get(key)
        if content is None:
            content = build()
            cache.set(key, content, CONTENT_SECONDS)
        if len(_recent_files) >= RECENT_FILES:
            _recent_files.clear()
        _recent_files[key] = content
    return content


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
        version = self.version = self.get_version()
        gzipped = "gzip" in request.headers.get("Accept-Encoding", "")
        # A strong ETag names one representation (RFC 9110 §8.8.1): the gzip one gets a weak
        # one, which If-None-Match still matches (weak comparison, §13.1.2).
        etag = f"W/{version.etag}" if gzipped else version.etag
        last_modified = int(version.last_modified.timestamp())
        response = get_conditional_response(request, etag=etag, last_modified=last_modified)
        if response is None:
            content = self.get_gzipped_content() if gzipped else self.get_content()
            response = HttpResponse(content, content_type="text/calendar; charset=utf-8")
            if gzipped:
                response["Content-Encoding"] = "gzip"
            response["Content-Disposition"] = content_disposition_header(
                self.as_attachment, self.get_filename()
            )
        response["ETag"] = etag
        response["Last-Modified"] = http_date(last_modified)
        patch_vary_headers(response, ["Accept-Encoding"])
        patch_cache_control(response, public=True, max_age=CACHE_SECONDS)
        return response

    def get_gzipped_content(self) -> bytes:
        # Calendar apps ask for gzip; the file shrinks about thirteen times, compressed once
        # per version.
        return _cached_file(
            f"calendar:gzip:{self.version.etag}", lambda: gzip.compress(self.get_content())
        )


class FeedView(CalendarView):
    """A subscription: ``get_feed`` tells which series and meetings it holds."""

    def get_feed(self) -> calendar.Feed:
        raise NotImplementedError

    def get(self, request, **kwargs):
        self.feed = self.get_feed()
        return super().get(request, **kwargs)

    def get_version(self):
        # The validators are reused for VERSION_SECONDS, well within the max-age the response
        # already allows any cache (CACHE_SECONDS): most polls then cost no query at all.
        key = f"calendar:version:{type(self).__name__}:{self.feed.slug}:{get_language()}"
        version = cache.get(key)
        if version is None:
            version = calendar.feed_version(self.feed)
            cache.set(key, version, VERSION_SECONDS)
        return version

    def get_content(self):
        # The ETag names the content (every input of the file is part of it), so the file
        # built once for an ETag serves every request with that ETag.
        return _cached_file(
            f"calendar:content:{self.version.etag}",
            lambda: calendar.feed_to_calendar(self.feed),
        )

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
