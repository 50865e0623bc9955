"""Kept pages answered before Flask: the page cache's hits (`app.pagecache`) for a visitor
who sends no cookie at all, and the dashboard cache's (`app.dashcache`) for a signed-in person.

Most visitors who are not signed in send no cookie (nothing sets one until they sign in or
open a form), and their hits are the bulk of a busy catalogue's traffic. A hit through Flask
costs its request context, session, `before_request` and `after_request` hooks and signals
(about 0.3 ms of CPU); here, in a WSGI layer between the server (and ProxyFix) and Flask, it
costs the route's match, the version read and a lookup.

What is answered here is exactly what the page cache's own hook would answer for the same
request: a GET of a page in `PUBLIC_PAGES` with only the query parameters it reads, no
`Authorization` header and no `Cookie` header (so no session, no remember-me cookie), found
under the same key (`PageKeys`: the version read now, the scheme, host, path and sorted
query). A page is kept only by Flask's path, which checks the host, the route and everything
else first: an address this layer sees is served only if Flask served it before under the
same version. The answer carries what Flask's would: the security headers (`app.headers`;
HSTS over HTTPS), `Vary: Cookie` and `X-Tandem-Page-Cache: hit`, and it is counted in the
request metrics under its endpoint. Anything else (a cookie, a miss, a version that cannot
be read, an address that does not match a public page) goes to Flask unchanged.

A kept dashboard is answered here on the terms `app.dashcache` answers it before the person
is loaded: a GET of a dashboard with only its own query, no `Authorization` header, a session
(Flask's signed cookie, opened by Flask's own session interface) that holds who signed in and
nothing this layer does not know (no message waiting to be flashed, no remember-me operation
pending; its signature checked once per `Cookie` header and its age on every request, see
`OpenedSessions`), and the account read with the version in one round trip: it exists, is
active and has the dashboard's role. The page is found under the same key (the version, the person's
`fs_uniquifier`, the day and the address); its parts are joined with the session's CSRF
token, signed as Flask-WTF signs it; and the session is saved as Flask saves it (a permanent
session's cookie is renewed), with `Cache-Control: private, no-store`. Flask-Login's "basic"
session protection only marks a session no longer fresh, and does so again on the next
request that reaches Flask (which every page needing a fresh sign-in does), so it is left to
Flask.

Not installed where the operator limits every page (RATELIMIT_DEFAULT or
RATELIMIT_APPLICATION): every request must then reach Flask-Limiter's check.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import Any

from flask import Flask
from flask.sessions import SecureCookieSessionInterface, SessionMixin
from itsdangerous import BadSignature, URLSafeTimedSerializer
from werkzeug.exceptions import HTTPException, SecurityError
from werkzeug.wrappers import Request, Response

from app import catalogue_version, dashcache, headers, pagecache, prometheus

log = logging.getLogger(__name__)

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
EXTENSIONS = frozenset({pagecache.EXTENSION, dashcache.EXTENSION})
CSRF_FIELD = "csrf_token"
# What a signed-in session may hold for its dashboard to be answered here: who signed in and
# the marks Flask-Login and Flask-Security keep beside it (freshness, the session's identifier,
# when the password was given, the CSRF secret). Anything else (`_flashes`, a pending
# `_remember`) sends the request to Flask.
SIGNED_IN_SESSION_KEYS = pagecache.NEUTRAL_SESSION_KEYS | {"_user_id", "fs_paa"}
# A kept page's answer: its endpoint, its own headers, its body.
Kept = tuple[str, list[tuple[str, str]], bytes]


class KeptPages:
    """The WSGI layer: `wsgi_app` is Flask's (inside ProxyFix, where there is one)."""

    def __init__(self, app: Flask, wsgi_app: WSGIApp) -> None:
        self.app = app
        self.wsgi_app = wsgi_app
        self.public: pagecache.PublicCache | None = app.extensions.get(pagecache.EXTENSION)
        self.dashboards: dashcache.DashCache | None = app.extensions.get(dashcache.EXTENSION)
        self.engine = app.extensions["tandem.engine"]
        self.store = catalogue_version.version_store(self.engine)
        self.headers = [("Vary", "Cookie"), *headers.HEADERS.items()]
        # The dashboards' own paths (their rules take no arguments): no routing needed.
        self.dashboard_paths = {
            rule.rule: rule.endpoint
            for rule in app.url_map.iter_rules()
            if rule.endpoint in dashcache.DASHBOARDS and not rule.arguments
        }
        self.sessions = OpenedSessions(app, SIGNED_IN_SESSION_KEYS)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        started = time.perf_counter()
        try:
            found = self._kept(environ)
        except Exception:  # Flask answers, and says what went wrong if it goes wrong again
            log.warning("kept pages: answering through Flask", exc_info=True)
            found = None
        if found is None:
            return self.wsgi_app(environ, start_response)
        endpoint, extra, body = found
        answer = [
            ("Content-Type", "text/html; charset=utf-8"),
            ("Content-Length", str(len(body))),
            *extra,
            *self.headers,
        ]
        if environ.get("wsgi.url_scheme") == "https":
            answer.append(("Strict-Transport-Security", headers.HSTS))
        start_response("200 OK", answer)
        prometheus.observe_request(endpoint, "GET", 200, time.perf_counter() - started)
        return [body]

    def _kept(self, environ: dict[str, Any]) -> Kept | None:
        if environ.get("REQUEST_METHOD") != "GET" or environ.get("HTTP_AUTHORIZATION"):
            return None
        if int(self.app.config.get("TANDEM_PAGE_CACHE_SECONDS") or 0) <= 0:
            return None
        if environ.get("HTTP_COOKIE"):
            endpoint = self.dashboard_paths.get(environ.get("PATH_INFO", ""))
            asked = self._request(environ) if endpoint is not None else None
            return None if asked is None else self._dashboard(endpoint, asked)  # type: ignore[arg-type]
        try:
            adapter = self.app.url_map.bind_to_environ(
                environ, server_name=self.app.config.get("SERVER_NAME")
            )
            endpoint, _ = adapter.match(method="GET")
        except HTTPException:  # no such page, or a redirect (a missing slash): Flask says so
            return None
        if endpoint not in pagecache.PUBLIC_PAGES:
            return None
        asked = self._request(environ)
        return None if asked is None else self._public(str(endpoint), asked)

    def _request(self, environ: dict[str, Any]) -> Request | None:
        """The request, or None when its host is not one Flask serves (`TRUSTED_HOSTS`):
        Flask refuses it."""
        asked = Request(environ)
        trusted = self.app.config.get("TRUSTED_HOSTS")
        if trusted:
            asked.trusted_hosts = trusted
            try:
                asked.host  # noqa: B018 (checked as it is read)
            except SecurityError:
                return None
        return asked

    def _public(self, endpoint: str, asked: Request) -> Kept | None:
        if self.public is None or not pagecache.plain_query(endpoint, asked.args):
            return None
        version = self.public.store.read()
        # On a miss Flask's page cache reads no version again: this one was read first too.
        asked.environ[pagecache.READ_VERSION] = version
        if version is None:
            return None
        key = self.public.keys.key(version, asked)
        body = pagecache.kept(self.public.pages, key, asked.environ)
        return None if body is None else (endpoint, [(pagecache.HEADER, "hit")], body)

    def _dashboard(self, endpoint: str, asked: Request) -> Kept | None:
        if self.dashboards is None or self.store is None:
            return None
        if not dashcache.plain_query(endpoint, asked.args):
            return None
        interface = self.app.session_interface
        session = self.sessions.open(asked)
        if session is None or not set(session.keys()) <= SIGNED_IN_SESSION_KEYS:
            return None
        uniquifier, secret = session.get("_user_id"), session.get(CSRF_FIELD)
        if not isinstance(uniquifier, str) or not uniquifier or not isinstance(secret, str):
            return None
        version, account = self.store.read_with_account(self.engine, uniquifier)
        # On a miss the dashboard cache reads neither again (read before anyone is loaded).
        asked.environ[dashcache.READ_ACCOUNT] = (uniquifier, version, account)
        if version is None or account != (True, dashcache.DASHBOARD_ROLES[endpoint]):
            return None
        key = self.dashboards.key(version, uniquifier, asked)
        parts = pagecache.kept(self.dashboards.pages, key, asked.environ)
        if parts is None:
            return None
        tokens = self._tokens()
        if tokens is None:
            return None
        token = tokens.token(secret)
        extra = [(dashcache.HEADER, "hit"), ("Cache-Control", headers.PERSONAL)]
        if interface.should_set_cookie(self.app, session):  # type: ignore[arg-type]
            # A permanent session's cookie is renewed, as Flask renews it.
            carrier = Response()
            interface.save_session(self.app, session, carrier)  # type: ignore[arg-type]
            extra += [("Set-Cookie", value) for value in carrier.headers.getlist("Set-Cookie")]
        return endpoint, extra, token.join(parts)

    def _tokens(self) -> CsrfTokens | None:
        """The CSRF tokens' signer, as Flask-WTF makes it (`generate_csrf`); None where it
        would refuse to make one (Flask then says why)."""
        secret = self.app.config.get("WTF_CSRF_SECRET_KEY", self.app.secret_key)
        return None if secret is None else _csrf_tokens(secret)


