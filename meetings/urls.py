from django.urls import path

from . import views

app_name = "meetings"

urlpatterns = [
    path("series/", views.SeriesListView.as_view(), name="series-list"),
    path("series/create/", views.SeriesCreateView.as_view(), name="series-create"),
    path("series/<slug:slug>/", views.SeriesDetailView.as_view(), name="series-detail"),
    path("series/<slug:slug>/update/", views.SeriesUpdateView.as_view(), name="series-update"),
    path("meetings/create/", views.MeetingCreateView.as_view(), name="meeting-create"),
    path("meetings/<int:pk>/cancel/", views.MeetingCancelView.as_view(), name="meeting-cancel"),
    path("meetings/<int:pk>/move/", views.MeetingMoveView.as_view(), name="meeting-move"),
    path(
        "meetings/<int:pk>/attendance/",
        views.MeetingAttendanceView.as_view(),
        name="meeting-attendance",
    ),
    # Public pages: no login.
    path("meetups/", views.PublicMeetupListView.as_view(), name="public-list"),
    path("meetups/meetings/<int:pk>/", views.PublicMeetingView.as_view(), name="meeting-public"),
    path("meetups/rsvp/<str:token>/", views.RSVPManageView.as_view(), name="rsvp-manage"),
    path(
        "meetups/answer/<str:token>/",
        views.LibrarianAnswerView.as_view(),
        name="librarian-answer",
    ),
    path("meetups/<slug:slug>/", views.PublicSeriesView.as_view(), name="series-public"),
]
