"""The demo data set: believable, loaded idempotently, and recommended sensibly."""

from __future__ import annotations

from collections import Counter

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskCliRunner
from sqlmodel import Session, func, select

from app.services import catalogue, demo, eligibility
from models import (
    Match,
    MatchStatus,
    Offer,
    OfferKind,
    OfferStatus,
    Organisation,
    Proposal,
    ProposalStatus,
    Publication,
    Role,
    User,
)


def _counts(session: Session) -> dict[str, int]:
    return {
        table.__name__: session.exec(select(func.count()).select_from(table)).one()
        for table in (Organisation, User, Publication, Proposal, Offer, Match)
    }


def test_demo_data_is_broad_enough_to_believe() -> None:
    data = demo.read_demo_data()
    proposals, offers = data["proposals"], data["offers"]
    assert len(proposals) >= 40
    assert len(offers) >= 20
    areas = Counter(p["research_areas"][0] for p in proposals)
    for field in (
        "reinforcement learning",
        "natural language processing",
        "computer vision",
        "machine learning for health",
        "climate and environment",
        "robotics",
        "games",
    ):
        assert areas[field] >= 1, field
    assert {o["kind"] for o in offers} == {k.value for k in OfferKind}
    assert len({o["publication_terms"] for o in offers}) == 3
    assert all(o["gpu_type"] for o in offers if o["kind"] != "data")
    academics = [u for u in data["users"] if u["role"] == "academic"]
    assert all(2 <= len(u["publications"]) <= 4 for u in academics)
    assert len({p["abstract"] for p in proposals}) == len(proposals)


def test_load_then_load_again_adds_nothing(
    runner: FlaskCliRunner, session: Session, demo_loaded: str
) -> None:
    assert "Demo logins" in demo_loaded
    assert demo.DEMO_PASSWORD in demo_loaded
    first = _counts(session)
    assert first["Proposal"] >= 40 and first["Offer"] >= 20 and first["Match"] > 0
    again = runner.invoke(args=["demo", "load"])
    assert again.exit_code == 0, again.output
    assert "added 0 organisations, 0 users, 0 publications, 0 proposals, 0 offers" in again.output
    assert _counts(session) == first


def test_if_empty_leaves_a_database_with_data_alone(
    runner: FlaskCliRunner, session: Session, make_user
) -> None:
    make_user()
    result = runner.invoke(args=["demo", "load", "--if-empty"])
    assert result.exit_code == 0, result.output
    assert "not loaded" in result.output
    assert session.exec(select(func.count()).select_from(Proposal)).one() == 0


def test_demo_accounts_have_working_argon2id_passwords(session: Session, demo_loaded: str) -> None:
    from argon2 import PasswordHasher

    admin = session.exec(select(User).where(User.role == Role.admin)).one()
    assert admin.password_hash.startswith("$argon2id$")
    assert PasswordHasher().verify(admin.password_hash, demo.DEMO_PASSWORD)


@pytest.mark.semantic
@pytest.mark.parametrize(
    ("proposal_title", "expected_offer"),
    [
        ("A Native-Speaker Benchmark for Instruction", "Compute for low-resource and multilingual"),
        ("An open foundation model for low-dose chest CT", "De-identified chest CT"),
        ("Yield forecasting for smallholder plots", "Multi-season field sensor"),
        ("Robust Speech Recognition for Italian", "Accented and code-switched conversational"),
        ("Learning to Recover: Failure-Aware Imitation", "Warehouse picking logs"),
        ("Continental-scale forest degradation alerts", "Multispectral satellite archive"),
    ],
)
def test_recommendations_are_sensible(
    session: Session, demo_loaded: str, proposal_title: str, expected_offer: str
) -> None:
    proposal = session.exec(
        select(Proposal).where(Proposal.title.startswith(proposal_title))  # type: ignore[attr-defined]
    ).one()
    top = catalogue.recommended_offers(session=session, proposal_id=proposal.id, limit=3)
    assert any(offer.title.startswith(expected_offer) for _, offer in top), [
        o.title for _, o in top
    ]


