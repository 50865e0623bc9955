"""Kept pages are answered before Flask (app/pagehits.py): a public page for a visitor who
sends no cookie, with the same body and headers as Flask's own answer from the page cache,
and a signed-in person's dashboard, private and with their session's CSRF token; both
counted in the metrics, with none of Flask's hooks run. Anything else reaches Flask."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from itsdangerous import TimestampSigner, URLSafeTimedSerializer
from sqlmodel import Session

from app import create_app, dashcache, pagecache
from app.pagehits import CsrfTokens, KeptPages
from app.prometheus import REQUEST_SECONDS
from models import Proposal, ProposalStatus, Role
from tests.conftest import AuthActions

CACHE = "X-Tandem-Page-Cache"
HEADER = "X-Tandem-Dash-Cache"
# Headers a kept page's answer carries from Flask and from the layer alike (Date and Server
# are the web server's).
COMPARED = (
    "Content-Type",
    "Content-Length",
    "Vary",
    CACHE,
    "Content-Security-Policy",
    "X-Content-Type-Options",
    "X-Frame-Options",
    "Referrer-Policy",
    "Cross-Origin-Opener-Policy",
    "Strict-Transport-Security",
    "Cache-Control",
    "Set-Cookie",
)


def _count_flask_requests(app: Flask) -> list[str]:
    seen: list[str] = []
    app.before_request_funcs.setdefault(None, []).insert(0, lambda: seen.append("flask"))
    return seen


def _catalogue(make_user: Callable[..., Any], make_proposal: Callable[..., Any]) -> str:
    author = make_user(role=Role.academic)
    proposal = make_proposal(author_id=author.id, title=f"Graph networks {uuid.uuid4().hex}")
    return f"/proposals/{proposal.id}"


def test_a_cookieless_hit_is_answered_before_flask_as_flask_would_answer_it(
    app: Flask, make_user: Callable[..., Any], make_proposal: Callable[..., Any]
) -> None:
    path = _catalogue(make_user, make_proposal)
    flask_seen = _count_flask_requests(app)
    visitor = app.test_client()
    miss = visitor.get(path)
    assert miss.headers[CACHE] == "miss" and flask_seen == ["flask"]

    counted = _requests_counted("proposals.show")
    before_flask = visitor.get(path)
    assert before_flask.status_code == 200 and before_flask.headers[CACHE] == "hit"
    assert flask_seen == ["flask"]  # Flask's hooks did not run
    assert _requests_counted("proposals.show") == counted + 1

    # A visitor with a cookie (one Flask set, say) is answered by Flask, from the cache.
    with_cookie = app.test_client()
    with_cookie.set_cookie("tandem_seen", "1")
    through_flask = with_cookie.get(path)
    assert through_flask.headers[CACHE] == "hit" and flask_seen == ["flask", "flask"]
    assert before_flask.get_data() == through_flask.get_data() == miss.get_data()
    for name in COMPARED:
        assert before_flask.headers.get(name) == through_flask.headers.get(name), name


def _requests_counted(endpoint: str) -> float:
    for metric in REQUEST_SECONDS.collect():
        for sample in metric.samples:
            labels = sample.labels
            if (
                sample.name.endswith("_count")
                and labels.get("endpoint") == endpoint
                and labels.get("status") == "200"
            ):
                return sample.value
    return 0.0


def test_behind_a_proxy_the_layer_sees_what_it_forwarded(
    app: Flask, make_user: Callable[..., Any], make_proposal: Callable[..., Any]
) -> None:
    """With TANDEM_PROXY_COUNT, the scheme and host are the proxy's: an HTTPS page is kept and
    answered as HTTPS (with HSTS), apart from the same page over HTTP."""
    proxied = create_app({**app.config, "TANDEM_PROXY_COUNT": 1})
    proxied.extensions["tandem.encoder"] = app.extensions["tandem.encoder"]
    try:
        path = _catalogue(make_user, make_proposal)
        flask_seen = _count_flask_requests(proxied)
        https = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "tandem.example.org"}
        answers = [proxied.test_client().get(path, headers=https) for _ in range(2)]
        assert [a.headers[CACHE] for a in answers] == ["miss", "hit"]
        assert len(flask_seen) == 1
        assert answers[1].headers["Strict-Transport-Security"].startswith("max-age=")
        plain = proxied.test_client().get(path)
        assert plain.headers[CACHE] == "miss" and "Strict-Transport-Security" not in plain.headers
    finally:
        proxied.extensions["tandem.engine"].dispose()


def test_where_every_page_is_limited_every_request_reaches_flask(
    app: Flask, make_user: Callable[..., Any], make_proposal: Callable[..., Any], tmp_path: Any
) -> None:
    limited = create_app(
        {**app.config, "RATELIMIT_DEFAULT": "3 per minute", "RATELIMIT_KEY_PREFIX": tmp_path.name}
    )
    limited.extensions["tandem.encoder"] = app.extensions["tandem.encoder"]
    try:
        path = _catalogue(make_user, make_proposal)
        answers = [limited.test_client().get(path) for _ in range(4)]
        assert [a.status_code for a in answers] == [200, 200, 200, 429]
        assert [a.headers.get(CACHE) for a in answers[:3]] == ["miss", "hit", "hit"]
    finally:
        limited.extensions["tandem.engine"].dispose()


def _form_token(page: str, action: str) -> str:
    form = re.search(rf'<form[^>]*action="{re.escape(action)}"[^>]*>(.*?)</form>', page, re.S)
    assert form is not None, action
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', form.group(1))
    assert token is not None
    return token.group(1)


def test_a_kept_dashboard_is_answered_before_flask_with_the_sessions_own_token(
    app: Flask,
    session: Session,
    make_user: Callable[..., Any],
    make_proposal: Callable[..., Any],
) -> None:
    """Signed in with CSRF protection on: the third view of the dashboard is the kept page,
    answered before Flask, private, and its forms carry a token Flask-WTF accepts for this
    session (the draft is published with it)."""
    protected = create_app({**app.config, "WTF_CSRF_ENABLED": True})
    protected.extensions["tandem.encoder"] = app.extensions["tandem.encoder"]
    try:
        ada = make_user(role=Role.academic)
        draft = make_proposal(author_id=ada.id, status=ProposalStatus.draft, title="A draft")
        flask_seen = _count_flask_requests(protected)
        client = protected.test_client()
        AuthActions(client).login_with_form_token(ada.email)
        views = [client.get("/proposals/mine") for _ in range(3)]
        assert [view.headers[HEADER] for view in views] == ["miss", "miss", "hit"]
        assert len(flask_seen) == 2 + 2  # the sign-in's two requests, then two misses
        kept = views[2]
        assert kept.status_code == 200
        assert kept.headers["Cache-Control"] == "private, no-store"
        assert "Cookie" in kept.headers["Vary"]
        assert kept.headers["X-Frame-Options"] == "DENY"

        action = f"/proposals/{draft.id}/open"
        published = client.post(action, data={"csrf_token": _form_token(kept.text, action)})
        assert published.status_code == 302
        session.expire_all()
        assert session.get(Proposal, draft.id).status == ProposalStatus.open  # type: ignore[union-attr]
    finally:
        protected.extensions["tandem.engine"].dispose()


def _signed_in_on_a_kept_dashboard(
    app: Flask, auth: AuthActions, client: FlaskClient, make_user: Callable[..., Any]
) -> list[str]:
    """Sign an academic in on `client` until their dashboard is answered before Flask; the
    requests Flask saw (see `_count_flask_requests`) are counted from there on."""
    ada = make_user(role=Role.academic)
    flask_seen = _count_flask_requests(app)
    auth.login(ada.email)
    for _ in range(2):
        client.get("/proposals/mine")
    before = len(flask_seen)
    assert client.get("/proposals/mine").headers[HEADER] == "hit"
    assert len(flask_seen) == before
    return flask_seen


def test_a_dashboard_reaches_flask_when_the_session_holds_more_than_who_signed_in(
    app: Flask, auth: AuthActions, client: FlaskClient, make_user: Callable[..., Any]
) -> None:
    """A message waiting to be flashed (or anything else the layer does not know) is
    Flask's to show: the kept page is not answered before it."""
    flask_seen = _signed_in_on_a_kept_dashboard(app, auth, client, make_user)
    before = len(flask_seen)
    with client.session_transaction() as stored:
        stored["_flashes"] = [("message", "Saved.")]
    shown = client.get("/proposals/mine")
    assert len(flask_seen) == before + 1 and "Saved." in shown.text


