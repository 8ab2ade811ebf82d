from django.urls import path

from . import views

app_name = "meetings"

urlpatterns = [
    path("series/", views.SeriesListView.as_view(), name="series-list"),
    path("series/create/", views.SeriesCreateView.as_view(), name="series-create"),
    path("series/<slug:slug>/", views.SeriesDetailView.as_view(), name="series-detail"),
    path("series/<slug:slug>/update/", views.SeriesUpdateView.as_view(), name="series-update"),
    path("meetings/<int:pk>/cancel/", views.MeetingCancelView.as_view(), name="meeting-cancel"),
    path("meetings/<int:pk>/move/", views.MeetingMoveView.as_view(), name="meeting-move"),
]
