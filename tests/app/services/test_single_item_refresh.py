"""Re-ranking one item on a worker's kept catalogue (`app.services.snapshots`): after every
edit, the stored matches equal those of a full recompute, whichever of two workers (each with
its own kept copy) takes the job, and a job reads again only the rows that changed."""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np
import pytest
from flask import Flask
from sqlmodel import Session, select

from app.services import proposals, publications, recommendations
from app.services.corpus import Snapshot, load_snapshot
from app.services.rematching import Rematch
from app.services.snapshots import SnapshotCache
from matching.lexical import TfidfSimilarity
from models import Match, MatchStatus, Offer, OfferKind, OfferStatus, Proposal, Publication

K = 5


def stored(session: Session) -> dict[tuple[int, int], tuple[float, int | None, int | None]]:
    session.expire_all()
    return {
        (m.proposal_id, m.offer_id): (m.score, m.rank_for_proposal, m.rank_for_offer)
        for m in session.exec(select(Match))
    }


def full(app: Flask, session: Session) -> dict:
    recommendations.recompute_all(session=session, encoder=app.extensions["tandem.encoder"], k=K)
    session.commit()
    return stored(session)


def assert_equal_to_full(app: Flask, session: Session, *workers: SnapshotCache) -> None:
    session.commit()
    for worker in workers:
        kept, _ = worker.matcher(session=session, encoder=app.extensions["tandem.encoder"])
        assert_same_snapshot(kept, load_snapshot(session=session))
    incremental = stored(session)
    expected = full(app, session)
    assert set(incremental) == set(expected)
    for key, (score, *ranks) in expected.items():
        assert incremental[key][0] == pytest.approx(score, abs=1e-4), key
        assert list(incremental[key][1:]) == ranks, key


def assert_same_snapshot(kept: Snapshot, read: Snapshot) -> None:
    """The kept snapshot, field by field, is the one read from the database now."""
    assert [p.id for p in kept.proposals] == [p.id for p in read.proposals]
    assert [o.id for o in kept.offers] == [o.id for o in read.offers]
    for name in ("proposal_texts", "offer_texts", "author_publications", "publication_titles"):
        assert list(getattr(kept.corpus, name)) == list(getattr(read.corpus, name)), name
    assert {p: sorted(o) for p, o in kept.corpus.set_aside.items()} == {
        p: sorted(o) for p, o in read.corpus.set_aside.items()
    }
    for part in ("proposals", "offers", "fit"):
        kept_part, read_part = getattr(kept.corpus, part), getattr(read.corpus, part)
        for field in dataclasses.fields(kept_part):
            mine, theirs = getattr(kept_part, field.name), getattr(read_part, field.name)
            if isinstance(mine, np.ndarray):
                assert mine.dtype == theirs.dtype, (part, field.name)
                assert np.array_equal(mine, theirs, equal_nan=mine.dtype.kind in "fmM"), field.name
            else:
                assert list(mine) == list(theirs), (part, field.name)


