"""Rendered public pages, kept for visitors who are not signed in.

The home page, the proposal and offer listings, one proposal or offer, and search results
look the same to every visitor who is not signed in, so each is rendered once per catalogue
version and then served from a cache: in Redis when `REDIS_URL` is set (shared by every web
process and machine, with the hottest pages also kept in each process), else in a bounded
in-process LRU (`TANDEM_PAGE_CACHE_ENTRIES` pages). The key is the database, the code
(a digest of `app/` and `templates/`, and the settings pages depend on), the catalogue
version (`app.catalogue_version`: it changes after every committed write that could change
these pages, whoever wrote it; reading it is one query), the address (scheme, host, path)
and the query with its parameters sorted. `TANDEM_PAGE_CACHE_SECONDS` bounds how long an
entry lives (what changes with time alone, such as an offer's deadline passing, shows within
that time); 0 turns the cache off.

What may be cached, and served, is narrow on purpose:
- only GET requests to the endpoints in `PUBLIC_PAGES`, with only the query parameters each
  page reads (once each), no `Authorization` header, no remember-me cookie, and a session
  (the signed cookie) holding nothing but the keys in
  `NEUTRAL_SESSION_KEYS`: a signed-in person (`_user_id`), a flashed message (`_flashes`),
  or anything else unknown always gets a freshly rendered page;
- only a 200 HTML answer, not streamed, that set no cookie and changed nothing in the
  session, rendered for nobody signed in, that carries no CSRF token (`g.csrf_token` unset:
  no form with a token was rendered) and no `Cache-Control: private`/`no-store`. The search
  limit's notice is a 429 and so is never kept. A search served from the cache embeds
  nothing and so counts nothing against the visitor's limit.
Only the body is kept; the answer served from the cache is a new response that goes through
every `after_request` hook (security headers; the Content-Security-Policy has no per-request
nonce, see `app.headers`). Both kinds of answer say `Vary: Cookie`, and
`X-Tandem-Page-Cache: hit` or `miss` (the benchmark and tests read it).
"""

from __future__ import annotations

import functools
import hashlib
import logging
import re
import threading
import time
import urllib.parse
from collections import OrderedDict
from collections.abc import Callable, Sized
from math import inf
from typing import Any, Generic, NamedTuple, Protocol, TypeVar

import redis
from flask import Flask, Response, current_app, g, request, request_finished, session
from werkzeug.datastructures import MultiDict
from werkzeug.wrappers import Request

from app import catalogue_version
from app.config import ROOT

log = logging.getLogger(__name__)

# Each public page and the query parameters it reads. An address with any other parameter,
# a parameter twice, or a whole number written otherwise than plainly ("0001") is rendered
# but never kept: else made-up parameters would make endless copies of one page in Redis.
PUBLIC_PAGES: dict[str, frozenset[str]] = {
    "main.home": frozenset(),
    "proposals.index": frozenset({"area", "page"}),
    "proposals.show": frozenset(),
    "offers.index": frozenset({"kind", "page"}),
    "offers.show": frozenset(),
    "search.index": frozenset(
        {"q", "type", "area", "gpu_type", "min_hours", "domain", "terms", "page"}
    ),
}
WHOLE_NUMBER_PARAMETERS = frozenset({"page", "min_hours"})
_PLAIN_WHOLE_NUMBER = re.compile(r"(?:0|[1-9][0-9]{0,8})?")
# Session keys that change nothing on a public page: the CSRF secret (a page that shows a
# token is never cached), Flask-Security's mark that it set its CSRF cookie, the session's
# permanence and Flask-Login's freshness marks.
NEUTRAL_SESSION_KEYS = frozenset({"csrf_token", "fs_cc", "_permanent", "_fresh", "_id"})
# Settings a page's HTML depends on beyond the code and the data.
RENDER_SETTINGS = ("TANDEM_PAGE_SIZE", "TANDEM_TOP_K", "TANDEM_BASE_URL", "APPLICATION_ROOT")
MAX_BODY_BYTES = 1 << 20
HEADER = "X-Tandem-Page-Cache"
EXTENSION = "tandem.page_cache"
# The version app.pagehits read for this request before Flask (its WSGI environ).
READ_VERSION = "tandem.page_version"
# The key this request looked up and did not find (a miss, or it is to renew the page): see
# `kept`.
MISSED = "tandem.page_missed"
# What `LocalPages` keeps: a body, or a body in parts (`app.dashcache`).
Page = TypeVar("Page", bound=Sized)
Found = TypeVar("Found", covariant=True)
_KEY = "_tandem_page_cache_key"


