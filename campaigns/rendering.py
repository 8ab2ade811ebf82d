"""A campaign message: one template written by a coordinator, rendered per recipient.

The body is plain text with Django template variables. The text part of the email is the
body rendered; the HTML part is the same text escaped, with paragraphs and clickable links
(``urlize`` and ``linebreaks``), inside the campaign's email layout. Only the variables
listed in ``VARIABLES`` exist; a message that uses another one, or is not a valid template,
is refused when it is saved, so a worker never meets a template it cannot render.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from django.template import Context, Engine, TemplateSyntaxError
from django.template.base import VariableNode
from django.template.defaultfilters import linebreaks_filter, urlize
from django.utils.safestring import mark_safe
from django.utils.translation import gettext_lazy as _

# The engine of coordinators' templates: no loaders (no {% include %} of the site's files),
# no autoescape (the text part is plain text; the HTML part is escaped afterwards).
ENGINE = Engine(autoescape=False, libraries={}, string_if_invalid="")

VARIABLES = {
    "recipient": _("the recipient's name (or the list's)"),
    "library": _("the recipient's library"),
    "meetup": _(
        "the meetup: {{ meetup.title }}, {{ meetup.date }}, {{ meetup.place }}, {{ meetup.url }}"
    ),
    "rsvp_url": _("a librarian's link to say whether they come to the meetup"),
    "answer_links": _("the yes / maybe / no links, one per line"),
    "answer_yes_url": _("the link to answer yes"),
    "answer_maybe_url": _("the link to answer maybe"),
    "answer_no_url": _("the link to answer no"),
    "unsubscribe_url": _("the link to stop receiving campaigns"),
    "preferences_url": _("the link to the recipient's email preferences"),
}


class MessageError(ValueError):
    """The template cannot be used; the message says why, for a form."""


def template_check(source: str) -> None:
    """Raise MessageError if ``source`` is not a valid template of known variables."""
    try:
        template = ENGINE.from_string(source)
    except TemplateSyntaxError as error:
        raise MessageError(
            _("This is not a valid template: %(error)s") % {"error": error}
        ) from None
    used = {
        lookups[0]
        for node in template.nodelist.get_nodes_by_type(VariableNode)
        if (lookups := getattr(node.filter_expression.var, "lookups", None))
    }
    unknown = sorted(used - set(VARIABLES))
    if unknown:
        raise MessageError(
            _("Unknown variable: %(names)s. Available: %(available)s.")
            % {"names": ", ".join(unknown), "available": ", ".join(VARIABLES)}
        )


# How urlize cuts a text into words (django.utils.html.Urlizer.word_split_re): it turns each
# word into HTML on its own, so the HTML of a text is that of its words, end to end.
WORD_SPLIT = re.compile(r"""([\s<>"']+)""")


@dataclass
class Rendered:
    subject: str
    text: str
    html: str


@dataclass
class Renderer:
    """Renders one message for many recipients: its templates compiled once, and each word's
    HTML made once, as most words of the message are the same for every recipient."""

    subject: str
    body: str
    _compiled: tuple = field(default=(), repr=False)
    # A word → its HTML (urlize's): a function of the word alone, whoever's message it is in.
    _words: dict[str, str] = field(default_factory=dict, repr=False)

    def render(self, variables: dict) -> Rendered:
        if not self._compiled:
            self._compiled = (ENGINE.from_string(self.subject), ENGINE.from_string(self.body))
        subject, body = self._compiled
        context = Context(variables, autoescape=False)
        # A subject is one header line whatever the variables hold.
        one_line = re.sub(r"\s*[\r\n]+\s*", " ", subject.render(context)).strip()
        text = body.render(context).strip() + "\n"
        return Rendered(subject=one_line, text=text, html=self.html(text))

    def html(self, text: str) -> str:
        """``linebreaks(urlize(text))`` with each word's HTML remembered."""
        words, pieces = self._words, []
        for word in WORD_SPLIT.split(text):
            piece = words.get(word)
            if piece is None:
                piece = words[word] = urlize(word, autoescape=True)
            pieces.append(piece)
        return linebreaks_filter(mark_safe("".join(pieces)), autoescape=True)
