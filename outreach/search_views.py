"""The coordinator's search page: the navbar's search box lands here (outreach.search reads)."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode

from django.contrib.auth.mixins import PermissionRequiredMixin
from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from django.views.generic import TemplateView

from .search import SearchResults, search

# Each kind's heading, and the list page that filters by the same ``q`` (None: its list
# page has no search, so there is nothing to "see all" in).
HEADINGS = {
    "libraries": _("Libraries"),
    "librarians": _("Librarians"),
    "series": _("Meetup series"),
    "meetings": _("Office hours and one-off meetings"),
    "campaigns": _("Campaigns"),
    "drives": _("Contribution drives"),
}
LIST_PAGES = {
    "libraries": "libraries:library-list",
    "librarians": "libraries:librarian-list",
    "series": None,
    "meetings": None,
    "campaigns": None,
    "drives": None,
}


@dataclass(frozen=True)
class Section:
    kind: str
    heading: str
    items: list
    total: int
    see_all_url: str

    @property
    def more(self) -> int:
        return self.total - len(self.items)


def search_sections(results: SearchResults) -> list[Section]:
    """The page's groups, in order, each with its link to the rest when it has more rows."""
    sections = []
    for kind in results.kinds:
        items, total = getattr(results, kind), getattr(results, f"{kind}_total")
        see_all_url = ""
        if total > len(items) and LIST_PAGES[kind]:
            see_all_url = f"{reverse(LIST_PAGES[kind])}?{urlencode({'q': results.text})}"
        sections.append(Section(kind, HEADINGS[kind], items, total, see_all_url))
    return sections


class SearchView(PermissionRequiredMixin, TemplateView):
    permission_required = "libraries.view_library"
    template_name = "outreach/search.html"

    def get_context_data(self, **kwargs):
        results = search(user=self.request.user, text=self.request.GET.get("q", ""))
        sections = search_sections(results)
        return super().get_context_data(
            q=results.text,
            results=results,
            sections=sections,
            empty_sections=[section for section in sections if not section.total],
            **kwargs,
        )
