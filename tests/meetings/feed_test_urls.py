"""The project's URLs plus the calendar feeds, until outreach.urls includes them."""

from django.urls import include, path

from outreach.urls import urlpatterns as project_urlpatterns

urlpatterns = [
    *project_urlpatterns,
    path("calendar/", include("meetings.feed_urls")),
]