def test_every_open_proposal_gets_its_eligible_offers_up_to_k(
    session: Session, demo_loaded: str
) -> None:
    """Up to k recommendations each: exactly min(k, number of eligible counterparts)."""
    open_proposals = session.exec(
        select(Proposal).where(Proposal.status == ProposalStatus.open)
    ).all()
    open_offers = session.exec(select(Offer).where(Offer.status == OfferStatus.open)).all()
    with_recommendations = 0
    for proposal in open_proposals:
        top = catalogue.recommended_offers(session=session, proposal_id=proposal.id, limit=5)
        summary = eligibility.eligibility_summary(session=session, proposal_id=proposal.id)
        assert len(top) == min(5, summary.eligible), proposal.title
        assert [m.score for m, _ in top] == sorted((m.score for m, _ in top), reverse=True)
        with_recommendations += bool(top)
    assert with_recommendations >= 0.8 * len(open_proposals)
    for offer in open_offers:
        top = catalogue.recommended_proposals(session=session, offer_id=offer.id, limit=5)
        summary = eligibility.eligibility_summary(session=session, offer_id=offer.id)
        assert len(top) == min(5, summary.eligible), offer.title
    closed_or_draft = session.exec(
        select(func.count())
        .select_from(Match)
        .join(Proposal, Proposal.id == Match.proposal_id)  # type: ignore[arg-type]
        .where(sa.not_(Proposal.status.in_([ProposalStatus.open, ProposalStatus.matched])))  # type: ignore[attr-defined]
    ).one()
    assert closed_or_draft == 0


def test_recompute_reuses_cached_embeddings_and_keeps_acted_on_matches(
    runner: FlaskCliRunner, session: Session, demo_loaded: str
) -> None:
    # The lowest-scoring suggestion is outside most top-k lists; once the academic has shown
    # interest it must survive a recompute.
    weakest = session.exec(select(Match).order_by(Match.score)).first()  # type: ignore[arg-type]
    weakest.status = MatchStatus.interested_academic
    session.add(weakest)
    session.commit()
    before = {(m.proposal_id, m.offer_id, m.score) for m in session.exec(select(Match))}

    result = runner.invoke(args=["match", "recompute"])
    assert result.exit_code == 0, result.output
    assert "(0 texts encoded)" in result.output
    session.expire_all()
    after = {(m.proposal_id, m.offer_id, m.score) for m in session.exec(select(Match))}
    assert after == before
    assert session.get(Match, weakest.id).status == MatchStatus.interested_academic


def test_outside_development_the_demo_admin_gets_a_random_password_shown_once(
    app: Flask, session: Session
) -> None:
    """A public instance loaded with the demo data must not let whoever read the README sign
    in as its administrator."""
    import re

    from argon2 import PasswordHasher
    from argon2.exceptions import VerifyMismatchError

    from app import create_app

    production = create_app({**app.config, "TANDEM_ENV": "production"})
    production.extensions["tandem.encoder"] = app.extensions["tandem.encoder"]
    runner = production.test_cli_runner()
    first = runner.invoke(args=["demo", "load"])
    assert first.exit_code == 0, first.output
    assert demo.DEMO_PASSWORD not in first.output
    shown = re.search(r"password for all: (\S+), shown only this once", first.output)
    assert shown, first.output
    admin = session.exec(select(User).where(User.role == Role.admin)).one()
    hasher = PasswordHasher()
    assert hasher.verify(admin.password_hash, shown[1])
    with pytest.raises(VerifyMismatchError):
        hasher.verify(admin.password_hash, demo.DEMO_PASSWORD)
    again = runner.invoke(args=["demo", "load"])
    assert shown[1] not in again.output and "shown once, when they were loaded" in again.output
    production.extensions["tandem.engine"].dispose()
