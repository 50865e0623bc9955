"""A dashboard is rendered once and then served from a cache kept per person (app/dashcache.py):
nobody is ever served another person's page, a change shows on the next view whoever made
it, a message waiting to be shown is never kept, and each session's forms carry that
session's own CSRF token."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from sqlmodel import Session, select

from app import create_app
from app.services import recommendations
from matching import Encoder
from models import Match, OrganisationKind, Publication, Role
from tests.app.pages import text_of
from tests.app.test_page_queries import counted
from tests.conftest import TEST_PASSWORD, AuthActions

HEADER = "X-Tandem-Dash-Cache"


def _tokens(html: bytes) -> set[str]:
    return set(re.findall(r'name="csrf_token" value="([^"]+)"', html.decode()))


def test_each_person_is_served_their_own_dashboard_only(
    app: Flask,
    auth: AuthActions,
    make_user: Callable[..., Any],
    make_proposal: Callable[..., Any],
    make_organisation: Callable[..., Any],
    make_offer: Callable[..., Any],
) -> None:
    ada, bo = make_user(role=Role.academic), make_user(role=Role.academic)
    for n in range(7):
        make_proposal(author_id=ada.id, title=f"Ada's study {n}")
    make_proposal(author_id=bo.id, title="Bo's only study")
    acme = make_organisation(kind=OrganisationKind.company)
    globex = make_organisation(kind=OrganisationKind.company)
    sam = make_user(role=Role.company, organisation_id=acme.id)
    kim = make_user(role=Role.company, organisation_id=globex.id)
    make_offer(organisation_id=acme.id, title="Acme's GPU hours")
    make_offer(organisation_id=globex.id, title="Globex's dataset")

    views: dict[str, list[str]] = {}
    # Each person views their dashboard three times, in turns (the first view after signing
    # in changes the session, so is not kept); the last is the kept page.
    people = [(ada, "/proposals/mine"), (bo, "/proposals/mine"), (sam, "/offers/mine")]
    people += [(kim, "/offers/mine"), (ada, "/proposals/mine?page=2")]
    clients = {}
    for person, path in people:
        client = clients.setdefault(person.email, app.test_client())
        if len(clients) > len(views):
            AuthActions(client).login(person.email)
        for _ in range(3):
            response = client.get(path)
            assert response.status_code == 200
            views.setdefault(person.email, []).append(response.headers.get(HEADER, ""))
            page = text_of(response.data)
            if person is ada:
                assert "Bo's only study" not in page and "Ada's study" in page
            if person is bo:
                assert "Bo's only study" in page and "Ada's study" not in page
            if person is sam:
                assert "Acme's GPU hours" in page and "Globex's dataset" not in page
            if person is kim:
                assert "Globex's dataset" in page and "Acme's GPU hours" not in page
    assert views[ada.email] == ["miss", "miss", "hit", "miss", "hit", "hit"]  # pages 1 and 2
    for person in (bo, sam, kim):
        assert views[person.email] == ["miss", "miss", "hit"]
    # Page 2 is its own page: the two oldest of Ada's seven proposals.
    page = text_of(clients[ada.email].get("/proposals/mine?page=2").data)
    assert "Ada's study 0" in page and "Ada's study 6" not in page

    # Signing out ends the kept page's use: the next person on that browser gets theirs.
    client = clients[bo.email]
    client.post("/logout")
    assert client.get("/proposals/mine").status_code == 302
    AuthActions(client).login(ada.email)
    response = client.get("/proposals/mine")
    assert "Ada's study 6" in text_of(response.data)
    assert "Bo's only study" not in text_of(response.data)


def test_a_change_shows_on_the_next_view_whoever_made_it(
    client: FlaskClient,
    session: Session,
    auth: AuthActions,
    encoder: Encoder,
    make_user: Callable[..., Any],
    make_proposal: Callable[..., Any],
    make_organisation: Callable[..., Any],
    make_offer: Callable[..., Any],
) -> None:
    ada = make_user(role=Role.academic)
    proposal = make_proposal(author_id=ada.id, title="Battery dispatch with reinforcement learning")
    acme = make_organisation(kind=OrganisationKind.company)
    sam = make_user(role=Role.company, organisation_id=acme.id)
    make_offer(organisation_id=acme.id, title="GPU hours for reinforcement learning")
    recommendations.recompute_all(session=session, encoder=encoder, k=5)
    session.commit()
    match = session.exec(select(Match).where(Match.proposal_id == proposal.id)).one()
    auth.login(ada.email)

    def dashboard() -> str:
        """The page as kept: the views before show what was flashed, or settle the session
        after signing in, and keep the page."""
        client.get("/proposals/mine")
        client.get("/proposals/mine")
        response = client.get("/proposals/mine")
        assert response.headers[HEADER] == "hit"
        return text_of(response.data)

    assert "Suggested by Tandem" in dashboard() and "Your publications (0)" in dashboard()
    # Her own action, through the page's form.
    client.post(f"/matches/{match.id}/interest", data={"next": "/proposals/mine"})
    assert "You said you are interested" in text_of(client.get("/proposals/mine").data)
    assert "You said you are interested" in dashboard()
    # The company's action, from another browser.
    other = client.application.test_client()
    AuthActions(other).login(sam.email)
    assert other.post(f"/matches/{match.id}/interest", data={"next": "/offers/mine"}).status_code
    assert "Introduced: contact" in text_of(client.get("/proposals/mine").data)
    # A write outside any request (a CLI command, a worker): her publications.
    session.add(Publication(title="Grid storage dispatch", year=2023, author_id=ada.id))
    session.commit()
    assert "Your publications (1)" in text_of(client.get("/proposals/mine").data)
    # Closing the proposal.
    client.post(f"/proposals/{proposal.id}/close")
    assert "Closed: not listed and not matched" in dashboard()


def test_a_message_waiting_to_be_shown_is_shown_once_and_never_kept(
    client: FlaskClient,
    session: Session,
    auth: AuthActions,
    encoder: Encoder,
    make_user: Callable[..., Any],
    make_proposal: Callable[..., Any],
    make_organisation: Callable[..., Any],
    make_offer: Callable[..., Any],
) -> None:
    ada = make_user(role=Role.academic)
    proposal = make_proposal(author_id=ada.id, title="Battery dispatch with reinforcement learning")
    acme = make_organisation(kind=OrganisationKind.company)
    make_offer(organisation_id=acme.id, title="GPU hours for reinforcement learning")
    recommendations.recompute_all(session=session, encoder=encoder, k=5)
    session.commit()
    match = session.exec(select(Match).where(Match.proposal_id == proposal.id)).one()
    auth.login(ada.email)
    client.get("/proposals/mine")  # the first view after signing in changes the session
    client.get("/proposals/mine")
    assert client.get("/proposals/mine").headers[HEADER] == "hit"

    client.post(f"/matches/{match.id}/interest", data={"next": "/proposals/mine"})
    response = client.get("/proposals/mine")
    assert HEADER not in response.headers  # neither served from nor kept in the cache
    flashed = re.search(r'<p class="flash flash-success">([^<]+)</p>', response.data.decode())
    assert flashed is not None
    for _ in range(2):
        response = client.get("/proposals/mine")
        assert flashed.group(1) not in response.data.decode()
    assert response.headers[HEADER] == "hit"


@pytest.fixture
def protected(app: Flask) -> Iterator[Flask]:
    """The same application with CSRF checks on, as it is served."""
    protected = create_app({**app.config, "WTF_CSRF_ENABLED": True})
    protected.extensions["tandem.encoder"] = app.extensions["tandem.encoder"]
    yield protected
    protected.extensions["tandem.engine"].dispose()


def _sign_in(client: FlaskClient, email: str) -> None:
    login = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', login)
    assert token is not None
    response = client.post(
        "/login", data={"email": email, "password": TEST_PASSWORD, "csrf_token": token.group(1)}
    )
    assert response.status_code == 302


def test_each_session_gets_its_own_csrf_token_in_a_kept_page(
    protected: Flask,
    make_user: Callable[..., Any],
    make_proposal: Callable[..., Any],
) -> None:
    ada = make_user(role=Role.academic)
    proposal = make_proposal(author_id=ada.id, title="Battery dispatch")
    laptop, phone = protected.test_client(), protected.test_client()
    _sign_in(laptop, ada.email)
    _sign_in(phone, ada.email)

    laptop.get("/proposals/mine")  # the first view after signing in changes the session
    rendered = laptop.get("/proposals/mine")
    assert rendered.headers[HEADER] == "miss"
    served = phone.get("/proposals/mine")
    assert served.headers[HEADER] == "hit"
    laptop_tokens, phone_tokens = _tokens(rendered.data), _tokens(served.data)
    assert laptop_tokens and phone_tokens and not laptop_tokens & phone_tokens
    assert len(phone_tokens) == 1  # every form of the kept page has the phone's own token
    assert not any(token.encode() in served.data for token in laptop_tokens)
    # The laptop's token is refused on the phone; the phone's own, from the kept page, works.
    close = f"/proposals/{proposal.id}/close"
    assert phone.post(close, data={"csrf_token": laptop_tokens.pop()}).status_code == 400
    response = phone.post(close, data={"csrf_token": phone_tokens.pop()})
    assert response.status_code == 302
    assert "Closed: not listed" in text_of(phone.get("/proposals/mine").data)


def test_the_kept_page_is_never_served_once_the_person_may_no_longer_see_it(
    app: Flask,
    client: FlaskClient,
    session: Session,
    auth: AuthActions,
    make_user: Callable[..., Any],
    make_proposal: Callable[..., Any],
) -> None:
    ada = make_user(role=Role.academic)
    make_proposal(author_id=ada.id, title="Battery dispatch")
    auth.login(ada.email)
    for _ in range(2):
        client.get("/proposals/mine")
    assert client.get("/proposals/mine").headers[HEADER] == "hit"

    # Her sessions ended elsewhere (a password reset, "sign out everywhere"): this browser's
    # session no longer signs her in, and nothing of the kept page is served.
    with app.app_context():
        app.extensions["security"].datastore.set_uniquifier(
            app.extensions["security"].datastore.find_user(email=ada.email)
        )
        app.extensions["security"].datastore.commit()
    response = client.get("/proposals/mine")
    assert response.status_code == 302 and "Battery dispatch" not in response.get_data(True)

    # Signed in again, then deactivated by an administrator: refused, never the kept page.
    auth.login(ada.email)
    for _ in range(2):
        client.get("/proposals/mine")
    assert client.get("/proposals/mine").headers[HEADER] == "hit"
    ada.active = False
    session.add(ada)
    session.commit()
    response = client.get("/proposals/mine")
    assert response.status_code != 200 and "Battery dispatch" not in response.get_data(True)

    # Active again, signed in, then no longer an academic: the academics' page is refused.
    ada.active = True
    session.add(ada)
    session.commit()
    auth.login(ada.email)
    for _ in range(2):
        client.get("/proposals/mine")
    assert client.get("/proposals/mine").headers[HEADER] == "hit"
    ada.role = Role.company
    session.add(ada)
    session.commit()
    response = client.get("/proposals/mine")
    assert response.status_code != 200 and "Battery dispatch" not in response.get_data(True)


def test_only_the_address_a_page_links_to_is_kept(
    client: FlaskClient,
    auth: AuthActions,
    make_user: Callable[..., Any],
    make_proposal: Callable[..., Any],
) -> None:
    """Other spellings of a page (the first page asked as `?page=0` or `?page=`, a number
    past the end) are served but never kept: nobody can fill the cache with one page under
    endless addresses. The addresses links lead to are kept: the menu's (no number) and
    the pages' own Previous/Next (`?page=1`, `?page=2`)."""
    ada = make_user(role=Role.academic)
    for n in range(7):  # two pages of five
        make_proposal(author_id=ada.id, title=f"Ada's study {n}")
    auth.login(ada.email)
    client.get("/proposals/mine")  # settles the session after signing in

    def views(path: str) -> list[str]:
        return [client.get(path).headers[HEADER] for _ in range(3)]

    for spelling in ("?page=0", "?page=", "?page=3", "?page=99"):
        assert views(f"/proposals/mine{spelling}") == ["miss", "miss", "miss"], spelling
    assert views("/proposals/mine") == ["miss", "hit", "hit"]
    assert views("/proposals/mine?page=1") == ["miss", "hit", "hit"]  # Previous from page 2
    assert views("/proposals/mine?page=2") == ["miss", "hit", "hit"]
    # What a page past the end shows is the last page, from its own address.
    assert "Ada's study 0" in text_of(client.get("/proposals/mine?page=99").data)


