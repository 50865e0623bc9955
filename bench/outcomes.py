"""The outcome loop offline: learned weights against today's fixed weights on a simulated
decision history whose true preferences the matcher cannot see.

    .venv/bin/python bench/outcomes.py                    # ~1 min
    .venv/bin/python bench/outcomes.py --sizes 100,400 --seed 3

The generator (`simulate_with_tastes`), documented so the figures can be judged:
- `offers` offers, each of its own company; proposals arrive uniformly over a year.
- Each (proposal, offer) pair has the four score components (`matching.scoring.COMPONENTS`):
  the proposal-text cosine ~ Beta(2, 4); the publications' affinity and the lexical cosine
  correlate with it (0.7 and 0.5 of it plus independent noise); the resource fit ~ Beta(2, 2),
  independent of the topic (in [0, 1] like the app's).
- Hidden ground truth: people value the components with TRUE_WEIGHTS (the fit counts far more
  than today's weights give it), and each company has its own taste, a Dirichlet draw around
  TRUE_WEIGHTS (concentration `--taste`, lower = more varied). The utility of a pair is its
  company's taste . components + Gaussian noise (sd `--noise`). Neither the true weights nor
  the tastes are given to the learner; it only sees components and decisions.
- What the matcher shows: each proposal's `shown` best offers by today's fixed weights (as
  the app does). Each shown pair gets a decision with probability `--respond` (else no
  response, which is not a decision); the grade follows the utility's quantile among all
  shown pairs: bottom 45% dismissed (0), then interest (1), introduction (2), agreement (3),
  outcome (4) at 45/70/85/95%. A decision is taken 1-60 days after the proposal arrives,
  later grades later.
Printed per history size: decisions, NDCG@5 on the later 30% of decisions (per proposal,
mean) for the learned weights, the fixed weights and the hidden true weights (the mean
taste), the paired difference learned - fixed with its bootstrap 95% CI, and whether the
adoption rule adopts. A second line: the learned per-company adjustment
(`matching.outcome_adjustment`; each decision's company is the offer), the hidden company
tastes themselves (the ceiling), adjusted - learned and adjusted - fixed with their CIs,
whether the adjustment is adopted over weights only, the shrinkage validation chose (L2x,
inf = none) and the largest deviation. Histories at the default taste spread (`--taste`),
at a strong one (`--strong-taste`) and with the fixed weights as the truth.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from matching.outcome_adjustment import evaluate_adjustment  # noqa: E402
from matching.outcomes import Decisions, evaluate, ndcg_per_proposal, time_split  # noqa: E402
from matching.scoring import COMPONENTS, ScoreWeights  # noqa: E402

TRUE_WEIGHTS = np.array([0.35, 0.1, 0.05, 0.5])  # proposal, publications, lexical, fit
GRADE_QUANTILES = (0.45, 0.70, 0.85, 0.95)
DAY = 86_400.0


def simulate_with_tastes(
    proposals: int,
    *,
    offers: int = 60,
    shown: int = 8,
    respond: float = 0.7,
    taste: float = 10.0,
    noise: float = 0.05,
    fixed: ScoreWeights | None = None,
    truth: np.ndarray = TRUE_WEIGHTS,
    seed: int = 0,
) -> tuple[Decisions, np.ndarray]:
    """A decision history of `proposals` proposals (see the module docstring), each decision's
    company as its group, and the hidden (offers, C) company tastes."""
    rng = np.random.default_rng(seed)
    fixed_coef = np.array([(fixed or ScoreWeights()).normalised()[c] for c in COMPONENTS])
    tastes = rng.dirichlet(truth * taste, size=offers)  # (O, C)
    text = rng.beta(2, 4, size=(proposals, offers))
    components = np.stack(
        [
            text,
            np.clip(0.7 * text + rng.normal(0.1, 0.08, text.shape), 0, 1),
            np.clip(0.5 * text + rng.normal(0.05, 0.08, text.shape), 0, 1),
            rng.beta(2, 2, size=text.shape),
        ],
        axis=-1,
    )  # (P, O, C)
    fixed_total = components @ fixed_coef
    top = np.argsort(-fixed_total, axis=1)[:, :shown]  # (P, shown)
    rows = np.repeat(np.arange(proposals), shown)
    columns = top.ravel()
    pair_components = components[rows, columns]
    utility = np.einsum("nc,nc->n", pair_components, tastes[columns])
    utility += rng.normal(0, noise, len(utility))
    grade = np.searchsorted(np.quantile(utility, GRADE_QUANTILES), utility).astype(float)
    arrival = rng.uniform(0, 365 * DAY, proposals)
    delay = rng.uniform(1, 30, len(rows)) * DAY * (1 + grade / 4)
    responded = rng.random(len(rows)) < respond
    decisions = Decisions(
        proposal=rows[responded],
        components=pair_components[responded],
        relevance=grade[responded],
        time=(arrival[rows] + delay)[responded],
        group=columns[responded],
    )
    return decisions, tastes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="30,100,300,1000", help="proposals per history")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--taste", type=float, default=10.0)
    parser.add_argument("--strong-taste", type=float, default=1.0)
    parser.add_argument("--noise", type=float, default=0.05)
    args = parser.parse_args()
    fixed = ScoreWeights()
    fixed_coef = np.array([fixed.normalised()[c] for c in COMPONENTS])
    print(f"fixed weights {fixed.normalised()}")
    fit_first = f"hidden true weights {TRUE_WEIGHTS.tolist()} (fit matters more)"
    for title, truth, taste in (
        (fit_first, TRUE_WEIGHTS, args.taste),
        (fit_first, TRUE_WEIGHTS, args.strong_taste),
        ("hidden true weights = today's fixed weights (nothing to learn)", fixed_coef, args.taste),
    ):
        print(f"\n{title}; company taste concentration {taste} (lower = more varied)")
        print(
            f"{'proposals':>9} {'decisions':>9} {'test':>5} {'learned':>8} {'fixed':>7} "
            f"{'true':>6} {'learned-fixed [95% CI]':>28} {'adopt':>5} {'s':>5}  learned"
        )
        print(
            f"{'':>9} {'adjusted':>9} {'tastes':>6} {'adj-learned [95% CI]':>26} "
            f"{'adj-fixed [95% CI]':>26} {'adopt':>5} {'L2x':>6} {'max|dev|':>8}"
        )
        for size in (int(part) for part in args.sizes.split(",")):
            report(size, truth, taste, fixed, args)


def _interval(values: tuple[float, float, float]) -> str:
    return f"{values[0]:>+8.3f} [{values[1]:+.3f}; {values[2]:+.3f}]"


def report(
    size: int, truth: np.ndarray, taste: float, fixed: ScoreWeights, args: argparse.Namespace
) -> None:
    started = time.perf_counter()
    decisions, tastes = simulate_with_tastes(
        size, taste=taste, noise=args.noise, fixed=fixed, truth=truth, seed=args.seed + size
    )
    result = evaluate(decisions, fixed, seed=args.seed)
    _, test = time_split(decisions, 0.7)
    true_ndcg = ndcg_per_proposal(test, test.features @ truth)
    taste_ndcg = ndcg_per_proposal(
        test, np.einsum("nc,nc->n", test.features, tastes[np.asarray(test.group)])
    )
    held = list(result.per_proposal)
    true_mean = np.mean([true_ndcg[p] for p in held]) if held else np.nan
    taste_mean = np.mean([taste_ndcg[p] for p in held]) if held else np.nan
    weights = (
        " ".join(f"{c[:4]}={w:.2f}" for c, w in result.learned_weights.items())
        if result.learned_weights
        else "-"
    )
    adjustment = evaluate_adjustment(decisions, fixed, seed=args.seed)
    print(
        f"{size:>9} {result.decisions:>9} {result.test_proposals:>5} "
        f"{result.learned_ndcg:>8.3f} {result.fixed_ndcg:>7.3f} {true_mean:>6.3f} "
        f"{result.difference:>+8.3f} [{result.ci_low:+.3f}; {result.ci_high:+.3f}] "
        f"{'yes' if result.adopt else 'no':>5} {time.perf_counter() - started:>5.1f}  {weights}"
    )
    if not result.learned_weights:
        print(f"{'':>9} {result.reason}")
        return
    print(
        f"{'':>9} {adjustment.adjusted_ndcg:>9.3f} {taste_mean:>6.3f} "
        f"{_interval(adjustment.over_weights)} {_interval(adjustment.over_fixed)} "
        f"{'yes' if adjustment.adopt else 'no':>5} {adjustment.strength:>6g} "
        f"{adjustment.largest_deviation:>8.3f}"
    )


if __name__ == "__main__":
    main()
