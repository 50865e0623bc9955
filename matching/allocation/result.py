"""What `allocate` returns (`Allocation`) and how much of each offer it uses (`utilisation`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

Mode = Literal["auto", "exact", "sparse"]
SolvedMode = Literal["exact", "sparse"]
Status = Literal["optimal", "feasible", "empty", "infeasible", "error"]
Equity = Literal["priority", "maxmin"]


@dataclass(frozen=True)
class Allocation:
    """The result of `allocate` (P proposals, O offers).

    - `assignment`: (P,) int64, the offer index given to each proposal, or -1.
    - `objective`: total original score of the assigned pairs.
    - `status`: "optimal" (proven up to `MIP_REL_GAP`), "feasible" (a valid allocation without
      that proof: sparse mode, or a time limit), "empty" (no proposal, no offer or no allowed
      pair), "infeasible" or "error" (see `message`; nothing is assigned).
    - `gap`: (bound - optimised objective) / max(bound, tiny) >= 0, where `bound` is an upper
      bound on the optimised objective over all allowed pairs.
    - `optimised_objective`: what the solver maximised: `objective`, except with
      `equity="priority"` (weighted scores).
    - `mode`: the mode used, "exact" or "sparse".
    - `hours_used`: (O,) GPU hours given out per offer; `projects_used`: (O,) int64.
    - `equity_cost`: with an equity option, `plain_objective - objective` (original scores,
      >= 0); None otherwise. `plain_assignment` is the allocation without equity (P,), so a
      review can show what equity changed.
    - `min_assigned_score`: the lowest original score among assigned pairs (None if none).
    - `solve_seconds`: wall-clock seconds for the whole call.
    - `allowed_edges`: allowed pairs; `solver_edges`: the most pairs one solver stage (the
      heuristic's candidate set, or HiGHS's programme) worked on.
    """

    assignment: np.ndarray
    objective: float
    status: Status
    gap: float
    mode: SolvedMode
    hours_used: np.ndarray
    projects_used: np.ndarray
    equity_cost: float | None = None
    solve_seconds: float = 0.0
    message: str = ""
    bound: float = 0.0
    optimised_objective: float = 0.0
    plain_objective: float | None = None
    plain_assignment: np.ndarray | None = None
    min_assigned_score: float | None = None
    allowed_edges: int = 0
    solver_edges: int = 0

    @property
    def unassigned(self) -> np.ndarray:
        """Indices of the proposals that got no offer, ascending (int64)."""
        return np.flatnonzero(self.assignment < 0)

    @property
    def assigned_count(self) -> int:
        """Number of proposals that got an offer."""
        return int(np.count_nonzero(self.assignment >= 0))


@dataclass(frozen=True)
class Utilisation:
    """Per-offer use of capacity, all (O,) arrays, and the unassigned proposals.

    `hours_share` and `projects_share` are used / available, in [0, 1] (0 where nothing was
    available); `unassigned` holds proposal indices.
    """

    hours_used: np.ndarray
    hours_budget: np.ndarray
    hours_share: np.ndarray
    projects_used: np.ndarray
    max_projects: np.ndarray
    projects_share: np.ndarray
    unassigned: np.ndarray


def utilisation(
    allocation: Allocation, hours_budget: np.ndarray, max_projects: np.ndarray
) -> Utilisation:
    """How much of each offer's GPU-hour budget (O,) and project cap (O,) is allocated."""
    budget = np.asarray(hours_budget, dtype=np.float64)
    caps = np.asarray(max_projects, dtype=np.int64)
    if budget.shape != allocation.hours_used.shape:
        raise ValueError(f"hours_budget must have shape {allocation.hours_used.shape}")
    if caps.shape != allocation.projects_used.shape:
        raise ValueError(f"max_projects must have shape {allocation.projects_used.shape}")
    positive_budget = np.where(budget > 0, budget, 1.0)
    hours_share = np.where(budget > 0, allocation.hours_used / positive_budget, 0.0)
    projects_share = np.where(caps > 0, allocation.projects_used / np.maximum(caps, 1), 0.0)
    return Utilisation(
        hours_used=allocation.hours_used,
        hours_budget=budget,
        hours_share=hours_share,
        projects_used=allocation.projects_used,
        max_projects=caps,
        projects_share=projects_share,
        unassigned=allocation.unassigned,
    )
