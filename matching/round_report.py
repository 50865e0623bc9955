"""Reading an allocation round: why a proposal got no offer, and what the equity option did.

Pure functions over the arrays of one pass of a round (U unassigned proposals or P proposals,
O offers), so the review page and the CLI can say in plain language what the solver decided.
Scores are the match totals (higher is better); a fit "out of 100" is the score clipped to
[0, 1] times 100, as the pages show it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from matching.eligibility import CONSTRAINTS

# Why a proposal got no offer, in the order they are checked: the first that applies is the
# reason. Each code has a short heading for grouping proposals on the review page.
REASON_HEADINGS: Mapping[str, str] = {
    "no_offers": "No offer of this kind took part",
    "per_project_limit": "Needs more GPU hours than any offer gives one project",
    "not_eligible": "No eligible offer",
    "unverified": "Only offers of unverified organisations fit",
    "dismissed": "Every offer that fits was dismissed",
    "already_served": "Already served by its compute offer",
    "left_out": "Every offer that fits was left out",
    "below_min_score": "Below the round's minimum fit",
    "no_capacity": "Every offer that fits is full",
    "outscored": "Capacity went to higher scores",
}

# What a set of offers failing one hard constraint has in common, as the end of a sentence
# that starts "3 of 5 offers ...".
FAILURE_PHRASES: Mapping[str, str] = {
    "offer_open": "are closed or expired",
    "provides_need": "do not provide what it needs",
    "publication_terms": "do not allow the open publication it requires",
    "code_release": "do not allow the open-source code it requires",
    "ip_terms": "ask for more IP than the academic accepts",
    "hours_per_project": "give fewer GPU hours per project than it needs",
    "gpu_memory": "have less GPU memory than it needs",
    "gpu_type": "have a less capable GPU type than it asks for",
    "capacity_left": "are already full from earlier introductions",
    "same_organisation": "belong to the academic's own organisation",
    "excluded_by_offer": "exclude the academic's institution",
    "excluded_by_proposal": "belong to companies the academic excluded",
}

# Pairs a round itself sets aside although they pass every hard constraint (the keys of
# `left_out` in `explain_unassigned`), as the end of a sentence "2 ...".
LEFT_OUT_PHRASES: Mapping[str, str] = {
    "unverified": "from unverified organisations, which this round leaves out",
    "dismissed": "dismissed by one side",
    "already_served": "already its offer from the compute pass, which also gives data access",
}


@dataclass(frozen=True)
class UnassignedReason:
    """Why one proposal got no offer in a pass.

    `code` is a key of `REASON_HEADINGS`; `text` one plain-language sentence; `best_offer`
    the local index of the best-scoring offer the proposal could have had (-1 when none)
    and `best_fit` that pair's fit out of 100 (None when none)."""

    code: str
    text: str
    best_offer: int = -1
    best_fit: int | None = None

    @property
    def heading(self) -> str:
        return REASON_HEADINGS[self.code]


def fit_out_of_100(score: float) -> int:
    """A score as the whole fit out of 100 the pages show, rounded down so that a score just
    under a threshold never reads as reaching it."""
    if not math.isfinite(score):
        return 0
    return int(math.floor(max(0.0, min(1.0, score)) * 100 + 1e-9))


def _offers(count: int) -> str:
    return "1 offer" if count == 1 else f"{count} offers"


def _hours(value: float) -> str:
    return f"{value:,.0f}"


