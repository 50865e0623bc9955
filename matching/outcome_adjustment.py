"""A learned adjustment beside the learned weights: each company (the offer's organisation)
may weigh the components its own way and answer yes more or less readily than the rest.

The score of a decision on company g's offer is x . (w + d_g) + b_g: the shared weights w
(as `PairwiseRanker`'s) plus the company's deviations d_g and bias b_g, fitted jointly from
the same preference pairs (logistic loss on score differences, RankNet with a linear scorer).
The deviations carry an L2 penalty `strength` times the shared weights' (1/C on standardised
differences), so a company with few decisions keeps d_g, b_g ~ 0 and is ranked by w alone; an
unknown company is. The strength is chosen by a time-ordered validation inside the training
part (its earliest 70% to fit, the rest to score NDCG@5), taking the strongest shrinkage
within one standard error of the best (`STRENGTHS`; infinity = no adjustment at all).

`evaluate_adjustment` compares on held-back later decisions (as `outcomes.evaluate`): the
adjusted ranking against today's fixed weights AND against the weights-only ranking, with
percentile-bootstrap 95% CIs of the paired per-proposal differences. The adjustment is
adopted only when it beats weights-only by `ADOPTION_MARGIN` with the CI's lower bound
above 0. An adopted adjustment ranks in the engine as `AdjustedWeights` (the shared
weights carrying a `matching.scoring.OfferAdjustment`, per offer column).

Pure numpy/scipy/scikit-learn: no Flask, no database.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import sparse
from sklearn.linear_model import LogisticRegression

from matching.outcomes import (
    ADOPTION_MARGIN,
    MIN_TEST_PROPOSALS,
    MIN_TRAIN_PAIRS,
    Decisions,
    K,
    LearnedWeights,
    PairwiseRanker,
    bootstrap_interval,
    ndcg_per_proposal,
    preference_index,
    time_split,
)
from matching.scoring import COMPONENTS, OfferAdjustment, ScoreWeights

# Penalty on a company's deviations relative to the shared weights' penalty, weakest first.
STRENGTHS = (1.0, 3.0, 10.0, 30.0, 100.0, 300.0, 1000.0, float("inf"))
VALIDATION_SHARE = 0.7


def _extended(x: np.ndarray) -> np.ndarray:
    """Components plus a constant column (the company's bias)."""
    return np.hstack([x, np.ones((len(x), 1))])


class AdjustedRanker:
    """Shared non-negative weights plus per-company deviations and biases (module docstring).

    After `fit`: `coef_` (C,) the shared weights (>= 0, summing to 1) or None when no
    component has a positive effect; `deviation_` {company: (C + 1,) deviations of the
    weights then bias}, on the same scale as `coef_`; `n_pairs_` the preference pairs used."""

    def __init__(self, strength: float = 100.0, C: float = 1.0) -> None:
        self.strength = strength
        self.C = C

    def fit(self, decisions: Decisions) -> AdjustedRanker:
        if decisions.group is None:
            raise ValueError("the adjustment needs each decision's company (Decisions.group)")
        better, worse, weights = preference_index(decisions)
        self.n_pairs_ = len(better)
        self.coef_: np.ndarray | None = None
        self.deviation_: dict = {}
        if not len(better):
            return self
        x = decisions.features
        c = x.shape[1]
        companies, company = np.unique(np.asarray(decisions.group), return_inverse=True)
        adjusted = np.isfinite(self.strength)
        scale = (x[better] - x[worse]).std(axis=0)
        scale[scale == 0] = 1.0
        base = (x[better] - x[worse]) / scale
        columns = [sparse.csr_matrix(base)]
        if adjusted:
            # Dividing a column by sqrt(strength) multiplies its coefficient's penalty by it.
            shrink = np.r_[1 / scale, 1.0] / np.sqrt(self.strength)
            columns.append(
                self._block(_extended(x) * shrink, company, better, worse, len(companies))
            )
        design = sparse.hstack(columns).tocsr()
        design = sparse.vstack([design, -design]).tocsr()
        y = np.r_[np.ones(len(better)), np.zeros(len(better))]
        active = np.ones(c, dtype=bool)
        while active.any():
            keep = self._keep(active, len(companies) if adjusted else 0)
            model = LogisticRegression(C=self.C, fit_intercept=False, max_iter=2000)
            model.fit(design[:, keep], y, sample_weight=np.r_[weights, weights])
            full = np.zeros(design.shape[1])
            full[keep] = model.coef_[0]
            coef = full[:c] / scale
            if (coef[active] > 0).all():
                total = coef.sum()
                self.coef_ = coef / total
                if adjusted:
                    blocks = full[c:].reshape(len(companies), c + 1) * shrink / total
                    self.deviation_ = dict(zip(companies.tolist(), blocks, strict=True))
                break
            # A component that hurts on average is left out, deviations and all.
            active &= coef > 0
        return self

    @staticmethod
    def _block(
        values: np.ndarray, company: np.ndarray, better: np.ndarray, worse: np.ndarray, n: int
    ) -> sparse.csr_matrix:
        """(M, n * (C + 1)): the better decision's values in its company's block, minus the
        worse one's in its own (summed when both are the same company)."""
        width = values.shape[1]
        offsets = np.arange(width)
        pairs = np.arange(len(better))
        rows = np.r_[np.repeat(pairs, width), np.repeat(pairs, width)]
        cols = np.r_[
            (company[better][:, None] * width + offsets).ravel(),
            (company[worse][:, None] * width + offsets).ravel(),
        ]
        data = np.r_[values[better].ravel(), -values[worse].ravel()]
        return sparse.csr_matrix((data, (rows, cols)), shape=(len(better), n * width))

    @staticmethod
    def _keep(active: np.ndarray, companies: int) -> np.ndarray:
        per_company = np.r_[active, True]
        return np.r_[active, np.tile(per_company, companies)].astype(bool)

    def score(self, decisions: Decisions) -> np.ndarray:
        """(N,) adjusted totals (higher ranks first); an unknown company gets no adjustment."""
        if self.coef_ is None:
            raise ValueError("the ranker found no positive weights; it cannot score")
        x = decisions.features
        total = x @ self.coef_
        if self.deviation_ and decisions.group is not None:
            zero = np.zeros(x.shape[1] + 1)
            rows = np.array([self.deviation_.get(g, zero) for g in np.asarray(decisions.group)])
            total += np.einsum("nc,nc->n", _extended(x), rows)
        return total

    def largest_deviation(self) -> float:
        """The largest |deviation| or |bias| of any company (0 without an adjustment)."""
        if not self.deviation_:
            return 0.0
        return float(np.abs(np.array(list(self.deviation_.values()))).max())


def choose_strength(
    train: Decisions, *, strengths: tuple[float, ...] = STRENGTHS, C: float = 1.0, k: int = K
) -> tuple[float, dict[float, float]]:
    """The strongest shrinkage whose NDCG@k on the later part of `train` is within one
    standard error of the best, and each strength's mean NDCG@k there."""
    fit_part, check = time_split(train, VALIDATION_SHARE)
    scores: dict[float, dict] = {}
    for strength in strengths:
        ranker = AdjustedRanker(strength, C).fit(fit_part)
        if ranker.coef_ is not None:
            scores[strength] = ndcg_per_proposal(check, ranker.score(check), k)
    scores = {s: v for s, v in scores.items() if v}
    if not scores:
        return float("inf"), {}
    means = {s: float(np.mean(list(v.values()))) for s, v in scores.items()}
    best = max(means, key=means.get)
    proposals = sorted(scores[best])
    chosen = best
    for strength in sorted(scores, reverse=True):
        gap = np.array([scores[best][p] - scores[strength][p] for p in proposals])
        if strength == best or (len(gap) > 1 and gap.mean() <= gap.std(ddof=1) / np.sqrt(len(gap))):
            chosen = strength
            break
    return chosen, means


@dataclass(frozen=True)
class AdjustmentEvaluation:
    """Adjusted vs weights-only vs fixed on held-back decisions, and the verdict on the
    adjustment (`adopt`: it beats weights-only by the margin with the CI above 0)."""

    train_pairs: int
    test_proposals: int
    strength: float
    largest_deviation: float
    adjusted_ndcg: float
    weights_ndcg: float
    fixed_ndcg: float
    over_fixed: tuple[float, float, float]  # mean, CI low, CI high of adjusted - fixed
    over_weights: tuple[float, float, float]  # mean, CI low, CI high of adjusted - weights
    weights_over_fixed: tuple[float, float, float]
    adopt: bool
    reason: str
    validation: dict = field(default_factory=dict, repr=False, compare=False)


def evaluate_adjustment(
    decisions: Decisions,
    fixed: ScoreWeights,
    *,
    train_share: float = 0.7,
    k: int = K,
    margin: float = ADOPTION_MARGIN,
    min_train_pairs: int = MIN_TRAIN_PAIRS,
    min_test_proposals: int = MIN_TEST_PROPOSALS,
    strengths: tuple[float, ...] = STRENGTHS,
    C: float = 1.0,
    seed: int = 0,
) -> AdjustmentEvaluation:
    """Fit both models on the earlier decisions, compare on the later ones (module docstring)."""
    train, test = time_split(decisions, train_share)
    nothing = (float("nan"),) * 3
    weights_only = PairwiseRanker(C=C).fit(train)
    fixed_coef = np.array([fixed.normalised()[name] for name in COMPONENTS])
    fixed_ndcg = ndcg_per_proposal(test, test.features @ fixed_coef, k)
    if (
        weights_only.n_pairs_ < min_train_pairs
        or len(fixed_ndcg) < min_test_proposals
        or weights_only.coef_ is None
    ):
        return AdjustmentEvaluation(
            weights_only.n_pairs_, len(fixed_ndcg), float("inf"), 0.0, *(float("nan"),) * 3,
            nothing, nothing, nothing, False,
            "too few decisions (or none that a component predicts) to fit an adjustment; "
            "today's weights stay",
        )  # fmt: skip
    strength, validation = choose_strength(train, strengths=strengths, C=C, k=k)
    adjusted = AdjustedRanker(strength, C).fit(train)
    if adjusted.coef_ is None:  # the joint fit lost every component: no adjustment
        adjusted, strength = AdjustedRanker(float("inf"), C).fit(train), float("inf")
    adjusted_ndcg = ndcg_per_proposal(test, adjusted.score(test), k)
    weights_ndcg = ndcg_per_proposal(test, weights_only.score(test.features), k)
    proposals = sorted(fixed_ndcg)

    def paired(a: dict, b: dict) -> tuple[float, float, float]:
        differences = np.array([a[p] - b[p] for p in proposals])
        return (float(differences.mean()), *bootstrap_interval(differences, seed=seed))

    over_weights = paired(adjusted_ndcg, weights_ndcg)
    adopt = bool(over_weights[1] > 0 and over_weights[0] >= margin)
    verdict = (
        "the adjustment is better by the margin (the engine applies per-company weights)"
        if adopt
        else f"the adjustment is not better by the margin ({margin}, CI low > 0); weights only"
    )
    mean, low, high = over_weights
    return AdjustmentEvaluation(
        train_pairs=adjusted.n_pairs_,
        test_proposals=len(proposals),
        strength=strength,
        largest_deviation=adjusted.largest_deviation(),
        adjusted_ndcg=float(np.mean([adjusted_ndcg[p] for p in proposals])),
        weights_ndcg=float(np.mean([weights_ndcg[p] for p in proposals])),
        fixed_ndcg=float(np.mean([fixed_ndcg[p] for p in proposals])),
        over_fixed=paired(adjusted_ndcg, fixed_ndcg),
        over_weights=over_weights,
        weights_over_fixed=paired(weights_ndcg, fixed_ndcg),
        adopt=adopt,
        reason=(
            f"NDCG@{k} on {len(proposals)} later proposals: adjusted - weights only = "
            f"{mean:+.3f} (95% CI {low:+.3f} to {high:+.3f}), {verdict}"
        ),
        validation=validation,
    )


class AdjustedWeights(LearnedWeights):
    """Learned weights with a per-company adjustment: they score like their weights, and a
    `Matcher` given them applies `adjustment` too; the version names both
    (`tandem-2/learned-3/w-<hash>/adj-<hash>`)."""

    adjustment: OfferAdjustment

    def __init__(self, *, model: str, adjustment: OfferAdjustment, **weights: float) -> None:
        super().__init__(model=model, **weights)
        object.__setattr__(self, "adjustment", adjustment)

    @property
    def version(self) -> str:
        return f"{super().version}/{self.adjustment.tag}"
