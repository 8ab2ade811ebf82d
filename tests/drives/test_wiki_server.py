"""The fake MediaWiki server is faithful: every recorded request gets the recorded answer.

Each exchange of shared/fixtures/mediawiki-1.39/all.jsonl (MediaWiki 1.39 answering
pywikibot 11.9 and plain HTTP) is replayed against ``tests.wiki_server`` loaded with the
recorded wiki, and the answers must match: same status, same recorded headers, same body
once the server's own URL stands in for the recorded one.
"""

import json
import re
import urllib.error
import urllib.request
from datetime import UTC, datetime
from urllib.parse import urlencode

import pytest

from tests.wiki_server import RECORDED_ORIGIN, WikiServer, load_exchanges, recorded_wiki

EXCHANGES = load_exchanges()


@pytest.fixture(scope="module")
def wiki():
    server = recorded_wiki()
    server.start()
    yield server
    server.stop()


def post(api_url: str, params: dict[str, str], timeout: float = 10):
    """POST form fields as pywikibot does; return (status, headers, raw body)."""
    request = urllib.request.Request(
        api_url,
        data=urlencode(params).encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, dict(response.headers.items()), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers.items()), error.read()


def _lower(headers: dict[str, str]) -> dict[str, str]:
    return {name.lower(): value for name, value in headers.items()}


def _patched(value, origin: str):
    text = json.dumps(value, ensure_ascii=False).replace(RECORDED_ORIGIN, origin)
    return json.loads(text)


@pytest.mark.parametrize("exchange", EXCHANGES, ids=[e["name"] for e in EXCHANGES])
def test_each_recorded_request_gets_the_recorded_answer(wiki, exchange):
    status, headers, raw = post(wiki.api_url, exchange["request"]["params"])

    recorded = exchange["response"]
    assert status == recorded["status"]
    headers = _lower(headers)
    for name, value in recorded["headers"].items():
        assert headers.get(name) == value, name
    # The recordings kept these headers whenever present: none may be invented either.
    kept = {"vary", "mediawiki-api-error", "retry-after", "x-database-lag"}
    assert {n for n in kept if n in headers} == {n for n in kept if n in recorded["headers"]}
    assert json.loads(raw) == _patched(recorded["body"], wiki.origin)


def test_formatversion_1_escapes_non_ascii_and_2_sends_utf8(wiki):
    params = {"action": "query", "prop": "revisions", "revids": "5", "rvprop": "ids|comment"}
    _, _, fv1 = post(wiki.api_url, {**params, "format": "json"})
    _, _, fv2 = post(wiki.api_url, {**params, "format": "json", "formatversion": "2"})
    assert b"\\u00e8" in fv1 and "è".encode() not in fv1
    assert "è".encode() in fv2


def test_every_request_is_recorded_with_its_form_fields(wiki):
    before = len(wiki.requests)
    post(wiki.api_url, {"action": "query", "list": "users", "ususers": "Demo Bot"})
    assert len(wiki.requests) == before + 1
    assert wiki.requests[-1] == {"action": "query", "list": "users", "ususers": "Demo Bot"}


def test_list_users_has_mediawikis_shape(wiki):
    params = {
        "action": "query",
        "list": "users",
        "ususers": "Demo Librarian|No Such User|Bad#Name|Demo_Bot",
        "usprop": "groups",
        "format": "json",
    }
    _, _, raw = post(wiki.api_url, params)
    assert json.loads(raw) == {
        "batchcomplete": "",
        "query": {
            "users": [
                {"name": "Bad#Name", "invalid": ""},
                {"userid": 6, "name": "Demo Bot", "groups": ["bot", "*", "user", "autoconfirmed"]},
                {"userid": 3, "name": "Demo Librarian", "groups": ["*", "user", "autoconfirmed"]},
                {"name": "No Such User", "missing": ""},
            ]
        },
    }
    _, _, raw = post(wiki.api_url, {**params, "formatversion": "2"})
    assert json.loads(raw)["query"]["users"][-1] == {"name": "No Such User", "missing": True}


def test_list_users_refuses_more_than_50_names(wiki):
    names = "|".join(f"Nobody {i}" for i in range(51))
    _, headers, raw = post(
        wiki.api_url, {"action": "query", "list": "users", "ususers": names, "format": "json"}
    )
    assert _lower(headers)["mediawiki-api-error"] == "toomanyvalues"
    error = json.loads(raw)["error"]
    assert (error["limit"], error["lowlimit"], error["highlimit"]) == (50, 50, 500)


