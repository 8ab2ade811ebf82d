"""The host library's kit (coordinator pages), included by outreach.urls at series-kit/."""

from django.urls import path

from . import kit_views

app_name = "kit"

urlpatterns = [
    path("<slug:slug>/", kit_views.SeriesKitView.as_view(), name="series-kit"),
    path("<slug:slug>/poster.pdf", kit_views.SeriesPosterView.as_view(), name="series-poster"),
]
