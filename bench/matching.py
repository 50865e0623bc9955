"""Matcher at scale: embedding throughput on this machine.

Prints figures, asserts nothing. Each section is a function taking the parsed arguments; add a
section by writing one and listing it in SECTIONS. Run from the project root:

    .venv/bin/python bench/matching.py                    # every section
    .venv/bin/python bench/matching.py --only embeddings  # one section

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
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from matching.embeddings import load_model  # noqa: E402

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


# ---------------------------------------------------------------- machine


def section_machine(args: argparse.Namespace) -> None:
    heading("machine")
    flags = cpu_flags()
    wanted = ["avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_bf16"]
    row("CPUs", str(os.cpu_count()))
    row("SIMD flags present", " ".join(f for f in wanted if f in flags) or "none listed")
    row("load average (1, 5, 15 min)", load_average())


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
