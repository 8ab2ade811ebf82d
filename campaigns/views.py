"""Coordinator pages for campaigns: write, check the audience, preview, send, follow.

Every view here requires a login (LoginRequiredMiddleware) and the model permission it acts
with (PermissionRequiredMixin): the Coordinators group holds them all. The writes are the
services of ``campaigns.services``; the statistics are ``campaigns.selectors``.
"""

import smtplib
from collections import defaultdict
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.mixins import PermissionRequiredMixin
from django.db import transaction
from django.http import HttpResponseRedirect, QueryDict
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views import View
from django.views.generic import CreateView, DetailView, ListView, UpdateView

from core.mixins import PAGE_SIZE, FormPageMixin, VisibleObjectsMixin
from libraries.forms import shortlist_per_region, shortlist_url
from libraries.models import Librarian, Library, MailingList
from libraries.selectors import shortlist_build

from . import selectors, services
from .audience import audience_build
from .forms import (
    CampaignFilterForm,
    CampaignForm,
    DeliveryFilterForm,
    LaunchForm,
    MessageForm,
    ModerationForm,
    PreviewForm,
)
from .models import Campaign, Delivery, Message
from .rendering import VARIABLES
from .sending import campaign_preview, campaign_test_send

# The audience screen and the preview's select show this many recipients.
AUDIENCE_ROWS = 100
PREVIEW_LIBRARIANS = 200

Status = Campaign.Status


def _querystring(request) -> str:
    query = request.GET.copy()
    query.pop("page", None)
    return query.urlencode()


def _form_errors_as_messages(request, form) -> None:
    for name, errors in form.errors.items():
        label = form.fields[name].label if name in form.fields else ""
        for error in errors:
            messages.error(request, f"{label}: {error}" if label else error)


# The campaign ------------------------------------------------------------------------------


class CampaignListView(PermissionRequiredMixin, ListView):
    permission_required = "campaigns.view_campaign"
    paginate_by = PAGE_SIZE
    template_name = "campaigns/campaign_list.html"

    def get_queryset(self):
        self.filter_form = CampaignFilterForm(self.request.GET or None)
        campaigns = Campaign.objects.visible_to(self.request.user)
        return selectors.campaigns_with_counts(self.filter_form.filter(campaigns))

    def get_context_data(self, **kwargs):
        return super().get_context_data(
            filter_form=self.filter_form, querystring=_querystring(self.request), **kwargs
        )


class CampaignFormMixin(FormPageMixin):
    template_name = "campaigns/campaign_form.html"
    model = Campaign
    form_class = CampaignForm

    def get_success_url(self):
        return self.object.get_absolute_url()


class CampaignCreateView(CampaignFormMixin, PermissionRequiredMixin, CreateView):
    permission_required = "campaigns.add_campaign"
    heading = gettext_lazy("New campaign")
    cancel_url_name = "campaigns:campaign-list"

    def form_valid(self, form):
        form.instance.created_by = self.request.user
        response = super().form_valid(form)
        messages.success(
            self.request,
            _("Campaign “%s” created. Now write its message.") % self.object.title,
        )
        return response


class EditableCampaignMixin:
    """Pages that change a campaign: only before it is sent. After the permission check."""

    def dispatch(self, request, *args, **kwargs):
        self.campaign = get_object_or_404(
            Campaign.objects.visible_to(request.user), pk=kwargs["pk"]
        )
        if not self.campaign.is_editable:
            messages.error(request, _("A campaign that was sent can no longer be changed."))
            return redirect(self.campaign)
        return super().dispatch(request, *args, **kwargs)


class CampaignUpdateView(
    PermissionRequiredMixin, EditableCampaignMixin, CampaignFormMixin, UpdateView
):
    permission_required = "campaigns.change_campaign"

    def form_valid(self, form):
        messages.success(self.request, _("Campaign “%s” saved.") % form.instance.title)
        return super().form_valid(form)


def campaign_actions(campaign: Campaign) -> dict[str, bool]:
    """What the campaign page offers, given the status."""
    return {
        "edit": campaign.is_editable,
        "launch": campaign.is_editable,
        "pause": campaign.status == Status.SENDING,
        "resume": campaign.status == Status.PAUSED,
        "cancel": campaign.status not in (Status.SENT, Status.CANCELLED),
        "follow_up": campaign.asks_for_answers
        and campaign.status in (Status.SENDING, Status.PAUSED, Status.SENT),
    }


def stats_context(campaign: Campaign) -> dict:
    return {
        "campaign": campaign,
        "stats": selectors.campaign_stats(campaign),
        # The figures move only while workers send: refresh them then, and only then.
        "live": campaign.status in (Status.SENDING, Status.SCHEDULED),
    }


