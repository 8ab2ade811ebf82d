from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class DrivesConfig(AppConfig):
    name = "drives"
    verbose_name = _("Contribution drives")

    def ready(self) -> None:
        from . import checks  # noqa: F401 - registers the system checks
