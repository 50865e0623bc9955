"""Rendered dashboards, kept per signed-in person.

A dashboard (`proposals.mine`, `offers.mine`) costs a few database reads and the rendering
of up to a page of match cards; a person reloads it far more often than anything on it
changes. So the page is rendered once and kept, as `app.pagecache` keeps public pages, under
a key that names everything the page depends on:
- the person: their `fs_uniquifier` (random, one per person, changed when they sign out
  everywhere or their password is reset), kept only from the user Flask-Security has
  already signed in and authorised for the page (the view is wrapped below `login_required`
  and `roles_required`): nobody is ever served a page rendered for someone else;
- the catalogue version (`app.catalogue_version`), read before anything else of the
  request reads the database, the signed-in user included (a `before_request` hook placed
  first): it changes after every committed write except to the tables no page of this kind
  shows (outboxes, recorded events, stored embeddings, partner credentials) and to the
  private columns of a user (sign-in secrets, mail preferences): matches, offers,
  proposals, publications, collaborations, organisations, exclusions and the person's own
  name, role and organisation all change it, whoever writes them;
- the day (what an offer's deadline hides), the page's path and its query (only `page`,
  once, a plain whole number), the code and the settings pages depend on, the database and
  the secret key.

A kept page is answered before Flask-Security loads the person, by `app.pagehits` (before
Flask itself), with the checks that loading them makes, in the round trip that reads the
version: the account whose `fs_uniquifier` the signed session holds (Flask-Login's
`_user_id`) exists, is active, and has the role the dashboard requires (`DASHBOARD_ROLES`).
A page is found under that `fs_uniquifier` and the version, and was kept by a request of a
session signed in as that same person that passed `login_required` and `roles_required`. So
suspending someone, changing their role, or ending their sessions (a new `fs_uniquifier`)
takes effect on their next request, whether or not the version changed. A page rendered for
a person signed in by a remember-me cookie alone is never kept (the sign-in changes the
session). Where that layer does not answer (a limit set for every page, a session holding
more than who signed in), `cached` below answers from the cache once the person is loaded
and checked; a miss renders the page.

A page is kept only under the addresses links lead to (`page=N` for the page shown,
`shown_page`, and none for the first): a person cannot fill the cache with other spellings
of the same page (`?page=0`, `?page=999`, ...). The host is not in the key (the
dashboards hold no absolute address), so forwarded host names make no new entries either.

Never kept, never served from the cache: a request with a message waiting to be flashed
(the page would show it once and then keep it); an answer that is not a plain 200 HTML page,
that sets a cookie or that changed the session. (Every signed-in page says `Cache-Control:
private, no-store` to browsers and proxies, `app.headers`; a page served from this cache
too. This cache is on the server and keyed by the person, which that header allows.)

Pages are kept in each web process only, never in Redis: they hold a person's contacts and
unpublished drafts, which have no business in a store shared with the job queue (and
perhaps written to its disk), and a person's next view often reaches the same process.
Each process keeps at most `TANDEM_PAGE_CACHE_ENTRIES` pages and `MAX_BYTES` of them.

Each page holds the CSRF token of the session it was rendered for, in its forms. The page
is kept split at that token, and served joined with the token of the session being served
(a company's page has dozens of forms; joining its parts is one copy of the page). Pages
live `TANDEM_PAGE_CACHE_SECONDS` (0 turns this cache off with the public one).
`X-Tandem-Dash-Cache: hit` or `miss` says which answered.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import urllib.parse
from collections.abc import Callable
from datetime import date
from functools import wraps
from typing import Any

from flask import Flask, Response, current_app, g, request, request_finished, session
from flask.typing import ResponseReturnValue
from flask_login import current_user
from flask_wtf.csrf import generate_csrf
from werkzeug.datastructures import MultiDict
from werkzeug.wrappers import Request

from app import catalogue_version
from app.headers import PERSONAL
from app.pagecache import MAX_BODY_BYTES, RENDER_SETTINGS, LocalPages, code_digest, kept

log = logging.getLogger(__name__)

# The dashboards and the query parameters each reads.
DASHBOARDS: dict[str, frozenset[str]] = {
    "proposals.mine": frozenset({"page"}),
    "offers.mine": frozenset({"page"}),
}
# The role each dashboard's view requires (`roles_required`), checked again by app.pagehits.
DASHBOARD_ROLES = {"proposals.mine": "academic", "offers.mine": "company"}
HEADER = "X-Tandem-Dash-Cache"
EXTENSION = "tandem.dash_cache"
_PLAIN_WHOLE_NUMBER = re.compile(r"(?:0|[1-9][0-9]{0,8})?")
_VERSION = "_tandem_dash_version"
_PENDING = "_tandem_dash_pending"
_SHOWN = "_tandem_dash_shown_page"
# The version and account app.pagehits read for this request before Flask (its WSGI environ).
READ_ACCOUNT = "tandem.dash_account"
# Where Flask-Login keeps, in the signed session, who signed in (Flask-Security stores the
# user's `fs_uniquifier` there).
_SIGNED_IN = "_user_id"
# A kept page: its body split at the CSRF token it was rendered with.
Parts = tuple[bytes, ...]
# The most bytes of pages one process keeps (a company's busiest page is ~300 KB).
MAX_BYTES = 64 << 20


class DashCache:
    """Where the pages live and what every key starts with."""

    def __init__(self, pages: LocalPages[Parts], prefix: str) -> None:
        self.pages = pages
        self.prefix = prefix

    def key(self, version: str, uniquifier: str, asked: Request | None = None) -> str:
        asked = request if asked is None else asked
        query = urllib.parse.urlencode(sorted(asked.args.items(multi=True)))
        address = f"{asked.root_path}{asked.path}?{query}"
        parts = (self.prefix, version, date.today().isoformat(), uniquifier)
        digest = hashlib.sha256("|".join((*parts, address)).encode()).hexdigest()
        return f"tandem:dash:{digest}"


def _bytes_in(parts: Parts) -> int:
    """A kept page's bytes (without the tokens joined in when served: ~90 bytes a form)."""
    return sum(map(len, parts))


