from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_not_required
from django.urls import include, path
from django.views.i18n import set_language

from core import health

from . import search_views, views

urlpatterns = [
    path("", views.DashboardView.as_view(), name="dashboard"),
    path(
        "dashboard/export/<slug:table>.csv",
        views.DashboardExportView.as_view(),
        name="dashboard-export",
    ),
    path("healthz", health.healthz, name="healthz"),
    path("search/", search_views.SearchView.as_view(), name="search"),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    # The language switcher is on the public pages too: anonymous visitors may use it.
    path("i18n/setlang/", login_not_required(set_language), name="set_language"),
    path("admin/", admin.site.urls),
    path("", include("libraries.urls")),
    path("", include("meetings.urls")),
    path("", include("campaigns.urls")),
    path("", include("drives.urls")),
    path("calendar/", include("meetings.feed_urls")),
    path("series-kit/", include("meetings.kit_urls")),
]
