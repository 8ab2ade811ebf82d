from django.contrib import admin

from .models import RSVP, Meeting, MeetupSeries


@admin.register(MeetupSeries)
class MeetupSeriesAdmin(admin.ModelAdmin):
    list_display = ["title", "host_library", "rrule", "start_time", "time_zone", "status"]
    list_filter = ["status", "language"]
    search_fields = ["title", "host_library__name"]
    prepopulated_fields = {"slug": ["title"]}
    autocomplete_fields = ["host_library"]


@admin.register(Meeting)
class MeetingAdmin(admin.ModelAdmin):
    list_display = ["start", "__str__", "host_library", "cancelled_at"]
    list_filter = ["series"]
    list_select_related = ["series", "host_library"]
    autocomplete_fields = ["host_library"]
    date_hierarchy = "start"


@admin.register(RSVP)
class RSVPAdmin(admin.ModelAdmin):
    list_display = ["name", "meeting", "answer", "role", "attended"]
    list_filter = ["answer", "role"]
    search_fields = ["name", "email"]
    list_select_related = ["meeting", "meeting__series"]
    raw_id_fields = ["meeting", "librarian"]
