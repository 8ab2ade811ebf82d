from django.urls import path

from . import public_views, views

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
    path("campaigns/", views.CampaignListView.as_view(), name="campaign-list"),
    path("campaigns/create/", views.CampaignCreateView.as_view(), name="campaign-create"),
    path("campaigns/<int:pk>/", views.CampaignDetailView.as_view(), name="campaign-detail"),
    path("campaigns/<int:pk>/update/", views.CampaignUpdateView.as_view(), name="campaign-update"),
    path("campaigns/<int:pk>/stats/", views.CampaignStatsView.as_view(), name="campaign-stats"),
    path(
        "campaigns/<int:pk>/audience/",
        views.CampaignAudienceView.as_view(),
        name="campaign-audience",
    ),
    path(
        "campaigns/<int:pk>/preview/", views.CampaignPreviewView.as_view(), name="campaign-preview"
    ),
    path(
        "campaigns/<int:pk>/test-send/",
        views.CampaignTestSendView.as_view(),
        name="campaign-test-send",
    ),
    path(
        "campaigns/<int:pk>/messages/create/",
        views.MessageCreateView.as_view(),
        name="message-create",
    ),
    path(
        "campaigns/<int:pk>/messages/<str:language>/update/",
        views.MessageUpdateView.as_view(),
        name="message-update",
    ),
    path("campaigns/<int:pk>/launch/", views.CampaignLaunchView.as_view(), name="campaign-launch"),
    path("campaigns/<int:pk>/pause/", views.CampaignPauseView.as_view(), name="campaign-pause"),
    path("campaigns/<int:pk>/resume/", views.CampaignResumeView.as_view(), name="campaign-resume"),
    path("campaigns/<int:pk>/cancel/", views.CampaignCancelView.as_view(), name="campaign-cancel"),
    path(
        "campaigns/<int:pk>/follow-up/",
        views.CampaignFollowUpCreateView.as_view(),
        name="campaign-follow-up",
    ),
    path("campaigns/<int:pk>/deliveries/", views.DeliveryListView.as_view(), name="delivery-list"),
    path(
        "campaigns/deliveries/<int:pk>/moderation/",
        views.DeliveryModerationView.as_view(),
        name="delivery-moderation",
    ),
    # The shortlist's "use as campaign audience" (its page is libraries:shortlist).
    path("shortlist/campaign/", views.ShortlistCampaignView.as_view(), name="shortlist-campaign"),
]
