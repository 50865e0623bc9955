"""Search finds by meaning across the whole public catalogue (the per-process meaning index,
rebuilt when the catalogue version moves) and takes its keyword candidates from an index on
PostgreSQL, without ever showing what the page's own query does not admit."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlmodel import Session

from app.services.search import MEANING_POOL, SearchCriteria, search
from app.services.search_words import word_condition
from matching import Encoder
from models import Offer, OfferKind, OfferStatus, OrganisationKind, Proposal, utcnow

MOLECULES = {
    "title": "GPU time for molecular structure prediction",
    "description": "We offer A100 hours for research groups predicting the three-dimensional "
    "structure of molecules and biomolecules.",
}
OPEN = {
    "kind": OfferKind.compute,
    "status": OfferStatus.open,
    "gpu_hours_budget": 1_000,
    "max_hours_per_project": 500,
}
NEWER = MEANING_POOL + 10
"""More newer offers than the newest-items pool of the old search held."""


def _found(session: Session, encoder: Encoder, text: str, **criteria: Any) -> list[int]:
    results = search(
        session=session,
        encoder=encoder,
        criteria=SearchCriteria(text, **criteria),
        per_page=100,
    )
    session.commit()  # as a request does: the item vectors stored on the way are kept
    return [hit.item.id for hit in results.page.items]


def _newer_offers(session: Session, make_organisation: Callable[..., Any]) -> int:
    """`NEWER` offers about call-centre speech, created now; their organisation's id."""
    organisation = make_organisation(kind=OrganisationKind.company, name="Voice Works")
    session.add_all(
        Offer(
            **OPEN,
            organisation_id=organisation.id,
            title=f"Speech recognition for call centres, line {n}",
            description="We fund work on transcribing noisy customer phone calls in many accents.",
        )
        for n in range(NEWER)
    )
    session.commit()
    return int(organisation.id)


@pytest.mark.semantic
def test_an_old_item_sharing_no_query_word_is_found_by_meaning_and_hidden_at_once(
    session: Session,
    encoder: Encoder,
    make_offer: Callable[..., Any],
    make_organisation: Callable[..., Any],
) -> None:
    old = make_offer(**MOLECULES, created_at=utcnow() - timedelta(days=400))
    _newer_offers(session, make_organisation)

    assert _found(session, encoder, "protein folding") == [old.id]
    assert _found(session, encoder, "protein folding", gpu_type="TPU") == []  # filters hold

    # Hidden by a writer the catalogue version does not watch: the meaning index still holds
    # the offer, but the page's own query no longer admits it.
    untracked = sa.create_engine(session.get_bind().engine.url)
    try:
        with untracked.begin() as connection:
            connection.execute(sa.update(Offer).where(Offer.id == old.id).values(hidden=True))
    finally:
        untracked.dispose()
    session.expire_all()
    assert _found(session, encoder, "protein folding") == []


@pytest.mark.semantic
def test_the_meaning_index_follows_the_catalogue_version(
    session: Session,
    encoder: Encoder,
    make_offer: Callable[..., Any],
    make_organisation: Callable[..., Any],
) -> None:
    old = make_offer(title="Archive of call recordings", created_at=utcnow() - timedelta(days=400))
    organisation_id = _newer_offers(session, make_organisation)
    assert _found(session, encoder, "protein folding") == []  # the index is built here

    old.description = MOLECULES["description"]  # now about molecules: found at once
    session.add(old)
    session.commit()
    assert _found(session, encoder, "protein folding") == [old.id]

    added = Offer(
        **OPEN,
        organisation_id=organisation_id,
        created_at=utcnow() - timedelta(days=500),
        title="Compute for enzyme design",
        description="Hours on our cluster to model how amino-acid chains take their shape.",
    )
    session.add(added)
    session.commit()
    assert set(_found(session, encoder, "protein folding")) == {old.id, added.id}


def test_keyword_candidates_come_from_the_full_text_index_on_postgresql(
    session: Session, make_proposal: Callable[..., Any]
) -> None:
    tricky = make_proposal(
        title="Low-resource translation",
        abstract="Write to ml@lab.example or see https://example.org/grid_batteries (v1.5).",
        gpu_type="A100",
    )
    make_proposal(title="Allowing follow-ups", abstract="Below the line, nothing to see here.")

    def matching(*words: str) -> set[int]:
        condition = word_condition(session, Proposal, words)
        return set(session.exec(sa.select(Proposal.id).where(condition)).scalars())

    # Every whole-word match is a candidate, URLs, addresses and hyphenated words included.
    for word in ("low", "resource", "lab", "example", "grid_batteries", "5", "a100"):
        assert tricky.id in matching(word), word

    if session.get_bind().dialect.name != "postgresql":
        return  # SQLite keeps its LIKE scan (the demo's size)
    assert matching("low") == {tricky.id}  # whole words: "allowing", "below" do not hold it
    condition = word_condition(session, Proposal, ("translation", "grids"))
    statement = sa.select(Proposal.id).where(condition)
    compiled = statement.compile(
        dialect=session.get_bind().dialect, compile_kwargs={"literal_binds": True}
    )
    session.execute(sa.text("SET LOCAL enable_seqscan = off"))
    plan = "\n".join(session.execute(sa.text(f"EXPLAIN {compiled}")).scalars())
    session.rollback()
    assert "ix_proposal_search_words" in plan, plan
