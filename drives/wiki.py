"""The one seam to the wikis: MediaWiki's Action API, read through pywikibot.

Nothing else in Outreach imports pywikibot. This module configures it entirely in code
(no user-config.py of anybody's, no prompt, no login, nothing written to the current
directory), builds one site per API URL of ``settings.WIKIS`` without any family file, and
reads four things:

* ``users_info``: whether accounts exist and are bots (``list=users``, 50 names a request);
* ``contributions``: the edits of up to 50 accounts in a time window, one API result page
  at a time with the continuation token that resumes after it (``list=usercontribs``);
* ``revision_texts``: the wikitext of revisions (``prop=revisions&revids=``, 50 a request);
* ``recent_changes``: every edit of the wiki in a window, whoever made it
  (``list=recentchanges``, 500 a page), for the participants the directory does not know.

Every request is an anonymous POST with a descriptive User-Agent carrying a contact address
(Wikimedia User-Agent policy), ``maxlag`` (settings.WIKI_MAXLAG) and a socket timeout
(settings.WIKI_TIMEOUT). Transient failures (HTTP 5xx, timeouts, refused connections,
maxlag, ``ratelimited``, a body that is not JSON) are retried here, in one place, with
growing pauses that honour ``Retry-After`` up to settings.WIKI_MAX_WAIT; after
settings.WIKI_ATTEMPTS tries they raise ``WikiError(transient=True)``. API errors that a
retry cannot fix (``toomanyvalues``, ``baduser``, ``badtimestamp``, …) raise
``WikiError(transient=False)`` at once.
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from http import cookiejar
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

from django.conf import settings
from django.utils.translation import gettext as _

from core.text import normalize_wiki_username

logger = logging.getLogger(__name__)

# The MediaWiki API's limit of 50 values per multi-value parameter (ucuser, ususers,
# revids) for clients without apihighlimits; beyond it the whole request fails with
# "toomanyvalues" (nothing is truncated).
USERS_PER_REQUEST = 50
REVISIONS_PER_REQUEST = 50
# uclimit: rows per usercontribs page; 500 is the maximum for clients without
# apihighlimits (settings.WIKI_CONTRIBUTIONS_PER_REQUEST may ask for fewer; tests do, to see
# continuation).
CONTRIBUTIONS_PER_REQUEST = 500

USER_AGENT_PRODUCT = "Outreach/0.1"
CONTRIBUTION_PROPS = "ids|title|timestamp|comment|sizediff|flags"

# API error codes that a later try may not meet (the others are the caller's mistake).
_TRANSIENT_API_CODES = {
    "maxlag",
    "ratelimited",
    "readonly",
    "internal_api_error_DBConnectionError",
    "internal_api_error_DBQueryError",
    "internal_api_error_DBQueryTimeoutError",
    "internal_api_error_DBUnexpectedError",
}

T = TypeVar("T")


class WikiError(Exception):
    """A wiki request failed after its retries.

    ``transient`` says whether trying again later may succeed; ``code`` is the API error
    code (``toomanyvalues``, ``maxlag``, …) or what went wrong on the way (``http503``,
    ``timeout``, ``connection``, ``malformed``, ``unknownwiki``).
    """

    def __init__(self, message: str, *, code: str, transient: bool):
        super().__init__(message)
        self.code = code
        self.transient = transient


@dataclass(frozen=True)
class Edit:
    wiki: str
    revid: int
    parentid: int
    pageid: int
    ns: int
    title: str
    user: str
    timestamp: datetime  # aware, UTC
    comment: str
    sizediff: int
    minor: bool
    new: bool


@dataclass(frozen=True)
class UserInfo:
    name: str
    exists: bool
    valid: bool
    bot: bool


# pywikibot, configured ----------------------------------------------------------------------

_lock = threading.RLock()
_pywikibot: Any = None
_sites: dict[tuple[str, str], Any] = {}
_count_lock = threading.Lock()
_request_count = 0
# What the last HTTP exchange of this thread looked like, to name a failure and to honour
# its Retry-After: pywikibot's exceptions do not carry that.
_last = threading.local()


def request_count() -> int:
    """HTTP requests this module sent since the process started (or the last reset)."""
    return _request_count


def reset_request_count() -> None:
    global _request_count
    with _count_lock:
        _request_count = 0


def _cache_dir() -> Path:
    path = Path(str(settings.WIKI_CACHE_DIR)).resolve()
    path.mkdir(parents=True, exist_ok=True)
    # pywikibot counts its processes in throttle.ctrl and, once it has counted itself,
    # fails to build a site when the file is gone (a cleaned or new cache directory).
    (path / "throttle.ctrl").touch(exist_ok=True)
    return path


def _import_pywikibot() -> Any:
    """Import pywikibot once, pointed at our cache directory; configure it on every call.

    pywikibot reads its base directory at import: $PYWIKIBOT_DIR, but only if that
    directory holds a user-config.py; otherwise the current directory if *it* holds one
    (and runs it), else ~/.pywikibot, created, while base_dir falls back to the current
    directory. So we write an empty user-config.py of our own there first: nobody's
    configuration is ever run, and nothing lands in the current directory.
    """
    global _pywikibot
    with _lock:
        cache_dir = _cache_dir()
        if _pywikibot is None:
            marker = cache_dir / "user-config.py"
            marker.write_text("# Written by drives/wiki.py, which configures pywikibot in code.\n")
            marker.chmod(0o600)  # pywikibot skips a config file that others may write
            os.environ["PYWIKIBOT_DIR"] = str(cache_dir)
            os.environ["PYWIKIBOT_NO_USER_CONFIG"] = "2"  # and no warning about it
            import pywikibot
            from pywikibot.comms import http

            _prepare_session(http.session)
            _quiet(pywikibot)
            _pywikibot = pywikibot
        _configure(_pywikibot.config, cache_dir)
        return _pywikibot


class _AtDebug(logging.Handler):
    """pywikibot's own log, passed on to ours at DEBUG: its tracebacks of a failed try would
    repeat, at ERROR on the worker's terminal, what ``_call`` says in one line."""

    def emit(self, record: logging.LogRecord) -> None:
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug("pywikibot: %s", record.getMessage(), exc_info=record.exc_info)