def shown_page(number: int) -> None:
    """The view says which page of its list it showed (after bringing the asked number within
    range), so that only the page's own address is kept."""
    g.setdefault(_SHOWN, number)


def _canonical_address() -> bool:
    """Whether this request asked for the page it was shown by an address the pages' links
    use: `page=N` for the Nth, and for the first also none (the menu's link to the
    dashboard)."""
    shown = g.get(_SHOWN)
    asked = request.args.get("page")
    if shown is None:
        return False
    return asked == str(shown) or (shown == 1 and asked is None)


def _seconds() -> int:
    return int(current_app.config.get("TANDEM_PAGE_CACHE_SECONDS") or 0)


def plain_query(endpoint: str, args: MultiDict[str, str] | None = None) -> bool:
    args = request.args if args is None else args
    names = [name for name, _ in args.items(multi=True)]
    if len(names) != len(set(names)) or not set(names) <= DASHBOARDS[endpoint]:
        return False
    return all(_PLAIN_WHOLE_NUMBER.fullmatch(value) for value in args.values())


def _key_for_request(cache: DashCache) -> str | None:
    """The key of this request's page, or None when it may be neither served nor kept."""
    version = g.get(_VERSION)
    if version is None or request.method != "GET" or _seconds() <= 0:
        return None
    if request.endpoint not in DASHBOARDS or not plain_query(request.endpoint):
        return None
    if "_flashes" in session:
        return None
    user = current_user._get_current_object()
    if not getattr(user, "is_authenticated", False) or not user.active:
        return None
    uniquifier = getattr(user, "fs_uniquifier", None)
    # Signed in by this session (not a remember-me cookie): a kept page is found by the
    # session's own record of who signed in, before anyone is loaded (`app.pagehits`).
    if not user.id or not uniquifier or session.get(_SIGNED_IN) != uniquifier:
        return None
    return cache.key(version, uniquifier)


