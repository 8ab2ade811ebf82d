"""Public calendar feeds, included by outreach.urls at calendar/."""

from django.urls import path

from . import feeds

app_name = "calendar"

urlpatterns = [
    path("meetups.ics", feeds.AllFeedView.as_view(), name="all"),
    path("series/<slug:slug>.ics", feeds.SeriesFeedView.as_view(), name="series"),
    path("libraries/<slug:slug>.ics", feeds.LibraryFeedView.as_view(), name="library"),
    path("regions/<slug:slug>.ics", feeds.RegionFeedView.as_view(), name="region"),
    path("meetings/<int:pk>.ics", feeds.MeetingCalendarView.as_view(), name="meeting"),
]