def _quiet(pywikibot: Any) -> None:
    from pywikibot import bot

    bot.init_handlers()  # now, so that pywikibot does not set up its terminal output later
    pywiki = logging.getLogger("pywiki")
    for handler in list(pywiki.handlers):
        pywiki.removeHandler(handler)
    pywiki.addHandler(_AtDebug())
    pywiki.propagate = False


def _configure(config: Any, cache_dir: Path) -> None:
    # Settings may change between calls (tests do): apply them every time.
    config.base_dir = str(cache_dir)  # apicache/, throttle.ctrl, cookie files: all here
    config.usernames.clear()  # anonymous reads: no account, so no login is ever tried
    config.authenticate.clear()  # no OAuth
    # Our own retry loop (_call) decides: pywikibot tries each request once. Its own loop
    # would sleep uncapped Retry-After values through its throttle, turn a non-JSON answer
    # into SiteDefinitionError for sites built from a URL, and give up on the same error
    # twice with APIError: neither bounded in time nor telling transient from permanent.
    config.max_retries = 0
    config.retry_wait = 1
    config.retry_max = settings.WIKI_MAX_WAIT
    timeout = float(settings.WIKI_TIMEOUT)
    config.socket_timeout = (min(3.05, timeout), timeout)  # (connect, read)
    # Reads only: no put_throttle; requests are sequential per call, minthrottle 0.
    config.minthrottle = 0
    config.maxthrottle = settings.WIKI_MAX_WAIT
    config.read_maxlag = settings.WIKI_MAXLAG
    contact = settings.WIKI_USER_AGENT_CONTACT.replace("{", "{{").replace("}", "}}")
    config.user_agent_description = None
    # "<client>/<version> (<contact>) <library>/<version>", as the Wikimedia User-Agent
    # policy asks; no {revision}, which would make pywikibot look for its git checkout.
    config.user_agent_format = (
        f"{USER_AGENT_PRODUCT} ({contact}) {{pwb}} {{python}} {{http_backend}}"
    )
    config.log = []  # no log files
    config.simulate = False