class LocalPages(Generic[Page]):
    """A bounded least-recently-used map of key to (expiry, page), shared by the threads of
    one process: at most `entries` pages and, where given, `max_bytes` of them together, each
    counted by `size` (a body's length; `app.dashcache` keeps a body split at its token).

    A page is renewed before it expires, by one request: in the last tenth of its life (at
    least its last second) the first `get` answers None, and that caller renders the page and
    `put`s it again, while every other request is still served the kept page until then (or
    until `RETRY_SECONDS` later, when another caller is asked, should the first not have
    kept it: an error, or an answer that may not be kept). A
    popular page that simply expired would be missed by every request in flight at once,
    each rendering it (at 10,000 proposals a listing or a search renders in 0.3 s under load).
    A kept page is never served past its expiry."""

    RETRY_SECONDS = 10.0

    def __init__(
        self,
        entries: int,
        max_bytes: int | None = None,
        size: Callable[[Page], int] = len,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.entries = entries
        self.max_bytes = max_bytes
        self.size = size
        self.clock = clock
        # key -> (expiry, renewed from, when a caller was last asked to renew it, page)
        self._pages: OrderedDict[str, tuple[float, float, float, Page]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, key: str) -> Page | None:
        """The kept page, or None: none kept, expired, or this caller is to renew it."""
        return self.find(key)[0]

    def find(self, key: str) -> tuple[Page | None, float]:
        """The kept page and the seconds it has left; None and the seconds left when this
        caller is to renew it; None and 0 when none is kept."""
        with self._lock:
            found = self._pages.get(key)
            if found is None:
                return None, 0.0
            expiry, renew_from, asked, page = found
            now = self.clock()
            if expiry < now:
                self._drop(key)
                return None, 0.0
            if now >= renew_from and now - asked >= self.RETRY_SECONDS:
                self._pages[key] = (expiry, renew_from, now, page)
                return None, expiry - now
            self._pages.move_to_end(key)
            return page, expiry - now

    def release(self, key: str) -> None:
        """The caller asked to renew `key` kept nothing: the next one is asked."""
        with self._lock:
            found = self._pages.get(key)
            if found is not None:
                self._pages[key] = (*found[:2], -inf, found[3])

    def put(self, key: str, page: Page, seconds: float) -> None:
        with self._lock:
            if key in self._pages:
                self._drop(key)
            now = self.clock()
            renew_from = now + seconds - max(1.0, seconds / 10)
            self._pages[key] = (now + seconds, renew_from, -inf, page)
            self._bytes += self.size(page)
            while len(self._pages) > self.entries or (
                self.max_bytes is not None and self._bytes > self.max_bytes and self._pages
            ):
                self._drop(next(iter(self._pages)))

    def _drop(self, key: str) -> None:
        self._bytes -= self.size(self._pages.pop(key)[3])


class RedisPages:
    """Pages in Redis, each with its time to live, shared by every process; a Redis that does
    not answer means no cache (the page is rendered), never an error.

    In front, each process keeps the pages it served last (`LocalPages`): a key names one
    catalogue version, so a copy kept under it can never be out of date, and the hottest
    pages then cost no round trip to Redis.

    Redis is shared with the job queue and the rate limits, and free-text parameters (a
    search's words, an area typed into the address) make endless addresses: so at most
    `entries` new pages are kept in Redis per window of a page's lifetime, counted by every
    process together (`namespace:puts:<window>`); past that, pages are still served, and
    kept in the process only. Live entries are then at most twice `entries`."""

    def __init__(self, url: str, entries: int, namespace: str = "tandem:page") -> None:
        self.client = redis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)
        self.near: LocalPages[bytes] = LocalPages(entries)
        self.entries = entries
        self.namespace = namespace

    def get(self, key: str) -> bytes | None:
        """The page kept here, else Redis's copy; None when this caller is to render it: none
        is kept, or this caller renews the copy kept here and no other process has yet (Redis
        holds the same copy: its time to live, in whole seconds, is within one of ours)."""
        body, left = self.near.find(key)
        if body is not None:
            return body
        try:
            body, seconds = self.client.pipeline().get(key).ttl(key).execute()
        except redis.RedisError:
            log.warning("page cache: Redis did not answer; rendering", exc_info=True)
            return None
        if body is None or seconds <= 0 or (left and seconds <= left + 1):
            return None
        self.near.put(key, body, seconds)
        return body

    def release(self, key: str) -> None:
        self.near.release(key)

    def put(self, key: str, body: bytes, seconds: int) -> None:
        self.near.put(key, body, seconds)
        counter = f"{self.namespace}:puts:{int(time.time()) // seconds}"
        try:
            puts, _ = self.client.pipeline().incr(counter).expire(counter, 2 * seconds).execute()
            if puts <= self.entries:
                self.client.set(key, body, ex=seconds)
        except redis.RedisError:
            log.warning("page cache: Redis did not answer; page not kept", exc_info=True)


