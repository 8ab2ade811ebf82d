"""The host library's kit for one series: a poster to print and announcements to paste.

The library only provides the room and announces the meetup; this module makes what it
announces with, in the series' language rather than the coordinator's (``kit_language``).
``kit_facts`` reads the series, its host library and its next meetings (up to six, not
cancelled, shown in the series' time zone, dates named in the series' language).
``poster_pdf`` lays those facts out on one A4 page, in a font the application ships, with a
QR code to the public series page and that link printed under it; ``announcement_texts``
writes them as a newsletter item, a website paragraph and a social post of at most 280
characters. Nothing is stored: the kit is made again on each request, so it always shows
the dates as they are (a cancelled meeting is gone from the next poster).
"""

from __future__ import annotations

import functools
import io
from dataclasses import dataclass
from datetime import datetime
from xml.sax.saxutils import escape
from zoneinfo import ZoneInfo

import qrcode
from django.conf import settings
from django.urls import reverse
from django.utils import formats, timezone, translation
from django.utils.text import capfirst
from django.utils.translation import gettext as _
from reportlab.lib.colors import HexColor
from reportlab.lib.enums import TA_LEFT
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.lib.utils import ImageReader
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import Frame, KeepInFrame, Paragraph, Spacer, Table, TableStyle

from core.mail import site_url

from .models import Meeting, MeetupSeries

NEXT_DATES = 6
SOCIAL_LIMIT = 280
HASHTAGS = "#Wikipedia #Wikipermanence"

# Django formats dates per language but has no "weekday and date" format of its own; these
# are the ones each language writes on a poster ("jeudi 4 mars 2027", "Donnerstag, 4. März
# 2027"). Languages without an entry, or without a Django catalogue (Romansh), get the default.
DATE_PATTERNS = {"de": "l, j. F Y"}
DEFAULT_DATE_PATTERN = "l j F Y"


@dataclass(frozen=True)
class KitDate:
    day: str  # "jeudi 4 mars 2027"
    hours: str  # "12:00–14:00"

    def __str__(self) -> str:
        # Translators: one date of a meetup, e.g. "Thursday 4 March 2027, 12:00–14:00".
        return _("%(day)s, %(hours)s") % {"day": self.day, "hours": self.hours}


@dataclass(frozen=True)
class KitFacts:
    """What the poster and the texts say, already translated (``kit_language``)."""

    title: str
    rule: str  # "Every first Thursday of the month at 12:00"
    library: str
    address: list[str]  # the library's address, line by line
    venue: list[str]  # where in the library, line by line
    description: str  # the series' own, or empty
    audience: str
    what_to_bring: str
    dates: list[KitDate]
    free: str  # "Free, no registration needed", or "… places are limited, sign up online"
    url: str


def next_meetings(series: MeetupSeries, *, now: datetime | None = None) -> list[Meeting]:
    """The series' next meetings that still take place, soonest first."""
    now = now or timezone.now()
    return list(
        series.meetings.filter(start__gte=now, cancelled_at__isnull=True).order_by("start")[
            :NEXT_DATES
        ]
    )


def public_url(series: MeetupSeries) -> str:
    return site_url(reverse("meetings:series-public", args=[series.slug]))


def kit_language(series: MeetupSeries) -> str:
    """The language of the kit's sentences: the series', if the interface speaks it.

    Otherwise English, the language of the source strings, rather than a mix: Django's own
    catalogues know German weekdays and would slip them into an English sentence ("every
    first Donnerstag of the month"). Dates are always named in the series' language, as
    Django ships those names and formats (``_kit_date``).
    """
    if series.language in dict(settings.LANGUAGES):
        return series.language
    return settings.LANGUAGE_CODE