def contributions(wiki, **params):
    base = {
        "action": "query",
        "list": "usercontribs",
        "ucprop": "ids|timestamp|flags",
        "format": "json",
        "formatversion": "2",
    }
    pages, token = [], None
    while True:
        extra = {"uccontinue": token, "continue": "-||"} if token else {}
        _, _, raw = post(wiki.api_url, {**base, **params, **extra})
        body = json.loads(raw)
        pages.append(body)
        token = body.get("continue", {}).get("uccontinue")
        if not token:
            return pages


def test_usercontribs_newer_pages_ascend_by_actor_then_time(wiki):
    pages = contributions(
        wiki,
        ucuser="Demo Librarian|Sample Archivist|Demo Bot",
        ucdir="newer",
        ucstart="2023-01-01T00:00:00Z",
        ucend="2026-11-22T09:02:50Z",
        uclimit="2",
    )
    revids = [row["revid"] for page in pages for row in page["query"]["usercontribs"]]
    # Demo Librarian (3), then Sample Archivist (5); ucend is inclusive (revid 11), and
    # Demo Bot's edit comes after it.
    assert revids == [2, 5, 8, 11, 4, 7, 10]
    assert pages[0]["continue"]["uccontinue"] == "actor|3|20261122090246|8"
    flags = pages[0]["query"]["usercontribs"][0]
    assert (flags["new"], flags["minor"], flags["top"]) == (True, False, False)


def test_usercontribs_without_userinfo_continues_with_an_empty_module_list(wiki):
    pages = contributions(wiki, ucuser="Sample Archivist", uclimit="2")
    assert [p.get("continue", {}).get("continue") for p in pages] == ["-||", "-||", None]


def test_usercontribs_refuses_a_mangled_continuation(wiki):
    _, headers, _ = post(
        wiki.api_url,
        {"action": "query", "list": "usercontribs", "ucuser": "A|B", "uccontinue": "20230101|2"},
    )
    assert _lower(headers)["mediawiki-api-error"] == "badcontinue"


@pytest.mark.parametrize("kind, status", [("http500", 500), ("http503", 503)])
def test_fail_next_answers_server_errors_then_recovers(kind, status):
    with recorded_wiki() as wiki:
        wiki.fail_next(2, kind)
        params = {"action": "query", "list": "users", "ususers": "Demo Bot", "format": "json"}
        assert post(wiki.api_url, params)[0] == status
        assert post(wiki.api_url, params)[0] == status
        assert post(wiki.api_url, params)[0] == 200
        assert len(wiki.requests) == 3


def test_fail_next_maxlag_has_the_recorded_error_and_headers():
    with recorded_wiki() as wiki:
        wiki.fail_next(1, "maxlag", match={"list": "usercontribs"})
        params = {"action": "query", "list": "usercontribs", "ucuser": "Demo Bot", "maxlag": "30"}
        # A request the fault does not match goes through.
        assert post(wiki.api_url, {"action": "query", "meta": "userinfo"})[0] == 200
        status, headers, raw = post(wiki.api_url, {**params, "format": "json"})
        headers = _lower(headers)
        assert status == 200
        assert headers["mediawiki-api-error"] == "maxlag"
        assert headers["retry-after"] == "30"  # max(maxlag, 5), as MediaWiki computes it
        assert headers["x-database-lag"] == "-1"
        error = json.loads(raw)["error"]
        assert {k: error[k] for k in ("code", "lag", "host", "type")} == {
            "code": "maxlag",
            "lag": -1,
            "host": "",
            "type": "db",
        }
        assert post(wiki.api_url, params)[0] == 200


def test_fail_next_ratelimited_and_malformed():
    with recorded_wiki() as wiki:
        wiki.fail_next(1, "ratelimited")
        wiki.fail_next(1, "malformed")
        params = {"action": "query", "meta": "userinfo", "format": "json"}
        _, headers, raw = post(wiki.api_url, params)
        assert json.loads(raw)["error"]["code"] == "ratelimited"
        assert _lower(headers)["mediawiki-api-error"] == "ratelimited"
        _, _, raw = post(wiki.api_url, params)
        with pytest.raises(json.JSONDecodeError):
            json.loads(raw)


def test_fail_next_timeout_answers_after_the_clients_timeout():
    with recorded_wiki() as wiki:
        wiki.fail_next(1, "timeout", delay=3)
        # Raised, not answered: the client gave up at its 0.5 s, long before the answer.
        with pytest.raises(OSError):  # socket.timeout / URLError(timeout)
            post(wiki.api_url, {"action": "query", "meta": "userinfo"}, timeout=0.5)


