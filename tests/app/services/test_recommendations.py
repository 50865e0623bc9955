"""Recommendations on the demo data: only eligible pairs, explained, and incremental refreshes
that agree with a full recompute."""

from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskCliRunner
from sqlmodel import Session, select

from app.services import eligibility, recommendations
from matching import Encoder
from models import (
    IpStance,
    Match,
    MatchStatus,
    Offer,
    OfferKind,
    OfferStatus,
    Proposal,
    ProposalStatus,
)

K = 5


def stored(session: Session) -> dict[tuple[int, int], tuple[float, int | None, int | None]]:
    session.expire_all()
    return {
        (m.proposal_id, m.offer_id): (m.score, m.rank_for_proposal, m.rank_for_offer)
        for m in session.exec(select(Match))
    }


def assert_same(incremental: dict, full: dict) -> None:
    assert set(incremental) == set(full)
    for key, (score, rank_p, rank_o) in full.items():
        assert incremental[key][0] == pytest.approx(score, abs=2e-4), key
        assert incremental[key][1:] == (rank_p, rank_o), key


def test_every_stored_match_is_eligible_and_explained(session: Session, demo_loaded: str) -> None:
    matches = session.exec(select(Match)).all()
    assert matches
    for match in matches:
        details = match.explanation
        assert details["eligible"] is True
        assert details["checks"] and all(check["passed"] for check in details["checks"])
        assert set(details["components"]) == {"proposal", "publications", "lexical", "fit"}
        assert match.algorithm_version.startswith("tandem-2/w-")
        assert match.rank_for_proposal is not None or match.rank_for_offer is not None
    with_terms = [m for m in matches if m.explanation["shared_terms"]]
    assert len(with_terms) > len(matches) * 0.8


def test_proposals_needing_data_only_never_get_compute_only_offers(
    session: Session, demo_loaded: str
) -> None:
    for _match, proposal, offer in session.exec(
        select(Match, Proposal, Offer)
        .join(Proposal, Proposal.id == Match.proposal_id)  # type: ignore[arg-type]
        .join(Offer, Offer.id == Match.offer_id)  # type: ignore[arg-type]
    ):
        if proposal.gpu_hours_needed == 0:
            assert offer.kind != OfferKind.compute, (proposal.title, offer.title)
        if offer.kind != OfferKind.data and proposal.gpu_hours_needed:
            if offer.max_hours_per_project < proposal.gpu_hours_needed:
                assert offer.kind == OfferKind.compute_data and proposal.data_need


def _full(app: Flask, session: Session) -> dict:
    with app.app_context():
        recommendations.recompute_all(
            session=session, encoder=app.extensions["tandem.encoder"], k=K
        )
    session.commit()
    return stored(session)


def test_editing_a_proposal_refreshes_only_what_it_touches_and_agrees_with_full(
    app: Flask, session: Session, demo_loaded: str, fresh_encoder: Encoder
) -> None:
    proposal = session.exec(
        select(Proposal).where(Proposal.title.startswith("Open Instruction-Tuned"))  # type: ignore[attr-defined]
    ).one()
    proposal.abstract = (
        "We will train reinforcement learning agents for warehouse robots that pick and place "
        "parcels, using large-scale simulation and logs of real picking attempts."
    )
    proposal.research_areas = ["robotics"]
    proposal.gpu_hours_needed = 2_000
    proposal.data_need = "Logs of real robot picking attempts, with failures labelled."
    proposal.data_domains = ["robotics"]
    proposal.gpu_memory_min_gb, proposal.gpu_type = None, None
    proposal.ip_stance = IpStance.joint
    session.add(proposal)
    session.commit()

    result = recommendations.refresh_proposal(
        session=session, encoder=fresh_encoder, proposal_id=proposal.id, k=K
    )
    session.commit()
    assert result.proposals == 1
    assert result.offers < len(session.exec(select(Offer)).all())
    incremental = stored(session)
    top = sorted(
        (
            (key, value)
            for key, value in incremental.items()
            if key[0] == proposal.id and value[1] is not None
        ),
        key=lambda item: item[1][1],
    )
    first_offer = session.get(Offer, top[0][0][1])
    assert first_offer.title.startswith("Warehouse picking logs"), first_offer.title
    assert_same(incremental, _full(app, session))


