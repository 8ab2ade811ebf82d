"""Coordinators' form of a drive: which edits count, and whose drive it is."""

from django import forms
from django.utils.translation import gettext_lazy as _

from core.forms import NoLineBreaksMixin, VisibleChoicesMixin
from core.roles import sees_every_region

from .models import Drive


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