class Pages(Protocol[Found]):
    """Where pages are kept: `LocalPages`, `RedisPages`."""

    def get(self, key: str) -> Found | None: ...


def kept(pages: Pages[Page], key: str, environ: dict[str, Any]) -> Page | None:
    """The page kept under `key` for this request, or None to render it. Looked up once per
    request: a miss before Flask (`app.pagehits`) is remembered in the WSGI environ, so that
    Flask's hook renders the page instead of looking again (a second look would find the page
    this request was asked to renew)."""
    if environ.get(MISSED) == key:
        return None
    page = pages.get(key)
    if page is None:
        environ[MISSED] = key
    return page


@functools.cache
def code_digest() -> str:
    """A digest of the code and templates that render pages: a new release never serves the
    pages the previous one rendered (they may still sit in Redis). Once per process."""
    digest = hashlib.sha256()
    for folder in ("app", "templates"):
        for path in sorted((ROOT / folder).rglob("*")):
            if path.suffix in {".py", ".html", ".txt", ".xml"} and path.is_file():
                digest.update(str(path.relative_to(ROOT)).encode())
                digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def _anonymous_and_neutral() -> bool:
    """The request carries no sign-in and nothing in its session that a page shows."""
    if request.authorization is not None or request.headers.get("Authorization"):
        return False
    if current_app.config.get("REMEMBER_COOKIE_NAME", "remember_token") in request.cookies:
        return False
    return set(session.keys()) <= NEUTRAL_SESSION_KEYS


def plain_query(endpoint: str, args: MultiDict[str, str] | None = None) -> bool:
    """The query holds only parameters the page reads, once each, whole numbers plainly."""
    args = request.args if args is None else args
    names = [name for name, _ in args.items(multi=True)]
    if len(names) != len(set(names)) or not set(names) <= PUBLIC_PAGES[endpoint]:
        return False
    return all(
        _PLAIN_WHOLE_NUMBER.fullmatch(args[name])
        for name in WHOLE_NUMBER_PARAMETERS.intersection(names)
    )


class PublicCache(NamedTuple):
    """Where public pages are kept, the version they are kept under, and their keys."""

    pages: LocalPages[bytes] | RedisPages
    store: catalogue_version.VersionStore
    keys: PageKeys


