"""Forms of the pages recipients reach from links in campaign emails."""

from django import forms
from django.conf import settings
from django.utils.translation import gettext_lazy as _

from .models import Delivery


class InvitationAnswerForm(forms.Form):
    answer = forms.ChoiceField(
        label=_("Your answer"), choices=Delivery.Answer.choices, widget=forms.RadioSelect
    )
    comment = forms.CharField(
        label=_("A word for us (optional)"),
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 3}),
    )


class PreferencesForm(forms.Form):
    language = forms.ChoiceField(
        label=_("Language of our emails"), choices=settings.CONTENT_LANGUAGES
    )
    subscribed = forms.BooleanField(
        label=_("I am happy to receive emails about Wikipedia in libraries"), required=False
    )
