"""The coordinator dashboard: where the outreach stands, at a glance, and what to do next."""

from django.contrib.auth.mixins import PermissionRequiredMixin
from django.http import Http404
from django.views import View
from django.views.generic import TemplateView

from core.downloads import csv_download

from .selectors import EXPORT_TABLES, dashboard_build, dashboard_table_rows


class DashboardView(PermissionRequiredMixin, TemplateView):
    permission_required = "libraries.view_library"
    template_name = "outreach/dashboard.html"

    def get_context_data(self, **kwargs):
        return super().get_context_data(dashboard=dashboard_build(user=self.request.user), **kwargs)


class DashboardExportView(PermissionRequiredMixin, View):
    """The numbers behind one of the dashboard's charts, as a CSV file."""

    permission_required = "libraries.view_library"

    def get(self, request, table):
        if table not in EXPORT_TABLES:
            raise Http404
        rows = dashboard_table_rows(user=request.user, table=table)
        return csv_download(rows, name=f"dashboard-{table}")