def test_a_host_outside_trusted_hosts_is_refused_with_a_400_kept_page_or_not(
    app: Flask,
    auth: AuthActions,
    client: FlaskClient,
    make_user: Callable[..., Any],
    make_proposal: Callable[..., Any],
) -> None:
    """With TRUSTED_HOSTS set, Flask refuses another host; so does the layer, even for a page
    it keeps (a public page, and the dashboard of the person whose cookie it is)."""
    path = _catalogue(make_user, make_proposal)
    ada = make_user(role=Role.academic)
    auth.login(ada.email)
    for _ in range(3):
        client.get("/proposals/mine")
    assert client.get("/proposals/mine").headers[HEADER] == "hit"
    app.test_client().get(path)
    assert app.test_client().get(path).headers[CACHE] == "hit"

    app.config["TRUSTED_HOSTS"] = ["localhost"]
    elsewhere = {"Host": "elsewhere.example.org"}
    for asked in (
        app.test_client().get(path, headers=elsewhere),
        client.get("/proposals/mine", headers=elsewhere),
    ):
        assert asked.status_code == 400, asked.text[:300]
        assert "not served here" in asked.text
    # The trusted host is still answered from the cache.
    assert client.get("/proposals/mine").headers[HEADER] == "hit"


def _layer(app: Flask) -> KeptPages:
    layer = app.wsgi_app
    while not isinstance(layer, KeptPages):
        layer = layer.app  # type: ignore[attr-defined]  # ProxyFix, where there is one
    return layer