class CampaignDetailView(PermissionRequiredMixin, VisibleObjectsMixin, DetailView):
    permission_required = "campaigns.view_campaign"
    template_name = "campaigns/campaign_detail.html"
    queryset = Campaign.objects.select_related(
        "meeting", "meeting__series", "follow_up_of", "drive", "created_by"
    ).prefetch_related("messages", "mailing_lists", "regions")

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        campaign = self.object
        written = {message.language for message in campaign.messages.all()}
        context.update(stats_context(campaign))
        context.update(
            actions=campaign_actions(campaign),
            launch_form=LaunchForm(initial={"scheduled_at": campaign.scheduled_at}),
            missing_languages=[
                (code, name)
                for code, name in Message._meta.get_field("language").choices
                if code not in written
            ],
            has_default_message=campaign.default_language in written,
        )
        if campaign.is_editable:
            # Before the launch, who it would reach; after it, the deliveries say it.
            context["audience"] = audience_build(campaign)
        return context


class CampaignStatsView(PermissionRequiredMixin, View):
    """The statistics block alone, for htmx to refresh it while the campaign sends."""

    permission_required = "campaigns.view_campaign"

    def get(self, request, pk):
        campaign = get_object_or_404(Campaign.objects.visible_to(request.user), pk=pk)
        return render(request, "campaigns/partials/_campaign_stats.html", stats_context(campaign))


# Messages ----------------------------------------------------------------------------------


class MessageFormMixin(EditableCampaignMixin):
    template_name = "campaigns/message_form.html"
    model = Message
    form_class = MessageForm

    def get_form_kwargs(self):
        return {**super().get_form_kwargs(), "campaign": self.campaign}

    def get_context_data(self, **kwargs):
        return super().get_context_data(
            campaign=self.campaign, variables=VARIABLES.items(), **kwargs
        )

    def form_valid(self, form):
        self.object = form.save()
        messages.success(
            self.request, _("Message in %s saved.") % self.object.get_language_display()
        )
        return HttpResponseRedirect(self.campaign.get_absolute_url())


class MessageCreateView(PermissionRequiredMixin, MessageFormMixin, CreateView):
    permission_required = "campaigns.add_message"

    def get_initial(self):
        return {"language": self.request.GET.get("language", "")}


class MessageUpdateView(PermissionRequiredMixin, MessageFormMixin, UpdateView):
    permission_required = "campaigns.change_message"

    def get_object(self, queryset=None):
        return get_object_or_404(Message, campaign=self.campaign, language=self.kwargs["language"])


# Audience and preview ----------------------------------------------------------------------


class CampaignAudienceView(PermissionRequiredMixin, View):
    permission_required = "campaigns.view_campaign"

    def get(self, request, pk):
        campaign = get_object_or_404(Campaign.objects.visible_to(request.user), pk=pk)
        audience = audience_build(campaign)
        shown = audience.recipients[:AUDIENCE_ROWS]
        libraries = Library.objects.in_bulk({r.library_id for r in shown if r.library_id})
        excluded = defaultdict(list)
        for entry in audience.excluded:
            excluded[entry.reason_display].append(entry)
        context = {
            "campaign": campaign,
            "audience": audience,
            "recipients": [(r, libraries.get(r.library_id)) for r in shown],
            "more_recipients": len(audience.recipients) - len(shown),
            "excluded_groups": [
                (label, count, excluded[label][:AUDIENCE_ROWS])
                for label, count in audience.excluded_counts
            ],
        }
        return render(request, "campaigns/campaign_audience.html", context)


