"""Form mixins shared by the coordinator forms of every app."""

from django.utils.translation import gettext_lazy as _


class VisibleChoicesMixin:
    """Choices limited to what ``user`` may see: every model choice field whose queryset is
    region-scoped (``visible_to``) is narrowed to the user's regions, so an ambassador can
    neither pick nor post another region's library, librarian, list or meeting."""

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user
        for field in self.fields.values():
            queryset = getattr(field, "queryset", None)
            if hasattr(queryset, "visible_to"):
                field.queryset = queryset.visible_to(user)


class NoLineBreaksMixin:
    """Refuses line breaks in one-line fields that may end up in email headers."""

    one_line_fields: tuple[str, ...] = ()

    def clean(self):
        cleaned = super().clean()
        for name in self.one_line_fields:
            value = cleaned.get(name)
            if isinstance(value, str) and ("\n" in value or "\r" in value):
                self.add_error(name, _("This field must fit on one line."))
        return cleaned