def test_a_session_checked_once_is_still_checked_for_age_and_key_on_every_request(
    app: Flask, auth: AuthActions, client: FlaskClient, make_user: Callable[..., Any]
) -> None:
    """The layer checks a session cookie's signature once per Cookie header; its age and the
    keys it was signed with are checked again on every request, as Flask checks them."""
    flask_seen = _signed_in_on_a_kept_dashboard(app, auth, client, make_user)
    before = len(flask_seen)
    name = app.config["SESSION_COOKIE_NAME"]
    signed_in = client.get_cookie(name).value  # type: ignore[union-attr]

    def shown(count: int) -> str:
        """The dashboard's cache header, after checking that Flask saw `count` requests."""
        client.set_cookie(name, signed_in)  # where Flask's last answer replaced it
        answer = client.get("/proposals/mine")
        assert len(flask_seen) == before + count, answer.status_code
        return answer.headers.get(HEADER, str(answer.status_code))

    # Past PERMANENT_SESSION_LIFETIME by the layer's clock, or signed in its future: not
    # answered here (Flask, by the real clock, answers from its own hook).
    sessions = _layer(app).sessions
    lifetime = app.permanent_session_lifetime.total_seconds()
    sessions.clock = lambda: time.time() + lifetime + 2
    assert shown(1) == "hit"
    sessions.clock = lambda: time.time() - 30
    assert shown(2) == "hit"
    sessions.clock = time.time
    assert shown(2) == "hit"

    # A new secret key: the cookie signed with the old one opens to nothing, here and in
    # Flask (which sends the person to sign in); kept as a fallback key, it opens again,
    # here; the fallback retired, it opens to nothing again.
    old_key = app.secret_key
    app.secret_key = app.config["SECRET_KEY"] = "a-rotated-secret-key"
    assert shown(3) == "302"
    app.config["SECRET_KEY_FALLBACKS"] = [old_key]
    assert shown(3) == "hit"
    assert shown(3) == "hit"
    app.config["SECRET_KEY_FALLBACKS"] = []
    assert shown(4) == "302"


