"""The host library's kit, for coordinators: the texts to paste and the poster to print.

Both views are coordinator pages (login by LoginRequiredMiddleware, and the permission to
see series); what they show is made by ``meetings.kit``, in the series' language
(``kit.kit_language``), while the page around it speaks the coordinator's.
"""

from django.contrib.auth.mixins import PermissionRequiredMixin
from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views import View
from django.views.generic import DetailView

from core.mixins import VisibleObjectsMixin

from .kit import SOCIAL_LIMIT, announcement_texts, kit_language, poster_pdf
from .models import MeetupSeries

SERIES = MeetupSeries.objects.select_related("host_library")


class SeriesKitView(PermissionRequiredMixin, VisibleObjectsMixin, DetailView):
    permission_required = "meetings.view_meetupseries"
    queryset = SERIES
    template_name = "meetings/series_kit.html"
    context_object_name = "series"

    def get_context_data(self, **kwargs):
        texts = announcement_texts(self.object)
        social_help = ngettext(
            "%(count)d character (%(limit)d at most).",
            "%(count)d characters (%(limit)d at most).",
            len(texts["social"]),
        ) % {"count": len(texts["social"]), "limit": SOCIAL_LIMIT}
        rows = [
            # key, label (in the coordinator's language), lines shown, help
            ("newsletter", _("Newsletter"), 16, ""),
            ("website", _("Website"), 6, ""),
            ("social", _("Social media"), 4, social_help),
        ]
        kit_texts = [
            {"key": key, "label": label, "text": texts[key], "rows": lines, "help": help_text}
            for key, label, lines, help_text in rows
        ]
        return super().get_context_data(
            texts=kit_texts, kit_language=kit_language(self.object), **kwargs
        )


class SeriesPosterView(PermissionRequiredMixin, View):
    permission_required = "meetings.view_meetupseries"

    def get(self, request, slug):
        series = get_object_or_404(SERIES.visible_to(request.user), slug=slug)
        response = HttpResponse(poster_pdf(series), content_type="application/pdf")
        # A slug is ASCII letters, digits, "-" and "_": the file name needs no quoting rules.
        response["Content-Disposition"] = f'attachment; filename="{series.slug}-poster.pdf"'
        return response
