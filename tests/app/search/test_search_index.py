"""Search finds by meaning across the whole public catalogue (the per-process meaning index,
rebuilt when the catalogue version moves) and takes its keyword candidates from an index on
PostgreSQL, without ever showing what the page's own query does not admit."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import numpy as np
import pytest
import sqlalchemy as sa
from sqlmodel import Session

from app.services.search import MEANING_POOL, SearchCriteria, search
from app.services.search_index import MeaningIndex, build_index, meaning_index, update_index
from app.services.search_words import word_condition
from app.services.texts import offer_text, proposal_text
from matching import Encoder
from models import (
    Offer,
    OfferKind,
    OfferStatus,
    Organisation,
    OrganisationKind,
    Proposal,
    ProposalStatus,
    User,
    utcnow,
)

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


def _index(session: Session, encoder: Encoder) -> MeaningIndex:
    """The meaning index as a search would get it now, checked against a whole build of the
    same catalogue: the same ids in the same order, the same vectors."""
    index = meaning_index(session=session, encoder=encoder)
    whole = build_index(session=session, encoder=encoder, version=index.version)
    session.commit()
    for kept, built in ((index.proposals, whole.proposals), (index.offers, whole.offers)):
        assert kept.ids.tolist() == built.ids.tolist()
        assert kept.matrix.shape == built.matrix.shape
        assert np.array_equal(kept.matrix, built.matrix)
    return index


def _vector(index: MeaningIndex, item: Proposal | Offer) -> np.ndarray:
    kind = index.proposals if isinstance(item, Proposal) else index.offers
    return kind.matrix[kind.ids.tolist().index(item.id)]


def test_the_meaning_index_is_updated_from_the_changed_rows_only(
    session: Session,
    encoder: Encoder,
    make_proposal: Callable[..., Any],
    make_offer: Callable[..., Any],
) -> None:
    proposals = [make_proposal(title=f"Proposal {n} on grid batteries") for n in range(4)]
    offers = [make_offer(title=f"Offer {n} of H100 hours") for n in range(3)]
    first = _index(session, encoder)
    assert first.read_texts == 7  # the first index of the process is built whole
    assert first.proposals.ids.tolist() == [p.id for p in proposals]
    before = first.offers.matrix.copy()

    added = make_proposal(title="Protein folding at scale", abstract="Structures of enzymes.")
    index = _index(session, encoder)
    assert index.read_texts == 1  # the new proposal's texts only
    assert np.array_equal(_vector(index, added), encoder.encode([proposal_text(added)])[0])
    assert _found(session, encoder, "enzymes") == [added.id]

    edited = offers[0]
    edited.description = "Hours on our cluster for enzyme structure prediction."
    session.add(edited)
    session.commit()
    index = _index(session, encoder)
    assert index.read_texts == 1
    assert np.array_equal(_vector(index, edited), encoder.encode([offer_text(edited)])[0])
    assert set(_found(session, encoder, "enzyme structure")) >= {edited.id}
    assert np.array_equal(first.offers.matrix, before)  # an earlier index is never modified

    withdrawn, hidden = proposals[0], offers[1]
    withdrawn.status = ProposalStatus.closed
    hidden.hidden = True
    session.add_all([withdrawn, hidden])
    session.commit()
    index = _index(session, encoder)
    assert index.read_texts == 0  # rows dropped, nothing read
    assert withdrawn.id not in index.proposals.ids.tolist()
    assert hidden.id not in index.offers.ids.tolist()
    assert set(_found(session, encoder, "grid batteries", kind="proposals")) == {
        p.id for p in proposals[1:]
    }

    # An author suspended: the proposal's own row did not change, it is no longer public.
    suspended = proposals[1]
    author = session.get(User, suspended.author_id)
    assert author is not None
    author.active = False
    session.add(author)
    session.commit()
    index = _index(session, encoder)
    assert index.read_texts == 0
    assert suspended.id not in index.proposals.ids.tolist()
    assert suspended.id not in _found(session, encoder, "grid batteries", kind="proposals")

    # An organisation removed (organisations have no visibility of their own): its offers go.
    gone = offers[0]
    session.execute(sa.delete(Organisation).where(Organisation.id == gone.organisation_id))
    session.commit()
    session.expire_all()
    index = _index(session, encoder)
    assert index.read_texts == 0
    assert index.offers.ids.tolist() == [offers[2].id]
    assert _found(session, encoder, "enzyme structure") == [added.id]


def test_the_meaning_index_is_built_whole_when_it_cannot_be_updated(
    session: Session,
    encoder: Encoder,
    make_proposal: Callable[..., Any],
    make_offer: Callable[..., Any],
) -> None:
    proposals = [make_proposal(title=f"Proposal {n}") for n in range(3)]
    make_offer()
    index = _index(session, encoder)

    def reads(previous: MeaningIndex | None) -> int:
        made = update_index(
            session=session, encoder=encoder, version=index.version, previous=previous
        )
        return made.read_texts

    other = MeaningIndex(
        index.version, "another-model", index.proposals, index.offers, index.read_texts
    )
    assert reads(None) == 4  # nothing kept
    assert reads(other) == 4  # kept for another model
    assert reads(index) == 0  # nothing changed

    for proposal in proposals:  # most rows changed: one whole build
        proposal.abstract = f"A new abstract for {proposal.title}."
        session.add(proposal)
    session.commit()
    assert _index(session, encoder).read_texts == 4


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