class CsrfTokens:
    """CSRF tokens as Flask-WTF signs them (`URLSafeTimedSerializer(...).dumps(secret)`), byte
    for byte: the session's secret encoded (JSON, compressed where shorter, base64), then the
    time and the signature. The encoded secret is the same on every request of a session, so
    it is kept (a third of a token's cost); the time and the signature are made each time."""

    def __init__(self, key: str | bytes) -> None:
        self.serializer = URLSafeTimedSerializer(key, salt="wtf-csrf-token")
        self.signer = self.serializer.make_signer(self.serializer.salt)

    def token(self, secret: str) -> bytes:
        return self.signer.sign(self._payload(secret))

    @functools.lru_cache(maxsize=4096)  # noqa: B019 (one per secret key, kept for the process)
    def _payload(self, secret: str) -> bytes:
        return self.serializer.dump_payload(secret)


@functools.lru_cache(maxsize=4)
def _csrf_tokens(key: str | bytes) -> CsrfTokens:
    return CsrfTokens(key)


class OpenedSessions:
    """The signed-in sessions this process has opened, by the `Cookie` header that carried
    them.

    The same header always opens to the same session, so its signature is checked once, by
    Flask's own serializer (`SecureCookieSessionInterface.get_signing_serializer`); the
    cookie's name, the secret key and its fallbacks are part of the key, so a renamed cookie
    or a retired key checks again. Its age is checked on every request, as Flask checks it
    (`PERMANENT_SESSION_LIFETIME`, and never signed in the future). Kept: only a session that
    holds nothing but `keys` with plain values (what a kept dashboard may be answered for),
    under a digest of the header, at most `LIMIT` of them, the least recently used leaving
    first. Another session interface is asked every time.
    """

    LIMIT = 4096
    PLAIN = (str, int, float, bool, type(None))

    def __init__(
        self, app: Flask, keys: frozenset[str], clock: Callable[[], float] = time.time
    ) -> None:
        self.app = app
        self.keys = keys
        self.clock = clock
        self._opened: OrderedDict[tuple[Any, ...], tuple[dict[str, Any], int]] = OrderedDict()
        self._lock = threading.Lock()

    def open(self, asked: Request) -> SessionMixin | None:
        """The request's session as Flask would open it, or None where Flask would open an
        empty one (no cookie, a bad signature, too old)."""
        app, interface = self.app, self.app.session_interface
        if type(interface) is not SecureCookieSessionInterface:
            return interface.open_session(app, asked)  # type: ignore[arg-type]
        max_age = int(app.permanent_session_lifetime.total_seconds())
        name = interface.get_cookie_name(app)
        header = hashlib.sha256(asked.environ.get("HTTP_COOKIE", "").encode()).digest()
        fallbacks = tuple(app.config.get("SECRET_KEY_FALLBACKS") or ())
        key = (header, name, app.secret_key, fallbacks)
        with self._lock:
            found = self._opened.get(key)
            if found is not None:
                self._opened.move_to_end(key)
        if found is None:
            serializer = interface.get_signing_serializer(app)
            value = asked.cookies.get(name)
            if serializer is None or not value:
                return None
            try:
                data, signed = serializer.loads(value, max_age=max_age, return_timestamp=True)
            except BadSignature:  # tampered, or too old: Flask opens an empty session
                return None
            found = (data, int(signed.timestamp()))
            if set(data) <= self.keys and all(isinstance(v, self.PLAIN) for v in data.values()):
                with self._lock:
                    self._opened[key] = found
                    while len(self._opened) > self.LIMIT:
                        self._opened.popitem(last=False)
        data, signed_at = found
        if not 0 <= int(self.clock()) - signed_at <= max_age:
            return None
        return interface.session_class(data)


def init_app(app: Flask) -> None:
    """Put the layer in front of Flask (inside ProxyFix: `app.headers.trust_proxies` wraps
    after this), where a page cache is on and no limit applies to every page."""
    if EXTENSIONS.isdisjoint(app.extensions):
        return
    if app.config.get("RATELIMIT_DEFAULT") or app.config.get("RATELIMIT_APPLICATION"):
        return
    if app.config.get("WTF_CSRF_FIELD_NAME", CSRF_FIELD) != CSRF_FIELD:
        return  # kept dashboards are then answered by Flask alone
    app.wsgi_app = KeptPages(app, app.wsgi_app)  # type: ignore[method-assign]
