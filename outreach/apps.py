from django.apps import AppConfig
from django.db.models.signals import post_migrate
from django.utils.translation import gettext_lazy as _


class OutreachConfig(AppConfig):
    name = "outreach"
    verbose_name = _("Outreach")

    def ready(self) -> None:
        from .roles import coordinators_group_sync

        # Permissions exist only once each app has migrated, so the group is brought up to
        # date after every migrate (and after a test database flush). It is idempotent.
        post_migrate.connect(coordinators_group_sync, dispatch_uid="coordinators_group_sync")
