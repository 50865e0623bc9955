"""The outcome loop: learn the score's weights from what people decided, and adopt them only
when they rank held-back decisions measurably better than today's fixed weights.

A *decision* is one (proposal, offer) pair someone acted on, with the pair's score components
(`matching.scoring.COMPONENTS`, as stored on the match), a graded relevance (0 = dismissed,
higher = got further: interest, introduction, agreement, outcome) and the time it was taken.

- `PairwiseRanker` fits a linear score over the components from pairs of decisions on the
  same proposal (the one that got further should score higher): logistic regression on
  component differences (RankNet with a linear scorer), non-negative by an active set, so the
  result is a valid `ScoreWeights`.
- `evaluate` splits the decisions by time (the earliest `train_share` to fit, the later ones
  held back), ranks each held-back proposal's decided offers by the fitted weights and by the
  fixed weights, and compares NDCG@5 per proposal (sklearn's `ndcg_score`, linear gains,
  ties averaged): the mean paired difference with a percentile-bootstrap 95% CI.
- The adoption rule (`ADOPTION_MARGIN`): adopt when the CI's lower bound is above 0 AND the
  mean gain is at least +0.01 NDCG@5; with too few decisions (`MIN_TRAIN_PAIRS`,
  `MIN_TEST_PROPOSALS`) nothing is fitted and today's weights stay.

A learned per-company adjustment beside these weights, and its own evaluation against
weights only, is in `matching.outcome_adjustment`.

Pure numpy/scikit-learn: no Flask, no database.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import ndcg_score

from matching.scoring import ALGORITHM, COMPONENTS, ScoreWeights

K = 5
ADOPTION_MARGIN = 0.01
MIN_TRAIN_PAIRS = 30
MIN_TEST_PROPOSALS = 10
BOOTSTRAP_RESAMPLES = 2000


@dataclass(frozen=True)
class Decisions:
    """N decisions as arrays: `proposal` (N,) group ids, `components` (N, C) in
    `COMPONENTS` order (NaN read as 0), `relevance` (N,) graded (0 = no; higher = further),
    `time` (N,) any increasing number (e.g. POSIX seconds), `weight` (N,) how much a decision
    counts in fitting (1 by default; e.g. less for a dismissal for timing), `group` (N,) who
    decided on the offer side (the offer's organisation; None when unknown), which only the
    learned adjustment (`matching.outcome_adjustment`) reads."""

    proposal: np.ndarray
    components: np.ndarray
    relevance: np.ndarray
    time: np.ndarray
    weight: np.ndarray | None = None
    group: np.ndarray | None = None

    def __post_init__(self) -> None:
        n = len(self.proposal)
        shapes = {
            "components": np.shape(self.components),
            "relevance": np.shape(self.relevance),
            "time": np.shape(self.time),
        }
        if shapes["components"] not in ((n, len(COMPONENTS)), (0,)) or any(
            shape != (n,) for name, shape in shapes.items() if name != "components"
        ):
            raise ValueError(f"decision arrays disagree in shape: {n} proposals, {shapes}")

    def __len__(self) -> int:
        return len(self.proposal)

    @property
    def features(self) -> np.ndarray:
        """(N, C) float64 components, NaN as 0."""
        values = np.asarray(self.components, dtype=np.float64)
        return np.nan_to_num(values.reshape(-1, len(COMPONENTS)))

    @property
    def weights(self) -> np.ndarray:
        return np.ones(len(self)) if self.weight is None else np.asarray(self.weight, float)

    def take(self, index: np.ndarray) -> Decisions:
        return Decisions(
            proposal=np.asarray(self.proposal)[index],
            components=self.features[index],
            relevance=np.asarray(self.relevance, dtype=np.float64)[index],
            time=np.asarray(self.time, dtype=np.float64)[index],
            weight=self.weights[index],
            group=None if self.group is None else np.asarray(self.group)[index],
        )


def _groups(proposal: np.ndarray) -> list[np.ndarray]:
    """Row indices of each proposal's decisions."""
    if not len(proposal):
        return []
    order = np.argsort(proposal, kind="stable")
    sorted_ids = proposal[order]
    starts = np.flatnonzero(sorted_ids[1:] != sorted_ids[:-1]) + 1
    return np.split(order, starts)


def preference_index(decisions: Decisions) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows (better (M,), worse (M,)) of every pair of decisions on the same proposal where
    the first got further than the second, and each pair's weight (M,) (the smaller of the
    two decisions' weights)."""
    relevance, weight = np.asarray(decisions.relevance), decisions.weights
    better_rows, worse_rows = [], []
    for rows in _groups(np.asarray(decisions.proposal)):
        if len(rows) < 2:
            continue
        i, j = np.nonzero(relevance[rows][:, None] > relevance[rows][None, :])
        better_rows.append(rows[i])
        worse_rows.append(rows[j])
    if not better_rows:
        return np.zeros(0, int), np.zeros(0, int), np.zeros(0)
    better, worse = np.concatenate(better_rows), np.concatenate(worse_rows)
    return better, worse, np.minimum(weight[better], weight[worse])


def preference_pairs(decisions: Decisions) -> tuple[np.ndarray, np.ndarray]:
    """Component differences (M, C) of every pair from `preference_index` and each pair's
    weight (M,)."""
    better, worse, pair_weights = preference_index(decisions)
    x = decisions.features
    return x[better] - x[worse], pair_weights


class PairwiseRanker:
    """A linear, non-negative score over the components, fitted so that within a proposal
    the decision that got further scores higher (logistic loss on component differences,
    L2-regularised with strength 1/C on standardised differences).

    `coef_` (C,) are the weights on the raw components (>= 0, summing to 1), or None when no
    component has a positive effect; `n_pairs_` the number of preference pairs used."""

    def __init__(self, C: float = 1.0) -> None:
        self.C = C

    def fit(self, decisions: Decisions) -> PairwiseRanker:
        differences, weights = preference_pairs(decisions)
        self.n_pairs_ = len(differences)
        self.coef_: np.ndarray | None = None
        if not len(differences):
            return self
        scale = differences.std(axis=0)
        scale[scale == 0] = 1.0
        standard = differences / scale
        # Both orientations, so the model needs no intercept and sees both classes.
        x = np.concatenate([standard, -standard])
        y = np.r_[np.ones(len(standard)), np.zeros(len(standard))]
        sample_weight = np.r_[weights, weights]
        active = np.ones(x.shape[1], dtype=bool)
        while active.any():
            model = LogisticRegression(C=self.C, fit_intercept=False, max_iter=1000)
            model.fit(x[:, active], y, sample_weight=sample_weight)
            coef = np.zeros(x.shape[1])
            coef[active] = model.coef_[0] / scale[active]
            if (coef[active] > 0).all():
                self.coef_ = coef / coef.sum()
                break
            # A component that hurts is left out and the rest refitted (weights stay >= 0).
            active &= coef > 0
        return self

    def score(self, components: np.ndarray) -> np.ndarray:
        """(N,) fitted totals of (N, C) components (higher ranks first)."""
        if self.coef_ is None:
            raise ValueError("the ranker found no positive weights; it cannot score")
        return np.nan_to_num(np.asarray(components, dtype=np.float64)) @ self.coef_


def ndcg_per_proposal(decisions: Decisions, scores: np.ndarray, k: int = K) -> dict:
    """{proposal: NDCG@k of its decided offers ranked by `scores`} for every proposal with
    at least two decisions of different relevance (others say nothing about a ranking).
    Gains are the relevance grades; tied scores share their positions' average gain."""
    result: dict = {}
    proposal = np.asarray(decisions.proposal)
    relevance = np.asarray(decisions.relevance, dtype=np.float64)
    for rows in _groups(proposal):
        if len(rows) < 2 or np.ptp(relevance[rows]) == 0:
            continue
        result[proposal[rows[0]]] = float(
            ndcg_score(relevance[rows][None, :], np.asarray(scores)[rows][None, :], k=k)
        )
    return result


def bootstrap_interval(
    differences: np.ndarray, *, resamples: int = BOOTSTRAP_RESAMPLES, seed: int = 0
) -> tuple[float, float]:
    """Percentile-bootstrap 95% CI of the mean of `differences` (resampling proposals)."""
    differences = np.asarray(differences, dtype=np.float64)
    if not len(differences):
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    means = differences[rng.integers(0, len(differences), (resamples, len(differences)))].mean(
        axis=1
    )
    low, high = np.percentile(means, [2.5, 97.5])
    return float(low), float(high)


@dataclass(frozen=True)
class Evaluation:
    """The offline comparison on held-back decisions and the verdict.

    `learned_weights` is the model fitted on the training part (None when none could be);
    `adopt` says whether the rule holds; `reason` says why in one sentence."""

    decisions: int
    train_decisions: int
    test_decisions: int
    train_pairs: int
    test_proposals: int
    learned_ndcg: float
    fixed_ndcg: float
    difference: float
    ci_low: float
    ci_high: float
    learned_weights: dict[str, float] | None
    adopt: bool
    reason: str
    k: int = K
    margin: float = ADOPTION_MARGIN
    per_proposal: dict = field(default_factory=dict, repr=False, compare=False)

    def to_dict(self) -> dict:
        values = {
            name: getattr(self, name)
            for name in self.__dataclass_fields__
            if name not in ("per_proposal",)
        }
        return {
            name: (round(value, 6) if isinstance(value, float) and np.isfinite(value) else value)
            for name, value in values.items()
            if not (isinstance(value, float) and not np.isfinite(value))
        }


def time_split(decisions: Decisions, train_share: float) -> tuple[Decisions, Decisions]:
    """The earliest `train_share` of the decisions (by time, ties by position) and the rest."""
    order = np.argsort(np.asarray(decisions.time, dtype=np.float64), kind="stable")
    cut = int(round(len(order) * train_share))
    return decisions.take(order[:cut]), decisions.take(order[cut:])


def evaluate(
    decisions: Decisions,
    fixed: ScoreWeights,
    *,
    train_share: float = 0.7,
    k: int = K,
    margin: float = ADOPTION_MARGIN,
    min_train_pairs: int = MIN_TRAIN_PAIRS,
    min_test_proposals: int = MIN_TEST_PROPOSALS,
    C: float = 1.0,
    seed: int = 0,
) -> Evaluation:
    """Fit on the earlier decisions, compare with `fixed` on the later ones (see module)."""
    train, test = time_split(decisions, train_share)
    ranker = PairwiseRanker(C=C).fit(train)
    fixed_coef = np.array([fixed.normalised()[name] for name in COMPONENTS])
    fixed_ndcg = ndcg_per_proposal(test, test.features @ fixed_coef, k)
    base = {
        "decisions": len(decisions),
        "train_decisions": len(train),
        "test_decisions": len(test),
        "train_pairs": ranker.n_pairs_,
        "test_proposals": len(fixed_ndcg),
        "k": k,
        "margin": margin,
    }
    nothing = float("nan")
    if ranker.n_pairs_ < min_train_pairs or len(fixed_ndcg) < min_test_proposals:
        reason = (
            f"too few decisions to learn from: {ranker.n_pairs_} preference pairs to fit "
            f"(at least {min_train_pairs} needed) and {len(fixed_ndcg)} later proposals to "
            f"test on (at least {min_test_proposals}); today's weights stay"
        )
        return Evaluation(
            **base,
            learned_ndcg=nothing,
            fixed_ndcg=float(np.mean(list(fixed_ndcg.values()))) if fixed_ndcg else nothing,
            difference=nothing,
            ci_low=nothing,
            ci_high=nothing,
            learned_weights=None,
            adopt=False,
            reason=reason,
        )
    if ranker.coef_ is None:
        return Evaluation(
            **base,
            learned_ndcg=nothing,
            fixed_ndcg=float(np.mean(list(fixed_ndcg.values()))),
            difference=nothing,
            ci_low=nothing,
            ci_high=nothing,
            learned_weights=None,
            adopt=False,
            reason="no component predicts the decisions; today's weights stay",
        )
    learned_ndcg = ndcg_per_proposal(test, ranker.score(test.features), k)
    proposals = sorted(fixed_ndcg)
    differences = np.array([learned_ndcg[p] - fixed_ndcg[p] for p in proposals])
    low, high = bootstrap_interval(differences, seed=seed)
    mean = float(differences.mean())
    adopt = bool(low > 0 and mean >= margin)
    verdict = (
        "better by the margin: adopted"
        if adopt
        else f"not better by the margin (CI low > 0 and gain >= {margin}); today's weights stay"
    )
    return Evaluation(
        **base,
        learned_ndcg=float(np.mean([learned_ndcg[p] for p in proposals])),
        fixed_ndcg=float(np.mean([fixed_ndcg[p] for p in proposals])),
        difference=mean,
        ci_low=low,
        ci_high=high,
        learned_weights=dict(zip(COMPONENTS, map(float, ranker.coef_), strict=True)),
        adopt=adopt,
        reason=(
            f"NDCG@{k} on {len(proposals)} later proposals: learned - fixed = {mean:+.3f} "
            f"(95% CI {low:+.3f} to {high:+.3f}), {verdict}"
        ),
        per_proposal={p: (learned_ndcg[p], fixed_ndcg[p]) for p in proposals},
    )


def fit_weights(decisions: Decisions, *, C: float = 1.0) -> dict[str, float] | None:
    """The weights fitted on every decision (what is deployed once `evaluate` says adopt)."""
    ranker = PairwiseRanker(C=C).fit(decisions)
    if ranker.coef_ is None:
        return None
    return dict(zip(COMPONENTS, map(float, ranker.coef_), strict=True))


class LearnedWeights(ScoreWeights):
    """Score weights fitted from decisions. They score like any `ScoreWeights`; their
    `version` names the model too (`tandem-2/learned-3/w-<hash>`), so a stored match says
    which model ranked it."""

    model: str

    def __init__(self, *, model: str, **weights: float) -> None:
        super().__init__(**weights)
        object.__setattr__(self, "model", model)

    @property
    def version(self) -> str:
        payload = json.dumps(self.normalised(), sort_keys=True).encode()
        return f"{ALGORITHM}/{self.model}/w-{hashlib.sha256(payload).hexdigest()[:10]}"
