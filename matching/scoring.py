"""The weighted score: one documented combination of the components, weights in one place.

    total = w_proposal     * cos(proposal text, offer text)
          + w_publications * affinity(offer text, author's publications)
          + w_lexical      * TF-IDF cosine(proposal text, offer text)
          + w_fit          * resource fit (hours, memory, timeline, data domains; in [0, 1])

The weights are normalised to sum to 1, so the total stays on the scale of its components
(about 0 to 1; higher is a better fit). Every stored match records `ScoreWeights.version`, so a
score can always be traced to the weights that produced it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import date
from typing import Any

import numpy as np

from matching.fit import DAYS_PER_MONTH, FitInputs, resource_fit

ALGORITHM = "tandem-2"
COMPONENTS: tuple[str, ...] = ("proposal", "publications", "lexical", "fit")

COMPONENT_LABELS: Mapping[str, str] = {
    "proposal": "Proposal text vs. offer",
    "publications": "Author's publications vs. offer",
    "lexical": "Shared key terms",
    "fit": "Resource fit",
}


@dataclass(frozen=True)
class ScoreWeights:
    """Non-negative weights of the score components (normalised to sum to 1 when used)."""

    proposal: float = 0.55
    publications: float = 0.2
    lexical: float = 0.1
    fit: float = 0.15

    def __post_init__(self) -> None:
        values = asdict(self)
        bad = [name for name, value in values.items() if not (value >= 0 and np.isfinite(value))]
        if bad:
            raise ValueError(f"score weights must be finite and >= 0: {', '.join(bad)}")
        if sum(values.values()) <= 0:
            raise ValueError("at least one score weight must be positive")

    @classmethod
    def parse(cls, text: str) -> ScoreWeights:
        """From `name=value,...` or a JSON object, e.g. `proposal=0.5,fit=0.3` (others 0)."""
        text = text.strip()
        try:
            raw = (
                json.loads(text)
                if text.startswith("{")
                else dict(
                    (part.split("=", 1)[0].strip(), part.split("=", 1)[1])
                    for part in text.split(",")
                )
            )
            values = {str(name): float(value) for name, value in raw.items()}
        except (ValueError, IndexError) as exc:
            raise ValueError(f"cannot read score weights {text!r}: use name=value,...") from exc
        unknown = sorted(set(values) - set(COMPONENTS))
        if unknown:
            raise ValueError(f"unknown score components: {', '.join(unknown)}")
        return cls(**{name: values.get(name, 0.0) for name in COMPONENTS})

    def normalised(self) -> dict[str, float]:
        values = asdict(self)
        total = sum(values.values())
        return {name: values[name] / total for name in COMPONENTS}

    @property
    def version(self) -> str:
        """`tandem-2/w-<hash>`: identifies the algorithm and these exact weights."""
        payload = json.dumps(self.normalised(), sort_keys=True).encode()
        return f"{ALGORITHM}/w-{hashlib.sha256(payload).hexdigest()[:10]}"


# Plain-language strength of a total score, strongest first: (lowest score of the band, label).
# The bands sit on the total's own scale with the default model and weights, where related
# texts reach cosines of 0.3 to 0.7: on the demo catalogue the median recommended pair scores
# 0.385 and the best tenth 0.525 or more (so "Good" is about the better half). A "Fair" pair
# is still eligible in every hard constraint; the label says how close the topics are, not
# whether the pair is allowed.
STRENGTH_BANDS: tuple[tuple[float, str], ...] = (
    (0.5, "Strong match"),
    (0.38, "Good match"),
    (0.28, "Fair match"),
    (float("-inf"), "Weak match"),
)


def strength(score: float) -> str:
    """The plain-language label of a total score (e.g. 0.56 -> "Strong match")."""
    for lowest, label in STRENGTH_BANDS:
        if score >= lowest:
            return label
    return STRENGTH_BANDS[-1][1]  # NaN: no evidence at all


@dataclass(frozen=True)
class OfferAdjustment:
    """A learned per-company adjustment (`matching.outcome_adjustment`): company g's offers
    score x . (w + d_g) + b_g. `deviations` maps a company (the offer's organisation) to its
    C deviations of the normalised weights, in `COMPONENTS` order, then its bias; a company
    not in it (or an offer whose company is unknown) gets no adjustment."""

    deviations: Mapping[Hashable, Sequence[float]]

    def columns(self, groups: Sequence[Any], count: int) -> tuple[np.ndarray, np.ndarray]:
        """Per offer column, for `count` offers whose companies are `groups` (empty: none
        known): the (O, C) float32 deviations and the (O,) float32 biases."""
        table = np.zeros((count, len(COMPONENTS) + 1), dtype=np.float64)
        for j, group in enumerate(groups):
            row = self.deviations.get(group)
            if row is not None:
                table[j] = row
        table = table.astype(np.float32)
        return np.ascontiguousarray(table[:, :-1]), np.ascontiguousarray(table[:, -1])

    @property
    def tag(self) -> str:
        """`adj-<hash>`: names these exact deviations in a weights version."""
        payload = json.dumps(
            {str(g): [round(float(v), 6) for v in row] for g, row in self.deviations.items()},
            sort_keys=True,
        ).encode()
        return f"adj-{hashlib.sha256(payload).hexdigest()[:10]}"


def combine(
    components: Mapping[str, np.ndarray],
    weights: ScoreWeights,
    adjustment: tuple[np.ndarray, np.ndarray] | None = None,
) -> np.ndarray:
    """Weighted total of the components (each (P, O)); returns a float32 (P, O) array.

    `adjustment`: per offer column, (O, C) deviations added to the weights and (O,) biases
    added to the total (`OfferAdjustment.columns`); None leaves the weighted sum alone."""
    shares = weights.normalised()
    first = next(iter(components.values()))
    total = np.zeros(np.shape(first), dtype=np.float32)
    for c, name in enumerate(COMPONENTS):
        if shares[name]:
            share: Any = np.float32(shares[name])
            if adjustment is not None:
                share = share + adjustment[0][:, c]
            total += share * np.asarray(components[name], dtype=np.float32)
    if adjustment is not None:
        total += adjustment[1]
    return total


class FitIndex:
    """`matching.fit.resource_fit(inputs.take(rows, columns), today=today).fit`, block by
    block for a whole recompute, in float32 (equal within float32 rounding): the offers'
    columns, dates as day numbers and domain incidence prepared once, then per block a few
    in-place array operations over (len(rows), O) (the original spends most of a recompute in
    datetime64 arithmetic and per-block Python loops). `rows`/`columns` are corpus indices.
    """

    def __init__(
        self, inputs: FitInputs, rows: np.ndarray, columns: np.ndarray, *, today: date
    ) -> None:
        x = inputs
        today_day = np.datetime64(today, "D").astype(np.int64)
        self.hours = np.asarray(x.hours_needed, dtype=np.float32)[rows]
        self.memory_needed = np.asarray(x.memory_needed_gb, dtype=np.float32)[rows]
        start = np.asarray(x.start).astype("datetime64[D]")[rows]
        start_day = np.where(np.isnat(start), today_day, start.astype(np.int64))
        # Work cannot start in the past: a stated start before today counts from today.
        self.start = (np.maximum(start_day, today_day) - today_day).astype(np.float32)
        months = np.asarray(x.duration_months, dtype=np.float64)[rows]
        self.days = np.maximum(np.rint(months * DAYS_PER_MONTH), 1).astype(np.float32)
        self.has_compute = np.asarray(x.has_compute, dtype=bool)[columns]
        has_data = np.asarray(x.has_data, dtype=bool)[columns]
        self.max_hours = np.asarray(x.max_hours_per_project, dtype=np.float32)[columns]
        self.memory = np.asarray(x.memory_gb, dtype=np.float32)[columns]
        until = np.asarray(x.available_until).astype("datetime64[D]")[columns]
        self.until_known = ~np.isnat(until)
        # NaN limits or durations: leave those rare inputs to resource_fit itself.
        self.today = today
        unusual = np.isnan(self.max_hours).any() or np.isnan(months).any()
        self.unusual = (inputs, rows, columns) if unusual else None
        self.max_hours_finite = np.nan_to_num(self.max_hours)
        memory_known = ~np.isnan(self.memory)
        self.memory_finite = np.where(memory_known, self.memory, 0.0)
        self.memory_columns = (memory_known & self.has_compute).astype(np.float32)
        self.until = np.where(self.until_known, until.astype(np.int64) - today_day, 0).astype(
            np.float32
        )
        needed = [x.proposal_domains[i] for i in rows]
        offered = [x.offer_domains[j] for j in columns]
        labels = {label: n for n, label in enumerate(sorted(set().union(*needed, *offered)))}

        def incidence(sets: Sequence[frozenset[str]]) -> np.ndarray:
            matrix = np.zeros((len(sets), max(1, len(labels))), dtype=np.float32)
            for row, names in enumerate(sets):
                matrix[row, [labels[name] for name in names]] = 1.0
            return matrix

        self.needed = incidence(needed)
        self.needed_count = np.maximum(self.needed.sum(axis=1), np.float32(1.0))
        self.offered_t = np.ascontiguousarray(incidence(offered).T)
        # Up to 64 labels, each side's domains as the bits of one integer: the shared count
        # is a popcount of their AND (the same small integers as the product, without a BLAS
        # call per tile, which also wakes OpenBLAS's threads to spin through the next ones).
        self.domain_bits: tuple[np.ndarray, np.ndarray] | None = None
        if len(labels) <= 64:
            powers = np.left_shift(np.uint64(1), np.arange(max(1, len(labels)), dtype=np.uint64))

            def bits(matrix: np.ndarray) -> np.ndarray:
                return (matrix.astype(np.uint64) * powers).sum(axis=1, dtype=np.uint64)

            self.domain_bits = (bits(self.needed), bits(self.offered_t.T))
        wants = np.asarray(x.needs_data, dtype=bool)[rows] & np.array(
            [bool(d) for d in needed], dtype=bool
        )
        self.wants_domains, self.has_data = wants, has_data
        self._prepare_classes()

    def _prepare_classes(self) -> None:
        """Per kind of proposal (needs compute, states a memory minimum, wants data domains:
        8 kinds), the number of parts that apply against each offer, and the offers' limits
        with the parts that do not apply to an offer set so that they come out 0 by themselves
        (0 hours, 0 GB, availability ending at -inf, no domains): `fit` then needs no masks."""
        compute_rows = self.hours > 0
        memory_rows = (np.nan_to_num(self.memory_needed) > 0) & compute_rows
        self.kind = (
            compute_rows.astype(np.int8) + 2 * memory_rows + 4 * self.wants_domains
        ).astype(np.intp)
        self.safe_hours = np.where(compute_rows, self.hours, np.float32(np.inf))
        self.safe_memory = np.where(memory_rows, self.memory_needed, np.float32(np.inf))
        self.any_memory = bool(memory_rows.any())
        self.hours_offered = np.where(self.has_compute, self.max_hours_finite, 0).astype(np.float32)
        self.memory_offered = np.where(self.memory_columns > 0, self.memory_finite, 0).astype(
            np.float32
        )
        self.until_or_never = np.where(self.until_known, self.until, -np.inf).astype(np.float32)
        kinds = np.arange(8)
        count = (
            (kinds & 1).astype(np.float32)[:, None] * self.has_compute[None, :]
            + ((kinds >> 1) & 1).astype(np.float32)[:, None] * self.memory_columns[None, :]
            + self.until_known[None, :]
            + ((kinds >> 2) & 1).astype(np.float32)[:, None] * self.has_data[None, :]
        ).astype(np.float32)
        self.divisor = np.maximum(count, np.float32(1.0))
        self.nothing = (count == 0).astype(np.float32)
        self.kind_has_nothing = self.nothing.any(axis=1)
        if self.domain_bits is not None:
            needed_bits, offered_bits = self.domain_bits
            self.domain_bits = (
                np.where(self.wants_domains, needed_bits, np.uint64(0)),
                np.where(self.has_data, offered_bits, np.uint64(0)),
            )

    def fit(self, positions: np.ndarray) -> np.ndarray:
        """float32 (len(positions), O): the fit of proposals `rows[positions]`.

        Each part is computed where it cannot be NaN or infinite; a part that does not apply
        comes out 0 from the limits `_prepare_classes` set (as x * 0 did), and the mean divides
        by the kind's count of parts, 1.0 where none applies (0 + 1)."""
        if self.unusual is not None:
            inputs, rows, columns = self.unusual
            return resource_fit(inputs.take(rows[positions], columns), today=self.today).fit
        total = self.hours_offered[None, :] / self.safe_hours[positions, None]
        np.clip(total, 0.0, 1.0, out=total)
        if self.any_memory:
            memory = self.memory_offered[None, :] / self.safe_memory[positions, None]
            np.clip(memory, 0.0, 1.0, out=memory)
            total += memory
        timeline = self.until_or_never[None, :] - self.start[positions, None]
        timeline /= self.days[positions, None]
        np.clip(timeline, 0.0, 1.0, out=timeline)
        total += timeline
        wants = self.wants_domains[positions]
        if wants.any():
            if self.domain_bits is not None:
                needed_bits, offered_bits = self.domain_bits
                shared = np.bitwise_count(needed_bits[positions, None] & offered_bits[None, :])
                shared = np.divide(shared, self.needed_count[positions, None], dtype=np.float32)
            else:
                shared = self.needed[positions] @ self.offered_t
                shared /= self.needed_count[positions, None]
                shared *= (wants[:, None] & self.has_data[None, :]).astype(np.float32)
            total += shared
        kind = self.kind[positions]
        total /= self.divisor[kind]
        if self.kind_has_nothing[kind].any():
            total += self.nothing[kind]
        return total
