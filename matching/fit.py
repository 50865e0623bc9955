"""Resource fit: how well an offer covers what a proposal needs, for all pairs at once.

Each part is a (P, O) float array in [0, 1] (1: fully covered) with a (P, O) boolean mask of
where it applies; `fit` is the mean of the parts that apply to a pair (1.0 where none does:
nothing is left unmet).

An offer is judged on what it offers: the compute parts (hours, memory) apply only to offers
with compute, and the data part (domains) only to offers with data. A compute-only offer is
not marked down because the proposal also needs data, since an allocation round pairs a
proposal with one compute and one data offer; whether the catalogue covers each need at all
is told to the proposal's author separately.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

import numpy as np

from matching.eligibility import OfferFacts, ProposalFacts

DAYS_PER_MONTH = 30.44


@dataclass(frozen=True)
class FitInputs:
    """Per proposal (length P) and per offer (length O) quantities the fit is computed from.

    Hours are GPU hours, memory GB per GPU (NaN: not stated), dates as numpy datetime64[D]
    (NaT: not stated), domains as sets of labels.
    """

    hours_needed: np.ndarray
    memory_needed_gb: np.ndarray
    needs_data: np.ndarray
    proposal_domains: Sequence[frozenset[str]]
    start: np.ndarray
    duration_months: np.ndarray
    has_compute: np.ndarray
    has_data: np.ndarray
    max_hours_per_project: np.ndarray
    memory_gb: np.ndarray
    offer_domains: Sequence[frozenset[str]]
    available_until: np.ndarray

    @classmethod
    def from_facts(
        cls,
        proposals: ProposalFacts,
        offers: OfferFacts,
        *,
        proposal_domains: Sequence[frozenset[str]],
        start: np.ndarray,
        duration_months: np.ndarray,
        offer_domains: Sequence[frozenset[str]],
        available_until: np.ndarray,
    ) -> FitInputs:
        """Fit inputs sharing the hours, memory and kind columns of the eligibility facts."""
        return cls(
            hours_needed=proposals.gpu_hours_needed,
            memory_needed_gb=proposals.gpu_memory_min_gb,
            needs_data=proposals.needs_data,
            proposal_domains=proposal_domains,
            start=start,
            duration_months=duration_months,
            has_compute=offers.has_compute,
            has_data=offers.has_data,
            max_hours_per_project=offers.max_hours_per_project,
            memory_gb=offers.gpu_memory_gb,
            offer_domains=offer_domains,
            available_until=available_until,
        )

    def take(self, rows: np.ndarray, offers: np.ndarray) -> FitInputs:
        """The inputs restricted to some proposals (`rows`) and offers (integer indices)."""
        return FitInputs(
            hours_needed=self.hours_needed[rows],
            memory_needed_gb=self.memory_needed_gb[rows],
            needs_data=self.needs_data[rows],
            proposal_domains=[self.proposal_domains[i] for i in rows],
            start=self.start[rows],
            duration_months=self.duration_months[rows],
            has_compute=self.has_compute[offers],
            has_data=self.has_data[offers],
            max_hours_per_project=self.max_hours_per_project[offers],
            memory_gb=self.memory_gb[offers],
            offer_domains=[self.offer_domains[j] for j in offers],
            available_until=self.available_until[offers],
        )


@dataclass(frozen=True)
class Fit:
    parts: dict[str, np.ndarray]
    applies: dict[str, np.ndarray]
    fit: np.ndarray


def _domain_overlap(
    needed: Sequence[frozenset[str]], offered: Sequence[frozenset[str]]
) -> np.ndarray:
    vocabulary = sorted(set().union(*needed, *offered)) if (needed or offered) else []
    index = {label: i for i, label in enumerate(vocabulary)}

    def incidence(sets: Sequence[frozenset[str]]) -> np.ndarray:
        matrix = np.zeros((len(sets), max(1, len(vocabulary))), dtype=np.float32)
        for row, labels in enumerate(sets):
            matrix[row, [index[label] for label in labels]] = 1.0
        return matrix

    need = incidence(needed)
    shared = need @ incidence(offered).T
    counts = np.maximum(need.sum(axis=1, keepdims=True), 1.0)
    return shared / counts


def resource_fit(inputs: FitInputs, *, today: date) -> Fit:
    """Compute the fit parts (hours, memory, timeline, domains) and their mean per pair."""
    x = inputs
    compute_pair = (x.hours_needed > 0)[:, None] & x.has_compute[None, :]
    with np.errstate(divide="ignore", invalid="ignore"):
        hours = np.clip(x.max_hours_per_project[None, :] / x.hours_needed[:, None], 0.0, 1.0)
        memory = np.clip(x.memory_gb[None, :] / x.memory_needed_gb[:, None], 0.0, 1.0)
    # A minimum of 0 GB (or none) is no requirement: nothing to cover, and no 0/0.
    memory_known = (np.nan_to_num(x.memory_needed_gb) > 0)[:, None] & ~np.isnan(x.memory_gb)[
        None, :
    ]

    today64 = np.datetime64(today, "D")
    # Work cannot start in the past: a stated start before today counts from today.
    start = np.where(np.isnat(x.start), today64, x.start).astype("datetime64[D]")
    start = np.maximum(start, today64)
    days = np.maximum(np.rint(x.duration_months * DAYS_PER_MONTH), 1).astype("timedelta64[D]")
    end = start + days
    until = x.available_until.astype("datetime64[D]")
    overlap = np.minimum(end[:, None], until[None, :]) - np.maximum(start[:, None], today64)
    timeline = np.clip(overlap.astype(np.float64) / days.astype(np.float64)[:, None], 0.0, 1.0)
    timeline_known = np.broadcast_to(~np.isnat(until)[None, :], compute_pair.shape)

    wants_domains = x.needs_data & np.array([bool(d) for d in x.proposal_domains], dtype=bool)
    domains = _domain_overlap(x.proposal_domains, x.offer_domains)
    domains = np.where(x.has_data[None, :], domains, 0.0)

    parts = {
        "hours": np.where(compute_pair, hours, 0.0),
        "memory": np.where(compute_pair & memory_known, np.nan_to_num(memory), 0.0),
        "timeline": np.where(timeline_known, timeline, 0.0),
        "domains": domains,
    }
    applies = {
        "hours": compute_pair,
        "memory": compute_pair & memory_known,
        "timeline": timeline_known,
        "domains": wants_domains[:, None] & x.has_data[None, :],
    }
    total = np.zeros(compute_pair.shape, dtype=np.float64)
    count = np.zeros(compute_pair.shape, dtype=np.float64)
    for name, part in parts.items():
        total += np.where(applies[name], part, 0.0)
        count += applies[name]
    fit = np.where(count > 0, total / np.maximum(count, 1.0), 1.0)
    return Fit(
        parts={k: v.astype(np.float32) for k, v in parts.items()},
        applies={k: np.asarray(v) for k, v in applies.items()},
        fit=fit.astype(np.float32),
    )