def kit_facts(series: MeetupSeries, *, now: datetime | None = None) -> KitFacts:
    """The facts of the kit, in the active language (callers override it: ``kit_language``)."""
    library = series.host_library
    address = _lines(library.address)
    if library.city and library.city.casefold() not in library.address.casefold():
        address.append(library.city)
    if series.capacity:
        free = _("Free. Places are limited: please sign up online.")
    else:
        free = _("Free and open to all, no registration needed.")
    return KitFacts(
        title=series.title,
        rule=capfirst(series.describe_rule()),
        library=library.name,
        address=address,
        venue=_lines(series.venue),
        description=series.description.strip(),
        audience=series.audience.strip(),
        what_to_bring=series.what_to_bring.strip(),
        dates=[_kit_date(meeting, series) for meeting in next_meetings(series, now=now)],
        free=free,
        url=public_url(series),
    )


def _what_it_is() -> str:
    """What a Wikipermanence is, for a poster whose series has no description."""
    return _(
        "Learn to write on Wikipedia and to share your photos on Wikimedia Commons, "
        "with volunteers who help you take your first steps. Beginners are welcome."
    )


def _kit_date(meeting: Meeting, series: MeetupSeries) -> KitDate:
    zone = ZoneInfo(series.time_zone)
    start, end = timezone.localtime(meeting.start, zone), timezone.localtime(meeting.end, zone)
    pattern = DATE_PATTERNS.get(series.language, DEFAULT_DATE_PATTERN)
    if series.language == "fr" and start.day == 1:
        # French writes the first of the month as an ordinal: "jeudi 1er juillet 2027".
        pattern = pattern.replace("j", r"j\e\r", 1)
    with translation.override(series.language):
        day = formats.date_format(start, pattern)
    return KitDate(day=day, hours=f"{start:%H:%M}–{end:%H:%M}")


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


# Announcement texts ------------------------------------------------------------------------


def announcement_texts(series: MeetupSeries, *, now: datetime | None = None) -> dict[str, str]:
    """Plain texts to paste: ``newsletter`` (paragraphs), ``website`` and ``social``."""
    with translation.override(kit_language(series)):
        facts = kit_facts(series, now=now)
        return {
            "newsletter": _newsletter(facts),
            "website": _website(facts),
            "social": _social(facts),
        }


def _invitation(facts: KitFacts) -> str:
    # Translators: "Bibliothèque de Morges hosts a Wikipermanence every first Thursday of
    # the month at 12:00: …". The rule is lower-case here.
    return _(
        "%(library)s hosts a Wikipermanence %(rule)s: a free meetup where volunteers of the "
        "Wikimedia community help you take your first steps on Wikipedia and Wikimedia Commons."
    ) % {"library": facts.library, "rule": _lower_first(facts.rule)}


def _newsletter(facts: KitFacts) -> str:
    paragraphs = [facts.title, _invitation(facts)]
    if facts.description:
        paragraphs.append(facts.description)
    if facts.audience:
        paragraphs.append(_("Who it is for: %(audience)s") % {"audience": facts.audience})
    if facts.what_to_bring:
        paragraphs.append(_("What to bring: %(things)s") % {"things": facts.what_to_bring})
    place = ", ".join([facts.library, *facts.address, *facts.venue])
    paragraphs.append(_("Where: %(place)s") % {"place": place})
    if facts.dates:
        paragraphs.append("\n".join([_("Next dates:"), *(f"– {date}" for date in facts.dates)]))
    paragraphs.append(f"{facts.free} " + _("Details and sign-up: %(url)s") % {"url": facts.url})
    return "\n\n".join(paragraphs)


def _website(facts: KitFacts) -> str:
    sentences = [_invitation(facts)]
    if facts.dates:
        sentences.append(
            _("Next dates: %(dates)s.") % {"dates": "; ".join(str(d) for d in facts.dates[:3])}
        )
    sentences.append(facts.free)
    sentences.append(_("Details and sign-up: %(url)s") % {"url": facts.url})
    return " ".join(sentences)


