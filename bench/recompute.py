"""A whole recompute (`Matcher.recommend`, k=5) against the fp32 matrix-product floor.

Prints figures, asserts nothing. Run from the project root:

    .venv/bin/python bench/recompute.py                   # every section
    .venv/bin/python bench/recompute.py --only recompute  # one section (machine, recompute, large)
    .venv/bin/python bench/recompute.py --profile 4000x1000x5   # cProfile one recompute

The corpus is synthetic (random words from a fixed vocabulary; every constraint kind present)
and embedded with the stand-in encoder (matching/stand_in.py) before timing, so the figure is
the matcher's own cost, as in a recompute after import, when every vector is in the cache. The
floor is the time of the same fp32 products the score needs, measured in the same run: proposal
vectors x offer vectors and publication vectors x offer vectors, in blocks of the engine's
chunk size (numpy/OpenBLAS, the same threads). At 100,000 x 10,000 the vectors are generated
with numpy (embedding 610,000 texts would dominate), see `TableModel`.
"""

from __future__ import annotations

import argparse
import cProfile
import math
import os
import pstats
import resource
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from matching.eligibility import OfferFacts, ProposalFacts  # noqa: E402
from matching.embeddings import Encoder  # noqa: E402
from matching.engine import DEFAULT_CHUNK_ROWS, Corpus, Matcher  # noqa: E402
from matching.fit import FitInputs  # noqa: E402
from matching.lexical import WORD_PATTERN, TfidfSimilarity  # noqa: E402
from matching.stand_in import StandInEncoder  # noqa: E402

TODAY = date(2026, 12, 1)
K = 5
DOMAINS = ["health", "climate", "language", "vision", "chemistry", "agriculture", "finance"]
GPU_TYPES = [None, "a10g", "l40s", "a100", "h100", "h200"]


def heading(title: str) -> None:
    print(f"\n## {title}", flush=True)


def row(label: str, value: str) -> None:
    print(f"{label:<52} {value}", flush=True)


