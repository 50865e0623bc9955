"""How `bench/devloss.py` judges a family: repeated 2-fold and leave-one-out splits of the
researchers, the held-out error of choosing a setting on the training part, bootstrap intervals
and `Judge`, which prints a family's row.

Not a benchmark itself: `make bench` runs bench/*.py except files starting with `_`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

DEFAULT_FAMILY = "soft maximum (log-sum-exp), temperature"


# ----------------------------------------------------------------------------- choice procedure
def held_out(
    errors: np.ndarray, weights: np.ndarray, splits: list[tuple[np.ndarray, np.ndarray]]
) -> tuple[np.ndarray, np.ndarray]:
    """Cross-validated per-researcher error of choosing the lowest-loss setting on each training
    part: `errors` is (settings, R); returns (R,) held-out errors (mean over the splits where a
    researcher was held out) and how often each setting was chosen."""
    total = np.zeros(errors.shape[1])
    times = np.zeros(errors.shape[1])
    picks = np.zeros(errors.shape[0])
    for train, test in splits:
        best = int(np.argmin(errors[:, train].sum(axis=1) / weights[train].sum()))
        picks[best] += 1
        total[test] += errors[best, test]
        times[test] += 1
    return total / times, picks / picks.sum()


def two_fold_splits(n: int, repeats: int, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(seed)
    splits = []
    for _ in range(repeats):
        order = rng.permutation(n)
        first, second = order[: n // 2], order[n // 2 :]
        splits += [(first, second), (second, first)]
    return splits


def leave_one_out(n: int) -> list[tuple[np.ndarray, np.ndarray]]:
    return [(np.delete(np.arange(n), i), np.array([i])) for i in range(n)]


def interval(values: np.ndarray) -> str:
    low, high = np.percentile(values, [2.5, 97.5])
    return f"[{low:+.3f}; {high:+.3f}]"


@dataclass
class Judge:
    """Scores a family's choice procedure on held-out researchers against two references."""

    weights: np.ndarray
    splits: list[tuple[np.ndarray, np.ndarray]]
    loo: list[tuple[np.ndarray, np.ndarray]]
    counts: np.ndarray  # bootstrap resamples of the researchers (the harness's)
    baseline: np.ndarray  # the mean's per-researcher errors (nothing to choose)
    default: np.ndarray | None = None  # the default family's held-out per-researcher errors

    def report(self, name: str, labels: list[str], errors: np.ndarray) -> np.ndarray:
        weights, counts = self.weights, self.counts
        total = weights.sum()
        cv, picks = held_out(errors, weights, self.splits)
        cv_loo, _ = held_out(errors, weights, self.loo)
        low, high = np.percentile((counts @ cv) / (counts @ weights), [2.5, 97.5])
        versus_mean = (cv - self.baseline).sum() / total
        mean_ci = interval((counts @ (cv - self.baseline)) / (counts @ weights))
        if self.default is None or name == DEFAULT_FAMILY:
            versus_default = "(the default)"
        else:
            difference = (cv - self.default).sum() / total
            ci = interval((counts @ (cv - self.default)) / (counts @ weights))
            versus_default = f"{difference:+.3f} {ci}"
        chosen = ", ".join(
            f"{label} {share:.0%}"
            for label, share in zip(labels, picks, strict=True)
            if share >= 0.05
        )
        print(
            f"{name:<80} {(errors.sum(axis=1) / total).min():6.3f} {cv.sum() / total:8.3f} "
            f"{f'[{low:.3f}; {high:.3f}]':>15} {versus_mean:+8.3f} {mean_ci:>17} "
            f"{(cv_loo - self.baseline).sum() / total:+7.3f} {versus_default:>26}  {chosen}",
            flush=True,
        )
        return cv