class PageKeys:
    """The key of a public page: the database, the code and settings (`prefix`), the
    catalogue version, and the address with its query sorted."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    def key(self, version: str, asked: Request) -> str:
        query = urllib.parse.urlencode(sorted(asked.args.items(multi=True)))
        address = f"{asked.scheme}://{asked.host}{asked.root_path}{asked.path}?{query}"
        digest = hashlib.sha256(f"{self.prefix}|{version}|{address}".encode()).hexdigest()
        return f"tandem:page:{digest}"


def _seconds() -> int:
    """How long an entry lives; read per request, so a test may turn the cache off."""
    return int(current_app.config.get("TANDEM_PAGE_CACHE_SECONDS") or 0)


def init_app(app: Flask) -> None:
    if int(app.config.get("TANDEM_PAGE_CACHE_SECONDS") or 0) <= 0:
        return
    redis_url = app.config.get("REDIS_URL")
    entries = int(app.config.get("TANDEM_PAGE_CACHE_ENTRIES") or 1000)
    pages = RedisPages(redis_url, entries) if redis_url else LocalPages(entries)
    engine = app.extensions["tandem.engine"]
    store = catalogue_version.version_store(engine)
    if store is None:
        return
    settings = "|".join(f"{name}={app.config.get(name)!r}" for name in RENDER_SETTINGS)
    prefix = "|".join((engine.url.render_as_string(hide_password=True), code_digest(), settings))
    keys = PageKeys(prefix)
    app.extensions[EXTENSION] = PublicCache(pages, store, keys)

    def serve_cached_page() -> Response | None:
        if request.method != "GET" or request.endpoint not in PUBLIC_PAGES or _seconds() <= 0:
            return None
        if not _anonymous_and_neutral() or not plain_query(request.endpoint):
            return None
        # Read before the page's data: a page is never labelled with a version newer than
        # the data it was rendered from.
        try:
            if READ_VERSION in request.environ:  # read by app.pagehits, before Flask
                version = request.environ[READ_VERSION]
            else:
                version = store.read()
        except Exception:  # the page is rendered as if there were no cache
            log.warning("page cache: could not read the catalogue version", exc_info=True)
            return None
        if version is None:
            return None
        key = keys.key(version, request)
        body = kept(pages, key, request.environ)
        if body is None:
            setattr(g, _KEY, key)
            return None
        response = Response(body, 200, mimetype="text/html")
        response.headers[HEADER] = "hit"
        response.vary.add("Cookie")
        return response

    # First of the `before_request` hooks: a hit needs none of the others. It is for nobody
    # signed in (no identity to load); no rate limit applies to these GET pages (the search
    # limit counts embeddings, and a hit embeds nothing); and a URL another guard refuses
    # (control characters) was answered 400 and so was never kept under its key. On a miss
    # every hook runs as before, and every `after_request` hook runs on a hit as well.
    # Where the operator set a limit for every page (RATELIMIT_DEFAULT or
    # RATELIMIT_APPLICATION), a hit must count against it too: the hook then runs last,
    # after Flask-Limiter's check.
    hooks = app.before_request_funcs.setdefault(None, [])
    if app.config.get("RATELIMIT_DEFAULT") or app.config.get("RATELIMIT_APPLICATION"):
        hooks.append(serve_cached_page)
    else:
        hooks.insert(0, serve_cached_page)

    @app.after_request
    def say_miss(response: Response) -> Response:
        if _KEY in g:
            response.vary.add("Cookie")
            response.headers[HEADER] = "miss"
        return response

    def keep_page(sender: Flask, response: Response, **_extra: object) -> None:
        """Once the answer is complete (every `after_request` hook has run and the session
        is saved, so any Set-Cookie is on it), keep its body if it may be shared."""
        key = g.pop(_KEY, None)
        if key is None:
            return
        if _may_keep(response):
            pages.put(key, response.get_data(), _seconds())
        else:
            pages.release(key)  # were this request renewing the page, another one will

    request_finished.connect(keep_page, app, weak=False)


def _may_keep(response: Response) -> bool:
    if response.status_code != 200 or response.mimetype != "text/html":
        return False
    if response.is_streamed or response.direct_passthrough or "Set-Cookie" in response.headers:
        return False
    cache_control = response.headers.get("Cache-Control", "")
    if "private" in cache_control or "no-store" in cache_control:
        return False
    if session.modified or not _anonymous_and_neutral():
        return False
    if current_app.config.get("WTF_CSRF_FIELD_NAME", "csrf_token") in g:
        return False
    user = g.get("_login_user")
    if user is not None and user.is_authenticated:
        return False
    return len(response.get_data()) <= MAX_BODY_BYTES