def _social(facts: KitFacts) -> str:
    """At most SOCIAL_LIMIT characters, the link and the hashtags kept whole.

    The optional part goes first (the next date), then the title and the library's name are
    shortened, the two parts whose length a person chose.
    """

    def post(title: str, library: str, with_date: bool) -> str:
        values = {"title": title, "rule": _lower_first(facts.rule), "library": library}
        if with_date and facts.dates:
            values["date"] = facts.dates[0]
            # Translators: a social media post (280 characters at most, link added after).
            body = _("%(title)s: a free Wikipedia meetup %(rule)s at %(library)s. Next: %(date)s.")
        else:
            body = _("%(title)s: a free Wikipedia meetup %(rule)s at %(library)s.")
        return f"{body % values} {facts.url} {HASHTAGS}"

    for with_date in (True, False):
        text = post(facts.title, facts.library, with_date)
        if len(text) <= SOCIAL_LIMIT:
            return text
    # Share the room left between the two names: the shorter one keeps all it needs.
    room = SOCIAL_LIMIT - len(post("", "", False))
    if room < 8:
        # Only a very long link is left (a slug of 200 characters): it is what the post is
        # for, so it stays whole.
        link = f"{facts.url} {HASHTAGS}"
        return link if len(link) <= SOCIAL_LIMIT else facts.url
    title_room = max(room // 2, room - len(facts.library))
    title = _shorten(facts.title, title_room)
    library = _shorten(facts.library, room - len(title))
    return post(title, library, False)


def _shorten(text: str, length: int) -> str:
    """``text`` in at most ``length`` characters, cut after a word if one ends near the end,
    an ellipsis saying where it was cut."""
    if len(text) <= length:
        return text
    cut = text[: length - 1]
    if " " in cut[-20:]:
        cut = cut.rsplit(" ", 1)[0]
    return cut.rstrip(" ,;:.") + "…"


def _lower_first(text: str) -> str:
    return text[:1].lower() + text[1:]


# The poster --------------------------------------------------------------------------------

FONT_DIR = settings.BASE_DIR / "static" / "fonts"
FONT, FONT_BOLD = "DejaVuSans", "DejaVuSans-Bold"
INK = HexColor("#202122")  # Wikimedia's text colour: near black, prints well in grey too
ACCENT = HexColor("#3366cc")  # Wikimedia blue
MUTED = HexColor("#54595d")
PAGE_WIDTH, PAGE_HEIGHT = A4
MARGIN = 20 * mm
# A longer description would shrink every line of the poster; the rest is one scan away.
POSTER_DESCRIPTION = 320
QR_SIZE = 45 * mm  # the code itself, without its quiet zone: a phone scans it from a metre
QR_BORDER = 4  # modules of white around the code, as ISO/IEC 18004 requires
FOOTER_HEIGHT = QR_SIZE + 17 * mm  # the code, its link below, and white around


@functools.cache
def _register_fonts() -> None:
    """Register the shipped DejaVu fonts once: they cover accents and umlauts."""
    pdfmetrics.registerFont(TTFont(FONT, str(FONT_DIR / "DejaVuSans.ttf")))
    pdfmetrics.registerFont(TTFont(FONT_BOLD, str(FONT_DIR / "DejaVuSans-Bold.ttf")))
    pdfmetrics.registerFontFamily(
        FONT, normal=FONT, bold=FONT_BOLD, italic=FONT, boldItalic=FONT_BOLD
    )


def poster_qr(url: str) -> qrcode.QRCode:
    """The QR code of ``url``, medium error correction: a poster gets folded and scratched."""
    code = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, border=QR_BORDER)
    code.add_data(url)
    code.make(fit=True)
    return code


def poster_pdf(series: MeetupSeries, *, now: datetime | None = None) -> bytes:
    """One A4 page to print: title, rule, place, next dates, and a QR code to the series."""
    _register_fonts()
    language = kit_language(series)
    with translation.override(language):
        facts = kit_facts(series, now=now)
        buffer = io.BytesIO()
        canvas = Canvas(buffer, pagesize=A4, lang=language, initialFontName=FONT)
        canvas.setTitle(facts.title)
        canvas.setSubject(facts.rule)
        canvas.setAuthor(settings.SITE_NAME)
        _draw_body(canvas, facts)
        _draw_footer(canvas, facts)
        canvas.showPage()
        canvas.save()
    return buffer.getvalue()


