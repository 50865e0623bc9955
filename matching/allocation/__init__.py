"""Capacity-constrained allocation of offers to proposals (allocation rounds).

For P proposals and O offers with a score s[p, o] (higher is better):

    maximise    the total score of the assigned (proposal, offer) pairs
    subject to  each proposal gets at most one offer;
                for each offer o, the GPU hours needed by its proposals <= hours_budget[o];
                for each offer o, the number of its proposals <= max_projects[o];
                only allowed pairs are assigned.

A pair is *allowed* when it is eligible, its score is finite, positive and at least
`min_score`, the proposal's hours fit in the offer's whole budget, and the offer takes at
least one project. Pairs scoring <= 0 are never assigned: leaving the proposal unassigned
scores 0, so such a pair can never raise the total, and it would use capacity.

This is a generalised assignment problem with knapsack (GPU-hour) constraints, NP-hard and, on
realistic data (a few large projects fill an offer's budget), hard for a generic MILP solver
to *prove* optimal: HiGHS needs 2-12 s for 100 proposals x 20 offers and does not close the
gap on 1k x 200 in minutes (see bench/allocation.py). Hence two modes:

- `exact`: a 0/1 programme over every allowed pair, solved by HiGHS through
  `scipy.optimize.milp` with sparse constraint matrices, to a relative gap of `MIP_REL_GAP`
  (status "optimal") or until `time_limit` (status "feasible", with HiGHS's gap). The
  heuristic below runs first and its allocation is kept if HiGHS does not beat it in time.
- `sparse`: each proposal's best `candidates_per_proposal` allowed pairs, grown by pricing
  (pairs that the Lagrangian prices say could improve are added), then an LP-guided heuristic:
  a smoothed Lagrangian dual gives offer prices and fractional assignments, a dive fixes the
  near-integral assignments and re-prices the rest, and a knapsack re-optimisation of each
  offer polishes the result. With a `time_limit`, HiGHS then searches the MILP over the
  candidate pairs for the time left and the better allocation is kept.
  `gap` is measured against an upper bound valid for *all* allowed pairs: the Lagrangian
  bound of the offer prices (`_lagrangian_bound`), which is never below the LP relaxation.
- `auto`: `exact` up to `AUTO_EXACT_EDGE_LIMIT` allowed pairs, `sparse` above.

Equity options (`equity=`):

- `"priority"`: proposals flagged in `priority` (self-declared under-resourced labs) have their
  scores multiplied by `1 + equity_weight` in the objective, which is maximised instead.
  `objective` stays in original scores; `equity_cost` = plain objective - `objective`, where
  the plain objective is the best original-score total known (the plain solve, or the equity
  allocation itself if that scores more), so the cost is >= 0.
- `"maxmin"`: lexicographic max-min fairness. Let n be the number of proposals the plain
  allocation serves. (1) Bisect over the distinct allowed scores for the highest threshold t
  at which an allocation serving at least n proposals with pairs scoring >= t is found;
  (2) among those, maximise the total score. The worst-off assigned proposal then scores >= t,
  which is >= the plain allocation's worst assigned score (that allocation witnesses its own
  threshold), and no fewer proposals are served. `equity_cost` is the loss in total score.

Results are deterministic for the same input: pairs are ordered by (proposal, offer), the
solver settings are fixed and every tie is broken by that order. Only a `time_limit` makes the

Modules:

- `result`: what `allocate` returns (`Allocation`) and the per-offer `utilisation` figures.
- `problem`: input checks and the allowed pairs as edge arrays (`_Problem`).
- `prices`: offer prices from a smoothed Lagrangian dual, the upper bound, the candidate pairs.
- `heuristic`: the primal heuristic (LP-guided dive, knapsack re-packing of each offer).
- `solving`: HiGHS over a set of pairs, and how each mode combines it with the heuristic.
- `equity`: lexicographic max-min fairness (`equity="maxmin"`).
- `entry`: `allocate` itself: argument checks, the equity options and the result.
"""

from matching.allocation.entry import (
    AUTO_EXACT_EDGE_LIMIT,
    DEFAULT_CANDIDATES,
    DEFAULT_EQUITY_WEIGHT,
    allocate,
)
from matching.allocation.result import (
    Allocation,
    Equity,
    Mode,
    SolvedMode,
    Status,
    Utilisation,
    utilisation,
)
from matching.allocation.solving import MIP_REL_GAP

__all__ = [
    "AUTO_EXACT_EDGE_LIMIT",
    "DEFAULT_CANDIDATES",
    "DEFAULT_EQUITY_WEIGHT",
    "MIP_REL_GAP",
    "Allocation",
    "Equity",
    "Mode",
    "SolvedMode",
    "Status",
    "Utilisation",
    "allocate",
    "utilisation",
]
