"""Cross-validated development-benchmark loss of `matching.affinity` and of every variant tried.

The workplace's expertise benchmark (`../shared/eval/goldstandard.py` and its data, outside this
repository and never copied into it) has 27 development researchers who rated their expertise on
3-10 papers each. Choosing the best of many variants on those same 27 researchers chose noise
(issue 16), so every variant here is judged on researchers it was not chosen on:

- A *family* is one idea with a small grid of settings (two or three; nine where two settings are
  crossed). In each of 100 repeated 2-fold splits of the researchers, the family's setting with
  the lowest loss on one half is scored on the other half, and the other way round. A researcher's
  held-out error is averaged over the repeats; the held-out loss is the rating-weighted share of
  wrongly ordered pairs, as in the harness. "vs mean" is the paired difference to the plain mean
  of the profile cosines (no setting to choose), on the same researchers; intervals are 95%
  bootstrap intervals over researchers (the harness's resamples). Leave-one-researcher-out is
  printed beside it.
- "dev" is the loss of the family's best setting on all 27 researchers (in-sample, optimistic).
- "the whole choice" picks among every setting of the candidate families in each training half:
  the held-out loss of the procedure that picks the product's default.

Lab variants (sentence and passage matching, BM25 over key phrases, recency, ...) are computed
here from the same cached vectors; only what wins on held-out folds moves into `matching`.

- "poolings": the default's family and the mean with each pooling of the product's encoder
  (`TANDEM_ENCODER_POOLING`), on the backend this run uses, on the same folds; `--poolings-only`
  prints that table alone (it embeds only the ~605 whole texts, once per pooling).

Embeddings are cached on disk (`TANDEM_DEVLOSS_CACHE`, default /tmp/tandem-devloss): a cold run
embeds about 7,000 texts, sentences and passages (about 6 minutes on two cores), a warm one
takes a minute or two.

This script prints the tables; the data, cache and `Bench` are in `_devloss_bench.py`, the lab
signals and the families in `_devloss_signals.py`, the splits, intervals and `Judge` in
`_devloss_judge.py` (beside it; `make bench` skips files starting with `_`).
"""

from __future__ import annotations

import argparse
import os
import time
from dataclasses import replace

import numpy as np
from _devloss_bench import CACHE_DIR, DATA_DIR, HARNESS, Bench, DiskStore, load_harness
from _devloss_judge import DEFAULT_FAMILY, Judge, held_out, interval, leave_one_out, two_fold_splits
from _devloss_signals import families

from matching.embeddings import POOLINGS, default_encoder, encoder_backend, make_encoder

REPEATS = 100
BOOTSTRAP = 1000
TEMPERATURES = (0.1, 0.2, 0.3)