def _hit(parts: Parts) -> Response:
    response = Response(generate_csrf().encode().join(parts), 200)
    response.mimetype = "text/html"
    response.headers[HEADER] = "hit"
    response.vary.add("Cookie")
    # Said here, as the person may not be loaded (`app.headers` says it for those who are).
    response.headers["Cache-Control"] = PERSONAL
    return response


def cached(view: Callable[..., ResponseReturnValue]) -> Callable[..., ResponseReturnValue]:
    """`view` (a dashboard, below its sign-in and role checks) answered from the cache when
    this person's page for this version is kept, else rendered and kept."""

    @wraps(view)
    def serve(*args: Any, **kwargs: Any) -> ResponseReturnValue:
        cache: DashCache | None = current_app.extensions.get(EXTENSION)
        key = _key_for_request(cache) if cache is not None else None
        if cache is None or key is None:
            return view(*args, **kwargs)
        parts = kept(cache.pages, key, request.environ)
        if parts is not None:
            return _hit(parts)
        response = current_app.make_response(view(*args, **kwargs))
        g.setdefault(_PENDING, (key, current_user.id))
        response.headers[HEADER] = "miss"
        response.vary.add("Cookie")
        return response

    return serve


def _may_keep(response: Response, user_id: int) -> bool:
    if response.status_code != 200 or response.mimetype != "text/html":
        return False
    if response.is_streamed or response.direct_passthrough or "Set-Cookie" in response.headers:
        return False
    if session.modified or "_flashes" in session or not _canonical_address():
        return False
    user = g.get("_login_user")
    if user is None or not user.is_authenticated or user.id != user_id:
        return False
    return len(response.get_data()) <= MAX_BODY_BYTES


def init_app(app: Flask) -> None:
    seconds = int(app.config.get("TANDEM_PAGE_CACHE_SECONDS") or 0)
    engine = app.extensions["tandem.engine"]
    store = catalogue_version.version_store(engine)
    if seconds <= 0 or store is None:
        return
    entries = int(app.config.get("TANDEM_PAGE_CACHE_ENTRIES") or 1000)
    pages: LocalPages[Parts] = LocalPages(entries, MAX_BYTES, size=_bytes_in)
    settings = "|".join(f"{name}={app.config.get(name)!r}" for name in RENDER_SETTINGS)
    secret = str(app.config["SECRET_KEY"]).encode()
    # Pages rendered under one secret key are never served under another.
    signed = hmac.new(secret, b"tandem dashboard pages", "sha256").hexdigest()
    database = engine.url.render_as_string(hide_password=True)
    prefix = "|".join((database, code_digest(), settings, signed))
    cache = DashCache(pages, prefix)
    app.extensions[EXTENSION] = cache

    def read_version() -> None:
        """Before any other hook reads the database (the signed-in user included), so a page
        is never labelled with a version newer than what it was rendered from."""
        if request.method != "GET" or request.endpoint not in DASHBOARDS:
            return
        try:
            read = request.environ.get(READ_ACCOUNT)  # by app.pagehits, before Flask
            g.setdefault(_VERSION, read[1] if read else store.read())
        except Exception:  # the page is rendered as if there were no cache
            log.warning("dashboard cache: could not read the catalogue version", exc_info=True)

    app.before_request_funcs.setdefault(None, []).insert(0, read_version)

    def keep_page(sender: Flask, response: Response, **_extra: object) -> None:
        pending = g.pop(_PENDING, None)
        if pending is None:
            return
        if not _may_keep(response, pending[1]):
            pages.release(pending[0])  # were this request renewing the page, another one will
            return
        body = response.get_data()
        token = g.get(current_app.config.get("WTF_CSRF_FIELD_NAME", "csrf_token"))
        parts = tuple(body.split(str(token).encode())) if token else (body,)
        pages.put(pending[0], parts, _seconds())

    request_finished.connect(keep_page, app, weak=False)
