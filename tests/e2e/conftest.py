"""The browser of the journeys: Playwright driving Debian's Chromium, headless.

Playwright never downloads a browser here: it drives the system's ``/usr/bin/chromium``
(``bash .ci/run`` installs it with apt-get when missing). Without it the ``e2e`` tests are
skipped with the reason, as ``postgres`` and ``broker`` tests are (tests/conftest.py); in CI
(CI=true) they fail instead, so the journeys are never left out of a CI run silently.

Each test gets fresh browser contexts (no cookies shared between people) and leaves a
screenshot of its last page in ``test-artifacts/e2e/<test name>.png``, failed or not.
"""

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from django.conf import settings
from playwright.sync_api import Browser, Page, expect, sync_playwright

# Same rule as tests/conftest.py.
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(settings.BASE_DIR) / "test-artifacts" / "e2e"
CHROMIUM_ARGS = [
    "--no-sandbox",  # CI runs as root in a container, where Chromium's sandbox cannot start
    "--disable-gpu",
    "--disable-dev-shm-usage",  # containers have a small /dev/shm
    "--disable-quic",
    "--no-first-run",
    # Without these, Chromium reaches for the internet (updates, sync, field trials), which
    # is closed in CI; the journeys only ever talk to the live server on loopback.
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TIMEOUT_MS = 10_000


def pytest_collection_modifyitems(config, items):
    if IN_CI or CHROMIUM.exists():
        return
    no_browser = pytest.mark.skip(
        reason=f"needs Chromium at {CHROMIUM}: apt-get install chromium (bash .ci/run does)"
    )
    for item in items:
        if "e2e" in item.keywords:
            item.add_marker(no_browser)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        # Only reached in CI: outside CI these tests were skipped at collection.
        pytest.fail(
            f"CI must run the browser journeys, and there is no Chromium at {CHROMIUM}. "
            "Install it (apt-get install chromium; bash .ci/run does)."
        )
    # Playwright's sync API keeps an asyncio event loop running in the test thread, and Django
    # refuses ORM calls from a thread with a running loop (SynchronousOnlyOperation). The
    # tests' own ORM calls (fixtures, assertions) are plain synchronous code, so the check is
    # lifted, for as long as Playwright runs only: the rest of the suite keeps it.
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        with sync_playwright() as playwright:
            chromium = playwright.chromium.launch(
                executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
            )
            expect.set_options(timeout=TIMEOUT_MS)
            yield chromium
            chromium.close()


@pytest.fixture
def new_page(browser, live_server, request) -> Iterator[Callable[[], Page]]:
    """new_page(locale="en-GB"): a page in a browser context of its own, as another person's
    browser, whose language (Accept-Language) is ``locale``.

    At the end of the test, the page that loaded last is saved as a screenshot.
    """
    contexts, last = [], {}

    def make(locale: str = "en-GB") -> Page:
        context = browser.new_context(
            base_url=live_server.url,
            locale=locale,
            timezone_id="Europe/Zurich",
            # Wide enough for the navbar not to collapse (Bootstrap's xl breakpoint).
            viewport={"width": 1280, "height": 900},
            accept_downloads=True,
        )
        context.set_default_timeout(TIMEOUT_MS)
        contexts.append(context)
        page = context.new_page()
        page.on("load", lambda loaded: last.update(page=loaded))
        last["page"] = page
        return page

    yield make
    if "page" in last:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        try:
            last["page"].screenshot(path=ARTIFACTS / f"{request.node.name}.png", full_page=True)
        except Exception as error:  # a failed screenshot must not hide how the test went
            print(f"e2e: no screenshot of {request.node.name}: {error}")
    for context in contexts:
        context.close()


@pytest.fixture
def logged_in(client, live_server) -> Callable[[Page, object], Page]:
    """logged_in(page, user): the page's browser holds a session of ``user``, without going
    through the login form (the journeys do that once, as a person would)."""

    def log_in(page: Page, user) -> Page:
        client.force_login(user)
        cookie = client.cookies[settings.SESSION_COOKIE_NAME]
        page.context.add_cookies(
            [{"name": cookie.key, "value": cookie.value, "url": live_server.url}]
        )
        return page

    return log_in


@pytest.fixture
def smtp(smtp, settings):
    """The SMTP server on loopback of tests/conftest.py, with sending unpaced."""
    settings.CAMPAIGNS_RATE_PER_SECOND = 0
    return smtp


@pytest.fixture
def site_url(settings, live_server) -> str:
    """Links in emails point at the live server, so the browser can follow them."""
    settings.SITE_URL = live_server.url
    return live_server.url