def test_a_tampered_session_cookie_is_never_answered_before_flask(
    app: Flask, auth: AuthActions, client: FlaskClient, make_user: Callable[..., Any]
) -> None:
    """A forged cookie opens to nothing, the first time and again; where a header carries a
    forged and a good one, the first wins, as in Flask; another cookie beside changes
    nothing."""
    flask_seen = _signed_in_on_a_kept_dashboard(app, auth, client, make_user)
    name = app.config["SESSION_COOKIE_NAME"]
    good = client.get_cookie(name).value  # type: ignore[union-attr]
    payload, _, signature = good.rpartition(".")
    forged = f"{payload}.{'A' if signature[0] != 'A' else 'B'}{signature[1:]}"
    for header, expected in (
        (f"{name}={forged}", "302"),
        (f"{name}={forged}", "302"),  # a header that did not open is not kept
        (f"{name}={forged}; {name}={good}", "302"),
        (f"{name}={good}; {name}={forged}", "hit"),
        (f"theme=dark; {name}={good}", "hit"),
    ):
        before = len(flask_seen)
        browser = app.test_client(use_cookies=False)  # the header as written, no jar
        answer = browser.get("/proposals/mine", headers={"Cookie": header})
        assert answer.headers.get(HEADER, str(answer.status_code)) == expected, header
        assert len(flask_seen) == before + (expected != "hit"), header


def test_one_person_signed_in_twice_gets_each_sessions_own_token_from_one_kept_page(
    app: Flask, session: Session, make_user: Callable[..., Any], make_proposal: Callable[..., Any]
) -> None:
    """Two browsers of one person share the kept page (split at its token once); each gets
    its own session's token, which Flask-WTF accepts for that session and not the other."""
    protected = create_app({**app.config, "WTF_CSRF_ENABLED": True})
    protected.extensions["tandem.encoder"] = app.extensions["tandem.encoder"]
    try:
        ada = make_user(role=Role.academic)
        draft = make_proposal(author_id=ada.id, status=ProposalStatus.draft, title="A draft")
        action = f"/proposals/{draft.id}/open"
        browsers = [protected.test_client() for _ in range(2)]
        tokens = []
        for browser in browsers:
            AuthActions(browser).login_with_form_token(ada.email)
            for _ in range(3):
                kept = browser.get("/proposals/mine")
            assert kept.headers[HEADER] == "hit"
            tokens.append(_form_token(kept.text, action))
        assert tokens[0] != tokens[1]
        refused = browsers[0].post(action, data={"csrf_token": tokens[1]})
        assert refused.status_code == 400
        session.expire_all()
        assert session.get(Proposal, draft.id).status == ProposalStatus.draft  # type: ignore[union-attr]
        published = browsers[1].post(action, data={"csrf_token": tokens[1]})
        assert published.status_code == 302
        session.expire_all()
        assert session.get(Proposal, draft.id).status == ProposalStatus.open  # type: ignore[union-attr]
    finally:
        protected.extensions["tandem.engine"].dispose()


def _local_pages(pages: Any) -> Any:
    """The pages this process keeps (in front of Redis, where there is one)."""
    return pages.near if isinstance(pages, pagecache.RedisPages) else pages


def _age_public_pages(app: Flask, now: list[float], seconds: float) -> None:
    """`seconds` pass for the public pages kept in this process and, where there is one, in
    Redis (so Redis holds the same copy, with as long left)."""
    now[0] += seconds
    pages = app.extensions[pagecache.EXTENSION].pages
    if isinstance(pages, pagecache.RedisPages):
        left = int(app.config["TANDEM_PAGE_CACHE_SECONDS"]) - seconds
        for key in pages.client.scan_iter("tandem:page:*"):
            pages.client.expire(key, max(1, int(left)))