def _prepare_session(session: Any) -> None:
    """Count every HTTP request, remember the last answer, and refuse cookies.

    pywikibot loads ``base_dir/pywikibot.lwp`` into its cookie jar whenever a site is
    built: a stale login cookie there would turn our reads into a logged-in user's. The
    session gets a jar that accepts no cookie instead, so none is sent or kept.
    """
    import requests

    class CountingAdapter(requests.adapters.HTTPAdapter):
        def send(self, request, **kwargs):
            global _request_count
            read = getattr(_last, "read_timeout", None)
            if read is not None:  # a request that takes longer, such as 50 full texts
                connect, _read = kwargs.get("timeout") or (None, None)
                kwargs["timeout"] = (connect, read)
            with _count_lock:
                _request_count += 1
            _last.status = _last.api_error = _last.retry_after = _last.failure = None
            try:
                response = super().send(request, **kwargs)
            except requests.Timeout:
                _last.failure = "timeout"
                raise
            except requests.ConnectionError:
                _last.failure = "connection"
                raise
            _last.status = response.status_code
            _last.api_error = response.headers.get("MediaWiki-API-Error")
            _last.retry_after = response.headers.get("Retry-After")
            return response

    session.mount("http://", CountingAdapter())
    session.mount("https://", CountingAdapter())
    session.cookies = cookiejar.CookieJar(policy=cookiejar.DefaultCookiePolicy(allowed_domains=[]))


def _site(wiki: str) -> Any:
    """The pywikibot site of ``settings.WIKIS[wiki]``, built once per API URL.

    ``pywikibot.Site(url=...)`` would load every family file to match the URL first; we
    build the ``AutoFamily`` for the URL ourselves (no family file, no network at build
    time, scriptpath and protocol taken from the URL) and register it by name so that
    pywikibot can find it again.
    """
    try:
        api_url = settings.WIKIS[wiki]
    except KeyError:
        raise WikiError(f"Unknown wiki {wiki!r}", code="unknownwiki", transient=False) from None
    pywikibot = _import_pywikibot()
    with _lock:
        site = _sites.get((wiki, api_url))
        if site is not None:
            return site
    from pywikibot.family import AutoFamily, Family

    # Family names are ASCII letters and digits; one per URL, so that a changed URL
    # (another port in tests) is another site.
    digest = hashlib.sha1(api_url.encode(), usedforsecurity=False).hexdigest()[:8]
    name = "outreach" + re.sub(r"[^a-z0-9]", "", wiki.lower()) + digest
    with _lock:
        family = Family._families.get(name) or AutoFamily(name, api_url)
        Family._families[name] = family
    # Building the site asks the wiki who we are (meta=userinfo): retried like any call.
    site = _call(wiki, lambda: pywikibot.Site(code=name, fam=family))
    with _lock:
        _sites[(wiki, api_url)] = site
    return site


# Retries ------------------------------------------------------------------------------------


def _failure(exc: Exception) -> WikiError:
    """Name a failed request and say whether it is worth trying again."""
    from pywikibot import exceptions

    status = getattr(_last, "status", None)
    api_error = getattr(_last, "api_error", None)
    failure = getattr(_last, "failure", None)
    if isinstance(exc, exceptions.MaxlagTimeoutError):
        return WikiError(str(exc), code="maxlag", transient=True)
    if isinstance(exc, exceptions.APIError):
        return WikiError(
            f"{exc.code}: {exc.info}", code=exc.code, transient=exc.code in _TRANSIENT_API_CODES
        )
    if isinstance(exc, exceptions.FatalServerError):  # e.g. an invalid TLS certificate
        return WikiError(str(exc), code="fatal", transient=False)
    if failure:  # no answer: timeout or refused/dropped connection
        return WikiError(f"{failure}: {exc}", code=failure, transient=True)
    if status is not None and status >= 500:
        return WikiError(f"HTTP {status}", code=f"http{status}", transient=True)
    if api_error:  # an API error pywikibot would have waited for (ratelimited, readonly)
        return WikiError(
            f"API error {api_error}", code=api_error, transient=api_error in _TRANSIENT_API_CODES
        )
    if isinstance(exc, exceptions.SiteDefinitionError | exceptions.ApiTimeoutError):
        # pywikibot's names for an answer that is not JSON (for a site built from a URL,
        # and for the others), once it has no retries left.
        return WikiError(f"malformed answer: {exc}", code="malformed", transient=True)
    if isinstance(exc, exceptions.ServerError | ConnectionError):
        return WikiError(str(exc), code="connection", transient=True)
    return WikiError(f"{type(exc).__name__}: {exc}", code="unexpected", transient=False)


def _pause(attempt: int) -> float:
    """Seconds before the next try: doubling from 1 s, at least Retry-After, capped."""
    pause = float(2 ** (attempt - 1))
    with suppress(ValueError):  # Retry-After as an HTTP date: keep the back-off
        pause = max(pause, float(getattr(_last, "retry_after", None) or 0))
    return min(pause, float(settings.WIKI_MAX_WAIT))


