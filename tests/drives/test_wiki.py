"""campaigns.wiki against a real HTTP server speaking the MediaWiki API (tests.wiki_server).

The server holds the recorded wiki of shared/fixtures/mediawiki-1.39 (6 accounts, 17
revisions); its faithfulness is proven by test_wiki_server.py.
"""

import logging
import math
import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from drives import wiki
from drives.wiki import Edit, UserInfo, WikiError
from tests.clock import FakeClock

REPO = Path(__file__).resolve().parents[2]
EVER_START = datetime(2020, 1, 1, tzinfo=UTC)
EVER_END = datetime(2030, 1, 1, tzinfo=UTC)


def pull_all(names, **kwargs):
    return list(wiki.contributions("demo", names, start=EVER_START, end=EVER_END, **kwargs))


def usercontribs_requests(server):
    return [r for r in server.requests if r.get("list") == "usercontribs"]


def test_starting_up_offline_with_an_empty_cache_needs_no_user_config(demo, tmp_path):
    assert not (tmp_path / "pywikibot").exists()

    info = wiki.users_info("demo", ["Demo Librarian"])
    texts = wiki.revision_texts("demo", [5])

    assert info["Demo Librarian"].exists and 5 in texts
    asked = [(r.get("meta"), r.get("list"), r.get("prop")) for r in demo.requests]
    assert asked == [
        ("userinfo", None, None),  # pywikibot.Site() asks who we are (fixture 01)
        # The namespaces (04), for the case of user names, lazily before the first list=.
        ("siteinfo|userinfo", None, None),
        ("userinfo", "users", None),
        ("siteinfo|userinfo", None, None),  # lazily, before the first prop= (15)
        ("userinfo", None, "revisions"),
    ]
    # pywikibot fixes its base directory when it is first imported in a process (see the
    # subprocess test below for a fresh start); whatever ran before, the current directory
    # stays empty and the configured cache directory is the one in use.
    assert (tmp_path / "pywikibot" / "throttle.ctrl").exists()
    assert list((tmp_path / "cwd").iterdir()) == []


def test_users_info_tells_existing_missing_invalid_and_bot_accounts(demo):
    names = ["Demo Librarian", "No Such User", "Bad#Name", "Demo Bot", "sample_Archivist"]

    info = wiki.users_info("demo", names)

    assert info == {
        "Demo Librarian": UserInfo("Demo Librarian", exists=True, valid=True, bot=False),
        "No Such User": UserInfo("No Such User", exists=False, valid=True, bot=False),
        "Bad#Name": UserInfo("Bad#Name", exists=False, valid=False, bot=False),
        "Demo Bot": UserInfo("Demo Bot", exists=True, valid=True, bot=True),
        "sample_Archivist": UserInfo("Sample Archivist", exists=True, valid=True, bot=False),
    }


def test_users_info_asks_for_50_names_a_request(demo):
    names = ["Demo Librarian"] + [f"Nobody {i}" for i in range(119)]

    info = wiki.users_info("demo", names)

    batches = [r["ususers"].split("|") for r in demo.requests if r.get("list") == "users"]
    assert [len(b) for b in batches] == [50, 50, 20]
    assert all(r["usprop"] == "groups" for r in demo.requests if r.get("list") == "users")
    assert len(info) == 120 and sum(i.exists for i in info.values()) == 1


def test_contributions_of_several_users_come_page_by_page_with_tokens(demo, monkeypatch):
    monkeypatch.setattr(wiki, "CONTRIBUTIONS_PER_REQUEST", 3)
    names = ["Demo Librarian", "Exemple Bibliothécaire", "Sample Archivist", "No Such User"]

    pages = pull_all(names)

    edits = [edit for page, _ in pages for edit in page]
    assert sorted(e.revid for e in edits) == [2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 17]
    assert [len(page) for page, _ in pages] == [3, 3, 3, 3, 3]
    tokens = [token for _, token in pages]
    assert tokens[-1] is None and all(t.startswith("actor|") for t in tokens[:-1])
    for page, _ in pages:  # each page oldest first
        assert [e.timestamp for e in page] == sorted(e.timestamp for e in page)
    # One request per page, all parameters kept, the continuation echoed.
    requests = usercontribs_requests(demo)
    assert len(requests) == len(pages)
    assert requests[0]["ucdir"] == "newer" and requests[0]["uclimit"] == "3"
    assert [r.get("uccontinue") for r in requests[1:]] == tokens[:-1]
    assert all(r["maxlag"] == "5" for r in requests)

    first = next(e for e in edits if e.revid == 7)
    assert first == Edit(
        wiki="demo",
        revid=7,
        parentid=6,
        pageid=3,
        ns=0,
        title="Bibliothèque cantonale",
        user="Sample Archivist",
        timestamp=datetime(2026, 11, 22, 9, 2, 45, tzinfo=UTC),
        comment="typo",
        sizediff=-4,
        minor=True,
        new=False,
    )
    created = next(e for e in edits if e.revid == 11)
    assert (created.new, created.minor, created.ns, created.sizediff) == (True, False, 1, 155)


