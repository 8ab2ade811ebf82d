"""Who may do what, and which rows they see.

Coordinators hold every permission of the outreach apps and see every region. Ambassadors
hold the same permissions but see only the regions they are ambassadors of
(``Region.ambassadors``). Any other user sees no region at all: scoping fails closed.

Every coordinator view starts from ``Model.objects.visible_to(request.user)`` (the
``RegionScopedQuerySet`` of ``libraries.models``), which asks :func:`visible_region_ids`.
"""

from __future__ import annotations

from django.contrib.auth.models import Group, Permission

COORDINATORS = "Coordinators"
AMBASSADORS = "Ambassadors"
COORDINATOR_APPS = ("libraries", "meetings", "campaigns", "drives")
# Seeing every region is a permission (libraries.Region's Meta), so that the check reads the
# permissions Django has already loaded for the request instead of querying groups.
EVERY_REGION_PERMISSION = "libraries.view_all_regions"
# Regions are the scope itself: an ambassador may not create, rename or delete one, nor step
# out of theirs.
AMBASSADOR_EXCLUDED_PERMISSIONS = (
    "add_region",
    "change_region",
    "delete_region",
    EVERY_REGION_PERMISSION.split(".")[1],
)

_CACHE_ATTRIBUTE = "_outreach_visible_region_ids"


def coordinators_group_sync(**kwargs) -> Group:
    """Create the Coordinators and Ambassadors groups if needed and bring their permissions
    up to date: every permission of our apps (ambassadors: all but managing regions)."""
    permissions = Permission.objects.filter(content_type__app_label__in=COORDINATOR_APPS)
    group, _ = Group.objects.get_or_create(name=COORDINATORS)
    group.permissions.add(*permissions)
    ambassadors, _ = Group.objects.get_or_create(name=AMBASSADORS)
    ambassadors.permissions.add(*permissions.exclude(codename__in=AMBASSADOR_EXCLUDED_PERMISSIONS))
    return group


def ambassadors_group() -> Group:
    coordinators_group_sync()
    return Group.objects.get(name=AMBASSADORS)


def sees_every_region(user) -> bool:
    return visible_region_ids(user) is None


def visible_region_ids(user) -> frozenset[int] | None:
    """The ids of the regions ``user`` may see, or None for every region.

    Superusers and coordinators (the ``view_all_regions`` permission) see every region;
    anyone else the regions they are an ambassador of, possibly none. The permission check
    reads the permissions the page's own check loaded; an ambassador's regions are one query,
    once per user object (a request).
    """
    cached = getattr(user, _CACHE_ATTRIBUTE, False)
    if cached is not False:
        return cached
    if not user.is_authenticated or not user.is_active:
        region_ids = frozenset()
    elif user.has_perm(EVERY_REGION_PERMISSION):
        region_ids = None
    else:
        region_ids = frozenset(user.ambassador_regions.values_list("pk", flat=True))
    setattr(user, _CACHE_ATTRIBUTE, region_ids)
    return region_ids
