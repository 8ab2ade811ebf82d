from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class LibrariesConfig(AppConfig):
    name = "libraries"
    verbose_name = _("Libraries")

    def ready(self):
        from . import checks  # noqa: F401 - registers the system checks
