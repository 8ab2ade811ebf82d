from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class OutreachConfig(AppConfig):
    """The roof: the dashboard and search that tie the apps together, and the project-wide
    commands (load_demo, create_coordinator)."""

    name = "outreach"
    verbose_name = _("Outreach")
