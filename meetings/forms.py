from datetime import datetime, timedelta
from zoneinfo import ZoneInfo, available_timezones

from django import forms
from django.conf import settings
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from core.forms import NoLineBreaksMixin, VisibleChoicesMixin
from core.roles import sees_every_region
from libraries.models import Region

from .models import RSVP, Meeting, MeetupSeries
from .recurrence import ORDINAL_CHOICES, PATTERN_CHOICES, WEEKDAY_CHOICES, Rule, occurrences

TIME_ZONE_CHOICES = [(name, name) for name in sorted(available_timezones())]


class MeetupSeriesForm(VisibleChoicesMixin, forms.ModelForm):
    """A series, its rule picked in plain words ("every first Thursday at 12:00")."""

    pattern = forms.ChoiceField(
        label=_("Repeats"), choices=PATTERN_CHOICES, widget=forms.RadioSelect, initial="monthly"
    )
    ordinal = forms.TypedChoiceField(
        label=_("Which one in the month"), choices=ORDINAL_CHOICES, coerce=int, initial=1
    )
    weekday = forms.ChoiceField(label=_("Weekday"), choices=WEEKDAY_CHOICES, initial="TH")
    interval = forms.IntegerField(
        label=_("Every how many weeks"), min_value=1, max_value=52, initial=1
    )
    duration_minutes = forms.IntegerField(
        label=_("Duration (minutes)"), min_value=15, max_value=12 * 60, initial=120
    )
    time_zone = forms.ChoiceField(label=_("Time zone"), choices=TIME_ZONE_CHOICES)

    # The fields the next dates depend on: the preview needs only these to be right.
    rule_fields = (
        "pattern",
        "ordinal",
        "weekday",
        "interval",
        "start_date",
        "start_time",
        "time_zone",
    )
    field_order = [
        "title",
        "host_library",
        "pattern",
        "ordinal",
        "weekday",
        "interval",
        "start_time",
        "duration_minutes",
        "start_date",
        "time_zone",
    ]

    class Meta:
        model = MeetupSeries
        fields = [
            "title",
            "host_library",
            "start_date",
            "start_time",
            "time_zone",
            "language",
            "capacity",
            "venue",
            "online_url",
            "description",
            "audience",
            "what_to_bring",
            "status",
        ]
        widgets = {
            "start_date": forms.DateInput(attrs={"type": "date"}),
            "start_time": forms.TimeInput(attrs={"type": "time"}, format="%H:%M"),
            "venue": forms.Textarea(attrs={"rows": 2}),
            "description": forms.Textarea(attrs={"rows": 3}),
            "audience": forms.Textarea(attrs={"rows": 2}),
            "what_to_bring": forms.Textarea(attrs={"rows": 2}),
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        host_library = self.fields["host_library"]
        host_library.queryset = host_library.queryset.select_related("region")
        if self.instance.pk:
            rule = self.instance.rule
            self.initial.update(
                pattern=rule.pattern,
                ordinal=rule.ordinal,
                weekday=rule.weekday,
                interval=rule.interval,
                duration_minutes=int(self.instance.duration.total_seconds() // 60),
            )
        else:
            self.initial.setdefault("time_zone", "Europe/Zurich")
            self.initial.setdefault("start_date", timezone.localdate())
            self.initial.setdefault("start_time", "12:00")

    def clean(self):
        cleaned = super().clean()
        if {"pattern", "weekday", "ordinal", "interval"} <= cleaned.keys():
            rule = Rule(
                pattern=cleaned["pattern"],
                weekday=cleaned["weekday"],
                ordinal=cleaned["ordinal"],
                interval=cleaned["interval"],
            )
            self.instance.rrule = rule.to_rrule()
        if cleaned.get("duration_minutes"):
            self.instance.duration = timedelta(minutes=cleaned["duration_minutes"])
        return cleaned

    @property
    def rule_errors(self) -> bool:
        return any(name in self.errors for name in self.rule_fields)

    def next_dates(self, count: int = 6) -> list[datetime]:
        """The next ``count`` starts of the rule being edited, in the series' time zone.

        Only the rule's own fields need to be valid: the dates show while the rest of the
        form is still being filled in.
        """
        self.is_valid()
        if self.rule_errors:
            return []
        data = self.cleaned_data
        zone = ZoneInfo(data["time_zone"])
        now = timezone.now()
        starts = occurrences(
            rrule=self.instance.rrule,
            start_date=data["start_date"],
            start_time=data["start_time"],
            time_zone=data["time_zone"],
            after=now,
            before=now + timedelta(days=400),
        )
        return [start.astimezone(zone) for _, start in zip(range(count), starts, strict=False)]


class MeetingCancelForm(forms.Form):
    reason = forms.CharField(label=_("Why"), max_length=300, required=False)


class MeetingMoveForm(forms.Form):
    start = forms.DateTimeField(
        label=_("New start (local time of the series)"),
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
    )

    def __init__(self, *args, meeting, **kwargs):
        self.meeting = meeting
        super().__init__(*args, **kwargs)

    def clean_start(self):
        # The coordinator types the series' local time, whatever the server's time zone.
        value = self.cleaned_data["start"]
        naive = timezone.make_naive(value) if timezone.is_aware(value) else value
        return naive.replace(tzinfo=self.meeting.zone)


class PublicMeetupFilterForm(forms.Form):
    region = forms.ModelChoiceField(
        label=_("Region"), queryset=Region.objects.all(), required=False, to_field_name="slug"
    )
    language = forms.ChoiceField(
        label=_("Language"),
        choices=[("", _("All languages"))] + settings.CONTENT_LANGUAGES,
        required=False,
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["region"].empty_label = _("All regions")
        for field in self.fields.values():
            field.widget.attrs["class"] = "form-select"

    def filter(self, meetings):
        if not self.is_valid():
            return meetings
        if self.cleaned_data["region"]:
            meetings = meetings.filter(host_library__region=self.cleaned_data["region"])
        if self.cleaned_data["language"]:
            meetings = meetings.filter(series__language=self.cleaned_data["language"])
        return meetings


class SignupForm(NoLineBreaksMixin, forms.Form):
    """A visitor signs up: to attend, or to help newcomers (host, mentor, greeter)."""

    one_line_fields = ("name", "email")

    name = forms.CharField(label=_("Your name"), max_length=200)
    email = forms.EmailField(
        label=_("Your email"),
        help_text=_("Only to confirm your sign-up and remind you. Never shown to anyone."),
    )
    role = forms.ChoiceField(
        label=_("I come"),
        choices=[
            (RSVP.Role.ATTENDEE, _("to learn (attendee)")),
            (RSVP.Role.HOST, _("to help: host the meeting")),
            (RSVP.Role.MENTOR, _("to help: mentor newcomers")),
            (RSVP.Role.GREETER, _("to help: greet people at the door")),
        ],
        widget=forms.RadioSelect,
        initial=RSVP.Role.ATTENDEE,
    )
    guests = forms.IntegerField(
        label=_("People coming with me"), min_value=0, max_value=10, initial=0
    )


class AnswerForm(forms.Form):
    answer = forms.ChoiceField(
        label=_("Your answer"), choices=RSVP.Answer.choices, widget=forms.RadioSelect
    )


class OneOffMeetingForm(VisibleChoicesMixin, forms.ModelForm):
    """An office hour, a conference workshop: a meeting without a series."""

    start_local = forms.DateTimeField(
        label=_("Start (local time of the time zone below)"),
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
    )
    duration_minutes = forms.IntegerField(
        label=_("Duration (minutes)"), min_value=15, max_value=12 * 60, initial=60
    )
    time_zone = forms.ChoiceField(label=_("Time zone"), choices=TIME_ZONE_CHOICES, initial="UTC")
    display_time_zones = forms.CharField(
        label=_("Also show the time in"),
        required=False,
        help_text=_("Time zones separated by commas, e.g. Australia/Sydney, America/Los_Angeles"),
    )

    class Meta:
        model = Meeting
        fields = ["title", "host_library", "time_zone", "online_url", "capacity", "agenda"]
        widgets = {"agenda": forms.Textarea(attrs={"rows": 3})}

    field_order = ["title", "start_local", "duration_minutes", "time_zone", "display_time_zones"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["title"].required = True
        # An office hour online may have no host library; an ambassador's meeting is in one
        # of their regions' libraries, or it would be out of their sight once created.
        self.fields["host_library"].required = not sees_every_region(self.user)

    def clean_display_time_zones(self) -> str:
        zones = [z.strip() for z in self.cleaned_data["display_time_zones"].split(",") if z.strip()]
        unknown = [z for z in zones if z not in available_timezones()]
        if unknown:
            raise forms.ValidationError(
                _("Unknown time zones: %(zones)s."), params={"zones": ", ".join(unknown)}
            )
        return ",".join(dict.fromkeys(zones))

    def clean(self):
        cleaned = super().clean()
        start, zone = cleaned.get("start_local"), cleaned.get("time_zone")
        if start and zone and cleaned.get("duration_minutes"):
            naive = timezone.make_naive(start) if timezone.is_aware(start) else start
            self.instance.start = naive.replace(tzinfo=ZoneInfo(zone))
            self.instance.end = self.instance.start + timedelta(minutes=cleaned["duration_minutes"])
        if not cleaned.get("host_library") and not cleaned.get("online_url"):
            self.add_error(
                "online_url", _("An online meeting needs its link, or pick a host library.")
            )
        return cleaned

    def save(self, commit=True):
        self.instance.display_time_zones = self.cleaned_data["display_time_zones"]
        return super().save(commit)
