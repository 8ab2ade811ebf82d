from django.contrib import admin

from .models import (
    ActivitySignal,
    Librarian,
    Library,
    LibraryScorePart,
    LibraryScoreSnapshot,
    LibraryStatusChange,
    MailingList,
    Region,
)


@admin.register(Region)
class RegionAdmin(admin.ModelAdmin):
    list_display = ["name", "language", "time_zone"]
    prepopulated_fields = {"slug": ["name"]}
    # Ambassadors see and act on these regions only (core.roles).
    filter_horizontal = ["ambassadors"]


class LibraryStatusChangeInline(admin.TabularInline):
    model = LibraryStatusChange
    extra = 0
    fields = ["changed_at", "from_status", "to_status", "changed_by", "source", "reason"]
    readonly_fields = fields
    can_delete = False


class LibraryScorePartInline(admin.TabularInline):
    """Read-only: the score refresh writes these rows (libraries.scoring)."""

    model = LibraryScorePart
    extra = 0
    fields = ["kind", "signal_count", "contribution"]
    readonly_fields = fields
    can_delete = False

    def get_queryset(self, request):
        return super().get_queryset(request).with_scale()

    def has_add_permission(self, request, obj=None):
        return False


class LibrarianInline(admin.TabularInline):
    model = Librarian
    extra = 0
    fields = ["name", "email", "role", "language", "wiki_username"]


@admin.register(Library)
class LibraryAdmin(admin.ModelAdmin):
    list_display = ["name", "city", "region", "status", "languages", "score"]
    list_filter = ["status", "region"]
    search_fields = ["name", "city"]
    prepopulated_fields = {"slug": ["name", "city"]}
    # Status moves through the service (libraries page) so that its history stays whole.
    readonly_fields = ["status", "status_changed_at"]
    inlines = [LibrarianInline, LibraryStatusChangeInline, LibraryScorePartInline]

    def get_queryset(self, request):
        # The score is the stored sum times the scores' scale: read with every row.
        return super().get_queryset(request).with_scale()


@admin.register(MailingList)
class MailingListAdmin(admin.ModelAdmin):
    list_display = ["name", "posting_address", "network", "region", "language"]
    search_fields = ["name", "posting_address", "network"]
    prepopulated_fields = {"slug": ["name"]}
    autocomplete_fields = ["members"]


@admin.register(Librarian)
class LibrarianAdmin(admin.ModelAdmin):
    list_display = ["name", "email", "library", "language", "wiki_username", "unsubscribed_at"]
    list_filter = ["language", "library__region"]
    search_fields = ["name", "email", "wiki_username", "library__name"]
    list_select_related = ["library"]
    autocomplete_fields = ["library"]


@admin.register(ActivitySignal)
class ActivitySignalAdmin(admin.ModelAdmin):
    list_display = ["occurred_at", "kind", "library", "librarian", "source"]
    list_filter = ["kind"]
    search_fields = ["library__name", "source"]
    list_select_related = ["library", "librarian"]
    autocomplete_fields = ["library", "librarian"]
    date_hierarchy = "occurred_at"


@admin.register(LibraryStatusChange)
class LibraryStatusChangeAdmin(admin.ModelAdmin):
    """Read-only: the history is written by the status service, never edited."""

    list_display = ["changed_at", "library", "from_status", "to_status", "changed_by", "source"]
    list_filter = ["to_status", "source"]
    search_fields = ["library__name", "reason"]
    list_select_related = ["library", "changed_by"]
    date_hierarchy = "changed_at"

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(LibraryScoreSnapshot)
class LibraryScoreSnapshotAdmin(admin.ModelAdmin):
    """Read-only: snapshots are what the score refresh wrote (libraries.scoring)."""

    list_display = ["date", "library", "score", "computed_at"]
    list_filter = ["date"]
    search_fields = ["library__name"]
    list_select_related = ["library"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