def test_refresh_re_encodes_only_the_edited_text(
    session: Session, demo_loaded: str, fresh_encoder: Encoder
) -> None:
    offer = session.exec(select(Offer).where(Offer.status == OfferStatus.open)).first()
    recommendations.refresh_offer(session=session, encoder=fresh_encoder, offer_id=offer.id, k=K)
    session.commit()
    warmed = fresh_encoder.encoded_count
    offer.description += " We especially welcome proposals on robot learning."
    session.add(offer)
    session.commit()
    result = recommendations.refresh_offer(
        session=session, encoder=fresh_encoder, offer_id=offer.id, k=K
    )
    assert result.texts_encoded == 1
    assert fresh_encoder.encoded_count == warmed + 1


@pytest.mark.parametrize("change", ["close_proposal", "close_offer", "new_offer", "edit_offer"])
def test_incremental_refresh_equals_full_recompute(
    app: Flask, session: Session, demo_loaded: str, make_offer, change: str
) -> None:
    encoder = app.extensions["tandem.encoder"]
    if change == "close_proposal":
        proposal = session.exec(
            select(Proposal).where(Proposal.title.startswith("A shared image corpus"))  # type: ignore[attr-defined]
        ).one()
        proposal.status = ProposalStatus.closed
        session.add(proposal)
        session.commit()
        recommendations.refresh_proposal(
            session=session, encoder=encoder, proposal_id=proposal.id, k=K
        )
    else:
        if change == "new_offer":
            offer = make_offer(
                title="Crop and soil sensor archive with edge GPUs",
                description="Ten years of crop disease photographs, soil sensors and yields "
                "from smallholder farms, with A100 hours to train vision models.",
                kind=OfferKind.compute_data,
                gpu_type="A100",
                data_domains=["agriculture"],
                dataset_description="Labelled photographs of cassava and maize leaves.",
            )
        else:
            offer = session.exec(
                select(Offer).where(Offer.title.startswith("Crop disease imagery"))  # type: ignore[attr-defined]
            ).one()
            if change == "close_offer":
                offer.status = OfferStatus.closed
            else:
                offer.description = (
                    "Compute and speech recordings for research on speech recognition in "
                    "noisy call centres and for hearing aids."
                )
            session.add(offer)
            session.commit()
        recommendations.refresh_offer(session=session, encoder=encoder, offer_id=offer.id, k=K)
    session.commit()
    assert_same(stored(session), _full(app, session))


def test_acted_on_matches_survive_a_refresh(session: Session, demo_loaded: str, app: Flask) -> None:
    match = session.exec(select(Match).where(Match.rank_for_proposal == 1)).first()
    match.status = MatchStatus.interested_academic
    session.add(match)
    offer = session.get(Offer, match.offer_id)
    offer.description = "Completely different: satellite imagery of Arctic sea ice for climate."
    session.add(offer)
    session.commit()
    recommendations.refresh_offer(
        session=session, encoder=app.extensions["tandem.encoder"], offer_id=offer.id, k=K
    )
    session.commit()
    session.refresh(match)
    assert match.status == MatchStatus.interested_academic


def test_explain_command_prints_every_part(
    runner: FlaskCliRunner, session: Session, demo_loaded: str
) -> None:
    match = session.exec(select(Match).where(Match.rank_for_proposal == 1)).first()
    result = runner.invoke(args=["match", "explain", str(match.proposal_id), str(match.offer_id)])
    assert result.exit_code == 0, result.output
    for phrase in ("score", "eligible", "Components", "Shared key terms", "Constraints", "[pass]"):
        assert phrase in result.output
    missing = runner.invoke(args=["match", "explain", "999999", str(match.offer_id)])
    assert missing.exit_code != 0 and "No proposal 999999" in missing.output


