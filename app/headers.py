"""Security headers and cookie settings, from one place, for every response.

- A Content-Security-Policy with scripts from this site only (no inline script anywhere;
  inline *style attributes* stay allowed: the score bars are sized with them), no framing
  (the interest and close buttons cannot be clickjacked), forms posting to this site only.
- `nosniff`, `Referrer-Policy: same-origin` (reset, confirmation and unsubscribe tokens sit
  in URLs and must not leak to other sites), HSTS once the request arrived over HTTPS.
- Session and remember-me cookies are `SameSite=Lax`, and `Secure` when the public address
  (`TANDEM_BASE_URL`) is HTTPS. Behind `TANDEM_PROXY_COUNT` reverse proxies, their
  `X-Forwarded-*` headers are trusted (werkzeug's ProxyFix), so HTTPS is seen as HTTPS.
- Pages for a signed-in person, and the account pages, are `Cache-Control: private,
  no-store`: after sign-out, Back on a shared computer shows nothing of theirs.
- Request bodies are capped (`TANDEM_MAX_REQUEST_BYTES`): a larger one gets a 413 page
  before it is read.
"""

from __future__ import annotations

from flask import Flask, Response, g, request
from werkzeug.middleware.proxy_fix import ProxyFix

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
}
HSTS = "max-age=31536000; includeSubDomains"
PERSONAL = "private, no-store"


def init_app(app: Flask) -> None:
    secure = str(app.config.get("TANDEM_BASE_URL") or "").startswith("https://")
    for cookie in ("SESSION_COOKIE", "REMEMBER_COOKIE"):
        app.config[f"{cookie}_SAMESITE"] = app.config.get(f"{cookie}_SAMESITE") or "Lax"
        app.config[f"{cookie}_SECURE"] = bool(app.config.get(f"{cookie}_SECURE")) or secure
    app.config["MAX_CONTENT_LENGTH"] = app.config["TANDEM_MAX_REQUEST_BYTES"]

    @app.after_request
    def security_headers(response: Response) -> Response:
        for name, value in HEADERS.items():
            response.headers.setdefault(name, value)
        # The user the request already loaded (pages and views that check sign-in do):
        # loading one here would make the sign-in library read a JSON body the API refused.
        user = g.get("_login_user")
        if user is not None and user.is_authenticated:
            response.headers.setdefault("Cache-Control", PERSONAL)
        if request.is_secure:
            response.headers.setdefault("Strict-Transport-Security", HSTS)
        return response


def trust_proxies(app: Flask) -> None:
    """Behind `TANDEM_PROXY_COUNT` reverse proxies, take the scheme, host and client address
    from their X-Forwarded-* headers. Outermost: every WSGI layer inside sees them so."""
    proxies = int(app.config.get("TANDEM_PROXY_COUNT") or 0)
    if proxies > 0:
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=proxies, x_proto=proxies, x_host=proxies, x_port=proxies
        )