def _style(name: str, **overrides) -> ParagraphStyle:
    base = {"fontName": FONT, "fontSize": 14, "leading": 19, "textColor": INK}
    base.update(overrides)
    return ParagraphStyle(name, alignment=TA_LEFT, **base)


STYLES = {
    "kicker": _style("kicker", fontName=FONT_BOLD, fontSize=13, leading=16, textColor=ACCENT),
    "title": _style("title", fontName=FONT_BOLD, fontSize=40, leading=46, spaceBefore=6),
    "rule": _style("rule", fontSize=22, leading=28, textColor=ACCENT, spaceBefore=6),
    "body": _style("body", fontSize=13, leading=18, spaceBefore=4),
    "heading": _style(
        "heading", fontName=FONT_BOLD, fontSize=12, leading=15, textColor=ACCENT, spaceBefore=12
    ),
    "place": _style("place", fontName=FONT_BOLD, fontSize=17, leading=22, spaceBefore=3),
    "address": _style("address", fontSize=14, leading=19),
    "day": _style("day", fontName=FONT_BOLD, fontSize=17, leading=24),
    "date": _style("date", fontSize=17, leading=24),
    "free": _style("free", fontName=FONT_BOLD, fontSize=18, leading=23),
    "scan": _style("scan", fontSize=13, leading=18, textColor=MUTED, spaceBefore=8),
}


def _text(text: str) -> str:
    """Paragraph markup for plain text: escaped, line breaks kept.

    French puts a space before ":", ";", "?" and "!"; a non-breaking one keeps the sign from
    starting a line of its own.
    """
    for sign in ":;?!":
        text = text.replace(f" {sign}", f"\u00a0{sign}")
    return "<br/>".join(escape(line) for line in text.splitlines())


def _draw_body(canvas: Canvas, facts: KitFacts) -> None:
    width = PAGE_WIDTH - 2 * MARGIN
    story = [
        Paragraph("WIKIPEDIA · WIKIMEDIA COMMONS", STYLES["kicker"]),
        _title(facts.title, width),
        Paragraph(_text(facts.rule), STYLES["rule"]),
        Spacer(0, 2 * mm),
        Paragraph(
            _text(_shorten(facts.description, POSTER_DESCRIPTION) or _what_it_is()),
            STYLES["body"],
        ),
    ]
    where = [
        _heading(_("Where")),
        Paragraph(_text(facts.library), STYLES["place"]),
        # Swiss addresses are often written on one line ("Rue X 5, 1204 Genève"): a poster
        # gives each part its own line.
        Paragraph(
            _text("\n".join(part for line in facts.address for part in line.split(", "))),
            STYLES["address"],
        ),
        Paragraph(_text("\n".join(facts.venue)), STYLES["address"]),
    ]
    details = []
    for heading, text in (
        (_("Who it is for"), facts.audience),
        (_("What to bring"), facts.what_to_bring),
    ):
        if text:
            details += [_heading(heading), Paragraph(_text(text), STYLES["body"])]
    if details:
        # Side by side: the page keeps its room for the dates, in large type.
        where_width = width / 2
        story += [
            Spacer(0, STYLES["heading"].spaceBefore),  # a table cell drops a first spaceBefore
            _grid([[where, details]], [where_width, width - where_width], gap=8 * mm),
        ]
    else:
        story += where
    story.append(_heading(_("Next dates")))
    if facts.dates:
        rows = [
            [
                Paragraph(escape(date.day), STYLES["day"]),
                Paragraph(escape(date.hours), STYLES["date"]),
            ]
            for date in facts.dates
        ]
        widest = max(pdfmetrics.stringWidth(date.day, FONT_BOLD, 17) for date in facts.dates)
        day_width = min(widest + 8 * mm, width * 0.7)
        story.append(_grid(rows, [day_width, width - day_width]))
    else:
        story.append(Paragraph(escape(_("No date planned yet.")), STYLES["date"]))
    top = PAGE_HEIGHT - MARGIN
    bottom = MARGIN + FOOTER_HEIGHT + 5 * mm
    frame = Frame(MARGIN, bottom, width, top - bottom, 0, 0, 0, 0, showBoundary=0)
    # A long description or title shrinks the whole text rather than spilling on a second
    # page: the library prints one sheet.
    frame.addFromList([KeepInFrame(width, top - bottom, story, mode="shrink")], canvas)


