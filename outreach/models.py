"""What the project package stores itself: when each coordinator last looked at the dashboard."""

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class DashboardVisit(models.Model):
    """A user's visits to the dashboard, so that it can show what arrived since the last one.

    One row per user, kept across sessions and devices. ``since`` is where the current visit's
    "new since your last visit" starts; ``seen_at`` is the last time the page was shown. A
    reload within the same sitting keeps ``since`` (see ``outreach.selectors.VISIT_GAP``).
    """

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="dashboard_visit",
        verbose_name=_("user"),
    )
    since = models.DateTimeField(_("new since"))
    seen_at = models.DateTimeField(_("last seen"))

    class Meta:
        verbose_name = _("dashboard visit")
        verbose_name_plural = _("dashboard visits")

    def __str__(self) -> str:
        return f"{self.user}: {self.seen_at:%Y-%m-%d %H:%M}"
