from django.urls import path

from . import views

app_name = "libraries"

urlpatterns = [
    path("libraries/", views.LibraryListView.as_view(), name="library-list"),
    path("libraries/create/", views.LibraryCreateView.as_view(), name="library-create"),
    path("libraries/export/", views.LibraryExportView.as_view(), name="library-export"),
    path("libraries/import/", views.LibraryImportView.as_view(), name="library-import"),
    path(
        "libraries/import/confirm/",
        views.LibraryImportConfirmView.as_view(),
        name="library-import-confirm",
    ),
    path(
        "libraries/import/example.csv",
        views.LibraryImportExampleView.as_view(),
        name="library-import-example",
    ),
    path("libraries/<slug:slug>/", views.LibraryDetailView.as_view(), name="library-detail"),
    path("libraries/<slug:slug>/update/", views.LibraryUpdateView.as_view(), name="library-update"),
    path(
        "libraries/<slug:slug>/status/",
        views.LibraryStatusChangeView.as_view(),
        name="library-status",
    ),
    path(
        "libraries/<slug:slug>/signals/",
        views.ActivitySignalCreateView.as_view(),
        name="signal-create",
    ),
    path("shortlist/", views.ShortlistView.as_view(), name="shortlist"),
    path("shortlist/export/", views.ShortlistExportView.as_view(), name="shortlist-export"),
    path("shortlist/ranks/", views.ShortlistRanksView.as_view(), name="shortlist-ranks"),
    path("shortlist/refresh/", views.ScoresRefreshView.as_view(), name="scores-refresh"),
    path("librarians/", views.LibrarianListView.as_view(), name="librarian-list"),
    path("librarians/create/", views.LibrarianCreateView.as_view(), name="librarian-create"),
    path(
        "librarians/<int:pk>/update/",
        views.LibrarianUpdateView.as_view(),
        name="librarian-update",
    ),
    path("mailing-lists/", views.MailingListListView.as_view(), name="mailinglist-list"),
    path(
        "mailing-lists/create/",
        views.MailingListCreateView.as_view(),
        name="mailinglist-create",
    ),
    path(
        "mailing-lists/<slug:slug>/",
        views.MailingListDetailView.as_view(),
        name="mailinglist-detail",
    ),
    path(
        "mailing-lists/<slug:slug>/update/",
        views.MailingListUpdateView.as_view(),
        name="mailinglist-update",
    ),
]