def peak_rss_mib() -> float:
    """Peak resident memory of this process so far (Linux reports ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# ---------------------------------------------------------------- corpus


def _texts(rng: np.random.Generator, count: int, vocabulary: np.ndarray, words: int) -> list[str]:
    """`count` texts of about `words` words drawn (Zipf-like) from `vocabulary`."""
    weights = 1.0 / np.arange(1, len(vocabulary) + 1) ** 0.8
    weights /= weights.sum()
    lengths = rng.integers(words // 2, words * 3 // 2, size=count)
    drawn = rng.choice(len(vocabulary), size=int(lengths.sum()), p=weights)
    cuts = np.cumsum(lengths)[:-1]
    names = vocabulary.tolist()
    return [" ".join([names[w] for w in part]) for part in np.split(drawn, cuts)]


def synthetic_corpus(
    n_proposals: int,
    n_offers: int,
    publications: int = 5,
    *,
    seed: int = 0,
    words: int = 80,
    publication_texts: bool = True,
) -> Corpus:
    """A corpus of random texts and facts with every hard constraint and fit part in play.

    Each proposal has its own author with `publications` publications (texts when
    `publication_texts`, else short unique ids for an encoder that looks vectors up)."""
    rng = np.random.default_rng(seed)
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    vocabulary = np.array(
        ["".join(rng.choice(letters, size=rng.integers(4, 10))) for _ in range(3000)]
    )
    n_orgs = max(4, n_proposals // 20)
    n, m = n_proposals, n_offers
    # Every column drawn at once (a loop of generator calls per record takes minutes at 100k).
    hours = rng.choice([0.0, 200.0, 1000.0, 4000.0, 12000.0], size=n)
    memory = np.where(rng.random(n) < 0.5, np.nan, rng.choice([24.0, 40.0, 80.0], size=n))
    gpu = rng.integers(len(GPU_TYPES), size=n)
    needs_data = (hours == 0) | (rng.random(n) < 0.3)
    open_publication, open_source = rng.random(n) < 0.3, rng.random(n) < 0.2
    stance = rng.choice(["open", "joint", "company_owned"], p=[0.2, 0.5, 0.3], size=n)
    org = rng.integers(n_orgs, size=n)
    excludes = np.where(rng.random(n) < 0.1, rng.integers(m, size=n), -1)
    hours, memory, gpu, needs_data = (
        hours.tolist(),
        memory.tolist(),
        gpu.tolist(),
        needs_data.tolist(),
    )
    open_publication, open_source = open_publication.tolist(), open_source.tolist()
    stance, org, excludes = stance.tolist(), org.tolist(), excludes.tolist()
    proposal_records = [
        {
            "gpu_hours_needed": float(hours[i]),
            "gpu_memory_min_gb": None if math.isnan(memory[i]) else memory[i],
            "gpu_type": GPU_TYPES[gpu[i]],
            "needs_data": bool(needs_data[i]),
            "requires_open_publication": bool(open_publication[i]),
            "requires_open_source": bool(open_source[i]),
            "ip_stance": str(stance[i]),
            "identities": [f"org{org[i]}", f"cs.uni{i % n_orgs}.example.org"],
            "excluded": [f"company{excludes[i]}.example.com"] if excludes[i] >= 0 else [],
        }
        for i in range(n)
    ]
    kind = rng.choice(["compute", "data", "compute+data"], p=[0.6, 0.2, 0.2], size=m)
    per_project = rng.choice([500.0, 2000.0, 10000.0, 50000.0], size=m)
    is_open = rng.random(m) < 0.97
    deadline = np.where(rng.random(m) < 0.7, -9999, rng.integers(-30, 300, size=m))
    offer_memory = np.where(
        rng.random(m) < 0.2, np.nan, rng.choice([24.0, 48.0, 80.0, 141.0], size=m)
    )
    offer_gpu = rng.integers(len(GPU_TYPES), size=m)
    left = per_project * rng.choice([0.5, 1.0, 3.0], size=m)
    places = rng.choice([0, 1, 3, 10], p=[0.03, 0.3, 0.4, 0.27], size=m)
    terms = rng.choice(["allowed", "after_review", "not_allowed"], size=m)
    code = rng.random(m) < 0.8
    offer_stance = rng.choice(["open", "joint", "company_owned"], size=m)
    insider = np.where(rng.random(m) < 0.05, rng.integers(n_orgs, size=m), -1)
    barred = np.where(rng.random(m) < 0.1, rng.integers(n_orgs, size=m), -1)
    kind, per_project, is_open, deadline = (
        kind.tolist(),
        per_project.tolist(),
        is_open.tolist(),
        deadline.tolist(),
    )
    offer_memory, offer_gpu, left, places = (
        offer_memory.tolist(),
        offer_gpu.tolist(),
        left.tolist(),
        places.tolist(),
    )
    terms, code, offer_stance = terms.tolist(), code.tolist(), offer_stance.tolist()
    insider, barred = insider.tolist(), barred.tolist()
    offer_records = [
        {
            "kind": str(kind[j]),
            "is_open": bool(is_open[j]),
            "deadline": None if deadline[j] == -9999 else TODAY + timedelta(int(deadline[j])),
            "gpu_memory_gb": None if math.isnan(offer_memory[j]) else offer_memory[j],
            "gpu_type": GPU_TYPES[offer_gpu[j]],
            "max_hours_per_project": float(per_project[j]),
            "hours_left": float(left[j]),
            "projects_left": int(places[j]),
            "publication_terms": str(terms[j]),
            "code_release_allowed": bool(code[j]),
            "ip_stance": str(offer_stance[j]),
            "identities": [f"company{j}.example.com"]
            + ([f"org{insider[j]}"] if insider[j] >= 0 else []),
            "excluded": [f"uni{barred[j]}.example.org"] if barred[j] >= 0 else [],
        }
        for j in range(m)
    ]
    proposals = ProposalFacts.from_records(proposal_records)
    offers = OfferFacts.from_records(offer_records)

    def domains(count: int) -> list[frozenset[str]]:
        """0, 1 or 2 data domains each."""
        first, second = rng.integers(len(DOMAINS), size=(2, count))
        how_many = rng.integers(3, size=count)
        return [
            frozenset([DOMAINS[a], DOMAINS[b]][:k])
            for a, b, k in zip(first, second, how_many, strict=True)
        ]

    nat = np.datetime64("NaT", "D")
    today64 = np.datetime64(TODAY, "D")
    fit = FitInputs.from_facts(
        proposals,
        offers,
        proposal_domains=domains(n_proposals),
        start=np.where(
            rng.random(n_proposals) < 0.5, nat, today64 + rng.integers(-60, 200, n_proposals)
        ).astype("datetime64[D]"),
        duration_months=rng.choice([3.0, 6.0, 12.0, 24.0], size=n_proposals),
        offer_domains=domains(n_offers),
        available_until=np.where(
            rng.random(n_offers) < 0.4, nat, today64 + rng.integers(30, 900, n_offers)
        ).astype("datetime64[D]"),
    )
    if publication_texts:
        flat = _texts(rng, n_proposals * publications, vocabulary, words)
    else:
        flat = [f"publication {i}" for i in range(n_proposals * publications)]
    author_publications = [
        flat[i * publications : (i + 1) * publications] for i in range(n_proposals)
    ]
    return Corpus(
        proposal_texts=_texts(rng, n_proposals, vocabulary, words),
        offer_texts=_texts(rng, n_offers, vocabulary, words),
        author_publications=author_publications,
        publication_titles=[[text[:40] for text in pubs] for pubs in author_publications],
        proposals=proposals,
        offers=offers,
        fit=fit,
        set_aside={i: [int(rng.integers(n_offers))] for i in range(0, n_proposals, 7)},
    )


class TableModel:
    """A stand-in model for 100,000 x 10,000: a text's vector is a fixed random unit vector
    picked by the text's position in `texts` (a sum of two rows of small random tables, so
    generating 610,000 vectors costs neither time nor 1 GB). Not semantic; timing only."""

    def __init__(self, texts: Sequence[str], dimension: int = 384, seed: int = 1) -> None:
        rng = np.random.default_rng(seed)
        self.index = {text: i for i, text in enumerate(texts)}
        self.a = rng.standard_normal((1009, dimension), dtype=np.float32)
        self.b = rng.standard_normal((997, dimension), dtype=np.float32)
        self.dimension = dimension

    def get_embedding_dimension(self) -> int:
        return self.dimension

    def encode(self, texts: Sequence[str], **_: Any) -> np.ndarray:
        ids = np.array([self.index[text] for text in texts], dtype=np.int64)
        vectors = self.a[ids % 1009] + self.b[(ids // 1009) % 997]
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def make_matcher(corpus: Corpus, encoder: Encoder) -> Matcher:
    """The matcher the app builds (app/services/corpus.py `make_matcher`): lexical TF-IDF
    without IDF over the proposal and offer texts."""
    texts = [*corpus.proposal_texts, *corpus.offer_texts]
    lexical = TfidfSimilarity(use_idf=False, token_pattern=WORD_PATTERN).fit(texts)
    return Matcher(encoder, lexical=lexical, today=TODAY)


def floor_seconds(
    corpus: Corpus, encoder: Encoder, chunk: int = DEFAULT_CHUNK_ROWS
) -> tuple[float, float]:
    """The fp32 products the score needs, in row blocks: proposals x offers, publications x
    offers, summed over the blocks (each block's vectors looked up first, outside the timing,
    and dropped after it, so the floor holds no more memory than the engine)."""
    offers = encoder.encode(list(corpus.offer_texts))
    n = corpus.shape[0]
    wall = cpu = 0.0
    for start in range(0, n, chunk):
        rows = range(start, min(n, start + chunk))
        proposals = encoder.encode([corpus.proposal_texts[i] for i in rows])
        publications = encoder.encode([t for i in rows for t in corpus.author_publications[i]])
        started, started_cpu = time.perf_counter(), time.process_time()
        _ = proposals @ offers.T
        _ = publications @ offers.T
        wall += time.perf_counter() - started
        cpu += time.process_time() - started_cpu
    return wall, cpu


def timed(run: Callable[[], Any]) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process) of one call."""
    started, started_cpu = time.perf_counter(), time.process_time()
    run()
    return time.perf_counter() - started, time.process_time() - started_cpu


