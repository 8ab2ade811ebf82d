from django.urls import path

from . import views

app_name = "drives"

urlpatterns = [
    path("drives/", views.DriveListView.as_view(), name="drive-list"),
    path("drives/create/", views.DriveCreateView.as_view(), name="drive-create"),
    path("drives/<int:pk>/", views.DriveDetailView.as_view(), name="drive-detail"),
    path("drives/<int:pk>/update/", views.DriveUpdateView.as_view(), name="drive-update"),
    path("drives/<int:pk>/runs/", views.DriveRunsView.as_view(), name="drive-runs"),
    path("drives/<int:pk>/pull/", views.DrivePullView.as_view(), name="drive-pull"),
    path(
        "drives/contributions/<int:pk>/count-in/",
        views.ContributionCountInView.as_view(),
        name="contribution-count-in",
    ),
    path("drives/leads/", views.LeadListView.as_view(), name="lead-list"),
    path("drives/leads/<int:pk>/", views.LeadDetailView.as_view(), name="lead-detail"),
    path("drives/leads/<int:pk>/link/", views.LeadLinkView.as_view(), name="lead-link"),
    path(
        "drives/leads/<int:pk>/librarian/",
        views.LeadLibrarianCreateView.as_view(),
        name="lead-librarian-create",
    ),
    path("drives/leads/<int:pk>/dismiss/", views.LeadDismissView.as_view(), name="lead-dismiss"),
    # Public: no login, for drives that opted in.
    path(
        "drives/<int:pk>/leaderboard/",
        views.PublicLeaderboardView.as_view(),
        name="drive-leaderboard-public",
    ),
    # Where drives were pages of campaigns: redirected for good.
    path(
        "campaigns/<int:pk>/drive/",
        views.MovedPermanentlyView.as_view(url_name="drives:drive-detail"),
    ),
    path(
        "campaigns/<int:pk>/drive/runs/",
        views.MovedPermanentlyView.as_view(url_name="drives:drive-runs"),
    ),
    path(
        "campaigns/<int:pk>/drive/pull/",
        views.MovedPermanentlyView.as_view(url_name="drives:drive-pull"),
    ),
    path(
        "campaigns/contributions/<int:pk>/count-in/",
        views.MovedPermanentlyView.as_view(url_name="drives:contribution-count-in"),
    ),
]