class PreviewMixin:
    """Read which message and which recipient from a request; build the preview form."""

    def preview_form(self, campaign: Campaign, data) -> PreviewForm:
        languages = list(campaign.messages.values_list("language", flat=True))
        return self._form(campaign, data, languages, self._recipients(campaign))

    @staticmethod
    def _recipients(campaign: Campaign) -> list[tuple[str, str]]:
        """The audience's lists and first librarians; once launched, its deliveries' (the
        audience then leaves out everyone who already received it)."""
        if campaign.deliveries.exists():
            rows = campaign.deliveries.order_by("pk").values_list(
                "mailing_list_id", "mailing_list__name", "librarian_id", "librarian__name", "email"
            )
            lists = [
                (f"list-{pk}", f"{name} <{email}>")
                for pk, name, _l, _n, email in rows.exclude(mailing_list=None)
            ]
            people = [
                (f"librarian-{pk}", f"{name} <{email}>")
                for _p, _m, pk, name, email in rows.exclude(librarian=None)[:PREVIEW_LIBRARIANS]
            ]
            return lists + people
        audience = audience_build(campaign)
        librarians = [r for r in audience.recipients if r.librarian_id][:PREVIEW_LIBRARIANS]
        lists = [r for r in audience.recipients if r.mailing_list_id]
        recipients = [(f"list-{r.mailing_list_id}", f"{r.name} <{r.email}>") for r in lists]
        recipients += [(f"librarian-{r.librarian_id}", f"{r.name} <{r.email}>") for r in librarians]
        return recipients

    @staticmethod
    def _form(campaign, data, languages, recipients) -> PreviewForm:
        if data is None:
            language = campaign.default_language if campaign.default_language in languages else ""
            data = {
                "language": language or next(iter(languages), ""),
                "recipient": next(iter(recipients), ("", ""))[0],
            }
        return PreviewForm(data, languages=languages, recipients=recipients)

    @staticmethod
    def recipient(form: PreviewForm) -> dict:
        """``librarian=`` or ``mailing_list=`` for the sending functions, from the form."""
        kind, _sep, pk = form.cleaned_data.get("recipient", "").partition("-")
        # A recipient deleted since the page was shown: preview for nobody rather than fail.
        if kind == "librarian":
            return {"librarian": Librarian.objects.select_related("library").filter(pk=pk).first()}
        if kind == "list":
            return {"mailing_list": MailingList.objects.filter(pk=pk).first()}
        return {}


class CampaignPreviewView(PreviewMixin, PermissionRequiredMixin, View):
    permission_required = "campaigns.view_campaign"

    def get(self, request, pk):
        campaign = get_object_or_404(Campaign.objects.visible_to(request.user), pk=pk)
        form = self.preview_form(campaign, request.GET or None)
        preview = None
        if form.is_valid():
            preview = campaign_preview(
                campaign, language=form.cleaned_data["language"], **self.recipient(form)
            )
        context = {
            "campaign": campaign,
            "form": form,
            "preview": preview,
            "has_messages": bool(form.fields["language"].choices),
        }
        return render(request, "campaigns/campaign_preview.html", context)


class CampaignTestSendView(PreviewMixin, PermissionRequiredMixin, View):
    """Send the previewed email to the coordinator's own address."""

    permission_required = "campaigns.change_campaign"

    def post(self, request, pk):
        campaign = get_object_or_404(Campaign.objects.visible_to(request.user), pk=pk)
        form = self.preview_form(campaign, request.POST)
        back = reverse("campaigns:campaign-preview", args=[campaign.pk])
        if not form.is_valid():
            _form_errors_as_messages(request, form)
            return redirect(back)
        back += "?" + urlencode(form.cleaned_data)
        if not request.user.email:
            messages.error(
                request,
                _("Your account has no email address: ask an administrator to add one."),
            )
            return redirect(back)
        try:
            campaign_test_send(
                campaign,
                language=form.cleaned_data["language"],
                to=request.user.email,
                **self.recipient(form),
            )
        except (smtplib.SMTPException, OSError) as error:
            messages.error(
                request,
                _("The test could not be sent: %(error)s") % {"error": error},
            )
        else:
            messages.success(request, _("Test sent to %s.") % request.user.email)
        return redirect(back)


# Actions -----------------------------------------------------------------------------------


class CampaignActionView(PermissionRequiredMixin, View):
    """POST only: call one service, show its refusal as a message, back to the campaign."""

    permission_required = "campaigns.change_campaign"
    success_message = ""

    def act(self, campaign: Campaign) -> Campaign | None:
        raise NotImplementedError

    def post(self, request, pk):
        campaign = get_object_or_404(Campaign.objects.visible_to(request.user), pk=pk)
        try:
            result = self.act(campaign)
        except services.CampaignError as error:
            messages.error(request, str(error))
            return redirect(campaign)
        if result is None:  # the form said no; act() put its errors in messages
            return redirect(campaign)
        messages.success(request, self.message(result))
        return redirect(result)

    def message(self, campaign: Campaign) -> str:
        return str(self.success_message)


class CampaignLaunchView(CampaignActionView):
    def act(self, campaign):
        form = LaunchForm(self.request.POST)
        if not form.is_valid():
            _form_errors_as_messages(self.request, form)
            return None
        # The date and the launch together: if the launch is refused, the date is not kept.
        with transaction.atomic():
            campaign.scheduled_at = form.cleaned_data["scheduled_at"]
            campaign.save(update_fields=["scheduled_at", "updated_at"])
            return services.campaign_launch(campaign=campaign, launched_by=self.request.user)

    def message(self, campaign):
        if campaign.status == Status.SCHEDULED:
            when = timezone.localtime(campaign.scheduled_at)
            return _("The campaign will be sent on %s.") % date_format(when, "DATETIME_FORMAT")
        return _("Sending started.")