def test_demo_exclusion_lists_are_respected(session: Session, demo_loaded: str) -> None:
    from models import User

    offer = session.exec(
        select(Offer).where(Offer.title.startswith("De-identified chest CT"))  # type: ignore[attr-defined]
    ).one()
    assert offer.excluded_institutions == ["eastmoor.example.org"]
    matched_authors = session.exec(
        select(User.email)
        .join(Proposal, Proposal.author_id == User.id)  # type: ignore[arg-type]
        .join(Match, Match.proposal_id == Proposal.id)  # type: ignore[arg-type]
        .where(Match.offer_id == offer.id)
    ).all()
    assert matched_authors and not any(e.endswith("@eastmoor.example.org") for e in matched_authors)
    excluding = session.exec(
        select(Proposal).where(Proposal.title.startswith("Open Instruction-Tuned"))  # type: ignore[attr-defined]
    ).one()
    partners = session.exec(
        select(Offer.organisation_id)
        .join(Match, Match.offer_id == Offer.id)  # type: ignore[arg-type]
        .where(Match.proposal_id == excluding.id)
    ).all()
    from models import Organisation

    meridian = session.exec(
        select(Organisation).where(Organisation.name == "Meridian Reasoning Labs")
    ).one()
    assert meridian.id not in partners


def test_public_summaries_never_itemise_exclusions_or_conflicts(
    session: Session, demo_loaded: str
) -> None:
    from models import User

    author = session.exec(
        select(User).where(User.email.endswith("@eastmoor.example.org"))  # type: ignore[attr-defined]
    ).first()
    proposal = session.exec(select(Proposal).where(Proposal.author_id == author.id)).first()
    summary = eligibility.eligibility_summary(session=session, proposal_id=proposal.id)
    labels = " ".join(label for label, _ in summary.failures)
    assert "excluded" not in labels and "conflict" not in labels.lower()
    assert summary.eligible < summary.candidates


def test_acted_on_match_of_a_closed_proposal_leaves_every_top_k(
    app: Flask, session: Session, demo_loaded: str
) -> None:
    match = session.exec(select(Match).where(Match.rank_for_offer == 1)).first()
    match.status = MatchStatus.interested_company
    proposal = session.get(Proposal, match.proposal_id)
    proposal.status = ProposalStatus.closed
    session.add_all([match, proposal])
    session.commit()
    recommendations.refresh_proposal(
        session=session, encoder=app.extensions["tandem.encoder"], proposal_id=proposal.id, k=K
    )
    session.commit()
    session.refresh(match)
    assert match.status == MatchStatus.interested_company
    assert match.rank_for_proposal is None and match.rank_for_offer is None
    assert_same(stored(session), _full(app, session))


def test_summaries_written_at_recompute_equal_those_counted_live(
    session: Session, demo_loaded: str
) -> None:
    """The "why N are left out" rows a full recompute writes say what evaluating the open
    catalogue now says, for every open proposal and offer."""
    proposals = session.exec(select(Proposal.id).where(Proposal.status == ProposalStatus.open))
    offers = session.exec(select(Offer.id).where(Offer.status == OfferStatus.open))
    checked = 0
    for proposal_id in proposals.all():
        stored_one = eligibility.stored_summary(session=session, proposal_id=proposal_id)
        live = eligibility.eligibility_summary(session=session, proposal_id=proposal_id)
        assert stored_one == live, f"proposal {proposal_id}"
        checked += 1
    for offer_id in offers.all():
        stored_one = eligibility.stored_summary(session=session, offer_id=offer_id)
        assert stored_one == eligibility.eligibility_summary(session=session, offer_id=offer_id)
        checked += 1
    assert checked > 40