def _call(wiki: str, request: Callable[[], T], site: Any = None) -> T:
    attempts = max(1, int(settings.WIKI_ATTEMPTS))
    for attempt in range(1, attempts + 1):
        try:
            return request()
        except WikiError:
            raise
        except Exception as exc:
            error = _failure(exc)
            if not error.transient or attempt == attempts:
                raise error from exc
            pause = _pause(attempt)
            logger.warning(
                "wiki %s: %s (try %d of %d), trying again in %.1f s",
                wiki,
                error.code,
                attempt,
                attempts,
                pause,
            )
            logger.debug("wiki %s: try %d failed", wiki, attempt, exc_info=exc)
            if site is not None:
                # pywikibot's throttle would hold the next request for the whole
                # Retry-After of the last answer, uncapped: we have just waited instead.
                site.throttle.retry_after = 0
            time.sleep(pause)
    raise AssertionError("unreachable")


_Request: Any = None


def _request_class() -> Any:
    """pywikibot's plain API request (what ``site.simple_request`` builds), with one change.

    On ``ratelimited`` pywikibot computes a pause from the site's rate limits, asking the
    wiki for ``paraminfo`` of ``query+info`` first; our retry loop pauses instead.
    """
    global _Request
    if _Request is None:
        from pywikibot.data import api

        class Request(api.Request):
            def _ratelimited(self) -> None:
                self.wait()  # max_retries is 0: gives up this try at once

        _Request = Request
    return _Request


def _query(wiki: str, **params: Any) -> dict[str, Any]:
    site = _site(wiki)

    def submit() -> dict[str, Any]:
        site.throttle.retry_after = 0
        parameters = {"action": "query", "formatversion": 2, **params}
        return _request_class()(site=site, parameters=parameters).submit()

    return _call(wiki, submit, site)


def _batches(items: list[T], size: int) -> Iterator[list[T]]:
    for index in range(0, len(items), size):
        yield items[index : index + size]


def _unique(items: list[T]) -> list[T]:
    return list(dict.fromkeys(items))


def _flag(row: dict[str, Any], key: str) -> bool:
    # formatversion 2 says true/false; formatversion 1 has "" or no key.
    value = row.get(key, False)
    return value is not False


def _parse_timestamp(value: str) -> datetime:
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