def best_of(run: Callable[[], Any], repeats: int) -> tuple[float, float]:
    """The fastest of `repeats` calls, by wall and by CPU time (each its own minimum)."""
    times = [timed(run) for _ in range(repeats)]
    return min(t[0] for t in times), min(t[1] for t in times)


def ratio_row(label: str, recompute: tuple[float, float], floor: tuple[float, float]) -> None:
    """Recompute against floor, by wall time and by CPU time. On a shared machine the CPU
    ratio is the steadier one: other processes' load stretches wall time unevenly."""
    row(
        f"{label}: recompute / floor (wall)",
        f"{recompute[0]:.2f} s / {floor[0]:.2f} s = {recompute[0] / floor[0]:.1f}x",
    )
    row(
        f"{label}: recompute / floor (CPU)",
        f"{recompute[1]:.2f} s / {floor[1]:.2f} s = {recompute[1] / floor[1]:.1f}x (target <= 3x)",
    )


# ---------------------------------------------------------------- sections


def section_machine(args: argparse.Namespace) -> None:
    heading("machine")
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
    except OSError:
        lscpu = ""
    fields = dict(
        (line.split(":", 1)[0].strip(), line.split(":", 1)[1].strip())
        for line in lscpu.splitlines()
        if ":" in line
    )
    wanted = ["avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_bf16"]
    flags = set(fields.get("Flags", "").split())
    row("CPU model (lscpu)", fields.get("Model name", "unknown"))
    row("CPUs", str(os.cpu_count()))
    row("SIMD flags present", " ".join(f for f in wanted if f in flags) or "none listed")
    try:
        from threadpoolctl import threadpool_info

        row(
            "BLAS",
            ", ".join(f"{i['internal_api']} {i['num_threads']} threads" for i in threadpool_info()),
        )
    except ImportError:
        pass
    row("load average (1, 5, 15 min)", " ".join(Path("/proc/loadavg").read_text().split()[:3]))