def _title(title: str, width: float) -> Paragraph:
    """The title as large as fits on two lines (it may take more at the smallest size)."""
    for size in (40, 34, 28):
        style = ParagraphStyle(f"title-{size}", STYLES["title"], fontSize=size, leading=size * 1.15)
        paragraph = Paragraph(_text(title), style)
        if paragraph.wrap(width, PAGE_HEIGHT)[1] <= 2 * style.leading:
            break
    return paragraph


def _heading(text: str) -> Paragraph:
    return Paragraph(escape(text.upper()), STYLES["heading"])


def _grid(rows: list, widths: list[float], *, gap: float = 0) -> Table:
    """A table used for layout only: no borders, no padding but ``gap`` after column one."""
    table = Table(rows, colWidths=widths, hAlign="LEFT")
    table.setStyle(
        TableStyle(
            [
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                # Not Helvetica, the table's default: a print shop wants every font embedded.
                ("FONTNAME", (0, 0), (-1, -1), FONT),
                ("LEFTPADDING", (0, 0), (-1, -1), 0),
                ("RIGHTPADDING", (0, 0), (-1, -1), 0),
                ("RIGHTPADDING", (0, 0), (0, -1), gap),
                ("TOPPADDING", (0, 0), (-1, -1), 0),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 0),
            ]
        )
    )
    return table


def _draw_footer(canvas: Canvas, facts: KitFacts) -> None:
    width = PAGE_WIDTH - 2 * MARGIN
    rule_y = MARGIN + FOOTER_HEIGHT
    canvas.setStrokeColor(ACCENT)
    canvas.setLineWidth(1.5)
    canvas.line(MARGIN, rule_y, PAGE_WIDTH - MARGIN, rule_y)

    code = poster_qr(facts.url)
    module = QR_SIZE / code.modules_count
    quiet = QR_BORDER * module
    code_right = PAGE_WIDTH - MARGIN
    code_bottom = MARGIN + 9 * mm
    image = io.BytesIO()
    code.make_image().save(image, format="PNG")
    image.seek(0)
    # The image carries its own quiet zone; the code's dark edge lines up with the margins.
    canvas.drawImage(
        ImageReader(image),
        code_right - QR_SIZE - quiet,
        code_bottom - quiet,
        QR_SIZE + 2 * quiet,
        QR_SIZE + 2 * quiet,
    )

    # The link under the code, as large as fits the width: some phones cannot scan.
    size = 11.0
    while size > 6 and pdfmetrics.stringWidth(facts.url, FONT, size) > width:
        size -= 0.5
    canvas.setFillColor(INK)
    canvas.setFont(FONT, size)
    canvas.drawRightString(code_right, MARGIN, facts.url)

    text_width = width - QR_SIZE - quiet - 8 * mm
    story = [
        Paragraph(_text(facts.free), STYLES["free"]),
        Paragraph(
            _text(_("All the dates and details online: scan the code") + "\u00a0→"), STYLES["scan"]
        ),
    ]
    frame = Frame(MARGIN, code_bottom, text_width, QR_SIZE, 0, 0, 0, 0, showBoundary=0)
    frame.addFromList([KeepInFrame(text_width, QR_SIZE, story, mode="shrink")], canvas)