def explain_unassigned(
    scores: np.ndarray,
    hard_failures: Mapping[str, np.ndarray],
    hours_needed: np.ndarray,
    hours_budget: np.ndarray,
    max_projects: np.ndarray,
    *,
    left_out: Mapping[str, np.ndarray] | None = None,
    min_score: float | None = None,
    max_hours_per_project: np.ndarray | None = None,
    equity: bool = False,
) -> list[UnassignedReason]:
    """One reason per unassigned proposal of a pass, the first of these that applies:

    1. `no_offers`: no offer took part in the pass (O = 0).
    2. `per_project_limit`: every offer fails `hours_per_project`; else `not_eligible`: every
       offer fails some hard constraint (the text counts the commonest failures).
    3. `unverified`, `dismissed`, `already_served` (or `left_out` for a mix): every eligible
       offer was set aside by the round itself.
    4. `below_min_score`: every remaining pair scores <= 0 or below `min_score`.
    5. `no_capacity`: no remaining offer has a project place, or GPU hours for the proposal.
    6. `outscored`: offers it could take exist, and the solver gave their capacity to other
       proposals (higher scores, or the equity option when `equity`).

    Arguments (U proposals to explain, O offers of the pass):
    - `scores`: (U, O) match totals; NaN means no score.
    - `hard_failures`: constraint name (see `matching.eligibility.CONSTRAINTS`) -> (U, O)
      bool, True where the pair fails that constraint.
    - `hours_needed`: (U,) GPU hours (0 for a data need); `hours_budget`: (O,) GPU hours each
      offer could still give in the pass (inf: no limit); `max_projects`: (O,) places left.
    - `left_out`: reason code of `LEFT_OUT_PHRASES` -> (U, O) bool, pairs the round set aside.
    - `max_hours_per_project`: (O,) the offers' limits, to name the largest in the text.
    """
    scores = np.asarray(scores, dtype=np.float64)
    n_rows, n_offers = scores.shape
    hours = np.asarray(hours_needed, dtype=np.float64)
    budget = np.asarray(hours_budget, dtype=np.float64)
    caps = np.asarray(max_projects)
    failures = {
        name: np.asarray(hard_failures[name], dtype=bool)
        for name in CONSTRAINTS
        if name in hard_failures
    }
    set_aside = {code: np.asarray(mask, dtype=bool) for code, mask in (left_out or {}).items()}
    threshold = 0.0 if min_score is None else float(min_score)
    reasons: list[UnassignedReason] = []
    for u in range(n_rows):
        if n_offers == 0:
            reasons.append(
                UnassignedReason("no_offers", "No offer of this kind took part in the round.")
            )
            continue
        failed = np.zeros(n_offers, dtype=bool)
        for matrix in failures.values():
            failed |= matrix[u]
        eligible = ~failed
        if not eligible.any():
            reasons.append(_not_eligible(u, failures, n_offers, hours[u], max_hours_per_project))
            continue
        aside = np.zeros(n_offers, dtype=bool)
        for mask in set_aside.values():
            aside |= mask[u]
        remaining = eligible & ~aside
        if not remaining.any():
            reasons.append(_left_out(u, set_aside, eligible))
            continue
        row = np.where(remaining & np.isfinite(scores[u]), scores[u], -np.inf)
        best = int(np.argmax(row))
        best_fit = fit_out_of_100(row[best])
        good = remaining & np.isfinite(scores[u]) & (scores[u] > 0) & (scores[u] >= threshold)
        if not good.any():
            minimum = f"the round's minimum of {round(threshold * 100)}/100"
            text = (
                f"Its best eligible offer fits {best_fit}/100, below {minimum}."
                if threshold > 0
                else f"Its best eligible offer fits {best_fit}/100: too poor a fit to assign."
            )
            reasons.append(UnassignedReason("below_min_score", text, best, best_fit))
            continue
        room = good & (caps > 0) & (hours[u] <= budget)
        good_row = np.where(good, scores[u], -np.inf)
        best = int(np.argmax(good_row))
        best_fit = fit_out_of_100(good_row[best])
        if not room.any():
            no_places = bool(np.all(caps[good] <= 0))
            what = (
                "no project places left"
                if no_places
                else f"fewer than the {_hours(hours[u])} GPU hours it needs left"
            )
            text = f"Every offer it fits has {what} (its best fit: {best_fit}/100)."
            reasons.append(UnassignedReason("no_capacity", text, best, best_fit))
            continue
        count = int(room.sum())
        others = (
            "proposals the round preferred (higher scores or the equity option)"
            if equity
            else "proposals with higher scores"
        )
        subject = "The one offer it fits" if count == 1 else f"All {count} offers it fits"
        verb = "was" if count == 1 else "were"
        text = f"{subject} {verb} filled by {others} (its best fit: {best_fit}/100)."
        reasons.append(UnassignedReason("outscored", text, best, best_fit))
    return reasons


def _not_eligible(
    u: int,
    failures: Mapping[str, np.ndarray],
    n_offers: int,
    hours: float,
    max_hours_per_project: np.ndarray | None,
) -> UnassignedReason:
    counts = {name: int(matrix[u].sum()) for name, matrix in failures.items()}
    if counts.get("hours_per_project", 0) == n_offers:
        largest = ""
        if max_hours_per_project is not None and len(max_hours_per_project):
            limits = np.asarray(max_hours_per_project, dtype=np.float64)
            limits = limits[np.isfinite(limits)]
            if limits.size:
                largest = f" (the largest limit is {_hours(limits.max())})"
        return UnassignedReason(
            "per_project_limit",
            f"It needs {_hours(hours)} GPU hours, more than any offer gives one project{largest}.",
        )
    common = sorted(
        (name for name, count in counts.items() if count),
        key=lambda name: (-counts[name], CONSTRAINTS.index(name)),
    )
    if common and counts[common[0]] == n_offers:
        everyone = "the only offer" if n_offers == 1 else f"all {n_offers} offers"
        phrase = FAILURE_PHRASES[common[0]]
        if n_offers == 1:
            phrase = _singular(phrase)
        return UnassignedReason("not_eligible", f"No eligible offer: {everyone} {phrase}.")
    parts = [
        f"{counts[name]} of {n_offers} {FAILURE_PHRASES[name]}"
        if counts[name] != 1
        else f"1 of {n_offers} {_singular(FAILURE_PHRASES[name])}"
        for name in common[:3]
    ]
    return UnassignedReason("not_eligible", "No eligible offer: " + "; ".join(parts) + ".")


