from django.contrib import admin

from .models import Campaign, Delivery, Message, Suppression


class MessageInline(admin.StackedInline):
    model = Message
    extra = 0
    fields = ["language", "subject", "body"]


@admin.register(Campaign)
class CampaignAdmin(admin.ModelAdmin):
    list_display = ["title", "kind", "status", "default_language", "scheduled_at", "created_at"]
    list_filter = ["status", "kind"]
    search_fields = ["title"]
    date_hierarchy = "created_at"
    # Status moves through the services (campaign page): launching writes the deliveries.
    readonly_fields = ["status", "started_at", "finished_at", "created_by"]
    autocomplete_fields = ["librarians", "mailing_lists"]
    filter_horizontal = ["regions"]
    raw_id_fields = ["meeting", "follow_up_of"]
    inlines = [MessageInline]


@admin.register(Delivery)
class DeliveryAdmin(admin.ModelAdmin):
    """Read-only: deliveries are written by the launch and the workers, nobody else."""

    list_display = ["email", "campaign", "state", "attempts", "sent_at", "moderation", "answer"]
    list_filter = ["state", "moderation", "answer", "campaign"]
    search_fields = ["email", "librarian__name", "library__name"]
    list_select_related = ["campaign"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Suppression)
class SuppressionAdmin(admin.ModelAdmin):
    list_display = ["email", "reason", "created_at"]
    list_filter = ["reason"]
    search_fields = ["email"]
