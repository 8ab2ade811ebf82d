"""Coordinators' forms of drives: which edits count and whose drive it is; what to do with a
lead (a participant the directory does not know)."""

from django import forms
from django.conf import settings
from django.utils.translation import gettext_lazy as _

from core.forms import NoLineBreaksMixin, VisibleChoicesMixin
from core.roles import sees_every_region
from libraries.models import Librarian, Region

from .models import Drive, Lead


class DriveForm(VisibleChoicesMixin, NoLineBreaksMixin, forms.ModelForm):
    one_line_fields = ("title", "hashtags", "wikis")

    class Meta:
        model = Drive
        fields = [
            "title",
            "hashtags",
            "wikis",
            "starts_on",
            "ends_on",
            "public_leaderboard",
            "regions",
        ]
        widgets = {
            "starts_on": forms.DateInput(attrs={"type": "date"}),
            "ends_on": forms.DateInput(attrs={"type": "date"}),
            "regions": forms.SelectMultiple(attrs={"size": 6}),
        }
        help_texts = {"regions": _("None selected: every region.")}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["starts_on"].required = self.fields["ends_on"].required = True
        if not sees_every_region(self.user):
            # An ambassador's drive names its regions: they make it theirs.
            self.fields["regions"].required = True
            self.fields["regions"].help_text = _("The regions this drive is for.")

    def clean(self):
        cleaned = super().clean()
        starts_on, ends_on = cleaned.get("starts_on"), cleaned.get("ends_on")
        if starts_on and ends_on and ends_on < starts_on:
            self.add_error("ends_on", _("The end comes before the start."))
        return cleaned


class LeadFilterForm(VisibleChoicesMixin, forms.Form):
    status = forms.ChoiceField(
        label=_("Status"), choices=Lead.Status.choices, required=False, initial="new"
    )
    region = forms.ModelChoiceField(
        label=_("Region"), queryset=Region.objects.all(), required=False, to_field_name="slug"
    )
    wiki = forms.CharField(label=_("Wiki"), required=False, max_length=50)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["status"].widget.attrs["class"] = "form-select"
        self.fields["region"].widget.attrs["class"] = "form-select"
        self.fields["region"].empty_label = _("All regions")
        self.fields["wiki"].widget.attrs.update({"class": "form-control", "placeholder": "frwiki"})


class LeadLinkForm(forms.Form):
    """The librarian a lead is, typed as their email address (the directory may be long)."""

    email = forms.EmailField(label=_("The librarian's email address"))

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user

    def clean_email(self):
        email = self.cleaned_data["email"]
        librarian = (
            Librarian.objects.visible_to(self.user)
            .select_related("library")
            .filter(email__iexact=email)
            .first()
        )
        if librarian is None:
            raise forms.ValidationError(_("No librarian of yours has this address."))
        self.librarian = librarian
        return email


class LeadLibrarianForm(NoLineBreaksMixin, forms.Form):
    """A librarian made from a lead, with their library: the columns of the CSV import,
    checked by its rules."""

    one_line_fields = ("library", "city", "name", "email", "role")

    library = forms.CharField(label=_("Library"), max_length=200)
    city = forms.CharField(label=_("City"), max_length=100)
    region = forms.ModelChoiceField(label=_("Region"), queryset=Region.objects.all())
    name = forms.CharField(label=_("Name"), max_length=200)
    email = forms.EmailField(label=_("Email"))
    role = forms.CharField(label=_("Role"), max_length=200, required=False)
    language = forms.ChoiceField(label=_("Language"), choices=settings.CONTENT_LANGUAGES)

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["region"].queryset = Region.objects.visible_to(user)

    def import_row(self) -> dict[str, str]:
        data = self.cleaned_data
        return {
            "library": data["library"],
            "city": data["city"],
            "region": data["region"].name,
            "name": data["name"],
            "email": data["email"],
            "role": data["role"],
            "language": data["language"],
        }
