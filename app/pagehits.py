"""Kept public pages answered before Flask: the page cache's hits (`app.pagecache`) for a
visitor who sends no cookie at all.

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

Not installed where the operator limits every page (RATELIMIT_DEFAULT or
RATELIMIT_APPLICATION): every request must then reach Flask-Limiter's check.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

from flask import Flask
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Request

from app import headers, pagecache, prometheus

log = logging.getLogger(__name__)

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class PublicHits:
    """The WSGI layer: `wsgi_app` is Flask's (inside ProxyFix, where there is one)."""

    def __init__(self, app: Flask, wsgi_app: WSGIApp, cache: pagecache.PublicCache) -> None:
        self.app = app
        self.wsgi_app = wsgi_app
        self.cache = cache
        self.headers = [
            ("Content-Type", "text/html; charset=utf-8"),
            (pagecache.HEADER, "hit"),
            ("Vary", "Cookie"),
            *headers.HEADERS.items(),
        ]

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        started = time.perf_counter()
        found = self._kept(environ)
        if found is None:
            return self.wsgi_app(environ, start_response)
        endpoint, body = found
        answer = [*self.headers, ("Content-Length", str(len(body)))]
        if environ.get("wsgi.url_scheme") == "https":
            answer.append(("Strict-Transport-Security", headers.HSTS))
        start_response("200 OK", answer)
        prometheus.observe_request(endpoint, "GET", 200, time.perf_counter() - started)
        return [body]

    def _kept(self, environ: dict[str, Any]) -> tuple[str, bytes] | None:
        if environ.get("REQUEST_METHOD") != "GET":
            return None
        if environ.get("HTTP_COOKIE") or environ.get("HTTP_AUTHORIZATION"):
            return None
        if int(self.app.config.get("TANDEM_PAGE_CACHE_SECONDS") or 0) <= 0:
            return None
        asked = Request(environ)
        try:
            adapter = self.app.url_map.bind_to_environ(
                environ, server_name=self.app.config.get("SERVER_NAME")
            )
            endpoint, _ = adapter.match(method="GET")
        except HTTPException:  # no such page, or a redirect (a missing slash): Flask says so
            return None
        if endpoint not in pagecache.PUBLIC_PAGES:
            return None
        if not pagecache.plain_query(endpoint, asked.args):
            return None
        try:
            version = self.cache.store.read()
        except Exception:  # Flask's path renders the page as if there were no cache
            log.warning("page cache: could not read the catalogue version", exc_info=True)
            return None
        if version is None:
            return None
        body = self.cache.pages.get(self.cache.keys.key(version, asked))
        return None if body is None else (str(endpoint), body)


def init_app(app: Flask) -> None:
    """Put the layer in front of Flask (inside ProxyFix: `app.headers.trust_proxies` wraps
    after this), where the public page cache is on and no limit applies to every page."""
    cache = app.extensions.get(pagecache.EXTENSION)
    if cache is None:
        return
    if app.config.get("RATELIMIT_DEFAULT") or app.config.get("RATELIMIT_APPLICATION"):
        return
    app.wsgi_app = PublicHits(app, app.wsgi_app, cache)  # type: ignore[method-assign]
