"""Public pages for visitors who are not signed in come from a cache keyed by the catalogue
version (app/pagecache.py, app/catalogue_version.py): a change committed by any writer (a
form, a CLI command, another process) shows on the next view, and nothing personal (a
signed-in page, a flashed message, the search limit's notice) is ever kept or served to
someone else. Runs on SQLite and PostgreSQL (TANDEM_TEST_DATABASE_URL), with the pages in
Redis when REDIS_URL is set and in the process otherwise."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from sqlmodel import Session

from app import create_app
from app.catalogue_version import changes_catalogue
from models import Embedding, Offer, Role
from tests.app.pages import text_of
from tests.conftest import AuthActions, needs_redis

ROOT = Path(__file__).resolve().parents[2]
CACHE = "X-Tandem-Page-Cache"


def _visitor(app: Flask, address: str = "192.0.2.1") -> FlaskClient:
    """A new visitor: no cookies, their own address."""
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = address
    return client


def _seen_twice(app: Flask, path: str) -> tuple[Any, Any]:
    """The page as a first and then a second, unrelated visitor get it."""
    return _visitor(app).get(path), _visitor(app, "192.0.2.2").get(path)


@pytest.fixture
def catalogue(
    make_user: Callable[..., Any],
    make_proposal: Callable[..., Any],
    make_offer: Callable[..., Any],
) -> dict[str, Any]:
    author = make_user(role=Role.academic)
    word = uuid.uuid4().hex[:8]
    proposal = make_proposal(author_id=author.id, title=f"Graph networks for rivers {word}")
    offer = make_offer(title=f"Spare H100 hours {word}")
    return {"author": author, "proposal": proposal, "offer": offer, "word": word}


def test_each_public_page_is_rendered_once_then_served_with_every_security_header(
    app: Flask, catalogue: dict[str, Any]
) -> None:
    word = catalogue["word"]
    for path in (
        "/",
        "/proposals/",
        "/offers/",
        f"/proposals/{catalogue['proposal'].id}",
        f"/offers/{catalogue['offer'].id}",
        f"/search/?q=rivers+{word}&type=proposals",
    ):
        first, second = _seen_twice(app, path)
        assert (first.status_code, second.status_code) == (200, 200), path
        assert (first.headers[CACHE], second.headers[CACHE]) == ("miss", "hit"), path
        assert second.get_data() == first.get_data(), path
        for response in (first, second):
            assert "Cookie" in response.headers["Vary"], path
            assert "Set-Cookie" not in response.headers, path
            assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
            assert response.headers["X-Frame-Options"] == "DENY"
            assert 'name="csrf_token"' not in response.get_data(as_text=True), path
    # The same query with its parameters in another order is the same page.
    reordered = _visitor(app).get(f"/search/?type=proposals&q=rivers+{word}")
    assert reordered.headers[CACHE] == "hit"
    assert catalogue["proposal"].title in text_of(reordered.get_data())


def test_a_change_posted_through_a_form_shows_on_the_next_anonymous_view(
    app: Flask, catalogue: dict[str, Any]
) -> None:
    proposal = catalogue["proposal"]
    _seen_twice(app, "/proposals/")
    assert proposal.title in _visitor(app).get("/proposals/").get_data(as_text=True)

    author = app.test_client()
    AuthActions(author).login(catalogue["author"].email)
    assert author.post(f"/proposals/{proposal.id}/close").status_code == 302

    listing = _visitor(app).get("/proposals/")
    assert listing.headers[CACHE] == "miss"
    assert proposal.title not in listing.get_data(as_text=True)


def test_a_change_committed_by_a_cli_command_shows_on_the_next_anonymous_view(
    app: Flask, runner: FlaskCliRunner, catalogue: dict[str, Any]
) -> None:
    before, cached = _seen_twice(app, "/offers/")
    assert cached.headers[CACHE] == "hit"

    result = runner.invoke(args=["demo", "load"])
    assert result.exit_code == 0, result.output

    after = _visitor(app).get("/offers/")
    assert after.headers[CACHE] == "miss"
    assert after.get_data() != before.get_data()


def test_a_change_committed_by_another_process_shows_on_the_next_anonymous_view(
    app: Flask, catalogue: dict[str, Any], tmp_path: Path
) -> None:
    """Another process (a queue worker, a CLI command on another machine) writes through its
    own engine: its commit changes the version every web process reads."""
    offer = catalogue["offer"]
    path = f"/offers/{offer.id}"
    _seen_twice(app, path)
    renamed = f"Renamed by a worker {uuid.uuid4().hex[:8]}"
    script = (
        "from sqlmodel import Session\n"
        "from app import create_app\n"
        "from app.db import engine\n"
        "from models import Offer\n"
        "app = create_app()\n"
        "with app.app_context(), Session(engine()) as session:\n"
        f"    offer = session.get(Offer, {offer.id})\n"
        f"    offer.title = {renamed!r}\n"
        "    session.add(offer)\n"
        "    session.commit()\n"
    )
    environment = {
        **os.environ,
        "DATABASE_URL": app.config["DATABASE_URL"],
        "SECRET_KEY": "test-secret-key",
        "TANDEM_ENV": "test",
        "TANDEM_QUEUE": "immediate",
        "TANDEM_INSTANCE_PATH": str(tmp_path / "other-instance"),
        "REDIS_URL": app.config["REDIS_URL"] or "",
        "HF_HUB_OFFLINE": "1",
    }
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=environment, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr

    page = _visitor(app).get(path)
    assert page.headers[CACHE] == "miss"
    assert renamed in page.get_data(as_text=True)


def test_writes_no_public_page_shows_keep_the_cached_pages(
    app: Flask, session: Session, catalogue: dict[str, Any]
) -> None:
    """A search keeps the vectors of new words, and a sign-in with an authenticator code
    writes its counter: neither changes a public page, so neither empties the cache."""
    _seen_twice(app, "/")
    session.add(
        Embedding(
            content_hash=uuid.uuid4().hex, model_name="stand-in", dimension=4, vector=b"\0" * 16
        )
    )
    author = catalogue["author"]
    author.notification_preference = "off"
    session.add(author)
    session.commit()
    assert _visitor(app).get("/").headers[CACHE] == "hit"

    offer = session.get(Offer, catalogue["offer"].id)
    offer.title = "Renamed in the fixture's session"
    session.add(offer)
    session.commit()
    assert _visitor(app).get("/").headers[CACHE] == "miss"


def test_a_signed_in_person_never_gets_a_cached_page_and_theirs_is_never_kept(
    app: Flask, catalogue: dict[str, Any]
) -> None:
    path = f"/proposals/{catalogue['proposal'].id}"
    anonymous, _ = _seen_twice(app, path)
    assert "Sign out" not in anonymous.get_data(as_text=True)

    author = app.test_client()
    AuthActions(author).login(catalogue["author"].email)
    for _ in range(2):
        theirs = author.get(path)
        assert theirs.status_code == 200
        assert CACHE not in theirs.headers
        assert "Sign out" in theirs.get_data(as_text=True)
        assert theirs.headers["Cache-Control"] == "private, no-store"

    again = _visitor(app).get(path)
    assert again.headers[CACHE] == "hit"
    assert again.get_data() == anonymous.get_data()


def test_a_flashed_message_is_never_cached_nor_shown_to_another_visitor(app: Flask) -> None:
    visitor = _visitor(app)
    assert visitor.get("/proposals/mine").status_code == 302  # flashes "Please sign in..."
    with_flash = visitor.get("/")
    assert "Please sign in to see this page." in text_of(with_flash.get_data())
    assert CACHE not in with_flash.headers

    first, second = _seen_twice(app, "/")
    for response in (first, second):
        assert "Please sign in" not in text_of(response.get_data())
    assert second.headers[CACHE] == "hit"
    # The message was shown once; the visitor's next view is the shared page.
    assert visitor.get("/").headers[CACHE] == "hit"


def test_the_search_limit_notice_is_never_cached_and_a_cached_search_counts_nothing(
    app: Flask, catalogue: dict[str, Any]
) -> None:
    limited = create_app({**app.config, "TANDEM_SEARCH_LIMIT_ANONYMOUS": "1 per minute"})
    limited.extensions["tandem.encoder"] = app.extensions["tandem.encoder"]
    run = uuid.uuid4().hex[:8]
    busy = _visitor(limited, "192.0.2.50")
    assert busy.get(f"/search/?q=river+graphs+{run}").status_code == 200
    refused = busy.get(f"/search/?q=protein+folding+{run}")
    assert refused.status_code == 429
    assert "You have run many new searches" in refused.get_data(as_text=True)
    assert CACHE in refused.headers  # a candidate that was not kept
    assert refused.headers[CACHE] == "miss"

    other = _visitor(limited, "192.0.2.51").get(f"/search/?q=protein+folding+{run}")
    assert other.status_code == 200
    assert other.headers[CACHE] == "miss"
    assert "You have run many new searches" not in other.get_data(as_text=True)

    # Served from the cache: nothing is embedded, so the limit is not asked.
    again = busy.get(f"/search/?q=protein+folding+{run}")
    assert (again.status_code, again.headers[CACHE]) == (200, "hit")
    assert "You have run many new searches" not in again.get_data(as_text=True)
    limited.extensions["tandem.engine"].dispose()


def test_a_lost_version_is_made_again_and_nothing_stale_is_served(
    app: Flask, session: Session, catalogue: dict[str, Any]
) -> None:
    """The sequence dropped (PostgreSQL) or the file beside the database removed (SQLite):
    the next bump or read makes it again, with a token never used before."""
    path = f"/offers/{catalogue['offer'].id}"
    assert _seen_twice(app, path)[1].headers[CACHE] == "hit"
    if session.get_bind().dialect.name == "postgresql":
        session.execute(sa.text("DROP SEQUENCE tandem_page_version"))
        session.commit()
    else:
        Path(f"{session.get_bind().url.database}-page-version").unlink()
    assert _visitor(app).get(path).headers[CACHE] == "miss"
    assert _visitor(app).get(path).headers[CACHE] == "hit"

    offer = session.get(Offer, catalogue["offer"].id)
    offer.title = "Renamed after the version was lost"
    session.add(offer)
    session.commit()
    page = _visitor(app).get(path)
    assert page.headers[CACHE] == "miss"
    assert "Renamed after the version was lost" in page.get_data(as_text=True)


def test_a_refused_url_is_refused_every_time(app: Flask, catalogue: dict[str, Any]) -> None:
    """The cache answers before the other request guards; what they refuse is never kept."""
    for _ in range(2):
        response = _visitor(app).get("/search/?q=rivers%00dams")
        assert response.status_code == 400
        assert "invisible control characters" in response.get_data(as_text=True)


def test_the_cache_can_be_turned_off(app: Flask, catalogue: dict[str, Any]) -> None:
    app.config["TANDEM_PAGE_CACHE_SECONDS"] = 0
    first, second = _seen_twice(app, "/")
    assert CACHE not in first.headers and CACHE not in second.headers


@pytest.mark.parametrize(
    ("statement", "changes"),
    [
        ("SELECT proposal.id FROM proposal", False),
        ("SELECT offer.id FROM offer FOR UPDATE", False),
        ("WITH recent AS (SELECT id FROM proposal) SELECT * FROM recent", False),
        ("INSERT INTO proposal (title) VALUES (?)", True),
        ('UPDATE "user" SET name=%(name)s WHERE "user".id = %(id)s', True),
        ('UPDATE "user" SET tf_totp_last_counter=%(c)s WHERE "user".id = %(id)s', False),
        ("UPDATE user SET active=? WHERE user.id = ?", True),
        ("DELETE FROM match WHERE match.offer_id = ?", True),
        ("INSERT INTO embedding (content_hash) VALUES (?)", False),
        ("INSERT INTO notification (kind) VALUES (?)", False),
        ("TRUNCATE proposal", True),
        ("ALTER TABLE offer ADD COLUMN x INTEGER", True),
        ("WITH gone AS (DELETE FROM offer RETURNING id) SELECT count(*) FROM gone", True),
    ],
)
def test_which_statements_change_the_catalogue(statement: str, changes: bool) -> None:
    assert changes_catalogue(statement) is changes


def test_pages_kept_in_a_process_stay_within_their_byte_budget() -> None:
    from app.pagecache import LocalPages

    pages = LocalPages(entries=100, max_bytes=250)
    for n in range(5):
        pages.put(f"page-{n}", bytes([n]) * 100, seconds=60)
    # Only the two most recent fit in 250 bytes; the oldest went first.
    assert [pages.get(f"page-{n}") is not None for n in range(5)] == [False] * 3 + [True] * 2
    pages.put("page-4", b"x" * 10, seconds=60)  # a new body under a kept key counts once
    pages.put("page-5", b"y" * 140, seconds=60)
    assert pages.get("page-3") is not None and pages.get("page-4") == b"x" * 10
    pages.put("huge", b"z" * 1000, seconds=60)  # larger than the budget: kept by nobody
    assert pages.get("huge") is None and pages.get("page-5") is None


def test_a_page_is_renewed_by_one_request_before_it_expires_and_never_served_after() -> None:
    from app.pagecache import LocalPages

    now = [0.0]
    pages: LocalPages[bytes] = LocalPages(entries=10, clock=lambda: now[0])
    pages.put("page", b"old", seconds=100)
    now[0] = 89.0
    assert pages.get("page") == b"old"
    now[0] = 91.0  # the last tenth of its life: one caller renders it again
    assert pages.find("page") == (None, 9.0)
    assert [pages.get("page") for _ in range(3)] == [b"old"] * 3  # the others are served
    pages.put("page", b"new", seconds=100)  # renewed at 91: lives until 191
    now[0] = 150.0
    assert pages.get("page") == b"new"
    now[0] = 182.0
    assert pages.get("page") is None and pages.get("page") == b"new"
    now[0] = 192.0  # nobody renewed it: expired, for every caller
    assert pages.find("page") == (None, 0.0) and pages.get("page") is None

    pages.put("slow", b"kept", seconds=300)  # asked to renew from 270
    now[0] += 271.0
    assert pages.get("slow") is None and pages.get("slow") == b"kept"
    now[0] += 9.0  # the first caller kept nothing: another is asked 10 s on, only one
    assert pages.get("slow") == b"kept"
    now[0] += 1.0
    assert pages.get("slow") is None and pages.get("slow") == b"kept"
    pages.release("slow")  # that one kept nothing either, and said so: the next is asked
    assert pages.get("slow") is None and pages.get("slow") == b"kept"

    pages.put("short", b"one", seconds=5)  # a short life is renewed in its last second
    now[0] += 4.1
    assert pages.get("short") is None and pages.get("short") == b"one"
    pages.put("short", b"two", seconds=5)  # kept again: the claim is gone with the old page
    now[0] += 4.1
    assert pages.get("short") is None and pages.get("short") == b"two"


@needs_redis
def test_a_page_another_process_renewed_in_redis_is_taken_not_rendered_again(
    page_namespace: str,
) -> None:
    """Two web processes keep the same page from Redis: the first asked to renew it renders
    it; the other, asked in turn, finds the renewed copy in Redis instead of rendering."""
    from app.pagecache import RedisPages

    first = RedisPages(os.environ["REDIS_URL"], entries=10, namespace=page_namespace)
    second = RedisPages(os.environ["REDIS_URL"], entries=10, namespace=page_namespace)
    now = [0.0]
    first.near.clock = second.near.clock = lambda: now[0]
    key = f"{page_namespace}:page"
    first.put(key, b"old", 300)
    assert second.get(key) == b"old"  # from Redis, kept in the second process too
    now[0] = 271.0
    first.client.expire(key, 29)  # 271 s on in Redis too
    assert first.get(key) is None  # Redis holds the same copy: the first renders it
    assert first.get(key) == b"old"
    first.put(key, b"new", 300)
    assert second.get(key) == b"new"  # asked to renew, it takes the renewed copy
    assert first.get(key) == second.get(key) == b"new"
