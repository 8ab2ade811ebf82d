"""View mixins shared by the coordinator pages of every app.

Region scoping itself lives in the querysets (``visible_to``, libraries.models); these only
hand the request's user to them, so a generic view cannot forget it.
"""


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
