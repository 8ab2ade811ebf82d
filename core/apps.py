from django.apps import AppConfig
from django.db.models.signals import post_migrate


class CoreConfig(AppConfig):
    """The ground every app stands on: roles and region scoping, shared view and form mixins,
    signed links, mail, the page cache, template tags. It imports no app of the project."""

    name = "core"

    def ready(self) -> None:
        from .roles import coordinators_group_sync

        # Permissions exist only once each app has migrated, so the group is brought up to
        # date after every migrate (and after a test database flush). It is idempotent.
        post_migrate.connect(coordinators_group_sync, dispatch_uid="coordinators_group_sync")
