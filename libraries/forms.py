from django import forms
from django.conf import settings
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from core.forms import NoLineBreaksMixin, VisibleChoicesMixin
from core.text import normalize_email, normalize_wiki_username

from .models import (
    ActivitySignal,
    Librarian,
    Library,
    MailingList,
    Region,
    normalize_languages,
)
from .selectors import SHORTLIST_LIBRARIES_PER_REGION


class LibraryFilterForm(VisibleChoicesMixin, forms.Form):
    """The library list's search box and filters; every field is optional."""

    q = forms.CharField(label=_("Search"), required=False)
    region = forms.ModelChoiceField(
        label=_("Region"), queryset=Region.objects.all(), required=False, to_field_name="slug"
    )
    status = forms.ChoiceField(
        label=_("Status"),
        choices=[("", _("All statuses"))] + Library.Status.choices,
        required=False,
    )
    language = forms.ChoiceField(
        label=_("Language"),
        choices=[("", _("All languages"))] + settings.CONTENT_LANGUAGES,
        required=False,
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["q"].widget.attrs.update(
            {"class": "form-control", "type": "search", "placeholder": _("Name, city, librarian")}
        )
        for name in ("region", "status", "language"):
            self.fields[name].widget.attrs["class"] = "form-select"
        self.fields["region"].empty_label = _("All regions")

    def filter(self, queryset):
        if not self.is_valid():
            return queryset
        data = self.cleaned_data
        if data["q"]:
            queryset = queryset.search(data["q"])
        if data["region"]:
            queryset = queryset.filter(region=data["region"])
        if data["status"]:
            queryset = queryset.filter(status=data["status"])
        if data["language"]:
            queryset = queryset.speaking(data["language"])
        return queryset


class LibraryForm(VisibleChoicesMixin, forms.ModelForm):
    languages = forms.MultipleChoiceField(
        label=_("Languages"),
        choices=settings.CONTENT_LANGUAGES,
        widget=forms.CheckboxSelectMultiple,
    )

    class Meta:
        model = Library
        fields = ["name", "city", "region", "address", "website", "languages", "notes"]
        widgets = {
            "address": forms.Textarea(attrs={"rows": 2}),
            "notes": forms.Textarea(attrs={"rows": 3}),
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.initial["languages"] = self.instance.language_list

    def clean_languages(self) -> str:
        return normalize_languages(self.cleaned_data["languages"])


class LibraryStatusForm(forms.Form):
    status = forms.ChoiceField(label=_("New status"), choices=Library.Status.choices)
    reason = forms.CharField(
        label=_("Reason"),
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text=_("Why the library moves: the answer it gave, a meeting, a call."),
    )


class ActivitySignalForm(forms.ModelForm):
    class Meta:
        model = ActivitySignal
        fields = ["kind", "librarian", "occurred_at", "note"]
        widgets = {
            "occurred_at": forms.DateTimeInput(attrs={"type": "datetime-local"}),
            "note": forms.Textarea(attrs={"rows": 2}),
        }

    def __init__(self, *args, library: Library, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["librarian"].queryset = library.librarians.all()


class LibrarianForm(VisibleChoicesMixin, NoLineBreaksMixin, forms.ModelForm):
    one_line_fields = ("name", "email")

    class Meta:
        model = Librarian
        fields = [
            "library",
            "name",
            "email",
            "role",
            "language",
            "wiki_username",
            "home_wiki",
            "consent_source",
            "consent_at",
            "shortlist_rank",
            "notes",
        ]
        widgets = {
            "consent_at": forms.DateInput(attrs={"type": "date"}),
            "notes": forms.Textarea(attrs={"rows": 3}),
        }

    def clean_email(self) -> str:
        return normalize_email(self.cleaned_data["email"])

    def clean_wiki_username(self) -> str:
        return normalize_wiki_username(self.cleaned_data["wiki_username"])


class MailingListForm(VisibleChoicesMixin, NoLineBreaksMixin, forms.ModelForm):
    one_line_fields = ("name", "posting_address", "subscribed_as")

    class Meta:
        model = MailingList
        fields = [
            "name",
            "posting_address",
            "subscribed_as",
            "network",
            "region",
            "language",
            "moderators",
            "members",
            "notes",
        ]
        widgets = {"members": forms.SelectMultiple(attrs={"size": 12})}

    def clean_members(self):
        # An ambassador sees only their regions' members: the list's members elsewhere stay.
        chosen = list(self.cleaned_data["members"])
        if self.instance.pk:
            visible = self.fields["members"].queryset
            chosen += list(self.instance.members.exclude(pk__in=visible.values("pk")))
        return chosen


class ImportUploadForm(forms.Form):
    file = forms.FileField(
        label=_("CSV file"),
        help_text=_("UTF-8, separated by commas or semicolons, one row per librarian."),
    )

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if upload.size > settings.IMPORT_MAX_BYTES:
            raise forms.ValidationError(
                _("The file is larger than %(max)s MB; split it into several files."),
                params={"max": settings.IMPORT_MAX_BYTES // (1024 * 1024)},
            )
        return upload


class ImportConfirmForm(forms.Form):
    skip_invalid = forms.BooleanField(
        label=_("Import only the valid rows and leave the rows with errors out"),
        required=False,
    )


class ShortlistForm(forms.Form):
    """How many libraries per region the shortlist shows (and its actions act on)."""

    n = forms.IntegerField(
        label=_("Libraries per region"),
        min_value=1,
        max_value=100,
        required=False,
        initial=10,
    )

    def per_region(self, default: int) -> int:
        if self.is_valid() and self.cleaned_data["n"]:
            return self.cleaned_data["n"]
        return default


def shortlist_per_region(data) -> int:
    """How many libraries per region a request on the shortlist asks for (``n``)."""
    return ShortlistForm(data).per_region(SHORTLIST_LIBRARIES_PER_REGION)


def shortlist_url(data) -> str:
    """Back to the shortlist as the request showed it."""
    return f"{reverse('libraries:shortlist')}?n={shortlist_per_region(data)}"
