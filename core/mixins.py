"""View mixins shared by the coordinator pages of every app.

Region scoping itself lives in the querysets (``visible_to``, libraries.models); these only
hand the request's user to them, so a generic view cannot forget it.
"""

from django.urls import reverse
from django.utils.translation import gettext as _

# Rows per page of the coordinators' lists.
PAGE_SIZE = 25


class VisibleObjectsMixin:
    """Generic views (list, detail, update) start from the rows the user may see: another
    region's object is a 404 for an ambassador, as if it did not exist."""

    def get_queryset(self):
        return super().get_queryset().visible_to(self.request.user)


class UserFormMixin:
    """Forms that narrow their choices to the user's regions (VisibleChoicesMixin) get the
    user."""

    def get_form_kwargs(self):
        return {**super().get_form_kwargs(), "user": self.request.user}


class FormPageMixin(UserFormMixin):
    """Create and edit pages share one template: a heading, the form, Save and Cancel.

    Their forms narrow their choices to the user's regions (they take ``user``)."""

    template_name = "form_page.html"
    heading = ""
    cancel_url_name = ""

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        target = getattr(self, "object", None)
        context["heading"] = (_("Edit %s") % target) if target else self.heading
        context["cancel_url"] = self.get_success_url() if target else reverse(self.cancel_url_name)
        return context