def test_contributions_keep_to_the_time_window(demo):
    pages = wiki.contributions(
        "demo",
        ["Demo Librarian", "Exemple Bibliothécaire", "Sample Archivist"],
        start=datetime(2023, 1, 1, tzinfo=UTC),
        end=datetime(2023, 3, 1, tzinfo=UTC),
    )
    assert [[e.revid for e in page] for page, _ in pages] == [[2, 3, 4]]


def test_a_failed_pull_resumes_from_the_stored_token(demo, monkeypatch):
    monkeypatch.setattr(wiki, "CONTRIBUTIONS_PER_REQUEST", 2)
    names = ["Demo Librarian", "Demo Bot"]
    everything = [e.revid for page, _ in pull_all(names) for e in page]

    pages = iter(wiki.contributions("demo", names, start=EVER_START, end=EVER_END))
    first_page, token = next(pages)
    demo.fail_next(10, "http503")
    with pytest.raises(WikiError) as failure:
        next(pages)
    assert failure.value.transient and failure.value.code == "http503"

    demo._faults.clear()
    resumed = pull_all(names, resume_from=token)
    assert [e.revid for e in first_page] + [e.revid for p, _ in resumed for e in p] == everything


@pytest.mark.parametrize("count", [1, 50, 51, 120])
def test_one_usercontribs_request_per_page_for_each_50_accounts(demo, count):
    names = ["Demo Librarian", "Sample Archivist", "Demo Bot"] + [
        f"Nobody {i}" for i in range(count - 3)
    ]
    names = names[:count]

    for start in range(0, len(names), wiki.USERS_PER_REQUEST):
        pull_all(names[start : start + wiki.USERS_PER_REQUEST])

    assert len(usercontribs_requests(demo)) == math.ceil(count / 50)


def test_more_than_50_accounts_in_one_call_is_a_programming_error(demo):
    with pytest.raises(ValueError):
        pull_all([f"Nobody {i}" for i in range(51)])
    assert usercontribs_requests(demo) == []


def test_revision_texts_come_50_a_request_and_skip_missing_revisions(demo):
    revids = list(range(1, 18)) + list(range(1000, 1040)) + [999999]

    texts = wiki.revision_texts("demo", revids)

    assert sorted(texts) == list(range(1, 18))
    assert texts[5] == demo.revisions[5].text
    assert texts[17].count("<ref") - texts[17].count("<references") == 5
    batches = [r for r in demo.requests if r.get("prop") == "revisions"]
    assert [len(r["revids"].split("|")) for r in batches] == [50, 8]
    assert all("rvlimit" not in r for r in batches)


@pytest.mark.parametrize(
    "kind, options",
    [
        ("maxlag", {}),
        ("http503", {}),
        ("http500", {}),
        ("timeout", {"delay": 3}),
        ("ratelimited", {}),
        ("malformed", {}),
    ],
)
def test_transient_failures_are_retried_then_succeed(demo, kind, options):
    wiki.users_info("demo", ["Demo Bot"])  # the site is up; now the wiki stumbles
    demo.fail_next(2, kind, match={"list": "usercontribs"}, **options)

    pages = pull_all(["Demo Bot"])

    assert [[e.revid for e in page] for page, _ in pages] == [[16]]
    assert len(usercontribs_requests(demo)) == 3


