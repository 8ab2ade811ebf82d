from django.urls import path

from . import public_views

app_name = "campaigns"

urlpatterns = [
    # Reached from links in campaign emails: no login, a signed link.
    path("email/answer/<str:token>/", public_views.InvitationAnswerView.as_view(), name="answer"),
    path(
        "email/unsubscribe/<str:token>/",
        public_views.UnsubscribeView.as_view(),
        name="unsubscribe",
    ),
    path(
        "email/preferences/<str:token>/",
        public_views.PreferencesView.as_view(),
        name="preferences",
    ),
    # Coordinator pages (campaigns.views).
]
