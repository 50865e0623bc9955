"""Security headers, cookie flags and the request size limit, as served."""

from __future__ import annotations

import re

from flask import Flask
from flask.testing import FlaskClient

from app import create_app
from tests.conftest import TEST_PASSWORD


def test_every_page_carries_the_security_headers(client: FlaskClient) -> None:
    for path in ("/", "/login", "/search/?q=protein", "/api/v1/openapi.json", "/nowhere"):
        headers = client.get(path).headers
        policy = headers["Content-Security-Policy"]
        script = next(part for part in policy.split("; ") if part.startswith("script-src"))
        assert script == "script-src 'self'", "no inline script may run"
        assert "frame-ancestors 'none'" in policy and "form-action 'self'" in policy
        assert headers["X-Frame-Options"] == "DENY"
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["Referrer-Policy"] == "same-origin"
        assert "Strict-Transport-Security" not in headers, "plain HTTP gets no HSTS"


def test_cookies_are_same_site_and_secure_behind_an_https_proxy(
    app: Flask, make_user: object
) -> None:
    https = create_app(
        {**app.config, "TANDEM_BASE_URL": "https://tandem.example.org", "TANDEM_PROXY_COUNT": 1}
    )
    https.extensions["tandem.encoder"] = app.extensions["tandem.encoder"]
    make_user(email="ada@nb.example.org")  # type: ignore[operator]
    client = https.test_client()
    forwarded = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "tandem.example.org"}
    response = client.post(
        "/login",
        data={"email": "ada@nb.example.org", "password": TEST_PASSWORD},
        headers=forwarded,
    )
    assert response.status_code in (200, 302)
    cookie = response.headers.get("Set-Cookie", "")
    assert "SameSite=Lax" in cookie and "Secure" in cookie and "HttpOnly" in cookie
    assert (
        client.get("/", headers=forwarded)
        .headers["Strict-Transport-Security"]
        .startswith("max-age=")
    )
    https.extensions["tandem.engine"].dispose()


def test_a_plain_http_session_cookie_is_same_site_and_not_secure(
    client: FlaskClient, make_user: object
) -> None:
    make_user(email="ada@nb.example.org")  # type: ignore[operator]
    response = client.post(
        "/login", data={"email": "ada@nb.example.org", "password": TEST_PASSWORD}
    )
    cookie = response.headers.get("Set-Cookie", "")
    assert "SameSite=Lax" in cookie and "Secure" not in cookie


def test_an_oversized_body_is_refused_before_it_is_read(app: Flask, client: FlaskClient) -> None:
    limit = app.config["TANDEM_MAX_REQUEST_BYTES"]
    response = client.post(
        "/login", data=b"x" * (limit + 1), content_type="application/x-www-form-urlencoded"
    )
    assert response.status_code == 413
    assert "Tandem" in response.get_data(as_text=True), "our own page, not a bare error"


def test_account_and_personal_pages_are_never_stored(
    client: FlaskClient, make_user: object
) -> None:
    for path in ("/login", "/register", "/reset", "/confirm"):
        assert client.get(path).headers["Cache-Control"] == "private, no-store", path
    assert "no-store" not in client.get("/").headers.get("Cache-Control", "")
    make_user(email="ada@nb.example.org")  # type: ignore[operator]
    client.post("/login", data={"email": "ada@nb.example.org", "password": TEST_PASSWORD})
    for path in ("/dashboard", "/account", "/"):
        assert client.get(path).headers["Cache-Control"] == "private, no-store", path


def _csrf_token(page: str) -> str:
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page)
    assert token is not None
    return token.group(1)


def test_signing_in_gives_the_session_a_new_csrf_token(app: Flask, make_user: object) -> None:
    """A CSRF token seen before sign-in (on a shared computer, or fixed by another site)
    does not work for the signed-in session."""
    protected = create_app({**app.config, "WTF_CSRF_ENABLED": True})
    protected.extensions["tandem.encoder"] = app.extensions["tandem.encoder"]
    make_user(email="ada@nb.example.org")  # type: ignore[operator]
    client = protected.test_client()
    before = _csrf_token(client.get("/login").get_data(as_text=True))
    response = client.post(
        "/login",
        data={"email": "ada@nb.example.org", "password": TEST_PASSWORD, "csrf_token": before},
    )
    assert response.status_code == 302
    assert client.post("/logout", data={"csrf_token": before}).status_code == 400
    assert client.get("/account").status_code == 200, "still signed in"
    after = _csrf_token(client.get("/account").get_data(as_text=True))
    assert after != before
    assert client.post("/logout", data={"csrf_token": after}).status_code == 302
    assert client.get("/account").status_code == 302, "signed out"
    protected.extensions["tandem.engine"].dispose()