def test_retry_after_is_honoured_but_capped(demo, settings, monkeypatch):
    settings.WIKI_MAX_WAIT = 2.5
    wiki.users_info("demo", ["Demo Bot"])
    # Every pause of the process (the seam's and pywikibot's own) goes through this clock.
    clock = FakeClock()
    monkeypatch.setattr(time, "sleep", clock.sleep)

    demo.fail_next(1, "maxlag", match={"list": "usercontribs"}, retry_after=2)
    pull_all(["Demo Bot"])
    assert [pause for pause in clock.sleeps if pause >= 0.5] == [2.0]

    clock.sleeps.clear()
    demo.fail_next(1, "maxlag", match={"list": "usercontribs"}, retry_after=3600)
    pull_all(["Demo Bot"])
    # Capped at WIKI_MAX_WAIT, not an hour; and pywikibot does not wait the hour either.
    assert [pause for pause in clock.sleeps if pause >= 0.5] == [2.5]


def test_a_wiki_that_keeps_failing_raises_a_transient_error_quickly(demo, settings, monkeypatch):
    settings.WIKI_MAX_WAIT = 5.0
    demo.fail_next(100, "http503")
    clock = FakeClock()
    monkeypatch.setattr(time, "sleep", clock.sleep)
    with pytest.raises(WikiError) as failure:
        wiki.users_info("demo", ["Demo Bot"])
    assert [pause for pause in clock.sleeps if pause >= 0.5] == [1.0, 2.0]  # doubling from 1 s
    assert failure.value.transient and failure.value.code == "http503"
    assert len(demo.requests) == 3  # WIKI_ATTEMPTS


@pytest.mark.parametrize("kind", ["http500", "maxlag", "ratelimited", "malformed"])
def test_each_lasting_fault_ends_in_a_transient_error_named_after_it(demo, settings, kind):
    settings.WIKI_MAX_WAIT = 0.2
    wiki.users_info("demo", ["Demo Bot"])
    demo.fail_next(100, kind)
    with pytest.raises(WikiError) as failure:
        wiki.users_info("demo", ["Demo Bot"])
    assert (failure.value.code, failure.value.transient) == (kind, True)


def test_a_wiki_that_never_answers_raises_a_timeout_quickly(demo, settings):
    # The server holds each answer far longer than the client's socket timeout: "timeout"
    # (not an answer received late) says the client gave up at its own limit, every try.
    assert settings.WIKI_TIMEOUT < 10
    demo.fail_next(100, "timeout", delay=10)
    with pytest.raises(WikiError) as failure:
        wiki.users_info("demo", ["Demo Bot"])
    assert failure.value.transient and failure.value.code == "timeout"
    assert len(demo.requests) == settings.WIKI_ATTEMPTS


def test_a_wiki_that_is_down_raises_a_transient_error(settings, tmp_path):
    settings.WIKIS = {"down": "http://127.0.0.1:9/w/api.php"}  # the discard port: refused
    settings.WIKI_CACHE_DIR = tmp_path
    settings.WIKI_MAX_WAIT = 0.2
    with pytest.raises(WikiError) as failure:
        wiki.users_info("down", ["Demo Bot"])
    assert failure.value.transient and failure.value.code == "connection"


def test_api_errors_a_retry_cannot_fix_are_raised_at_once(demo, monkeypatch):
    with pytest.raises(WikiError) as failure:
        pull_all(["Demo Librarian", "Bad#Name"])
    assert (failure.value.code, failure.value.transient) == ("baduser", False)
    assert len(usercontribs_requests(demo)) == 1

    monkeypatch.setattr(wiki, "USERS_PER_REQUEST", 60)
    with pytest.raises(WikiError) as failure:
        wiki.users_info("demo", [f"Nobody {i}" for i in range(51)])
    assert (failure.value.code, failure.value.transient) == ("toomanyvalues", False)


def test_an_unknown_wiki_is_refused(demo):
    with pytest.raises(WikiError) as failure:
        wiki.users_info("nowiki", ["Demo Bot"])
    assert (failure.value.code, failure.value.transient) == ("unknownwiki", False)


def test_every_request_carries_a_user_agent_with_the_contact(demo):
    wiki.revision_texts("demo", [5])
    agents = {headers.get("user-agent") for headers in demo.request_headers}
    assert len(agents) == 1
    (agent,) = agents
    assert agent.startswith("Outreach/") and "(outreach@example.org)" in agent
    assert "Pywikibot/" in agent


