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
from collections.abc import Mapping
from dataclasses import asdict, dataclass

import numpy as np

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


def combine(components: Mapping[str, np.ndarray], weights: ScoreWeights) -> np.ndarray:
    """Weighted total of the components (each (P, O)); returns a float32 (P, O) array."""
    shares = weights.normalised()
    first = next(iter(components.values()))
    total = np.zeros(np.shape(first), dtype=np.float32)
    for name in COMPONENTS:
        if shares[name]:
            total += np.float32(shares[name]) * np.asarray(components[name], dtype=np.float32)
    return total
