"""Coordinators' forms: the campaign and its audience, its messages, preview, launch, filters."""

import re

from django import forms
from django.conf import settings
from django.db.models import Q
from django.db.models.functions import Lower
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from core.forms import NoLineBreaksMixin, VisibleChoicesMixin
from core.roles import sees_every_region
from libraries.models import Librarian, Library

from .models import Campaign, Delivery, Message
from .rendering import MessageError, template_check

CAMPAIGN_FIELDS = ["title", "kind", "default_language", "meeting", "follow_up_of", "drive"]
AUDIENCE_FIELDS = [
    "mailing_lists",
    "filter_librarians",
    "regions",
    "library_statuses",
    "languages",
    "min_score",
    "shortlist_only",
    "librarians",
]


class LibrariansByEmailField(forms.ModelMultipleChoiceField):
    """Librarians picked by hand, typed as their addresses (one per line, or separated by
    commas or semicolons) rather than chosen in a list of every librarian: the page stays the
    same size whatever the directory's. Addresses match whatever their case; one that matches
    nobody the user may see is an error that names it."""

    widget = forms.Textarea(attrs={"rows": 3})

    def prepare_value(self, value):
        if isinstance(value, str) or value is None:
            return value
        librarians = [item for item in value if isinstance(item, Librarian)]
        ids = [item for item in value if not isinstance(item, Librarian)]
        if ids:
            librarians += list(self.queryset.filter(pk__in=ids))
        return "\n".join(sorted(librarian.email for librarian in librarians))

    def clean(self, value):
        emails = list(dict.fromkeys(e.lower() for e in re.split(r"[\s,;]+", value or "") if e))
        if not emails:
            if self.required:
                raise forms.ValidationError(self.error_messages["required"], code="required")
            return self.queryset.none()
        found = self.queryset.annotate(email_lower=Lower("email")).filter(email_lower__in=emails)
        known = {librarian.email.lower() for librarian in found}
        unknown = [email for email in emails if email not in known]
        if unknown:
            raise forms.ValidationError(
                _("No librarian of yours has these addresses: %(emails)s."),
                params={"emails": ", ".join(unknown)},
                code="invalid_choice",
            )
        return found


class CampaignForm(VisibleChoicesMixin, NoLineBreaksMixin, forms.ModelForm):
    """The campaign and its audience, on one page."""

    one_line_fields = ("title",)

    library_statuses = forms.MultipleChoiceField(
        label=_("Library statuses"),
        choices=Library.Status.choices,
        widget=forms.CheckboxSelectMultiple,
        required=False,
        help_text=_("None ticked: every status."),
    )
    languages = forms.MultipleChoiceField(
        label=_("Librarians' languages"),
        choices=settings.CONTENT_LANGUAGES,
        widget=forms.CheckboxSelectMultiple,
        required=False,
        help_text=_("None ticked: every language."),
    )

    class Meta:
        model = Campaign
        fields = CAMPAIGN_FIELDS + AUDIENCE_FIELDS
        field_classes = {"librarians": LibrariansByEmailField}
        widgets = {
            "mailing_lists": forms.SelectMultiple(attrs={"size": 6}),
            "regions": forms.SelectMultiple(attrs={"size": 6}),
        }
        help_texts = {
            "regions": _("None selected: every region."),
            "librarians": _(
                "Their email addresses, one per line. Always included, whatever the filters."
            ),
        }

    def __init__(self, *args, **kwargs):
        # The choices start from what the user may see (VisibleChoicesMixin) and are refined.
        super().__init__(*args, **kwargs)
        # Upcoming meetups, and the one already chosen even if it is past.
        current = Q(pk=self.instance.meeting_id) if self.instance.meeting_id else Q(pk__in=[])
        meeting = self.fields["meeting"]
        meeting.queryset = (
            meeting.queryset.select_related("series")
            .filter(Q(end__gte=timezone.now(), cancelled_at__isnull=True) | current)
            .order_by("start")
        )
        follow_up_of = self.fields["follow_up_of"].queryset.order_by("-created_at")
        if self.instance.pk:
            follow_up_of = follow_up_of.exclude(pk=self.instance.pk)
        self.fields["follow_up_of"].queryset = follow_up_of
        if not sees_every_region(self.user):
            # An ambassador's campaign names its regions: they make it theirs (and keep its
            # audience in them).
            self.fields["regions"].required = True
            self.fields["regions"].help_text = _("The regions this campaign is for.")
        self.fields["mailing_lists"].queryset = self.fields["mailing_lists"].queryset.order_by(
            "name"
        )

    def clean_library_statuses(self) -> list[str]:
        return list(self.cleaned_data["library_statuses"])

    def clean_languages(self) -> list[str]:
        return list(self.cleaned_data["languages"])

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("kind") == Campaign.Kind.CONTRIBUTION_DRIVE and not cleaned.get("drive"):
            self.add_error("drive", _("Choose the contribution drive this campaign invites to."))
        return cleaned