def test_a_stale_login_cookie_in_the_cache_is_never_sent(demo, tmp_path):
    cache = tmp_path / "pywikibot"
    cache.mkdir()
    (cache / "pywikibot.lwp").write_text(
        "#LWP-Cookies-2.0\n"
        'Set-Cookie3: demowiki_session=stale; path="/"; domain="127.0.0.1"; path_spec;'
        " discard; version=0\n"
    )
    wiki.users_info("demo", ["Demo Bot"])
    wiki.revision_texts("demo", [5])
    assert all("cookie" not in headers for headers in demo.request_headers)
    assert all(r.get("assert") != "user" for r in demo.requests)


def test_request_count_counts_http_requests(demo):
    wiki.users_info("demo", ["Demo Bot"])  # the site's start-up requests
    wiki.reset_request_count()
    before = len(demo.requests)
    wiki.revision_texts("demo", list(range(1, 61)))
    assert wiki.request_count() == len(demo.requests) - before >= 2


def test_a_fresh_process_ignores_a_user_config_in_its_directory(server, tmp_path):
    """pywikibot runs ./user-config.py at import unless told otherwise: it must not here."""
    workdir, home = tmp_path / "cwd", tmp_path / "home"
    workdir.mkdir()
    home.mkdir()
    (workdir / "user-config.py").write_text("raise SystemExit('user-config.py was run')\n")
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "outreach.settings",
        "PYTHONPATH": str(REPO),
        "HOME": str(home),
        "WIKIS": f"demo={server.api_url}",
        "WIKI_CACHE_DIR": str(tmp_path / "cache"),
    }
    env.pop("PYWIKIBOT_DIR", None)
    script = (
        "import django; django.setup()\n"
        "from drives import wiki\n"
        "print(wiki.users_info('demo', ['Demo Bot'])['Demo Bot'].bot)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith("True")
    assert sorted(p.name for p in workdir.iterdir()) == ["user-config.py"]
    assert list(home.iterdir()) == []  # no ~/.pywikibot either


def test_a_name_in_decomposed_unicode_is_the_account_the_wiki_knows(demo):
    # MediaWiki normalises every request to NFC; the answer names the account that way.
    name = "Exemple_Bibliothe\u0301caire"
    info = wiki.users_info("demo", [name])
    assert info[name].exists and info[name].name == "Exemple Bibliothécaire"


def test_texts_have_a_longer_timeout_than_lists(demo, settings):
    settings.WIKI_TIMEOUT, settings.WIKI_TEXTS_TIMEOUT = 1.0, 5.0
    wiki.users_info("demo", ["Demo Bot"])
    # A wiki that takes 1.5 s to send 50 texts: longer than a list may take, not too long.
    demo.fail_next(1, "timeout", match={"prop": "revisions"}, delay=1.5)
    texts = wiki.revision_texts("demo", [5, 6])
    assert set(texts) == {5, 6}
    assert len([r for r in demo.requests if r.get("prop") == "revisions"]) == 1  # one try
    demo.fail_next(1, "timeout", match={"list": "users"}, delay=1.5)
    wiki.users_info("demo", ["Demo Bot"])
    assert len([r for r in demo.requests if r.get("list") == "users"]) == 3  # timed out once


def test_a_failed_try_is_one_readable_line_and_its_traceback_only_at_debug(
    demo, settings, caplog, capfd
):
    settings.WIKI_MAX_WAIT = 0.1
    wiki.users_info("demo", ["Demo Bot"])
    demo.fail_next(100, "http503")
    caplog.set_level(logging.INFO, logger="drives.wiki")
    with pytest.raises(WikiError):
        wiki.users_info("demo", ["Demo Bot"])
    lines = [(r.levelname, r.getMessage()) for r in caplog.records if r.name == "drives.wiki"]
    assert lines == [
        ("WARNING", "wiki demo: http503 (try 1 of 3), trying again in 0.1 s"),
        ("WARNING", "wiki demo: http503 (try 2 of 3), trying again in 0.1 s"),
    ]
    assert "Traceback" not in capfd.readouterr().err  # pywikibot prints nothing of its own

    caplog.clear()
    caplog.set_level(logging.DEBUG, logger="drives.wiki")
    demo.fail_next(100, "http503")
    with pytest.raises(WikiError):
        wiki.users_info("demo", ["Demo Bot"])
    debug = [r for r in caplog.records if r.levelname == "DEBUG" and r.exc_info]
    assert debug and "ServerError" in caplog.text
