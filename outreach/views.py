"""The coordinator dashboard: where the outreach stands, at a glance."""

from django.contrib.auth.mixins import PermissionRequiredMixin
from django.db.models import Count
from django.views.generic import TemplateView

from libraries.models import Librarian, Library, LibraryStatusChange, MailingList


class DashboardView(PermissionRequiredMixin, TemplateView):
    permission_required = "libraries.view_library"
    template_name = "outreach/dashboard.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        counts = dict(Library.objects.order_by().values_list("status").annotate(n=Count("id")))
        context.update(
            funnel=[
                (value, label, counts.get(value, 0)) for value, label in Library.Status.choices
            ],
            library_count=sum(counts.values()),
            librarian_count=Librarian.objects.count(),
            mailinglist_count=MailingList.objects.count(),
            recent_changes=LibraryStatusChange.objects.select_related(
                "library", "changed_by"
            ).exclude(from_status="")[:10],
        )
        return context
