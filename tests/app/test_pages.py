"""The public pages render the demo data, keep authors anonymous and work offline."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlmodel import Session, select

from models import Offer, OfferStatus, Proposal, ProposalStatus, User


def _text(html: bytes) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html.decode()))


def test_home_explains_tandem_and_shows_counts_and_latest(
    client: FlaskClient, session: Session, demo_loaded: str
) -> None:
    response = client.get("/")
    assert response.status_code == 200
    text = _text(response.data)
    assert "Academics propose the work" in text
    open_count = len(
        session.exec(select(Proposal).where(Proposal.status == ProposalStatus.open)).all()
    )
    assert f"{open_count} open proposals" in text
    # The demo introduces a few pairs (their proposals are then "matched"): the newest open one.
    newest = session.exec(
        select(Proposal).where(Proposal.status == ProposalStatus.open).order_by(Proposal.id.desc())  # type: ignore[union-attr]
    ).first()
    assert newest.title in text


def test_home_renders_on_an_empty_database(client: FlaskClient) -> None:
    response = client.get("/")
    assert response.status_code == 200
    assert "No open proposals yet" in _text(response.data)


def test_proposal_list_paginates_and_filters(
    client: FlaskClient, session: Session, demo_loaded: str
) -> None:
    first, second = client.get("/proposals/"), client.get("/proposals/?page=2")
    assert first.status_code == second.status_code == 200
    titles = lambda html: set(re.findall(r'href="/proposals/\d+">([^<]+)</a>', html.decode()))  # noqa: E731
    assert len(titles(first.data)) == 10
    assert titles(first.data).isdisjoint(titles(second.data))
    robotics = _text(client.get("/proposals/?area=robotics").data)
    assert "Tactile Foundation Policies" in robotics
    assert "Open Instruction-Tuned Language Models" not in robotics
    assert client.get("/proposals/?page=999").status_code == 200
    assert client.get("/proposals/?page=abc").status_code == 200


def test_proposal_page_shows_ranked_offers_with_scores_but_not_the_author(
    client: FlaskClient, session: Session, demo_loaded: str
) -> None:
    proposal = session.exec(
        select(Proposal).where(Proposal.title.startswith("A Native-Speaker Benchmark"))  # type: ignore[attr-defined]
    ).one()
    author = session.get(User, proposal.author_id)
    response = client.get(f"/proposals/{proposal.id}")
    assert response.status_code == 200
    text = _text(response.data)
    assert proposal.title in text
    assert "Recommended offers" in text
    assert "Compute for low-resource and multilingual NLP" in text
    scores = [int(s) for s in re.findall(r'class="score-value">(\d+)<', response.data.decode())]
    assert len(scores) == 5 and scores == sorted(scores, reverse=True)
    assert "A researcher in natural language processing at a university" in text
    assert author.name not in text and author.email not in text
    assert "Why this match" in text and "Every requirement is met" in text
    assert re.search(r"Both mention \w+", text) or "Related in topic" in text
    assert "open offers meet every hard constraint" in text
    assert "I'm interested" not in text, "a reader on neither side has no match actions"
    for publication in author.publications:  # titles would reveal who the author is
        assert publication.title not in text


def test_offer_page_shows_terms_and_ranked_proposals(
    client: FlaskClient, session: Session, demo_loaded: str
) -> None:
    offer = session.exec(
        select(Offer).where(Offer.title.startswith("De-identified chest CT"))  # type: ignore[attr-defined]
    ).one()
    response = client.get(f"/offers/{offer.id}")
    assert response.status_code == 200
    text = _text(response.data)
    assert "Recommended proposals" in text and "Capacity and terms" in text
    assert "An open foundation model for low-dose chest CT" in text
    assert len(re.findall(r'class="score-value">\d+<', response.data.decode())) == 5


def test_offer_list_filters_by_kind_and_hides_closed_offers(
    client: FlaskClient, session: Session, demo_loaded: str
) -> None:
    closed = session.exec(select(Offer).where(Offer.status == OfferStatus.closed)).first()
    assert closed is not None
    listing = _text(client.get("/offers/").data)
    assert closed.title not in listing
    data_only = client.get("/offers/?kind=data").data.decode()
    assert 'badge-compute"' not in data_only and "badge-data" in data_only
    # A kind that is not one is said at the filter; every open offer is still listed.
    bogus = client.get("/offers/?kind=bogus")
    assert bogus.status_code == 422
    assert "Choose a kind of offer from the list." in _text(bogus.data)
    assert "badge-compute" in bogus.data.decode() and "badge-data" in bogus.data.decode()


def test_drafts_are_not_public(client: FlaskClient, session: Session, demo_loaded: str) -> None:
    draft = session.exec(select(Proposal).where(Proposal.status == ProposalStatus.draft)).first()
    assert draft is not None
    assert client.get(f"/proposals/{draft.id}").status_code == 404
    assert draft.title not in _text(client.get("/proposals/").data)


@pytest.mark.parametrize("url", ["/no-such-page", "/proposals/999999", "/offers/999999"])
def test_missing_pages_get_our_404(client: FlaskClient, url: str) -> None:
    response = client.get(url)
    assert response.status_code == 404
    assert "We could not find that page" in _text(response.data)


def test_unexpected_errors_get_our_500_page(app: Flask) -> None:
    @app.route("/boom")
    def boom() -> str:
        raise RuntimeError("kaboom")

    response = app.test_client().get("/boom")
    assert response.status_code == 500
    text = _text(response.data)
    assert "Something went wrong on our side" in text and "kaboom" not in text


def test_pages_use_only_local_assets(client: FlaskClient, demo_loaded: str) -> None:
    for url in ("/", "/proposals/", "/offers/", "/proposals/1", "/offers/1"):
        html = client.get(url).data.decode()
        assert not re.search(r'(src|href)="(https?:)?//', html), url
    with client.get("/static/css/tandem.css") as css:
        assert css.status_code == 200 and b"--brand" in css.data
    with client.get("/static/favicon.svg") as icon:
        assert icon.status_code == 200


def test_an_offer_past_its_deadline_disappears_before_any_recompute(
    client: FlaskClient, session: Session, demo_loaded: str
) -> None:
    from datetime import date, timedelta

    from app.services import catalogue

    proposal = session.exec(
        select(Proposal).where(Proposal.title.startswith("A Native-Speaker Benchmark"))  # type: ignore[attr-defined]
    ).one()
    (_, best), *_ = catalogue.recommended_offers(session=session, proposal_id=proposal.id, limit=5)
    best.deadline = date.today() - timedelta(days=1)
    session.add(best)
    session.commit()
    text = _text(client.get(f"/proposals/{proposal.id}").data)
    assert best.title not in text


def test_stored_values_read_as_words_on_the_pages(
    client: FlaskClient, make_proposal: Callable[..., Any], make_offer: Callable[..., Any]
) -> None:
    proposal = make_proposal(
        collaboration_kinds=["co_authorship", "engineering_support"],
        lab_resource_level="under_resourced",
    )
    text = _text(client.get(f"/proposals/{proposal.id}").data)
    assert "co-authorship, engineering support" in text
    assert "under-resourced (self-declared)" in text
    assert "co authorship" not in text and "_" not in text.split("Collaboration wanted")[1][:80]
    offer = make_offer(kind="compute+data", access_mode="on_premises", data_domains=["health"])
    text = _text(client.get(f"/offers/{offer.id}").data)
    assert "compute and data" in text.lower() and "on premises" in text
    assert "compute + data" not in text