class CampaignPauseView(CampaignActionView):
    success_message = gettext_lazy("Sending paused: the messages in flight still leave.")

    def act(self, campaign):
        return services.campaign_pause(campaign=campaign)


class CampaignResumeView(CampaignActionView):
    success_message = gettext_lazy("Sending resumed.")

    def act(self, campaign):
        return services.campaign_resume(campaign=campaign)


class CampaignCancelView(CampaignActionView):
    """GET asks for a confirmation; POST cancels."""

    success_message = gettext_lazy("Campaign cancelled: nothing more will be sent.")

    def get(self, request, pk):
        campaign = get_object_or_404(Campaign.objects.visible_to(request.user), pk=pk)
        if not campaign_actions(campaign)["cancel"]:
            messages.info(request, _("This campaign is already finished."))
            return redirect(campaign)
        queued = campaign.deliveries.filter(state=Delivery.State.QUEUED).count()
        return render(
            request, "campaigns/campaign_cancel.html", {"campaign": campaign, "queued": queued}
        )

    def act(self, campaign):
        return services.campaign_cancel(campaign=campaign)


class CampaignFollowUpCreateView(CampaignActionView):
    permission_required = "campaigns.add_campaign"
    success_message = gettext_lazy(
        "Follow-up created as a draft: check its audience and message, then send it."
    )

    def act(self, campaign):
        return services.campaign_follow_up_create(campaign=campaign, created_by=self.request.user)


# Deliveries --------------------------------------------------------------------------------


class DeliveryListView(PermissionRequiredMixin, ListView):
    permission_required = "campaigns.view_delivery"
    paginate_by = PAGE_SIZE
    template_name = "campaigns/delivery_list.html"

    def get_queryset(self):
        self.campaign = get_object_or_404(
            Campaign.objects.visible_to(self.request.user), pk=self.kwargs["pk"]
        )
        self.filter_form = DeliveryFilterForm(self.request.GET or None)
        deliveries = self.campaign.deliveries.select_related(
            "librarian", "library", "mailing_list"
        ).order_by("pk")
        return self.filter_form.filter(deliveries)

    def get_context_data(self, **kwargs):
        return super().get_context_data(
            campaign=self.campaign,
            filter_form=self.filter_form,
            querystring=_querystring(self.request),
            current_query=self.request.GET.urlencode(),
            moderation_choices=Delivery.Moderation.choices,
            **kwargs,
        )


class DeliveryModerationView(PermissionRequiredMixin, View):
    """What a list's moderators did with the post, recorded by the coordinator."""

    permission_required = "campaigns.change_delivery"

    def post(self, request, pk):
        delivery = get_object_or_404(
            Delivery.objects.visible_to(request.user).select_related("mailing_list"), pk=pk
        )
        form = ModerationForm(request.POST)
        if form.is_valid():
            try:
                services.delivery_moderation_record(
                    delivery=delivery, moderation=form.cleaned_data["moderation"]
                )
            except services.CampaignError as error:
                messages.error(request, str(error))
            else:
                messages.success(
                    request,
                    # Translators: a mailing list's name, then "Approved", "Rejected"…
                    _("%(list)s: %(moderation)s.")
                    % {
                        "list": delivery.mailing_list.name,
                        "moderation": delivery.get_moderation_display(),
                    },
                )
        else:
            _form_errors_as_messages(request, form)
        # Back to the page and filter the form was on (rebuilt: only these two keys).
        where = QueryDict(request.POST.get("querystring", ""))
        query = {key: where[key] for key in ("state", "page") if where.get(key, "").isalnum()}
        back = reverse("campaigns:delivery-list", args=[delivery.campaign_id])
        return redirect(f"{back}?{urlencode(query)}" if query else back)


# From the shortlist --------------------------------------------------------------------------


class ShortlistCampaignView(PermissionRequiredMixin, View):
    """A draft campaign to the librarians the shortlist shows, picked by hand; then its page."""

    permission_required = ("libraries.view_library", "campaigns.add_campaign")

    def post(self, request):
        librarians = shortlist_build(
            user=request.user, per_region=shortlist_per_region(request.POST)
        ).librarians()
        if not librarians:
            messages.error(request, _("The shortlist has no librarian to write to."))
            return redirect(shortlist_url(request.POST))
        campaign = services.shortlist_campaign_create(
            librarians=librarians, created_by=request.user
        )
        messages.success(
            request,
            _("Draft campaign created for %(count)d librarians: write its message.")
            % {"count": len(librarians)},
        )
        return redirect(campaign)