def test_an_empty_wiki_has_no_contributions_and_unknown_revisions():
    with WikiServer() as wiki:
        wiki.add_user("Solo", 7)
        _, _, raw = post(
            wiki.api_url,
            {"action": "query", "list": "usercontribs", "ucuser": "Solo", "format": "json"},
        )
        assert json.loads(raw)["query"] == {"usercontribs": []}
        _, _, raw = post(
            wiki.api_url, {"action": "query", "prop": "revisions", "revids": "1", "format": "json"}
        )
        assert json.loads(raw)["query"] == {"badrevids": {"1": {"revid": 1, "missing": ""}}}


def test_texts_past_the_result_size_continue_from_the_first_that_did_not_fit():
    # ApiQueryRevisions in revids mode: by revision id; the first revision that would take
    # the result past $wgAPIMaxResultSize becomes rvcontinue, the batch is not complete, and
    # ApiResult warns that it truncated the result.
    with recorded_wiki() as wiki:
        revids = [9, 5, 2, 13, 6]
        wiki.max_result_size = 3 * max(len(wiki.revisions[n].text.encode()) for n in revids) // 2
        params = {
            "action": "query",
            "format": "json",
            "formatversion": "2",
            "prop": "revisions",
            "revids": "|".join(map(str, revids)),
            "rvprop": "ids|content",
            "rvslots": "main",
        }
        seen, pages = [], []
        while True:
            _, _, raw = post(wiki.api_url, params)
            page = json.loads(raw)
            pages.append(page)
            got = [
                revision["revid"]
                for p in page["query"].get("pages", [])
                for revision in p.get("revisions", [])
            ]
            if "continue" not in page:
                seen += got
                break
            assert "batchcomplete" not in page and page["continue"]["continue"] == "-||"
            assert "truncated" in page["warnings"]["result"]["warnings"]
            assert all(revid < int(page["continue"]["rvcontinue"]) for revid in got)
            seen += got
            params = {**params, **page["continue"]}
        assert len(pages) > 1 and pages[-1]["batchcomplete"] is True
        assert sorted(seen) == [2, 5, 6, 9, 13] and len(seen) == 5  # each once, none lost


def _recentchanges(wiki, **params):
    base = {
        "action": "query",
        "format": "json",
        "formatversion": "2",
        "list": "recentchanges",
        "rcprop": "user|userid|comment|ids|timestamp|sizes|flags|title",
        "rcdir": "newer",
        **params,
    }
    pages = []
    while True:
        _, _, raw = post(wiki.api_url, base)
        page = json.loads(raw)
        pages.append(page)
        if "continue" not in page:
            return pages
        base = {**base, **page["continue"]}


def test_recentchanges_lists_edits_oldest_first_page_by_page_within_the_horizon():
    with recorded_wiki() as wiki:
        wiki.now = datetime(2026, 11, 23, tzinfo=UTC)
        pages = _recentchanges(wiki, rclimit="4", rctype="edit|new")
        changes = [c for p in pages for c in p["query"]["recentchanges"]]
        # Revisions of 2023 are older than the 30 days the wiki keeps: not listed.
        assert [c["revid"] for c in changes] == [1, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17]
        assert len(pages) == 4 and pages[0]["continue"]["continue"] == "-||"
        assert re.fullmatch(r"\d{14}\|\d+", pages[0]["continue"]["rccontinue"])
        eight = next(c for c in changes if c["revid"] == 8)
        assert eight == {
            "type": "new",
            "ns": 0,
            "title": "Lausanne",
            "pageid": 4,
            "revid": 8,
            "old_revid": 0,
            "rcid": 8,
            "user": "Demo Librarian",
            "userid": 3,
            "bot": False,
            "new": True,
            "minor": False,
            "oldlen": 0,
            "newlen": eight["newlen"],
            "timestamp": "2026-11-22T09:02:46Z",
            "comment": "Added citation (#1lib1ref)",
        }
        assert eight["newlen"] > 0


def test_recentchanges_without_bots_and_within_a_window():
    with recorded_wiki() as wiki:
        wiki.now = datetime(2026, 11, 23, tzinfo=UTC)
        pages = _recentchanges(
            wiki,
            rclimit="500",
            rcshow="!bot",
            rcstart="2026-11-22T09:02:45Z",
            rcend="2026-11-22T09:02:56Z",
        )
        revids = [c["revid"] for c in pages[0]["query"]["recentchanges"]]
        assert revids == [7, 8, 9, 10, 11, 12, 13, 14, 15]  # 16 is the bot's
        assert "continue" not in pages[0] and pages[0]["batchcomplete"] is True
