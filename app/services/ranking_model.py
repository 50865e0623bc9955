"""The outcome loop in the app: read the recorded decisions, fit and evaluate learned weights
(`matching.outcomes`), record the fit, and say which weights rank now.

A decision is a match someone acted on, graded by how far it got:
dismissed 0; interest from one side 1; introduced (or a collaboration that ended without a
result, or is still talking) 2; agreement signed or work started 3; completed or published 4.
Suggestions nobody answered and withdrawn matches are not decisions. A dismissal for
capacity or timing says less about the pair than one for topic or terms, so it counts half in
fitting. Each decision names the company that answered for the offer (its organisation),
so a per-company adjustment (`matching.outcome_adjustment`) is evaluated beside the weights
alone and recorded in the fit's `evaluation["adjustment"]`. The newest fit decides: when it
was compared with the weights configured now, its adjustment ranks when adopted (better than
weights only by the margin, CI above 0, and no worse than the fixed weights: CI above 0),
else its weights when adopted; otherwise the configured weights rank.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np
import sqlalchemy as sa
from sqlmodel import Session, col, select

from matching.outcome_adjustment import AdjustedRanker, AdjustedWeights, evaluate_adjustment
from matching.outcomes import (
    ADOPTION_MARGIN,
    MIN_TEST_PROPOSALS,
    MIN_TRAIN_PAIRS,
    Decisions,
    LearnedWeights,
    evaluate,
    fit_weights,
)
from matching.scoring import COMPONENTS, OfferAdjustment, ScoreWeights
from models import (
    Collaboration,
    CollaborationStage,
    DeclineReason,
    Match,
    MatchStatus,
    Offer,
    RankingModel,
)

STAGE_GRADES: dict[CollaborationStage, float] = {
    CollaborationStage.introduced: 2.0,
    CollaborationStage.talking: 2.0,
    CollaborationStage.ended_without_result: 2.0,
    CollaborationStage.agreement_signed: 3.0,
    CollaborationStage.started: 3.0,
    CollaborationStage.completed: 4.0,
    CollaborationStage.published: 4.0,
}
# How much a dismissal counts in fitting, by its reason (1 when none was given).
DISMISSAL_WEIGHTS: dict[DeclineReason, float] = {
    DeclineReason.capacity: 0.5,
    DeclineReason.timing: 0.5,
}
DECIDED = (
    MatchStatus.declined,
    MatchStatus.interested_academic,
    MatchStatus.interested_company,
    MatchStatus.introduced,
)


def _timestamp(value: datetime | None) -> float:
    return value.timestamp() if value is not None else float("nan")


def recorded_decisions(*, session: Session) -> Decisions:
    """Every decision recorded so far, as arrays for `matching.outcomes` (see module)."""
    rows = session.exec(
        select(Match, Collaboration, Offer.organisation_id)
        .join(Offer, col(Offer.id) == col(Match.offer_id))
        .join(Collaboration, col(Collaboration.match_id) == col(Match.id), isouter=True)
        .where(col(Match.status).in_(DECIDED))
        .order_by(col(Match.id))
    ).all()
    proposal, components, relevance, when, weight, company = [], [], [], [], [], []
    for match, collaboration, organisation_id in rows:
        if match.status is MatchStatus.declined:
            grade, at = 0.0, match.updated_at
            counts = DISMISSAL_WEIGHTS.get(match.decline_reason_code, 1.0)  # type: ignore[arg-type]
        elif match.status is MatchStatus.introduced:
            grade, at, counts = 2.0, match.introduced_at or match.updated_at, 1.0
            if collaboration is not None:
                grade, at = STAGE_GRADES[collaboration.stage], collaboration.stage_changed_at
        else:
            interested = [
                t for t in (match.academic_interested_at, match.company_interested_at) if t
            ]
            grade, at, counts = 1.0, max(interested, default=match.updated_at), 1.0
        proposal.append(match.proposal_id)
        components.append([float(match.components.get(name, 0.0) or 0.0) for name in COMPONENTS])
        relevance.append(grade)
        when.append(_timestamp(at))
        weight.append(counts)
        company.append(organisation_id)
    return Decisions(
        proposal=np.asarray(proposal, dtype=np.int64),
        components=np.asarray(components, dtype=np.float64).reshape(-1, len(COMPONENTS)),
        relevance=np.asarray(relevance, dtype=np.float64),
        time=np.nan_to_num(np.asarray(when, dtype=np.float64)),
        weight=np.asarray(weight, dtype=np.float64),
        group=np.asarray(company, dtype=np.int64),
    )


def fit_ranking_model(*, session: Session, baseline: ScoreWeights) -> RankingModel:
    """Fit the weights on the recorded decisions, evaluate them on the later ones against
    `baseline` (the configured weights), and record the result (adopted or not). Flushes,
    never commits."""
    decisions = recorded_decisions(session=session)
    result = evaluate(decisions, baseline)
    weights = (fit_weights(decisions) if result.adopt else result.learned_weights) or {}
    model = RankingModel(
        weights={name: round(value, 6) for name, value in weights.items()},
        baseline_version=baseline.version,
        evaluation=result.to_dict(),
        adopted=result.adopt and bool(weights),
        reason=result.reason,
    )
    model.evaluation = {**model.evaluation, "adjustment": _fit_adjustment(decisions, baseline)}
    session.add(model)
    session.flush()
    return model


def _fit_adjustment(decisions: Decisions, baseline: ScoreWeights) -> dict:
    """The per-company adjustment evaluated beside the weights alone; when adopted, refitted
    on every decision at the chosen strength: its shared `weights` and per-company
    `deviations` ({organisation id: C deviations then the bias}), for the engine."""
    result = evaluate_adjustment(decisions, baseline)
    adopt = result.adopt and result.over_fixed[1] > 0
    figures = {
        "adopted": False,
        "reason": result.reason,
        "strength": result.strength,
        "largest_deviation": result.largest_deviation,
        "adjusted_ndcg": result.adjusted_ndcg,
        "weights_ndcg": result.weights_ndcg,
        "fixed_ndcg": result.fixed_ndcg,
        "over_weights": list(result.over_weights),
        "over_fixed": list(result.over_fixed),
    }
    figures = {
        name: (None if isinstance(value, float) and not np.isfinite(value) else value)
        for name, value in figures.items()
    }
    for name in ("over_weights", "over_fixed"):
        figures[name] = [round(v, 6) if np.isfinite(v) else None for v in figures[name]]
    if result.adopt and not adopt:
        figures["reason"] += "; not adopted: not better than the fixed weights (CI above 0)"
    if adopt:
        ranker = AdjustedRanker(result.strength).fit(decisions)
        if ranker.coef_ is not None and ranker.deviation_:
            figures["adopted"] = True
            figures["weights"] = {
                name: round(float(v), 6) for name, v in zip(COMPONENTS, ranker.coef_, strict=True)
            }
            figures["deviations"] = {
                str(group): [round(float(v), 6) for v in row]
                for group, row in ranker.deviation_.items()
            }
    return figures


def latest_model(*, session: Session) -> RankingModel | None:
    return session.exec(
        select(RankingModel).order_by(sa.desc(col(RankingModel.id))).limit(1)
    ).first()


@dataclass(frozen=True)
class RankingState:
    """Which weights rank now and why, for the admin page and the command."""

    weights: ScoreWeights
    model: RankingModel | None
    learned: bool
    summary: str


def ranking_state(*, session: Session, configured: ScoreWeights) -> RankingState:
    """The weights that rank now: the newest fit's when it was adopted against the weights
    configured now, else the configured ones; with a sentence saying which and why."""
    model = latest_model(session=session)
    rule = (
        f"adopted only when NDCG@5 on held-back later decisions is better than the fixed "
        f"weights' by at least {ADOPTION_MARGIN} with the 95% CI above 0"
    )
    if model is None:
        return RankingState(
            configured,
            None,
            False,
            f"No model fitted yet: today's fixed weights rank ({configured.version}). "
            f"A fit needs at least {MIN_TRAIN_PAIRS} preference pairs and "
            f"{MIN_TEST_PROPOSALS} later proposals with mixed answers; it is {rule}.",
        )
    adjustment = model.evaluation.get("adjustment") or {}
    if adjustment.get("adopted") and model.baseline_version == configured.version:
        adjusted = AdjustedWeights(
            model=model.version,
            adjustment=OfferAdjustment(
                {int(group): row for group, row in adjustment["deviations"].items()}
            ),
            **adjustment["weights"],
        )
        return RankingState(
            adjusted,
            model,
            True,
            f"Model {model.version} ranks with its per-company adjustment "
            f"({adjusted.version}): {adjustment['reason']}.",
        )
    if model.adopted and model.baseline_version == configured.version and model.weights:
        learned = LearnedWeights(model=model.version, **model.weights)
        return RankingState(
            learned,
            model,
            True,
            f"Model {model.version} ranks ({learned.version}): {model.reason}.",
        )
    if model.adopted:
        why = (
            f"model {model.version} was fitted against other fixed weights "
            f"({model.baseline_version}); fit again"
        )
    else:
        reason = model.reason.removesuffix("; today's weights stay")
        why = f"the latest fit ({model.version}) was not adopted: {reason}"
    return RankingState(
        configured, model, False, f"Today's fixed weights rank ({configured.version}); {why}."
    )