def _recompute(label: str, n_proposals: int, n_offers: int, publications: int) -> None:
    corpus = synthetic_corpus(n_proposals, n_offers, publications)
    encoder = StandInEncoder()
    encoder.encode([*corpus.proposal_texts, *corpus.offer_texts])
    encoder.encode([t for pubs in corpus.author_publications for t in pubs])
    matcher = make_matcher(corpus, encoder)
    repeats = 3 if n_proposals <= 2000 else 2
    recompute = best_of(lambda: matcher.recommend(corpus, K), repeats)
    floors = [floor_seconds(corpus, encoder) for _ in range(repeats)]
    floor = (min(f[0] for f in floors), min(f[1] for f in floors))
    ratio_row(label, recompute, floor)


def section_recompute(args: argparse.Namespace) -> None:
    heading("whole recompute, k=5, stand-in vectors cached (best of 2-3)")
    _recompute("2,000 x 500, 5 publications each", 2000, 500, 5)
    _recompute("10,000 x 2,000, 5 publications each", 10000, 2000, 5)


def section_large(args: argparse.Namespace) -> None:
    publications = args.large_publications
    heading(
        f"100,000 x 10,000, {publications} publication(s) each (numpy-generated vectors), one run"
    )
    started = time.perf_counter()
    corpus = synthetic_corpus(100_000, 10_000, publications, words=40, publication_texts=False)
    texts = [*corpus.proposal_texts, *corpus.offer_texts]
    texts += [t for pubs in corpus.author_publications for t in pubs]
    encoder = Encoder(TableModel(texts), model_name="bench-table", memory_limit=50_000)  # type: ignore[arg-type]
    matcher = make_matcher(corpus, encoder)
    row("corpus generated, lexical model fitted in", f"{time.perf_counter() - started:.0f} s")
    before = peak_rss_mib()
    result = None

    def recommend() -> None:
        nonlocal result
        result = matcher.recommend(corpus, K)

    recompute = timed(recommend)
    after = peak_rss_mib()
    ratio_row("100,000 x 10,000", recompute, floor_seconds(corpus, encoder))
    row("peak RSS before / after the recompute", f"{before:.0f} MiB / {after:.0f} MiB")
    assert result is not None
    row("pairs recommended", f"{len(result.ranks()):,}")


SECTIONS: dict[str, Callable[[argparse.Namespace], None]] = {
    "machine": section_machine,
    "recompute": section_recompute,
    "large": section_large,
}


def profile(shape: str) -> None:
    n_proposals, n_offers, publications = (int(x) for x in shape.split("x"))
    corpus = synthetic_corpus(n_proposals, n_offers, publications)
    encoder = StandInEncoder()
    encoder.encode([*corpus.proposal_texts, *corpus.offer_texts])
    encoder.encode([t for pubs in corpus.author_publications for t in pubs])
    matcher = make_matcher(corpus, encoder)
    # CPU time of the process (steadier than wall time on a shared machine), one worker:
    # cProfile sees only the thread it runs in (BLAS keeps its own threads).
    profiler = cProfile.Profile(time.process_time)
    profiler.runcall(matcher.recommend, corpus, K, workers=1)
    pstats.Stats(profiler).sort_stats("tottime").print_stats(18)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", help=f"comma-separated sections of {','.join(SECTIONS)}")
    parser.add_argument("--profile", help="cProfile one recompute of PxOxN instead")
    parser.add_argument(
        "--large-publications",
        type=int,
        default=1,
        help="publications per academic at 100,000 x 10,000 (default 1: 5 takes ~10 min here)",
    )
    args = parser.parse_args()
    if args.profile:
        profile(args.profile)
        return
    chosen = args.only.split(",") if args.only else list(SECTIONS)
    unknown = [name for name in chosen if name not in SECTIONS]
    if unknown:
        parser.error(f"unknown section(s) {', '.join(unknown)}; known: {', '.join(SECTIONS)}")
    for name in chosen:
        SECTIONS[name](args)


if __name__ == "__main__":
    main()
