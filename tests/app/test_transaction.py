"""One transaction per portal request (app/transaction.py): a refused request keeps nothing
it wrote, and a write the database refuses at commit is a 409 page, never a 500."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask, flash, redirect, url_for
from flask.testing import FlaskClient
from flask.typing import ResponseReturnValue
from flask_security import current_user, login_required
from sqlmodel import Session, func, select

from app.db import db_session
from app.matcher import queued_rematch
from app.publications.forms import PublicationForm
from app.services import publications
from app.transaction import Blueprint, attempt
from matching import Encoder
from models import Embedding, Organisation, OrganisationKind, Publication
from tests.app.pages import text_of
from tests.conftest import AuthActions

PAPER = {"title": "Battery Dispatch from Logged Grid Data", "year": "2023"}
REFUSED = "A publication with this title is already listed."


def _add(form: PublicationForm) -> Publication:
    """The real service, which writes the publication and flushes it."""
    return publications.add_publication(
        session=db_session(),
        author_id=current_user.id,
        data=form.to_data(),
        rematch=queued_rematch(),
    )


@pytest.fixture
def probe(app: Flask) -> None:
    """Portal routes built as every portal view is (a portal `Blueprint`, `attempt`), each
    writing a publication through the real service before the request goes wrong."""
    bp = Blueprint("probe", __name__, url_prefix="/probe")

    @bp.post("/form")
    @login_required
    def refused_form() -> ResponseReturnValue:
        form = PublicationForm()
        with attempt(form):
            _add(form)
            _add(form)  # refused: the first one is already listed (the flush made it so)
            return redirect(url_for("publications.index"), 303)
        return {"errors": {name or "": errors for name, errors in form.errors.items()}}, 422

    @bp.post("/button")
    @login_required
    def refused_button() -> ResponseReturnValue:
        form = PublicationForm()
        with attempt():
            _add(form)
            _add(form)
            flash("Added twice.", "success")
        # Back to the page the button was on: a redirect, which the boundary commits.
        return redirect(url_for("publications.index"), 303)

    @bp.post("/conflict")
    @login_required
    def conflicting_write() -> ResponseReturnValue:
        _add(PublicationForm())
        # The database, not the service, refuses this one: its name is taken (unique index),
        # as when another request took it a moment ago. Nothing says so before the commit.
        taken = db_session().get(Organisation, current_user.organisation_id).name
        db_session().add(Organisation(name=taken, kind=OrganisationKind.university))
        flash("Saved.", "success")
        return redirect(url_for("publications.index"), 303)

    app.register_blueprint(bp)


@pytest.fixture
def academic(client: FlaskClient, make_user: Callable[..., Any]) -> Any:
    user = make_user()
    AuthActions(client).login(user.email)
    return user


def _publications(session: Session) -> list[Publication]:
    session.expire_all()
    return list(session.exec(select(Publication)))


@pytest.mark.usefixtures("probe")
def test_a_refusal_after_a_flush_keeps_nothing_and_says_why_at_the_field(
    client: FlaskClient, session: Session, academic: Any
) -> None:
    response = client.post("/probe/form", data=PAPER)

    assert response.status_code == 422
    assert response.json == {"errors": {"title": [REFUSED]}}
    assert _publications(session) == []


@pytest.mark.usefixtures("probe")
def test_a_refused_button_redirects_back_keeping_nothing_and_flashes_why(
    client: FlaskClient, session: Session, academic: Any
) -> None:
    """The redirect back is a success to the boundary, which commits: the refusal must have
    undone the first publication already."""
    response = client.post("/probe/button", data=PAPER)

    assert response.status_code == 303
    assert _publications(session) == []
    page = text_of(client.get(response.headers["Location"]).data)
    assert REFUSED in page
    assert "Added twice." not in page


@pytest.mark.usefixtures("probe")
def test_a_write_the_database_refuses_at_commit_is_a_409_page_and_keeps_nothing(
    client: FlaskClient, session: Session, academic: Any
) -> None:
    response = client.post("/probe/conflict", data=PAPER)

    assert response.status_code == 409
    page = text_of(response.data)
    assert "Another request changed the same thing at the same moment" in page
    assert "Saved." not in page  # the view's word is withdrawn with its writes
    assert _publications(session) == []
    assert "Saved." not in text_of(client.get("/publications/").data)


def test_a_search_keeps_the_item_embeddings_it_computed(
    app: Flask,
    client: FlaskClient,
    session: Session,
    make_offer: Callable[..., Any],
    fresh_encoder: Encoder,
) -> None:
    """A GET that writes is committed too: the first search of an item text keeps its
    embedding, so the next search does not encode it again."""
    app.extensions["tandem.encoder"] = fresh_encoder  # nothing known from earlier tests
    make_offer()

    assert client.get("/search/?q=climate+models").status_code == 200

    session.expire_all()
    assert session.exec(select(func.count()).select_from(Embedding)).one() > 0
