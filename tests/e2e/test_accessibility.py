"""Accessibility, checked in a real browser: axe-core on the main pages in English and in
French, a visible focus on everything that takes focus, and the keyboard alone through the
navbar and a public sign-up form.

axe-core (MPL-2.0) is vendored beside this module, with its license, in vendor/axe-core-4.14.1
(package/axe.min.js and package/LICENSE of `npm pack axe-core@4.14.1`), and injected into each
page from disk: nothing is fetched at test time. It checks the WCAG 2.0 / 2.1 A and AA rules
that a machine can check (language, names and labels, contrast, landmarks, headings, ARIA).
What it cannot see is checked here too: the tab order, and that the focused element shows an
indicator that stands out from what is around it (an outline or a ring at least 2 px wide, of
3:1 contrast with the background, the bar of WCAG 2.2's focus appearance; Bootstrap's own
translucent rings do not reach it).

One test per language visits every page in two browser contexts (a coordinator's, logged in,
and an anonymous visitor's) and asserts at the end, so that one run lists every problem of
every page, each with the rule, its impact, what to do and the offending HTML.
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import get_language_info
from playwright.sync_api import Page, expect

from campaigns import links as campaign_links
from campaigns.models import Campaign, Delivery
from drives.models import Drive, PullRun
from libraries.models import Library
from libraries.scoring import scores_refresh
from meetings.links import librarian_answer_token, rsvp_link_token
from meetings.models import RSVP
from meetings.services import meeting_cancel, meeting_move
from tests.factories import LibraryFactory
from tests.outreach.sample import outreach_objects

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

AXE = Path(__file__).parent / "vendor" / "axe-core-4.14.1" / "axe.min.js"
AXE_RUN = """() => axe.run(document, {
    runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']},
}).then(results => results.violations.map(violation => ({
    id: violation.id,
    impact: violation.impact,
    help: violation.help,
    nodes: violation.nodes.map(node => ({
        html: node.html, target: node.target.join(' '), summary: node.failureSummary,
    })),
})))"""
LOCALES = {"en": "en-GB", "fr": "fr-CH"}

# window.focusCheck, in every page of the contexts that use it (add_init_script):
# describe(element) tells what the element is and how well its focus indicator stands out;
# sweep() focuses every visible focusable element in turn and returns those whose indicator
# does not. Transitions (Bootstrap fades its rings in) are finished before reading the style.
FOCUS_CHECK = r"""
window.focusCheck = (() => {
    const MIN_CONTRAST = 3, MIN_WIDTH = 2;
    const parse = text => {
        const match = text && text.match(/rgba?\(([^)]+)\)/);
        if (!match) return null;
        const parts = match[1].split(/[\s,\/]+/).filter(Boolean).map(parseFloat);
        return [parts[0], parts[1], parts[2], parts.length > 3 ? parts[3] : 1];
    };
    const over = (top, below) => [0, 1, 2].map(i => top[i] * top[3] + below[i] * (1 - top[3]))
        .concat([1]);
    const luminance = colour => {
        const [r, g, b] = colour.slice(0, 3).map(value => {
            value /= 255;
            return value <= 0.03928 ? value / 12.92 : ((value + 0.055) / 1.055) ** 2.4;
        });
        return 0.2126 * r + 0.7152 * g + 0.0722 * b;
    };
    const contrast = (a, b) => {
        const [light, dark] = [luminance(a), luminance(b)].sort((x, y) => y - x);
        return (light + 0.05) / (dark + 0.05);
    };
    // The opaque colour around the element, where an outline or a ring is drawn.
    const backdrop = element => {
        const layers = [];
        for (let node = element.parentElement; node; node = node.parentElement) {
            const colour = parse(getComputedStyle(node).backgroundColor);
            if (colour && colour[3] > 0) {
                layers.push(colour);
                if (colour[3] >= 1) break;
            }
        }
        return layers.reverse().reduce((below, layer) => over(layer, below), [255, 255, 255, 1]);
    };
    const indicator = element => {
        element.getAnimations().forEach(animation => animation.finish());
        const style = getComputedStyle(element), around = backdrop(element);
        const found = [];
        if (style.outlineStyle !== 'none' && parseFloat(style.outlineWidth) >= MIN_WIDTH) {
            const colour = parse(style.outlineColor);
            if (colour) found.push(['outline', contrast(over(colour, around), around)]);
        }
        for (const shadow of style.boxShadow.split(/,(?![^(]*\))/)) {
            const colour = parse(shadow);
            const lengths = shadow.replace(/rgba?\([^)]*\)/, '').trim().split(/\s+/)
                .map(parseFloat);
            if (colour && !shadow.includes('inset') && (lengths[3] || 0) >= MIN_WIDTH) {
                found.push(['ring', contrast(over(colour, around), around)]);
            }
        }
        const [how, ratio] = found.sort((a, b) => b[1] - a[1])[0] || ['none', 0];
        return {how, contrast: Math.round(ratio * 100) / 100, visible: ratio >= MIN_CONTRAST};
    };
    const describe = element => ({
        tag: element.tagName.toLowerCase(),
        text: (element.innerText || '').trim(),
        name: element.getAttribute('name') || '',
        label: element.getAttribute('aria-label') || '',
        expanded: element.getAttribute('aria-expanded'),
        html: element.outerHTML.slice(0, 200),
        focusVisible: element.matches(':focus-visible'),
        ...indicator(element),
    });
    const sweep = () => {
        const failures = [];
        const focusable = 'a[href], button, input:not([type=hidden]), select, textarea, '
            + '[tabindex]:not([tabindex="-1"])';
        for (const element of document.querySelectorAll(focusable)) {
            if (element.disabled || !element.checkVisibility()) continue;
            element.focus();
            if (document.activeElement !== element) continue;
            const found = describe(element);
            if (!found.visible) failures.push(found);
        }
        return failures;
    };
    return {describe, sweep};
})();
"""


@dataclass
class Check:
    name: str
    url: str
    then: Callable[[Page], None] | None = None  # what a person does before axe looks


def _submit_empty(page: Page) -> None:
    """Submit the main form as it is: the page comes back with its errors."""
    with page.expect_navigation():
        page.locator("main form[method=post] [type=submit]").first.click()


def _log_in_wrongly(page: Page) -> None:
    page.locator("#id_username").fill("nobody")
    page.locator("#id_password").fill("wrong")
    _submit_empty(page)


def _open_menu(number: int) -> Callable[[Page], None]:
    def open_menu(page: Page) -> None:
        toggle = page.locator("nav [data-bs-toggle=dropdown]").nth(number)
        toggle.click()
        expect(toggle).to_have_attribute("aria-expanded", "true")

    return open_menu


def _page_data() -> dict:
    """Something on every page, in every state that has a colour of its own: libraries in
    each status, campaigns in each status, a cancelled and a moved meeting, a failed pull, the
    scores; an upcoming meeting to sign up to, and the signed links of the emails (built as
    the emails build them: tests/campaigns/test_public.py takes them from sent emails)."""
    objects = outreach_objects()
    for status in Library.Status.values:
        LibraryFactory(region=objects["region"], status=status)
    for status in Campaign.Status.values:
        Campaign.objects.create(title=f"Campaign {status}", status=status)
    upcoming = list(
        objects["series"].meetings.filter(start__gte=timezone.now()).order_by("start")[:3]
    )
    objects["upcoming"] = upcoming[0]
    meeting_cancel(meeting=upcoming[1], reason="The library is closed")
    meeting_move(meeting=upcoming[2], start=upcoming[2].start + timedelta(hours=1))
    PullRun.objects.create(drive=objects["drive"], status="done", users=1, edits_kept=1)
    PullRun.objects.create(drive=objects["drive"], status="failed", errors="frwiki: HTTP 503")
    Drive.objects.filter(pk=objects["drive"].pk).update(public_leaderboard=True)
    scores_refresh()

    delivery = Delivery.objects.get(campaign=objects["campaign"], librarian=objects["librarian"])
    objects["links"] = {
        name: reverse(
            f"campaigns:{name}", args=[campaign_links.delivery_token(delivery, purpose=purpose)]
        )
        for name, purpose in [
            ("answer", campaign_links.ANSWER_PURPOSE),
            ("unsubscribe", campaign_links.UNSUBSCRIBE_PURPOSE),
            ("preferences", campaign_links.PREFERENCES_PURPOSE),
        ]
    }
    objects["links"]["answer"] += "?answer=yes"
    rsvp = RSVP.objects.create(
        meeting=upcoming[0], name="Paul Otlet", email="paul@example.org", answer="yes"
    )
    objects["links"]["rsvp"] = reverse("meetings:rsvp-manage", args=[rsvp_link_token(rsvp)])
    token = librarian_answer_token(librarian=objects["librarian"], meeting=upcoming[0])
    objects["links"]["meetup answer"] = reverse("meetings:librarian-answer", args=[token])
    return objects


def _coordinator_checks(objects: dict) -> list[Check]:
    library_list = reverse("libraries:library-list")
    return [
        Check("dashboard", reverse("dashboard")),
        Check("library list", library_list),
        Check("library list, More menu open", library_list, _open_menu(0)),
        Check("library list, language menu open", library_list, _open_menu(1)),
        Check("library list, account menu open", library_list, _open_menu(2)),
        Check("library page", objects["library"].get_absolute_url()),
        Check("librarian list", reverse("libraries:librarian-list")),
        Check("mailing lists", reverse("libraries:mailinglist-list")),
        Check("import", reverse("libraries:library-import")),
        Check("shortlist", reverse("libraries:shortlist")),
        Check("search results", reverse("search") + "?q=" + objects["library"].name.split()[0]),
        Check("series list", reverse("meetings:series-list")),
        Check("series form", reverse("meetings:series-create")),
        Check("series form, with errors", reverse("meetings:series-create"), _submit_empty),
        Check("series page", reverse("meetings:series-detail", args=[objects["series"].slug])),
        Check("campaign list", reverse("campaigns:campaign-list")),
        Check("campaign form", reverse("campaigns:campaign-create")),
        Check("campaign form, with errors", reverse("campaigns:campaign-create"), _submit_empty),
        Check("campaign page", reverse("campaigns:campaign-detail", args=[objects["campaign"].pk])),
        Check("drive list", reverse("drives:drive-list")),
        Check("drive form", reverse("drives:drive-create")),
        Check("drive page", reverse("drives:drive-detail", args=[objects["drive"].pk])),
        Check("404, logged in", "/no-such-page/"),
    ]


def _public_checks(objects: dict) -> list[Check]:
    meeting = reverse("meetings:meeting-public", args=[objects["upcoming"].pk])
    return [
        Check("login", reverse("login")),
        Check("login, wrong password", reverse("login"), _log_in_wrongly),
        Check("public meetup list", reverse("meetings:public-list")),
        Check(
            "public series page", reverse("meetings:series-public", args=[objects["series"].slug])
        ),
        Check("public meeting page", meeting),
        Check("public meeting page, sign-up with errors", meeting, _submit_empty),
        Check(
            "public leaderboard",
            reverse("drives:drive-leaderboard-public", args=[objects["drive"].pk]),
        ),
        # A librarian's signed links, from the emails.
        Check("invitation answer", objects["links"]["answer"]),
        Check("unsubscribe", objects["links"]["unsubscribe"]),
        Check("email preferences", objects["links"]["preferences"]),
        Check("meetup answer", objects["links"]["meetup answer"]),
        Check("sign-up management", objects["links"]["rsvp"]),
        Check("invalid link", reverse("campaigns:answer", args=["not-a-token"])),
        Check("404", "/no-such-page/"),
    ]


def _problems(page: Page, check: Check, language: str) -> list[str]:
    """axe's violations on the page, and the focusable elements without a visible focus, one
    readable paragraph each."""
    page.goto(check.url)
    where = f"[{language}] {check.name} ({check.url})"
    if check.then:
        check.then(page)
    found = []
    if page.locator("html").get_attribute("lang") != language:
        found.append(f"{where}: <html lang> is not {language!r}")
    # Colours are measured as they end, not halfway through a transition (buttons fade).
    page.evaluate("document.getAnimations().forEach(animation => animation.finish())")
    for violation in page.evaluate(AXE_RUN):
        nodes = "\n".join(
            f"    {node['target']}: {node['html']}\n      "
            + node["summary"].replace("\n", "\n      ")
            for node in violation["nodes"]
        )
        found.append(
            f"{where}: {violation['id']} ({violation['impact']}): {violation['help']}\n{nodes}"
        )
    if check.then is None:  # menus open or not, the same elements: swept once
        page.keyboard.press("Tab")  # from now on, focus is the keyboard's (:focus-visible)
        for element in page.evaluate("focusCheck.sweep()"):
            found.append(
                f"{where}: focus-visible: no visible focus indicator "
                f"({element['how']}, contrast {element['contrast']}:1)\n    {element['html']}"
            )
    return found


@pytest.mark.parametrize("language", ["en", "fr"])
def test_the_main_pages_have_no_accessibility_violations(
    new_page, logged_in, coordinator, language
):
    objects = _page_data()
    coordinator_page = logged_in(new_page(locale=LOCALES[language]), coordinator)
    visitor_page = new_page(locale=LOCALES[language])
    found = []
    for page, checks in [
        (coordinator_page, _coordinator_checks(objects)),
        (visitor_page, _public_checks(objects)),
    ]:
        # In every page the context loads: sent once, rather than once a page by add_script_tag.
        page.context.add_init_script(path=AXE)
        page.context.add_init_script(script=FOCUS_CHECK)
        for check in checks:
            found += _problems(page, check, language)
    report = "\n\n".join(found)
    assert not found, f"{len(found)} accessibility problem(s):\n\n{report}"


def _press(page: Page, key: str = "Tab") -> dict:
    """Press a key; the element that has the focus then, which must show it."""
    page.keyboard.press(key)
    focused = page.evaluate("focusCheck.describe(document.activeElement)")
    assert focused["visible"], f"no visible focus indicator after {key}: {focused}"
    return focused


def test_the_navbar_is_reachable_with_the_keyboard_with_a_visible_focus(
    new_page, logged_in, coordinator
):
    page = logged_in(new_page(), coordinator)
    page.context.add_init_script(script=FOCUS_CHECK)
    page.goto(reverse("dashboard"))
    assert page.viewport_size["width"] == 1280

    assert _press(page)["text"] == "Skip to content"
    assert _press(page)["text"] == settings.SITE_NAME  # the brand: the way to the dashboard
    for link in ["Libraries", "Librarians", "Shortlist", "Meetups", "Campaigns"]:
        focused = _press(page)
        assert (focused["tag"], focused["text"]) == ("a", link)

    more = _press(page)
    assert (more["tag"], more["text"], more["expanded"]) == ("button", "More", "false")
    assert _press(page, "Enter")["expanded"] == "true"
    expect(page.get_by_role("link", name="Mailing lists")).to_be_visible()
    assert _press(page, "ArrowDown")["text"] == "Mailing lists"
    assert _press(page, "ArrowDown")["text"] == "Import"
    assert _press(page, "Escape")["text"] == "More"  # closed, and the focus is back on it
    expect(page.get_by_role("link", name="Mailing lists")).to_be_hidden()

    search = _press(page)
    assert (search["tag"], search["name"]) == ("input", "q")
    assert _press(page)["label"] == "Search"  # its button
    language = _press(page)
    assert (language["tag"], language["text"]) == ("button", "Language:\nEN")
    assert _press(page, "Enter")["expanded"] == "true"
    for code, _name in settings.LANGUAGES:  # each language, as it names itself
        name = get_language_info(code)["name_local"]
        assert _press(page, "ArrowDown")["text"] == name[0].upper() + name[1:]
    assert _press(page, "Escape")["text"] == language["text"]
    account = _press(page)
    assert (account["tag"], account["text"]) == ("button", coordinator.username)
    assert _press(page, "Enter")["expanded"] == "true"
    assert _press(page, "ArrowDown")["text"] == "Log out"


def test_a_visitor_signs_up_to_a_meeting_with_the_keyboard_alone(new_page):
    meeting = _page_data()["upcoming"]
    page = new_page()
    page.context.add_init_script(script=FOCUS_CHECK)
    page.goto(reverse("meetings:meeting-public", args=[meeting.pk]))

    # From the top of the page: the skip link, then on into the main content to the form.
    assert _press(page)["text"] == "Skip to content"
    page.keyboard.press("Enter")
    for _ in range(20):
        if _press(page)["name"] == "name":
            break
    else:
        pytest.fail("Tab never reaches the sign-up form's name field")
    page.keyboard.type("Marie Curie")
    assert _press(page)["name"] == "email"
    page.keyboard.type("marie@example.org")
    role = _press(page)  # the radio group, on its checked radio: arrows move within it
    assert (role["name"], role["tag"]) == ("role", "input")
    _press(page, "ArrowDown")
    _press(page, "ArrowDown")
    assert _press(page)["name"] == "guests"
    submit = _press(page)
    assert (submit["tag"], submit["text"]) == ("button", "Sign up")
    page.keyboard.press("Enter")

    expect(page.get_by_text("You are signed up.")).to_be_visible()
    rsvp = meeting.rsvps.get(email="marie@example.org")
    assert (rsvp.name, rsvp.role, rsvp.answer) == ("Marie Curie", "mentor", "yes")