def test_dashboards_are_kept_in_the_process_never_in_redis(
    database_url: str, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A person's page (their contacts, unpublished drafts) stays out of the Redis the job
    queue shares, and each process keeps a bounded number of bytes of pages."""
    from app.dashcache import EXTENSION, MAX_BYTES, _bytes_in
    from app.pagecache import LocalPages

    monkeypatch.setenv("TANDEM_INSTANCE_PATH", str(tmp_path / "instance"))
    app = create_app(
        {
            "TESTING": True,
            "DATABASE_URL": database_url,
            "SECRET_KEY": "test-secret-key",
            "REDIS_URL": "redis://127.0.0.1:6379/15",
            "TANDEM_QUEUE": "immediate",
        }
    )
    try:
        pages = app.extensions[EXTENSION].pages
        assert isinstance(pages, LocalPages)
        assert pages.max_bytes == MAX_BYTES
        # A page is kept split at its token: its bytes count, not its number of parts.
        assert pages.size is _bytes_in
        few: LocalPages[tuple[bytes, ...]] = LocalPages(10, max_bytes=100, size=_bytes_in)
        few.put("two-parts", (b"a" * 50, b"b" * 51), seconds=60)
        few.put("one-byte", (b"c",), seconds=60)
        assert few.get("two-parts") is None and few.get("one-byte") == (b"c",)
    finally:
        app.extensions["tandem.engine"].dispose()


def test_a_change_to_the_account_the_version_never_saw_still_ends_the_kept_page(
    app: Flask, client: FlaskClient, auth: AuthActions, make_user: Callable[..., Any]
) -> None:
    """Suspended, moved to another role, or signed out everywhere by a write the catalogue
    version does not see (made by hand in SQL, or whose bump failed): the kept page is found
    by the session alone, so the account is checked with every kept page served."""
    ada = make_user(role=Role.academic)
    by_hand = sa.create_engine(app.config["DATABASE_URL"])  # not the app's: no version bump

    def write(statement: str) -> None:
        with by_hand.begin() as connection:
            connection.execute(sa.text(statement), {"id": ada.id})

    def kept() -> None:
        auth.login(ada.email)
        for _ in range(2):
            client.get("/proposals/mine")
        assert client.get("/proposals/mine").headers[HEADER] == "hit"

    try:
        kept()
        write('UPDATE "user" SET active = false WHERE id = :id')
        response = client.get("/proposals/mine")
        assert response.status_code != 200 and response.headers.get(HEADER) != "hit"

        write('UPDATE "user" SET active = true WHERE id = :id')
        kept()
        write("UPDATE \"user\" SET role = 'company' WHERE id = :id")
        response = client.get("/proposals/mine")
        assert response.status_code != 200 and response.headers.get(HEADER) != "hit"

        write("UPDATE \"user\" SET role = 'academic' WHERE id = :id")
        kept()
        write("UPDATE \"user\" SET fs_uniquifier = 'ended-everywhere' WHERE id = :id")
        response = client.get("/proposals/mine")
        assert response.status_code == 302 and response.headers.get(HEADER) != "hit"
    finally:
        by_hand.dispose()


def test_a_kept_page_is_answered_without_loading_the_person(
    app: Flask, client: FlaskClient, auth: AuthActions, make_user: Callable[..., Any]
) -> None:
    """The session says who signed in and the version says nothing changed since the page
    was kept for that session: no statement reaches the database for the person (the
    version itself is read from its own store)."""
    ada = make_user(role=Role.academic)
    auth.login(ada.email)
    for _ in range(2):
        client.get("/proposals/mine")
    with counted(app) as statements:
        response = client.get("/proposals/mine")
    assert response.headers[HEADER] == "hit" and response.status_code == 200
    # At most the account's check, read with the version (on PostgreSQL, in the version's
    # own statement): never Flask-Security's load of the whole user.
    assert len(statements) <= 1
    assert not [statement for statement in statements if "password_hash" in statement]
    # Still a personal page: no browser or proxy keeps it.
    assert response.headers["Cache-Control"] == "private, no-store"
    assert "Cookie" in response.headers["Vary"]


def test_a_kept_page_counts_against_a_limit_set_for_every_page(
    app: Flask, make_user: Callable[..., Any], tmp_path: Any
) -> None:
    """Where the operator limits every page (RATELIMIT_DEFAULT), a kept dashboard is answered
    only after the limit's check: the request past the limit is refused, kept or not."""
    limited = create_app(
        {**app.config, "RATELIMIT_DEFAULT": "4 per minute", "RATELIMIT_KEY_PREFIX": tmp_path.name}
    )
    limited.extensions["tandem.encoder"] = app.extensions["tandem.encoder"]
    try:
        ada = make_user(role=Role.academic)
        client = limited.test_client()
        AuthActions(client).login(ada.email)
        answers = [client.get("/proposals/mine") for _ in range(5)]
        assert [answer.status_code for answer in answers] == [200, 200, 200, 200, 429]
        assert [answer.headers.get(HEADER) for answer in answers[:4]] == [
            "miss",
            "miss",
            "hit",
            "hit",
        ]
    finally:
        limited.extensions["tandem.engine"].dispose()