def pooling_section(bench: Bench, judge: Judge) -> None:
    """The mean baseline and the default's family (soft maximum, t chosen in the training half)
    with each pooling of the product's encoder, on this run's backend and the same folds.
    'vs mean' is against the same pooling's mean; 'vs default' against today's default (mean
    pooling, the default's family); a last line gives each family against the mean-pooled mean."""
    backend = bench.encoder.backend
    errors: dict[str, dict[str, np.ndarray]] = {}
    scores: dict[str, list[np.ndarray]] = {}
    for pooling in POOLINGS:
        encoder = (
            bench.encoder
            if bench.encoder.pooling == pooling
            else make_encoder(backend=backend, pooling=pooling)
        )
        other = Bench(bench.gs, encoder, bench.store)
        other.__dict__.update(ds=bench.ds, pairs=bench.pairs)  # the same researchers and pairs
        scores[pooling] = [other.product(how="mean")] + [
            other.product(how="lse", temperature=t) for t in TEMPERATURES
        ]
        errors[pooling] = {
            "mean": bench.errors(scores[pooling][0])[None],
            "lse": np.stack([bench.errors(score) for score in scores[pooling][1:]]),
        }
    # Both poolings' affinities averaged (two views of one forward pass; scoring twice).
    both = [sum(views) / len(POOLINGS) for views in zip(*scores.values(), strict=True)]
    errors["both"] = {
        "mean": bench.errors(both[0])[None],
        "lse": np.stack([bench.errors(score) for score in both[1:]]),
    }
    today, _ = held_out(errors["mean"]["lse"], judge.weights, judge.splits)
    print(
        f"\npoolings of the encoder on backend {backend} ({bench.encoder.backend_reason}); "
        "'vs mean': against the same pooling's mean; 'vs default': against the mean pooling's "
        "soft maximum family"
    )
    held: dict[tuple[str, str], np.ndarray] = {}
    for pooling in (*POOLINGS, "both"):
        pooled = replace(judge, baseline=errors[pooling]["mean"][0], default=today)
        held[pooling, "mean"] = pooled.report(
            f"pooling {pooling} ({backend}): mean of cosines (baseline)",
            ["mean"],
            errors[pooling]["mean"],
        )
        held[pooling, "lse"] = pooled.report(
            f"pooling {pooling} ({backend}): soft maximum, t in {{0.1, 0.2, 0.3}}",
            [f"t={t}" for t in TEMPERATURES],
            errors[pooling]["lse"],
        )
    total = judge.weights.sum()
    reference = errors["mean"]["mean"][0]
    for (pooling, family), cv in held.items():
        if (pooling, family) == ("mean", "mean"):
            continue
        ci = interval((judge.counts @ (cv - reference)) / (judge.counts @ judge.weights))
        print(
            f"  pooling {pooling}, {'soft maximum' if family == 'lse' else 'mean'}: held-out "
            f"{(cv - reference).sum() / total:+.3f} {ci} vs the mean-pooled mean of cosines"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=REPEATS, help="repeated 2-fold splits")
    parser.add_argument(
        "--poolings-only",
        action="store_true",
        help="only the default and the mean under each pooling (embeds whole texts only)",
    )
    arguments = parser.parse_args()
    repeats = arguments.repeats
    if not HARNESS.exists() or not DATA_DIR.exists():
        print(f"development benchmark: harness or data not found ({HARNESS}); nothing measured")
        return
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    started = time.perf_counter()
    gs = load_harness()
    bench = Bench(gs, default_encoder(), DiskStore(CACHE_DIR / "embeddings.sqlite"))
    n = bench.n_researchers

    result = gs.evaluate_matrix(bench.ds, bench.pairs, bench.product(), BOOTSTRAP, 0)
    backend, why = encoder_backend()
    print(
        f"development split: {n} researchers, {len(bench.ds.papers)} papers, "
        f"{len(bench.ds.versions)} profile sets; encoder backend {backend} ({why}), pooling "
        f"{bench.encoder.pooling} (vectors cached as {bench.encoder.model_name}; "
        f"TANDEM_ENCODER_BACKEND=torch gives the fp32 vectors bench/README.md reports)"
    )
    print(
        f"development-split loss of the default matching.affinity() (in-sample): "
        f"{result['loss']:.4f} 95% CI [{result['ci95'][0]:.3f}; {result['ci95'][1]:.3f}], "
        f"easy-pair accuracy {result['easy_acc']:.3f}, hard-pair accuracy {result['hard_acc']:.3f}"
    )
    judge = Judge(
        weights=bench.weights,
        splits=two_fold_splits(n, repeats),
        loo=leave_one_out(n),
        counts=gs.bootstrap_counts(n, BOOTSTRAP, 0),
        baseline=bench.errors(bench.product(how="mean")),
    )
    print(
        f"\nheld-out: settings chosen on one half, scored on the other, {repeats} repeated 2-fold "
        f"splits of the researchers; LOO: leave one researcher out; dev: best setting in-sample;"
        f"\nintervals: 95% bootstrap over researchers; 'vs mean' and 'vs default' are paired "
        f"differences of held-out loss (negative: better)"
    )
    print(
        f"{'family (settings)':<80} {'dev':>6} {'held-out':>8} {'95% CI':>15} {'vs mean':>8} "
        f"{'95% CI':>17} {'LOO':>7} {'vs default, 95% CI':>26}  chosen in training halves"
    )
    if arguments.poolings_only:
        pooling_section(bench, judge)
        print(f"\ntime {time.perf_counter() - started:.0f} s (embeddings cached in {CACHE_DIR})")
        return
    candidates: list[np.ndarray] = []
    labels: list[str] = []
    every_family = families(bench)
    errors_of = {
        family.name: np.stack([bench.errors(score()) for score in family.settings.values()])
        for family in every_family
    }
    judge.default, _ = held_out(errors_of[DEFAULT_FAMILY], judge.weights, judge.splits)
    for family in every_family:
        errors = errors_of[family.name]
        if family.candidate:
            candidates.append(errors)
            labels += [
                f"{family.name.split(' (')[0].split(',')[0]} {label}" for label in family.settings
            ]
        judge.report(family.name, list(family.settings), errors)
    everything = np.concatenate(candidates)
    print()
    judge.report(
        "the whole choice: every setting of the candidate aggregations (*)", labels, everything
    )
    chosen = labels[int(np.argmin(everything.sum(axis=1)))]
    print(f"(*) mean, soft maximum, maximum, top k; chosen on all {n} researchers: {chosen}")
    pooling_section(bench, judge)
    print(
        "families named 'soft max t=0.2 ...' keep t=0.2, which was chosen earlier on these same "
        "researchers:\ncompare them with 'soft max t=0.2 alone', whose 'vs default' is what that "
        "earlier choice alone is worth here"
    )
    print(f"\ntime {time.perf_counter() - started:.0f} s (embeddings cached in {CACHE_DIR})")


if __name__ == "__main__":
    main()
