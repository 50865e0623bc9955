"""Hard constraints between proposals and offers, for all pairs at once, with reasons.

The caller describes proposals and offers as columns of plain values (`ProposalFacts`,
`OfferFacts`); `check_eligibility` returns one boolean (P, O) matrix per constraint, and a
pair is eligible only when no constraint fails. Every failure has a sentence a person can read
(`Eligibility.reasons`), and every constraint that applied to a pair can be listed as passed or
failed (`Eligibility.checks`). For very large rounds, slice the proposals (`ProposalFacts.take`)
and check chunk by chunk: memory is O(chunk * O * number of constraints) booleans.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date

import numpy as np
from scipy import sparse

IP_RANK: Mapping[str, int] = {"open": 0, "joint": 1, "company_owned": 2}
PUBLICATION_RANK: Mapping[str, int] = {"allowed": 0, "after_review": 1, "not_allowed": 2}
# Rough capability tiers: a proposal naming a GPU type accepts that tier or a higher one.
GPU_TIER: Mapping[str, int] = {
    "a10g": 1,
    "l40s": 2,
    "rtx 6000 ada": 2,
    "a100": 3,
    "h100": 4,
    "mi300x": 4,
    "h200": 5,
}

CONSTRAINTS: tuple[str, ...] = (
    "offer_open",
    "provides_need",
    "publication_terms",
    "code_release",
    "ip_terms",
    "hours_per_project",
    "gpu_memory",
    "gpu_type",
    "capacity_left",
    "same_organisation",
    "excluded_by_offer",
    "excluded_by_proposal",
)

CONSTRAINT_LABELS: Mapping[str, str] = {
    "offer_open": "Offer open and before its deadline",
    "provides_need": "Offer provides what the proposal needs",
    "publication_terms": "Publication terms compatible",
    "code_release": "Code release terms compatible",
    "ip_terms": "IP terms compatible",
    "hours_per_project": "GPU hours within the per-project limit",
    "gpu_memory": "Enough GPU memory",
    "gpu_type": "GPU type good enough",
    "capacity_left": "Offer has capacity left",
    "same_organisation": "No conflict of interest (same organisation or email domain)",
    "excluded_by_offer": "Institution not excluded by the company",
    "excluded_by_proposal": "Company not excluded by the academic",
}


def gpu_tier(gpu_type: str | None) -> int:
    """Capability tier of a GPU type name (0 when absent or unknown)."""
    return GPU_TIER.get((gpu_type or "").strip().lower(), 0)


def identity_tokens(names: Iterable[str]) -> frozenset[str]:
    """Normalised identities: lowercased, trimmed organisation names and email domains."""
    return frozenset(name.strip().lower().lstrip("@") for name in names if name.strip())


def with_parent_domains(tokens: frozenset[str]) -> frozenset[str]:
    """The tokens plus every parent of each domain (`cs.uni.example.org` also stands for
    `uni.example.org` and `example.org`). Applied to one side of a comparison only, so that a
    declared domain covers its subdomains without two unrelated `example.org` subdomains
    matching each other."""
    expanded = set(tokens)
    for token in tokens:
        if "." in token and " " not in token:
            labels = token.split(".")
            expanded.update(".".join(labels[i:]) for i in range(1, len(labels) - 1))
    return frozenset(expanded)


def _floats(values: Sequence[float | None]) -> np.ndarray:
    return np.array([math.nan if v is None else float(v) for v in values], dtype=np.float64)


@dataclass(frozen=True)
class ProposalFacts:
    """What eligibility needs to know about P proposals, one entry per proposal.

    Hours are GPU hours; memory is GB per GPU (NaN: no minimum). `max_ip_rank` is the most
    restrictive IP stance the academic accepts (see `IP_RANK`). `identities` hold the author's
    organisation name and email domain; `excluded` the companies (names or domains) the academic
    never wants to be matched with.
    """

    gpu_hours_needed: np.ndarray
    gpu_memory_min_gb: np.ndarray
    gpu_tier: np.ndarray
    needs_data: np.ndarray
    requires_open_publication: np.ndarray
    requires_open_source: np.ndarray
    max_ip_rank: np.ndarray
    identities: tuple[frozenset[str], ...]
    excluded: tuple[frozenset[str], ...]

    def __len__(self) -> int:
        return len(self.gpu_hours_needed)

    @property
    def needs_compute(self) -> np.ndarray:
        return self.gpu_hours_needed > 0

    def take(self, rows: slice | np.ndarray) -> ProposalFacts:
        """The facts of a subset of proposals (for chunked checks)."""
        index = np.arange(len(self))[rows]
        return ProposalFacts(
            gpu_hours_needed=self.gpu_hours_needed[index],
            gpu_memory_min_gb=self.gpu_memory_min_gb[index],
            gpu_tier=self.gpu_tier[index],
            needs_data=self.needs_data[index],
            requires_open_publication=self.requires_open_publication[index],
            requires_open_source=self.requires_open_source[index],
            max_ip_rank=self.max_ip_rank[index],
            identities=tuple(self.identities[i] for i in index),
            excluded=tuple(self.excluded[i] for i in index),
        )

    @classmethod
    def from_records(cls, records: Sequence[Mapping[str, object]]) -> ProposalFacts:
        """Build from dicts with keys: gpu_hours_needed, gpu_memory_min_gb, gpu_type,
        needs_data, requires_open_publication, requires_open_source, ip_stance,
        identities (names/domains), excluded (names/domains)."""
        return cls(
            gpu_hours_needed=_floats([r["gpu_hours_needed"] for r in records]),  # type: ignore[misc]
            gpu_memory_min_gb=_floats([r.get("gpu_memory_min_gb") for r in records]),  # type: ignore[misc]
            gpu_tier=np.array([gpu_tier(r.get("gpu_type")) for r in records], dtype=np.int8),  # type: ignore[arg-type]
            needs_data=np.array([bool(r.get("needs_data")) for r in records], dtype=bool),
            requires_open_publication=np.array(
                [bool(r.get("requires_open_publication")) for r in records], dtype=bool
            ),
            requires_open_source=np.array(
                [bool(r.get("requires_open_source")) for r in records], dtype=bool
            ),
            max_ip_rank=np.array([IP_RANK[str(r["ip_stance"])] for r in records], dtype=np.int8),
            identities=tuple(identity_tokens(r.get("identities", ())) for r in records),  # type: ignore[arg-type]
            excluded=tuple(identity_tokens(r.get("excluded", ())) for r in records),  # type: ignore[arg-type]
        )


@dataclass(frozen=True)
class OfferFacts:
    """What eligibility needs to know about O offers, one entry per offer.

    `hours_left` and `projects_left` are what remains after commitments already made;
    `deadline` is the last day the offer takes projects (None: open-ended).
    """

    has_compute: np.ndarray
    has_data: np.ndarray
    is_open: np.ndarray
    deadline: tuple[date | None, ...]
    gpu_memory_gb: np.ndarray
    gpu_tier: np.ndarray
    max_hours_per_project: np.ndarray
    hours_left: np.ndarray
    projects_left: np.ndarray
    publication_rank: np.ndarray
    code_release_allowed: np.ndarray
    ip_rank: np.ndarray
    identities: tuple[frozenset[str], ...]
    excluded: tuple[frozenset[str], ...]

    def __len__(self) -> int:
        return len(self.has_compute)

    def take(self, columns: slice | np.ndarray) -> OfferFacts:
        """The facts of a subset of offers."""
        index = np.arange(len(self))[columns]
        return OfferFacts(
            has_compute=self.has_compute[index],
            has_data=self.has_data[index],
            is_open=self.is_open[index],
            deadline=tuple(self.deadline[j] for j in index),
            gpu_memory_gb=self.gpu_memory_gb[index],
            gpu_tier=self.gpu_tier[index],
            max_hours_per_project=self.max_hours_per_project[index],
            hours_left=self.hours_left[index],
            projects_left=self.projects_left[index],
            publication_rank=self.publication_rank[index],
            code_release_allowed=self.code_release_allowed[index],
            ip_rank=self.ip_rank[index],
            identities=tuple(self.identities[j] for j in index),
            excluded=tuple(self.excluded[j] for j in index),
        )

    @classmethod
    def from_records(cls, records: Sequence[Mapping[str, object]]) -> OfferFacts:
        """Build from dicts with keys: kind ("compute" | "data" | "compute+data"), is_open,
        deadline, gpu_memory_gb, gpu_type, max_hours_per_project, hours_left, projects_left,
        publication_terms, code_release_allowed, ip_stance, identities, excluded."""
        kinds = [str(r["kind"]) for r in records]
        return cls(
            has_compute=np.array([k in ("compute", "compute+data") for k in kinds], dtype=bool),
            has_data=np.array([k in ("data", "compute+data") for k in kinds], dtype=bool),
            is_open=np.array([bool(r.get("is_open", True)) for r in records], dtype=bool),
            deadline=tuple(r.get("deadline") for r in records),  # type: ignore[misc]
            gpu_memory_gb=_floats([r.get("gpu_memory_gb") for r in records]),  # type: ignore[misc]
            gpu_tier=np.array([gpu_tier(r.get("gpu_type")) for r in records], dtype=np.int8),  # type: ignore[arg-type]
            max_hours_per_project=_floats([r.get("max_hours_per_project", 0) for r in records]),  # type: ignore[misc]
            hours_left=_floats([r.get("hours_left", 0) for r in records]),  # type: ignore[misc]
            projects_left=np.array([int(r.get("projects_left", 1)) for r in records]),  # type: ignore[call-overload]
            publication_rank=np.array(
                [PUBLICATION_RANK[str(r["publication_terms"])] for r in records], dtype=np.int8
            ),
            code_release_allowed=np.array(
                [bool(r.get("code_release_allowed", True)) for r in records], dtype=bool
            ),
            ip_rank=np.array([IP_RANK[str(r["ip_stance"])] for r in records], dtype=np.int8),
            identities=tuple(identity_tokens(r.get("identities", ())) for r in records),  # type: ignore[arg-type]
            excluded=tuple(identity_tokens(r.get("excluded", ())) for r in records),  # type: ignore[arg-type]
        )


@dataclass(frozen=True)
class Check:
    """One constraint for one pair: its name, a label, whether it passed, and why."""

    name: str
    label: str
    passed: bool
    reason: str


@dataclass(frozen=True)
class Eligibility:
    """Per-constraint failures for every (proposal, offer) pair.

    `failures[name]` is a (P, O) boolean matrix, True where that constraint fails;
    `applies[name]` is True where the constraint is relevant to the pair (e.g. GPU memory only
    when the offer is to provide compute). `mask` is True where nothing fails.
    """

    proposals: ProposalFacts
    offers: OfferFacts
    failures: Mapping[str, np.ndarray]
    applies: Mapping[str, np.ndarray]
    today: date
    mask: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        shape = (len(self.proposals), len(self.offers))
        failed = np.zeros(shape, dtype=bool)
        for matrix in self.failures.values():
            failed |= matrix
        object.__setattr__(self, "mask", ~failed)

    def failed_constraints(self, p: int, o: int) -> list[str]:
        return [name for name in CONSTRAINTS if self.failures[name][p, o]]

    def reasons(self, p: int, o: int) -> list[str]:
        """Why pair (p, o) is ineligible, one sentence per failed constraint (empty if eligible)."""
        return [self._describe(name, p, o, passed=False) for name in self.failed_constraints(p, o)]

    def checks(self, p: int, o: int) -> list[Check]:
        """Every constraint that applies to pair (p, o), passed or failed, with its reason."""
        result = []
        for name in CONSTRAINTS:
            if not self.applies[name][p, o]:
                continue
            passed = not bool(self.failures[name][p, o])
            result.append(
                Check(name, CONSTRAINT_LABELS[name], passed, self._describe(name, p, o, passed))
            )
        return result

    def _describe(self, name: str, p: int, o: int, passed: bool) -> str:
        prop, off = self.proposals, self.offers
        hours = f"{prop.gpu_hours_needed[p]:,.0f}"
        describe = {
            "offer_open": (
                "The offer is open and takes projects.",
                "The offer is closed or its deadline has passed.",
            ),
            "provides_need": (
                "The offer provides "
                + (
                    "compute and data"
                    if prop.needs_compute[p]
                    and prop.needs_data[p]
                    and off.has_compute[o]
                    and off.has_data[o]
                    else "compute"
                    if prop.needs_compute[p] and off.has_compute[o]
                    else "data"
                )
                + " the proposal needs.",
                "The offer provides "
                + ("only data" if off.has_data[o] and not off.has_compute[o] else "only compute")
                + ", which the proposal does not need.",
            ),
            "publication_terms": (
                "The proposal requires open publication and the offer allows it.",
                "The proposal requires open publication, but the offer does not allow publishing.",
            ),
            "code_release": (
                "The proposal requires open-source code and the offer allows releasing it.",
                "The proposal requires open-source code, but the offer does not allow "
                "releasing it.",
            ),
            "ip_terms": (
                "The IP terms the offer asks for are within what the academic accepts.",
                f"The offer asks for {_ip_name(off.ip_rank[o])} IP, but the academic accepts at "
                f"most {_ip_name(prop.max_ip_rank[p])}.",
            ),
            "hours_per_project": (
                f"Needs {hours} GPU hours; the offer gives up to "
                f"{off.max_hours_per_project[o]:,.0f} per project.",
                f"Needs {hours} GPU hours, more than the offer's limit of "
                f"{off.max_hours_per_project[o]:,.0f} per project.",
            ),
            "gpu_memory": (
                f"Needs {prop.gpu_memory_min_gb[p]:.0f} GB per GPU; the offer has "
                f"{off.gpu_memory_gb[o]:.0f} GB.",
                f"Needs at least {prop.gpu_memory_min_gb[p]:.0f} GB per GPU, but the offer's GPUs "
                f"have {off.gpu_memory_gb[o]:.0f} GB.",
            ),
            "gpu_type": (
                "The offer's GPU type is at least as capable as the one requested.",
                "The offer's GPU type is less capable than the one the proposal requests.",
            ),
            "capacity_left": (
                f"The offer has {off.hours_left[o]:,.0f} GPU hours and "
                f"{int(off.projects_left[o])} project places left.",
                "The offer is full: "
                + (
                    "no project places left."
                    if off.projects_left[o] <= 0
                    else f"only {off.hours_left[o]:,.0f} GPU hours left, {hours} needed."
                ),
            ),
            "same_organisation": (
                "The academic and the company are different organisations.",
                "Conflict of interest: the academic belongs to the offering organisation "
                "or shares its email domain.",
            ),
            "excluded_by_offer": (
                "The company has not excluded the academic's institution.",
                "The company has excluded the academic's institution.",
            ),
            "excluded_by_proposal": (
                "The academic has not excluded this company.",
                "The academic has excluded this company.",
            ),
        }[name]
        return describe[0] if passed else describe[1]


def _ip_name(rank: int) -> str:
    return {0: "open", 1: "jointly owned", 2: "company-owned"}[int(rank)]


def _overlaps(left: Sequence[frozenset[str]], right: Sequence[frozenset[str]]) -> np.ndarray:
    """(len(left), len(right)) bool: do the two token sets share any token? One sparse
    product, so the cost grows with the number of tokens, not with a Python loop over pairs."""
    vocabulary: dict[str, int] = {}
    for tokens in (*left, *right):
        for token in tokens:
            vocabulary.setdefault(token, len(vocabulary))

    def incidence(sets: Sequence[frozenset[str]]) -> sparse.csr_matrix:
        rows = [i for i, tokens in enumerate(sets) for _ in tokens]
        cols = [vocabulary[token] for tokens in sets for token in tokens]
        values = np.ones(len(rows), dtype=np.int32)
        return sparse.csr_matrix((values, (rows, cols)), shape=(len(sets), max(1, len(vocabulary))))

    return (incidence(left) @ incidence(right).T).toarray() > 0


def check_eligibility(
    proposals: ProposalFacts, offers: OfferFacts, *, today: date | None = None
) -> Eligibility:
    """Evaluate every hard constraint for every (proposal, offer) pair, vectorised.

    Returns an `Eligibility` whose `mask` (P, O) is True exactly for the eligible pairs.
    """
    today = today or date.today()
    shape = (len(proposals), len(offers))
    ones = np.ones(shape, dtype=bool)
    prop, off = proposals, offers

    author = [with_parent_domains(tokens) for tokens in prop.identities]
    # The pair is "about compute" when the proposal needs GPU hours and the offer gives them.
    compute_pair = prop.needs_compute[:, None] & off.has_compute[None, :]
    data_pair = prop.needs_data[:, None] & off.has_data[None, :]
    needs_anything = (prop.needs_compute | prop.needs_data)[:, None]

    expired = (
        np.array([d is not None and d < today for d in off.deadline], dtype=bool) | ~off.is_open
    )
    mem_need = prop.gpu_memory_min_gb[:, None]
    mem_have = off.gpu_memory_gb[None, :]
    memory_known = ~np.isnan(mem_need) & ~np.isnan(mem_have)
    tier_known = (prop.gpu_tier[:, None] > 0) & (off.gpu_tier[None, :] > 0)
    full = (off.projects_left <= 0)[None, :] | (
        compute_pair & (prop.gpu_hours_needed[:, None] > off.hours_left[None, :])
    )

    failures = {
        "offer_open": np.broadcast_to(expired[None, :], shape).copy(),
        "provides_need": needs_anything & ~(compute_pair | data_pair),
        "publication_terms": prop.requires_open_publication[:, None]
        & (off.publication_rank[None, :] == PUBLICATION_RANK["not_allowed"]),
        "code_release": prop.requires_open_source[:, None] & ~off.code_release_allowed[None, :],
        "ip_terms": off.ip_rank[None, :] > prop.max_ip_rank[:, None],
        "hours_per_project": compute_pair
        & (prop.gpu_hours_needed[:, None] > off.max_hours_per_project[None, :]),
        "gpu_memory": compute_pair & memory_known & (mem_need > np.nan_to_num(mem_have)),
        "gpu_type": compute_pair & tier_known & (prop.gpu_tier[:, None] > off.gpu_tier[None, :]),
        "capacity_left": full,
        "same_organisation": _overlaps(author, off.identities),
        "excluded_by_offer": _overlaps(author, off.excluded),
        "excluded_by_proposal": _overlaps(
            prop.excluded, [with_parent_domains(t) for t in off.identities]
        ),
    }
    applies = {
        "offer_open": ones,
        "provides_need": np.broadcast_to(needs_anything, shape),
        "publication_terms": np.broadcast_to(prop.requires_open_publication[:, None], shape),
        "code_release": np.broadcast_to(prop.requires_open_source[:, None], shape),
        "ip_terms": ones,
        "hours_per_project": compute_pair,
        "gpu_memory": compute_pair & memory_known,
        "gpu_type": compute_pair & tier_known,
        "capacity_left": ones,
        "same_organisation": ones,
        "excluded_by_offer": ones,
        "excluded_by_proposal": ones,
    }
    return Eligibility(prop, off, failures, applies, today)


class EligibilityIndex:
    """The eligibility mask of `check_eligibility`, computed block by block for a whole
    recompute: everything about the offers (and the identity tokens of both sides) is
    prepared once, and `mask(rows)` is a handful of in-place boolean array operations over
    (len(rows), O) plus one sparse product for every identity conflict at once. No per-pair
    reasons or `applies` matrices: use `check_eligibility` to explain a pair.
    """

    def __init__(self, proposals: ProposalFacts, offers: OfferFacts, *, today: date) -> None:
        self.proposals, self.offers = proposals, offers
        off = offers
        expired = np.array([d is not None and d < today for d in off.deadline], dtype=bool)
        self.always_fails = expired | ~off.is_open | (off.projects_left <= 0)
        self.not_publishable = off.publication_rank == PUBLICATION_RANK["not_allowed"]
        self.no_code_release = ~off.code_release_allowed
        # A missing memory or GPU type on the offer never fails (as in check_eligibility).
        self.memory_have = np.where(np.isnan(off.gpu_memory_gb), np.inf, off.gpu_memory_gb)
        self.tier_have = np.where(off.gpu_tier > 0, off.gpu_tier, np.iinfo(np.int8).max).astype(
            np.int8
        )
        # One token space of two halves: [author side | excluded-company side]. A proposal
        # marks its author's tokens (with parent domains) in the first half and the companies
        # it excludes in the second; an offer marks its identities and the institutions it
        # excludes in the first, its identities with parent domains in the second. Any shared
        # token is a conflict of interest or an exclusion, whichever side declared it.
        # Each distinct token is numbered (with its parent domains) once, each distinct set
        # once: many people share an organisation's.
        vocabulary: dict[str, int] = {}
        with_parents: dict[str, list[int]] = {}

        def number(tokens: frozenset[str], expand: bool) -> list[int]:
            if not expand:
                return [vocabulary.setdefault(token, len(vocabulary)) for token in tokens]
            found: list[int] = []
            for token in tokens:
                if token not in with_parents:
                    with_parents[token] = [
                        vocabulary.setdefault(name, len(vocabulary))
                        for name in sorted(with_parent_domains(frozenset([token])))
                    ]
                found.extend(with_parents[token])
            return found

        def half(sets: Sequence[frozenset[str]], expand: bool) -> tuple[np.ndarray, np.ndarray]:
            """(row, token number) of every token of `sets`."""
            seen: dict[frozenset[str], list[int]] = {}
            rows: list[int] = []
            cols: list[int] = []
            for i, tokens in enumerate(sets):
                if tokens not in seen:
                    seen[tokens] = number(tokens, expand)
                cols.extend(seen[tokens])
                rows.extend([i] * len(seen[tokens]))
            return np.array(rows, dtype=np.int64), np.array(cols, dtype=np.int64)

        offer_first = [a | b for a, b in zip(off.identities, off.excluded, strict=True)]
        halves = (
            half(proposals.identities, True),
            half(proposals.excluded, False),
            half(offer_first, False),
            half(off.identities, True),
        )
        size = max(1, len(vocabulary))

        def incidence(
            first: tuple[np.ndarray, np.ndarray], second: tuple[np.ndarray, np.ndarray], count: int
        ) -> sparse.csr_matrix:
            rows = np.concatenate([first[0], second[0]])
            cols = np.concatenate([first[1], second[1] + size])
            values = np.ones(len(rows), dtype=np.int32)  # duplicates are summed: still > 0
            return sparse.csr_matrix((values, (rows, cols)), shape=(count, 2 * size))

        self._prepare_fails()
        self.proposal_tokens = incidence(halves[0], halves[1], len(proposals))
        self.offer_tokens = incidence(halves[2], halves[3], len(off)).T.tocsr()

    def mask(self, rows: np.ndarray) -> np.ndarray:
        """(len(rows), O) bool, True where pair (proposal rows[i], offer j) is eligible;
        `rows` index the proposals this index was built with."""
        fails = self.fails(rows)
        conflicts = self.conflicts(rows)
        fails[conflicts.row, conflicts.col] = True
        return ~fails

    def fails(self, rows: np.ndarray) -> np.ndarray:
        """(len(rows), O) bool, True where a constraint on the facts fails (every constraint
        but the identity ones, see `conflicts`).

        The constraints between flags and ranks (what is needed and provided, publication,
        code and IP terms, the offer closed or full) depend on a proposal only through a few
        flags, so each distinct combination's row is computed once (`_flag_rows`) and a
        block gathers its rows; the compute limits are three comparisons against per-offer
        thresholds in which offers without compute (and proposals needing none) never fail."""
        fails = self._flag_rows[self._flag_kind[rows]]
        if self._needs_compute[rows].any():
            compute = self._hours[rows][:, None] > self._hours_cap[None, :]
            compute |= self._memory_min[rows][:, None] > self._memory_cap[None, :]
            compute |= self._tier[rows][:, None] > self._tier_cap[None, :]
            fails |= compute
        return fails

    def _prepare_fails(self) -> None:
        """The per-kind rows and per-offer thresholds `fails` reads (see there)."""
        prop, off = self.proposals, self.offers
        needs_compute = prop.gpu_hours_needed > 0
        flags = np.stack(
            [
                needs_compute,
                prop.needs_data,
                prop.requires_open_publication,
                prop.requires_open_source,
                prop.max_ip_rank.astype(np.int64),
            ],
            axis=1,
        ).astype(np.int64)
        kinds, self._flag_kind = np.unique(flags, axis=0, return_inverse=True)
        self._flag_kind = self._flag_kind.ravel()
        compute, data, publication, source, ip = (kinds[:, c] for c in range(5))
        compute, data = compute.astype(bool), data.astype(bool)
        covered = (compute[:, None] & off.has_compute[None, :]) | (
            data[:, None] & off.has_data[None, :]
        )
        rows = ~covered & (compute | data)[:, None]
        rows |= self.always_fails[None, :]
        rows |= publication.astype(bool)[:, None] & self.not_publishable[None, :]
        rows |= source.astype(bool)[:, None] & self.no_code_release[None, :]
        rows |= off.ip_rank[None, :] > ip[:, None]
        self._flag_rows = rows
        # Compute limits: a proposal needing no compute compares as NaN (never greater) and an
        # offer without compute has no limit; fmin keeps a stated limit beside a NaN one.
        self._needs_compute = needs_compute
        self._hours = np.where(needs_compute, prop.gpu_hours_needed, np.nan)
        self._memory_min = np.where(needs_compute, prop.gpu_memory_min_gb, np.nan)
        self._tier = np.where(needs_compute, prop.gpu_tier, 0).astype(np.int8)
        has_compute = off.has_compute
        cap = np.fmin(off.max_hours_per_project, off.hours_left)
        self._hours_cap = np.where(has_compute, cap, np.inf)
        self._memory_cap = np.where(has_compute, self.memory_have, np.inf)
        self._tier_cap = np.where(has_compute, self.tier_have, np.iinfo(np.int8).max).astype(
            np.int8
        )

    def conflicts(self, rows: np.ndarray) -> sparse.coo_matrix:
        """The pairs (row i of `rows`, offer j) that a conflict of interest or an exclusion
        rules out, as a sparse matrix (one product over the identity tokens)."""
        return (self.proposal_tokens[rows] @ self.offer_tokens).tocoo()