def _singular(phrase: str) -> str:
    """'are closed' -> 'is closed', 'do not' -> 'does not', 'give' -> 'gives'..."""
    verb, _, rest = phrase.partition(" ")
    singular = {"are": "is", "do": "does", "have": "has"}.get(verb, verb + "s")
    return f"{singular} {rest}"


def _left_out(
    u: int, set_aside: Mapping[str, np.ndarray], eligible: np.ndarray
) -> UnassignedReason:
    counts: dict[str, int] = {}
    claimed = np.zeros_like(eligible)
    for code, mask in set_aside.items():
        mine = mask[u] & eligible & ~claimed
        claimed |= mine
        if mine.any():
            counts[code] = int(mine.sum())
    total = int(eligible.sum())
    if len(counts) == 1:
        code = next(iter(counts))
        if code == "unverified":
            text = (
                f"The {_offers(total)} it is eligible for "
                + ("is" if total == 1 else "are")
                + " from unverified organisations, which this round leaves out."
            )
        elif code == "dismissed":
            text = "One side dismissed the match with every offer it is eligible for."
        else:
            text = "The only data offer it fits is its offer from the compute pass, which "
            text += "also gives data access."
        return UnassignedReason(code, text)
    parts = [f"{count} {LEFT_OUT_PHRASES[code]}" for code, count in counts.items()]
    return UnassignedReason(
        "left_out",
        f"Every offer it is eligible for ({total}) was left out: " + "; ".join(parts) + ".",
    )


@dataclass(frozen=True)
class EquityEffect:
    """What an equity option changed in one pass, against the same pass solved without it.

    `priority_assigned` counts assigned proposals of under-resourced labs (None without
    priority flags); `lowest_fit` is the lowest fit out of 100 among assigned pairs (None when
    nothing was assigned); `total` and `total_plain` are the sums of the assigned scores."""

    assigned: int
    assigned_plain: int
    priority_assigned: int | None
    priority_assigned_plain: int | None
    lowest_fit: int | None
    lowest_fit_plain: int | None
    total: float
    total_plain: float

    @property
    def total_change(self) -> float:
        """The change in the sum of scores as a fraction of the plain sum (<= 0 when the
        option cost score; 0 when the plain sum is 0)."""
        return (self.total - self.total_plain) / self.total_plain if self.total_plain > 0 else 0.0


def equity_effect(
    assignment: np.ndarray,
    plain_assignment: np.ndarray,
    scores: np.ndarray,
    *,
    priority: np.ndarray | None = None,
) -> EquityEffect:
    """Compare an allocation made with an equity option (`assignment`, (P,) offer index or
    -1) with the plain one (`plain_assignment`), over the (P, O) `scores` the solver used
    (original scores, not equity-weighted). `priority` (P,) marks under-resourced labs."""
    scores = np.asarray(scores, dtype=np.float64)

    def read(chosen: np.ndarray) -> tuple[int, float, int | None, int | None]:
        chosen = np.asarray(chosen, dtype=np.int64)
        rows = np.flatnonzero(chosen >= 0)
        values = scores[rows, chosen[rows]] if rows.size else np.zeros(0)
        lowest = fit_out_of_100(float(values.min())) if values.size else None
        flagged = None if priority is None else int(np.count_nonzero(np.asarray(priority)[rows]))
        return int(rows.size), float(values.sum()), flagged, lowest

    assigned, total, flagged, lowest = read(assignment)
    assigned_plain, total_plain, flagged_plain, lowest_plain = read(plain_assignment)
    return EquityEffect(
        assigned=assigned,
        assigned_plain=assigned_plain,
        priority_assigned=flagged,
        priority_assigned_plain=flagged_plain,
        lowest_fit=lowest,
        lowest_fit_plain=lowest_plain,
        total=total,
        total_plain=total_plain,
    )