class MessageForm(NoLineBreaksMixin, forms.ModelForm):
    """Subject and body in one language, refused if they use an unknown variable."""

    one_line_fields = ("subject",)

    class Meta:
        model = Message
        fields = ["language", "subject", "body"]
        widgets = {"body": forms.Textarea(attrs={"rows": 16})}

    def __init__(self, *args, campaign: Campaign, **kwargs):
        super().__init__(*args, **kwargs)
        self.campaign = campaign
        if self.instance.pk:
            # The language is what identifies the message: it is not changed, it is rewritten.
            del self.fields["language"]
        else:
            written = set(campaign.messages.values_list("language", flat=True))
            self.fields["language"].choices = [
                (code, name) for code, name in settings.CONTENT_LANGUAGES if code not in written
            ]

    def clean_subject(self) -> str:
        return self._checked(self.cleaned_data["subject"])

    def clean_body(self) -> str:
        return self._checked(self.cleaned_data["body"])

    @staticmethod
    def _checked(source: str) -> str:
        try:
            template_check(source)
        except MessageError as error:
            raise forms.ValidationError(str(error)) from None
        return source

    def save(self, commit=True):
        self.instance.campaign = self.campaign
        return super().save(commit)


class CampaignFilterForm(forms.Form):
    status = forms.ChoiceField(
        label=_("Status"),
        choices=[("", _("Every status")), *Campaign.Status.choices],
        required=False,
        widget=forms.Select(attrs={"class": "form-select"}),
    )

    def filter(self, queryset):
        if self.is_valid() and self.cleaned_data["status"]:
            queryset = queryset.filter(status=self.cleaned_data["status"])
        return queryset


class DeliveryFilterForm(forms.Form):
    state = forms.ChoiceField(
        label=_("State"),
        choices=[("", _("Every state")), *Delivery.State.choices],
        required=False,
        widget=forms.Select(attrs={"class": "form-select"}),
    )

    def filter(self, queryset):
        if self.is_valid() and self.cleaned_data["state"]:
            queryset = queryset.filter(state=self.cleaned_data["state"])
        return queryset


class PreviewForm(forms.Form):
    """Which message and which real recipient to show the email as.

    Recipients are ``librarian-<pk>`` or ``list-<pk>``, from the campaign's audience.
    """

    language = forms.ChoiceField(label=_("Language"))
    recipient = forms.ChoiceField(label=_("As received by"), required=False)

    def __init__(self, *args, languages, recipients, **kwargs):
        super().__init__(*args, **kwargs)
        names = dict(settings.CONTENT_LANGUAGES)
        self.fields["language"].choices = [(code, names.get(code, code)) for code in languages]
        self.fields["recipient"].choices = recipients or [("", _("Nobody: the audience is empty"))]


class LaunchForm(forms.Form):
    """Send now (no date), or at a date still ahead."""

    scheduled_at = forms.DateTimeField(
        label=_("Send at"),
        required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
    )

    def clean_scheduled_at(self):
        value = self.cleaned_data["scheduled_at"]
        if value is not None and value <= timezone.now():
            raise forms.ValidationError(_("Pick a time in the future, or send now."))
        return value


class ModerationForm(forms.Form):
    moderation = forms.ChoiceField(label=_("Moderation"), choices=Delivery.Moderation.choices)