def test_edits_re_ranked_by_two_workers_equal_a_full_recompute(
    app: Flask, session: Session, demo_loaded: str, make_offer
) -> None:
    workers = [SnapshotCache(), SnapshotCache()]
    turns = itertools.cycle(workers)
    encoder = app.extensions["tandem.encoder"]

    def rematch() -> Rematch:
        return Rematch(encoder=encoder, k=K, snapshots=next(turns))

    def reads() -> int:
        return sum(worker.reads for worker in workers)

    # Both workers build their copy once (whole catalogue read), on a first re-ranking.
    first = session.exec(select(Proposal).order_by(Proposal.id)).first()
    for _ in workers:
        rematch().proposal(session, first.id)
    assert_equal_to_full(app, session, *workers)
    warm = reads()
    assert warm > 100

    # A new proposal, by a demo academic whose proposals already have matches.
    proposal = proposals.create_proposal(
        session=session,
        author_id=first.author_id,
        data={
            "title": "Speech recognition for noisy call centres",
            "abstract": "We adapt speech recognisers to noisy call-centre audio and hearing "
            "aids, with transcribed recordings and self-supervised pretraining.",
            "research_areas": ["speech"],
            "gpu_hours_needed": 1500,
            "data_need": "Transcribed call-centre recordings",
            "data_domains": ["speech"],
            "ip_stance": "open",
        },
        publish=True,
        rematch=rematch(),
    )
    assert_equal_to_full(app, session, *workers)
    # The other worker had not seen it yet: it reads it (and nothing else) before its job.
    offer = session.exec(
        select(Offer).where(Offer.title.startswith("Crop disease imagery"))  # type: ignore[attr-defined]
    ).one()
    offer.description = (
        "Compute and speech recordings for research on speech recognition in noisy call "
        "centres and for hearing aids; zyxglottal phoneme archives included."
    )
    session.add(offer)
    session.flush()
    rematch().offer(session, offer.id)
    assert_equal_to_full(app, session, *workers)

    # Close an offer that the new proposal ranked.
    ranked = session.exec(
        select(Match).where(Match.proposal_id == proposal.id, Match.rank_for_proposal == 1)
    ).one()
    closed = session.get(Offer, ranked.offer_id)
    closed.status = OfferStatus.closed
    session.add(closed)
    session.flush()
    rematch().offer(session, closed.id)
    assert_equal_to_full(app, session, *workers)

    # Delete a publication of an author: each of the author's proposals is re-ranked.
    publication = session.exec(
        select(Publication).where(Publication.author_id == first.author_id)
    ).first()
    assert publication is not None
    publications.delete_publication(
        session=session,
        author_id=first.author_id,
        publication_id=publication.id,
        rematch=rematch(),
    )
    assert_equal_to_full(app, session, *workers)

    # A company declines a suggestion: the pair is set aside, the next offer moves up.
    match = session.exec(
        select(Match).where(Match.proposal_id == proposal.id, Match.rank_for_proposal == 1)
    ).one()
    match.status = MatchStatus.declined
    session.add(match)
    session.flush()
    rematch().proposal(session, proposal.id)
    assert_equal_to_full(app, session, *workers)

    # A new offer, whose text brings words no other text has.
    new = make_offer(
        title="Quorvex hydrophone recordings with A100 hours",
        description="Underwater quorvex hydrophone recordings of speech-like whale calls, with "
        "A100 hours to train recognisers.",
        kind=OfferKind.compute_data,
        gpu_type="A100",
        data_domains=["speech"],
        dataset_description="Labelled hydrophone recordings.",
    )
    rematch().offer(session, new.id)
    assert_equal_to_full(app, session, *workers)

    # Each job read again only what changed since its worker's last job, never the catalogue.
    assert reads() - warm < 30


def test_an_extended_lexical_model_scores_as_one_fitted_on_every_text() -> None:
    old = ["graph neural networks for molecules", "speech recognition in noisy rooms"]
    new = ["zyxglottal speech archives for recognition", "molecules and quorvex graphs"]
    kept = TfidfSimilarity(use_idf=False).fit(old).extend([*old, *new])
    refitted = TfidfSimilarity(use_idf=False).fit([*old, *new])
    texts = [*old, *new]
    assert kept.similarity(texts, texts) == pytest.approx(
        refitted.similarity(texts, texts), abs=1e-6
    )
    assert kept.similarity([new[0]], [new[0]])[0, 0] == pytest.approx(1.0)
    with pytest.raises(ValueError):
        TfidfSimilarity().fit(old).extend(new)
    # A model fitted on texts without a single term learns its first terms.
    empty = TfidfSimilarity(use_idf=False).fit(["", "the"]).extend(["graph networks"])
    assert empty.similarity(["graph networks"], ["networks graph", "the"]) == pytest.approx(
        np.array([[1.0, 0.0]])
    )


def test_a_warmed_worker_reads_and_embeds_only_what_changed(
    session: Session, demo_loaded: str, fresh_encoder
) -> None:
    cache = SnapshotCache()
    cache.warm(session=session, encoder=fresh_encoder)
    session.commit()
    reads, encoded = cache.reads, fresh_encoder.encoded_count
    offer = session.exec(select(Offer).where(Offer.status == OfferStatus.open)).first()
    offer.description += " We especially welcome proposals on robot learning."
    session.add(offer)
    session.commit()
    recommendations.refresh_offer(
        session=session, encoder=fresh_encoder, offer_id=offer.id, k=K, snapshots=cache
    )
    assert cache.reads - reads == 1
    assert fresh_encoder.encoded_count - encoded == 1
