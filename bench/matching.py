"""Matcher at scale: chunked top-k retrieval and embedding throughput on this machine.

Prints figures, asserts nothing. Each section is a function taking the parsed arguments; add a
section by writing one and listing it in SECTIONS. Run from the project root:

    .venv/bin/python bench/matching.py                  # every section, about 5 minutes
    .venv/bin/python bench/matching.py --only topk      # one section

The machine may be shared: the load average is printed with the figures, and each timing is the
best of a few runs where the section can afford them.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import random
import resource
import sys
import time
import tracemalloc
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from matching.embeddings import load_model  # noqa: E402
from matching.recommend import top_k  # noqa: E402
from matching.topk import BYTES_PER_PAIR, chunk_rows_for, iter_top_k, top_k_similar  # noqa: E402

DIMENSION = 384
K = 10


# ---------------------------------------------------------------- helpers


def heading(title: str) -> None:
    print(f"\n## {title}")


def row(label: str, value: str) -> None:
    print(f"{label:<44} {value}")


def best_time(run: Callable[[], Any], repeats: int) -> float:
    """Fastest of `repeats` wall-clock runs, in seconds (the least disturbed by other load)."""
    return best_times({"run": run}, repeats)["run"]


def best_times(
    runs: dict[str, Callable[[], Any]], repeats: int, clock: Callable[[], float] = time.perf_counter
) -> dict[str, float]:
    """Fastest of `repeats` runs of each, the runs interleaved so that a burst of load from
    elsewhere hits them alike; seconds of `clock` (wall time unless told)."""
    best = dict.fromkeys(runs, float("inf"))
    for _ in range(repeats):
        for label, run in runs.items():
            started = clock()
            run()
            best[label] = min(best[label], clock() - started)
    return best


def load_average() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


def peak_rss_mib() -> float:
    """Peak resident memory of this process so far (Linux reports ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def cpu_flags() -> set[str]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    line = next((line for line in text.splitlines() if line.startswith("flags")), "")
    return set(line.partition(":")[2].split())


def unit_rows(rng: np.random.Generator, rows: int) -> np.ndarray:
    vectors = rng.standard_normal((rows, DIMENSION), dtype=np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors


@contextmanager
def traced_peak() -> Iterator[list[int]]:
    """Peak bytes allocated (numpy included) inside the block, into the yielded list."""
    result: list[int] = []
    tracemalloc.start()
    try:
        yield result
        result.append(tracemalloc.get_traced_memory()[1])
    finally:
        tracemalloc.stop()


# ---------------------------------------------------------------- machine


def section_machine(args: argparse.Namespace) -> None:
    heading("machine")
    flags = cpu_flags()
    wanted = ["avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_bf16"]
    row("CPUs", str(os.cpu_count()))
    row("SIMD flags present", " ".join(f for f in wanted if f in flags) or "none listed")
    row("load average (1, 5, 15 min)", load_average())


# ---------------------------------------------------------------- top-k


def chunked_matmul(queries: np.ndarray, items: np.ndarray, chunk_rows: int) -> None:
    """The floor: every score computed, chunk by chunk, and nothing selected."""
    buffer = np.empty((min(chunk_rows, len(queries)), len(items)), dtype=np.float32)
    for start in range(0, len(queries), chunk_rows):
        stop = min(start + chunk_rows, len(queries))
        np.matmul(queries[start:stop], items.T, out=buffer[: stop - start])


def naive_argsort(queries: np.ndarray, items: np.ndarray) -> np.ndarray:
    """What one writes first: the full score matrix, then a full sort of every row."""
    return np.argsort(-(queries @ items.T), axis=1, kind="stable")[:, :K]


def paired_per_chunk(queries: np.ndarray, items: np.ndarray, chunk: int) -> tuple[float, float]:
    """Seconds of (floor, top-k) over all queries, each chunk's top-k step timed right after
    the bare matrix product of the same chunk, so a burst of outside load hits both alike."""
    floor = found = 0.0
    buffer = np.empty((chunk, len(items)), dtype=np.float32)
    steps = iter_top_k(queries, items, K, chunk_rows=chunk)
    for start in range(0, len(queries), chunk):
        stop = min(start + chunk, len(queries))
        started = time.perf_counter()
        np.matmul(queries[start:stop], items.T, out=buffer[: stop - start])
        middle = time.perf_counter()
        next(steps)
        floor += middle - started
        found += time.perf_counter() - middle
    return floor, found


def report_against_floor(found: float, floor: float, pairs: int) -> None:
    row("  float32 matrix product (floor)", f"{floor:6.2f} s")
    row("  top_k_similar", f"{found:6.2f} s = {found / floor:.2f} x floor")
    row("  pairs per second", f"{pairs / found / 1e6:,.0f} M")


def section_topk(args: argparse.Namespace) -> None:
    from threadpoolctl import threadpool_limits

    heading(f"top-k retrieval (k={K}, d={DIMENSION}, random unit float32)")
    rng = np.random.default_rng(0)
    items = unit_rows(rng, 10_000)
    queries = unit_rows(rng, 100_000)
    chunk = chunk_rows_for(len(items))
    row("default chunk rows for 10k items", f"{chunk} (bound {BYTES_PER_PAIR} B/pair)")
    square = queries[:10_000]

    print("\nchunk size sweep, 10k x 10k (wall, best of 2, interleaved):")
    for rows in (512, 1024, 2048):
        timing = best_times(
            {
                "floor": lambda r=rows: chunked_matmul(square, items, r),
                "top-k": lambda r=rows: top_k_similar(square, items, K, chunk_rows=r),
            },
            2,
        )
        row(
            f"  chunk {rows:>5} rows",
            f"top-k {timing['top-k']:5.2f} s, floor {timing['floor']:5.2f} s, "
            f"ratio {timing['top-k'] / timing['floor']:.2f}",
        )

    timing = best_times(
        {
            "floor": lambda: chunked_matmul(square, items, chunk),
            "top-k": lambda: top_k_similar(square, items, K),
        },
        3,
    )
    print(f"\n10,000 queries x {len(items):,} items (wall, best of 3, both threads):")
    report_against_floor(timing["top-k"], timing["floor"], len(square) * len(items))

    floor, found = paired_per_chunk(queries, items, chunk)
    print(
        f"\n100,000 queries x {len(items):,} items (wall, each chunk timed right after its floor):"
    )
    report_against_floor(found, floor, len(queries) * len(items))

    with threadpool_limits(limits=1):
        timing = best_times(
            {
                "floor": lambda: chunked_matmul(square, items, chunk),
                "top-k": lambda: top_k_similar(square, items, K),
            },
            2,
            clock=time.thread_time,
        )
    print("\n10,000 x 10,000 on one thread, CPU time (steadier when the machine is shared):")
    row("  float32 matrix product (floor)", f"{timing['floor']:6.2f} s")
    ratio = timing["top-k"] / timing["floor"]
    row("  top_k_similar", f"{timing['top-k']:6.2f} s = {ratio:.2f} x floor")

    sample = queries[:1_000]
    timing = best_times(
        {
            "naive": lambda: naive_argsort(sample, items),
            "partition": lambda: top_k(sample @ items.T, K),
            "chunked": lambda: top_k_similar(sample, items, K),
        },
        2,
    )
    print("\nbaselines on 1,000 queries x 10,000 items, extrapolated linearly in queries:")
    for label, seconds in (
        ("  naive: full matrix + argsort per row", timing["naive"]),
        ("  full matrix + recommend.top_k", timing["partition"]),
        ("  top_k_similar", timing["chunked"]),
    ):
        row(label, f"{seconds:5.2f} s -> 10k: {seconds * 10:6.1f} s, 100k: {seconds * 100:6.1f} s")
    full_matrix_gib = 100_000 * len(items) * 4 / 2**30
    row(
        "  a full 100k x 10k float32 matrix needs", f"{full_matrix_gib:.1f} GiB (plus sort scratch)"
    )

    print("\nmemory:")
    bound = BYTES_PER_PAIR * chunk * len(items)
    with traced_peak() as peak:
        top_k_similar(square, items, K)
    results = len(square) * K * 12
    row("  stated scratch bound (16 B x rows x items)", f"{bound / 2**20:6.1f} MiB")
    row("  traced peak, 10k x 10k, less results", f"{(peak[0] - results) / 2**20:6.1f} MiB")
    row("  results per 100k queries (int64 + float32)", f"{100_000 * K * 12 / 2**20:6.1f} MiB")
    row("  process peak RSS so far (ru_maxrss)", f"{peak_rss_mib():6.0f} MiB")
    row("  load average", load_average())


# ---------------------------------------------------------------- embeddings


def demo_texts(count: int, seed: int = 0) -> list[str]:
    """`count` texts of 150-200 words built from the demo proposals, offers and publications:
    each a title and its own sentences shuffled, topped up with another record's words."""
    records: list[tuple[str, str]] = []
    for path in sorted((ROOT / "app" / "demo" / "data").glob("*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        records += [(p["title"], p["abstract"]) for p in data.get("proposals", [])]
        records += [(o["title"], o["description"]) for o in data.get("offers", [])]
        for user in data.get("users", []):
            records += [(p["title"], p["abstract"]) for p in user.get("publications", [])]
    rng = random.Random(seed)
    texts = []
    while len(texts) < count:
        title, body = rng.choice(records)
        sentences = [s for s in body.split(". ") if s]
        rng.shuffle(sentences)
        words = ". ".join(sentences).split()
        while len(words) < 150:
            words += rng.choice(records)[1].split()
        texts.append(f"{title}\n{' '.join(words[: rng.randint(150, 200)])}")
    return texts


def int8_linear_layers(model: Any, include: Callable[[str], bool]) -> Any:
    """A copy of `model` whose chosen nn.Linear layers run in dynamic int8 (per-channel weights,
    activations quantised per call), with torch's eager quantisation API (deprecated, still
    shipped in 2.x)."""
    import torch
    from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

    names = [
        name
        for name, module in model.named_modules()
        if isinstance(module, torch.nn.Linear) and include(name)
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", UserWarning)
        return quantize_dynamic(
            copy.deepcopy(model), dict.fromkeys(names, per_channel_dynamic_qconfig), torch.qint8
        )


def encode(model: Any, texts: list[str]) -> np.ndarray:
    return np.asarray(
        model.encode(texts, batch_size=64, normalize_embeddings=True, show_progress_bar=False),
        dtype=np.float32,
    )


def section_embeddings(args: argparse.Namespace) -> None:
    import torch

    texts = demo_texts(args.texts)
    subset = texts[: args.variant_texts]
    heading(
        f"embedding throughput (all-MiniLM-L6-v2, max_seq_length 256, {len(texts)} texts of "
        f"150-200 words, torch threads {torch.get_num_threads()})"
    )
    model = load_model()
    tokens = [len(ids) for ids in model.tokenizer(texts[:100])["input_ids"]]
    row(
        "tokens per text (first 100, untruncated)", f"mean {np.mean(tokens):.0f}, max {max(tokens)}"
    )
    encode(model, texts[:8])  # lazy initialisation out of the timings
    fp32_all = best_time(lambda: encode(model, texts), 1)
    row("fp32 SentenceTransformer.encode (default)", f"{len(texts) / fp32_all:6.2f} texts/s")

    ffn_in = int8_linear_layers(model, lambda name: "intermediate" in name)
    every = int8_linear_layers(model, lambda name: True)
    candidates = {
        "fp32 (reference)": model,
        "int8 FFN input layers only": ffn_in,
        "int8 every Linear layer": every,
    }
    for candidate in candidates.values():
        encode(candidate, subset[:4])
    vectors: dict[str, np.ndarray] = {}

    def timed(label: str, candidate: Any) -> Callable[[], None]:
        return lambda: vectors.__setitem__(label, encode(candidate, subset))

    def truncated() -> None:
        model.max_seq_length = 128
        try:
            vectors["fp32, max_seq_length 128"] = encode(model, subset)
        finally:
            model.max_seq_length = 256

    runs = {label: timed(label, c) for label, c in candidates.items()}
    timing = best_times(runs | {"fp32, max_seq_length 128": truncated}, 2)

    def bf16() -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            vectors["bf16 autocast"] = encode(model, subset[: args.bf16_texts])

    timing["bf16 autocast"] = best_time(bf16, 1)
    counts = dict.fromkeys(timing, len(subset)) | {"bf16 autocast": args.bf16_texts}
    fp32_rate = len(subset) / timing["fp32 (reference)"]
    reference = vectors["fp32 (reference)"]
    print(f"\nvariants on the first {len(subset)} texts (best of 2, interleaved; bf16: once):")
    for label, seconds in timing.items():
        rate = counts[label] / seconds
        cosines = np.sum(vectors[label] * reference[: counts[label]], axis=1)
        row(
            f"  {label} ({counts[label]} texts)",
            f"{rate:6.2f} texts/s = {rate / fp32_rate:4.2f} x fp32, "
            f"cosine mean {cosines.mean():.4f} min {cosines.min():.4f}",
        )
    row("process peak RSS so far (ru_maxrss)", f"{peak_rss_mib():6.0f} MiB")
    row("load average", load_average())


SECTIONS: dict[str, Callable[[argparse.Namespace], None]] = {
    "machine": section_machine,
    "topk": section_topk,
    "embeddings": section_embeddings,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", help=f"comma-separated sections of {','.join(SECTIONS)}")
    parser.add_argument("--texts", type=int, default=500, help="texts for the fp32 figure")
    parser.add_argument(
        "--variant-texts", type=int, default=128, help="texts for each int8 variant"
    )
    parser.add_argument("--bf16-texts", type=int, default=24, help="texts for bf16 (slow here)")
    args = parser.parse_args()
    chosen = args.only.split(",") if args.only else list(SECTIONS)
    unknown = [name for name in chosen if name not in SECTIONS]
    if unknown:
        parser.error(f"unknown section(s) {', '.join(unknown)}; known: {', '.join(SECTIONS)}")
    started = time.perf_counter()
    for name in chosen:
        SECTIONS[name](args)
    print(f"\ntotal {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