def test_a_kept_page_is_renewed_by_one_request_while_the_others_are_still_served(
    app: Flask, make_user: Callable[..., Any], make_proposal: Callable[..., Any]
) -> None:
    """In the last tenth of a kept page's life one request renders it again through Flask;
    the requests beside it are still answered before Flask, and the renewed page lives on."""
    path = _catalogue(make_user, make_proposal)
    now = [1_000.0]
    _local_pages(app.extensions[pagecache.EXTENSION].pages).clock = lambda: now[0]
    visitor = app.test_client()
    assert visitor.get(path).headers[CACHE] == "miss"
    flask_seen = _count_flask_requests(app)
    assert visitor.get(path).headers[CACHE] == "hit" and flask_seen == []

    _age_public_pages(app, now, int(app.config["TANDEM_PAGE_CACHE_SECONDS"]) - 1)
    renewing = visitor.get(path)
    assert renewing.status_code == 200 and renewing.headers[CACHE] == "miss"
    assert flask_seen == ["flask"]
    assert [visitor.get(path).headers[CACHE] for _ in range(2)] == ["hit", "hit"]
    now[0] += 2  # past the first page's life, within the renewed one's
    assert visitor.get(path).headers[CACHE] == "hit" and flask_seen == ["flask"]


def test_a_renewing_request_whose_answer_may_not_be_kept_leaves_the_renewal_to_the_next(
    app: Flask, make_user: Callable[..., Any], make_proposal: Callable[..., Any]
) -> None:
    """The request asked to renew a page is one whose answer sets a cookie (a permanent
    session is renewed with every answer): the page is not kept from it, and the next request
    renews it rather than the page expiring under every request in flight."""
    path = _catalogue(make_user, make_proposal)
    now = [1_000.0]
    _local_pages(app.extensions[pagecache.EXTENSION].pages).clock = lambda: now[0]
    visitor = app.test_client()
    assert visitor.get(path).headers[CACHE] == "miss"
    _age_public_pages(app, now, int(app.config["TANDEM_PAGE_CACHE_SECONDS"]) - 1)
    permanent = app.test_client()
    with permanent.session_transaction() as stored:
        stored.permanent = True
    first = permanent.get(path)
    assert first.headers[CACHE] == "miss" and "Set-Cookie" in first.headers
    assert visitor.get(path).headers[CACHE] == "miss"
    assert visitor.get(path).headers[CACHE] == "hit"


def test_a_kept_dashboard_is_renewed_by_one_request_while_the_others_are_still_served(
    app: Flask, auth: AuthActions, client: FlaskClient, make_user: Callable[..., Any]
) -> None:
    now = [1_000.0]
    app.extensions[dashcache.EXTENSION].pages.clock = lambda: now[0]
    flask_seen = _signed_in_on_a_kept_dashboard(app, auth, client, make_user)
    before = len(flask_seen)
    now[0] += int(app.config["TANDEM_PAGE_CACHE_SECONDS"]) - 1
    renewing = client.get("/proposals/mine")
    assert renewing.status_code == 200 and renewing.headers[HEADER] == "miss"
    assert len(flask_seen) == before + 1
    assert [client.get("/proposals/mine").headers[HEADER] for _ in range(2)] == ["hit", "hit"]
    now[0] += 2
    assert client.get("/proposals/mine").headers[HEADER] == "hit"
    assert len(flask_seen) == before + 1


def test_a_kept_dashboards_csrf_token_is_the_one_flask_wtf_would_sign(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Byte for byte, at the same second, for several sessions and each of them twice (the
    second time from the kept encoding of the session's secret)."""
    monkeypatch.setattr(TimestampSigner, "get_timestamp", lambda self: 1_796_000_000)
    for key in ("a-secret-key", b"a-secret-key-as-bytes"):
        tokens, serializer = CsrfTokens(key), URLSafeTimedSerializer(key, salt="wtf-csrf-token")
        for secret in ("0" * 40, uuid.uuid4().hex, uuid.uuid4().hex):
            for _ in range(2):
                assert tokens.token(secret) == serializer.dumps(secret).encode()