def _api_timestamp(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError("wiki timestamps must be aware datetimes")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _canonical_username(name: str, *, first_letter: bool = True) -> str:
    """MediaWiki's form of a user name: NFC, underscores as spaces, and the first letter upper
    case where the wiki's User namespace is "first-letter" ($wgCapitalLinks, as on every
    Wikipedia); Wiktionaries are "case-sensitive"."""
    name = normalize_wiki_username(name)
    return name[:1].upper() + name[1:] if first_letter else name


def _first_letter(wiki: str) -> bool:
    """Whether the wiki capitalises the first letter of user names (siteinfo namespaces)."""
    try:
        return _site(wiki).namespaces[2].case == "first-letter"
    except (KeyError, AttributeError):
        return True


# The User-Agent policy -----------------------------------------------------------------------

# Domains reserved for examples and tests (RFC 2606, RFC 6761): nobody reads mail there.
_PLACEHOLDER_DOMAINS = re.compile(
    r"(^|\.)(localhost|example(\.(com|net|org))?|test|invalid|local)$", re.IGNORECASE
)


def _is_public(api_url: str) -> bool:
    """Whether a wiki is out on the network (Wikipedia) rather than on this machine or a
    private network (a test wiki, a chapter's own)."""
    host = urlsplit(api_url).hostname or ""
    if host == "localhost" or host.endswith(".localhost"):
        return False
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return True
    return not (address.is_loopback or address.is_private or address.is_link_local)


def contact_problem(wiki_codes: list[str] | None = None) -> str:
    """Why the wikis would refuse our requests' User-Agent, or "" when nothing stands in the
    way. Wikimedia's User-Agent policy asks for a way to reach the operator (an email address
    or a web page); a placeholder or an address on localhost reaches nobody, and Wikimedia
    blocks such clients. Wikis on this machine or a private network are not concerned."""
    codes = settings.WIKIS if wiki_codes is None else wiki_codes
    if not any(_is_public(settings.WIKIS[code]) for code in codes if code in settings.WIKIS):
        return ""
    contact = settings.WIKI_USER_AGENT_CONTACT.strip()
    domain = urlsplit(contact).hostname if "://" in contact else contact.rpartition("@")[2]
    if not contact or not domain or _PLACEHOLDER_DOMAINS.search(domain.rstrip(".")):
        return _(
            "WIKI_USER_AGENT_CONTACT is “%(contact)s”: the wikis ask for an address or a web "
            "page where the chapter can be reached (Wikimedia's User-Agent policy), and block "
            "clients without one. Set it in the environment, then pull again."
        ) % {"contact": contact}
    return ""


# The public API -----------------------------------------------------------------------------


def users_info(wiki: str, names: list[str]) -> dict[str, UserInfo]:
    """Whether each account exists, is a valid name, and is in the bot group.

    One ``list=users&usprop=groups`` request per 50 names. The result is keyed by the names
    as given; ``UserInfo.name`` is the wiki's spelling (first letter upper case, spaces).
    """
    wanted = _unique(names)
    first_letter = _first_letter(wiki) if wanted else True
    found: dict[str, UserInfo] = {}
    for batch in _batches(wanted, USERS_PER_REQUEST):
        result = _query(wiki, list="users", ususers=batch, usprop="groups")
        for row in result.get("query", {}).get("users", []):
            if _flag(row, "invalid"):
                info = UserInfo(name=row["name"], exists=False, valid=False, bot=False)
            elif _flag(row, "missing"):
                info = UserInfo(name=row["name"], exists=False, valid=True, bot=False)
            else:
                bot = "bot" in row.get("groups", ())
                info = UserInfo(name=row["name"], exists=True, valid=True, bot=bot)
            found[row["name"]] = info
    answer = {}
    for name in wanted:
        info = found.get(name) or found.get(_canonical_username(name, first_letter=first_letter))
        if info is None:  # the wiki did not mention it: treat it as not a valid account
            info = UserInfo(name=name, exists=False, valid=False, bot=False)
        answer[name] = info
    return answer


def contributions(
    wiki: str,
    names: list[str],
    *,
    start: datetime,
    end: datetime,
    resume_from: str | None = None,
) -> Iterator[tuple[list[Edit], str | None]]:
    """The edits of up to 50 accounts from *start* to *end*, one API result page at a time.

    Yields ``(edits, token)`` per page: the page's edits oldest first, and the continuation
    token that resumes right after that page (``None`` after the last page). A caller that
    stores the token can pass it back as *resume_from* to carry on after a failure. One
    ``list=usercontribs`` request per page, whatever the number of accounts: MediaWiki
    returns the rows grouped by account, so a page may hold one account's edits only.
    Unknown accounts have no edits; an invalid name fails the call (``baduser``).
    """
    names = _unique(names)
    if len(names) > USERS_PER_REQUEST:
        raise ValueError(f"at most {USERS_PER_REQUEST} accounts per call, not {len(names)}")
    if not names:
        return
    params = {
        "list": "usercontribs",
        "ucuser": names,
        "ucprop": CONTRIBUTION_PROPS,
        "ucdir": "newer",  # oldest first: ucstart is the earlier bound
        "ucstart": _api_timestamp(start),
        "ucend": _api_timestamp(end),
        "uclimit": min(CONTRIBUTIONS_PER_REQUEST, settings.WIKI_CONTRIBUTIONS_PER_REQUEST),
    }
    token = resume_from
    carried = "-||"
    while True:
        extra = {"uccontinue": token, "continue": carried} if token else {}
        result = _query(wiki, **params, **extra)
        rows = result.get("query", {}).get("usercontribs", [])
        edits = sorted((_edit(wiki, row) for row in rows), key=lambda e: (e.timestamp, e.revid))
        following = result.get("continue", {})
        token = following.get("uccontinue")
        carried = following.get("continue", "-||")
        yield edits, token
        if not token:
            return


# rctype: edits and page creations, not log entries, categorisations or Wikidata's.
RECENT_CHANGE_PROPS = "user|userid|comment|ids|timestamp|sizes|flags|title"
RECENT_CHANGES_PER_REQUEST = 500  # rclimit's maximum without apihighlimits


def recent_changes(
    wiki: str, *, start: datetime, end: datetime, resume_from: str | None = None
) -> Iterator[tuple[list[Edit], str | None]]:
    """Every edit and page creation of the wiki from *start* to *end*, bots left out, one
    API result page at a time: whoever made it, the directory's librarians or not.

    ``list=recentchanges`` (rcdir=newer, rcshow=!bot, 500 a page); yields ``(edits, token)``
    like ``contributions``. The wiki keeps its recent changes for $wgRCMaxAge only (30 days
    on Wikimedia wikis): older ones are not listed at all.
    """
    params = {
        "list": "recentchanges",
        "rcprop": RECENT_CHANGE_PROPS,
        "rctype": "edit|new",
        "rcshow": "!bot",
        "rcdir": "newer",  # oldest first: rcstart is the earlier bound
        "rcstart": _api_timestamp(start),
        "rcend": _api_timestamp(end),
        "rclimit": RECENT_CHANGES_PER_REQUEST,
    }
    token = resume_from
    carried = "-||"
    while True:
        extra = {"rccontinue": token, "continue": carried} if token else {}
        result = _query(wiki, **params, **extra)
        rows = result.get("query", {}).get("recentchanges", [])
        following = result.get("continue", {})
        token = following.get("rccontinue")
        carried = following.get("continue", "-||")
        # A change whose user or revision is hidden (revision deletion) says neither.
        yield [_change(wiki, row) for row in rows if "revid" in row and "user" in row], token
        if not token:
            return


def _change(wiki: str, row: dict[str, Any]) -> Edit:
    return Edit(
        wiki=wiki,
        revid=int(row["revid"]),
        parentid=int(row.get("old_revid", 0)),
        pageid=int(row.get("pageid", 0)),
        ns=int(row.get("ns", 0)),
        title=row.get("title", ""),
        user=row["user"],
        timestamp=_parse_timestamp(row["timestamp"]),
        comment=row.get("comment", ""),
        sizediff=int(row.get("newlen", 0)) - int(row.get("oldlen", 0)),
        minor=_flag(row, "minor"),
        new=_flag(row, "new"),
    )


def _edit(wiki: str, row: dict[str, Any]) -> Edit:
    return Edit(
        wiki=wiki,
        revid=int(row["revid"]),
        parentid=int(row.get("parentid", 0)),
        pageid=int(row["pageid"]),
        ns=int(row["ns"]),
        title=row["title"],
        user=row["user"],
        timestamp=_parse_timestamp(row["timestamp"]),
        comment=row.get("comment", ""),
        sizediff=int(row.get("sizediff", 0)),
        minor=_flag(row, "minor"),
        new=_flag(row, "new"),
    )


def revision_texts(wiki: str, revids: list[int]) -> dict[int, str]:
    """The wikitext of each revision, 50 revisions per request; unreadable ones are absent
    (deleted, their text hidden, or larger than the wiki will send).

    A plain ``prop=revisions&revids=`` request: pywikibot's PropertyGenerator adds
    ``rvlimit``, which MediaWiki refuses together with ``revids`` (invalidparammix). When the
    texts of a batch exceed the API's result size ($wgAPIMaxResultSize, 8 MiB on Wikimedia
    wikis) MediaWiki sends those that fit, in revision order, and ``continue.rvcontinue``: the
    id to ask again from, with the same ``revids`` (ApiQueryRevisions). Followed until the
    batch is complete, or no further text comes.
    """
    texts: dict[int, str] = {}
    for batch in _batches(_unique([int(r) for r in revids]), REVISIONS_PER_REQUEST):
        params: dict[str, Any] = {
            "prop": "revisions",
            "revids": batch,
            "rvprop": "ids|content",
            "rvslots": "main",
        }
        while True:
            before = len(texts)
            # 50 texts of long articles take a wiki longer than a list: their own timeout.
            _last.read_timeout = float(settings.WIKI_TEXTS_TIMEOUT)
            try:
                result = _query(wiki, **params)
            finally:
                _last.read_timeout = None
            pages = result.get("query", {}).get("pages", [])
            for page in pages.values() if isinstance(pages, dict) else pages:
                for revision in page.get("revisions", ()):
                    main = revision.get("slots", {}).get("main", {})
                    text = main.get("content", main.get("*"))
                    if text is not None:  # absent when the text is hidden (texthidden)
                        texts[int(revision["revid"])] = text
            continuation = result.get("continue")
            if not continuation or len(texts) == before:
                # Done; or a text alone is larger than the wiki sends: it stays unread.
                break
            params = {**params, **continuation}
    return texts
