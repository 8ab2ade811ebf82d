"""Who may do what. Coordinators hold every permission of the outreach apps."""

from django.contrib.auth.models import Group, Permission

COORDINATORS = "Coordinators"
COORDINATOR_APPS = ("libraries", "meetings", "campaigns")


def coordinators_group_sync(**kwargs) -> Group:
    """Create the Coordinators group if needed and give it every permission of our apps."""
    group, _ = Group.objects.get_or_create(name=COORDINATORS)
    permissions = Permission.objects.filter(content_type__app_label__in=COORDINATOR_APPS)
    group.permissions.add(*permissions)
    return group
