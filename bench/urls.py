"""The project's URLs behind /healthz (the first match wins if outreach.urls has it too)."""

from django.urls import include, path

from outreach import health

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("", include("outreach.urls")),
]
