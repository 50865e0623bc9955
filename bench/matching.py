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

from matching.embeddings import (  # noqa: E402
    POOLINGS,
    Encoder,
    encoder_backend,
    encoder_pooling,
    load_model,
    make_encoder,
    pooled_vectors,
)

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


# ---------------------------------------------------------------- encoder backends


def demo_records() -> list[str]:
    """Every demo proposal, offer and publication as the app embeds it: title, then text."""
    texts = []
    for path in sorted((ROOT / "app" / "demo" / "data").glob("*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        texts += [f"{p['title']}\n{p['abstract']}" for p in data.get("proposals", [])]
        texts += [f"{o['title']}\n{o['description']}" for o in data.get("offers", [])]
        for user in data.get("users", []):
            texts += [f"{p['title']}\n{p['abstract']}" for p in user.get("publications", [])]
    return texts


def synthetic_abstracts(count: int, seed: int = 0) -> list[str]:
    """`count` long abstracts (about 110-180 words) from the synthetic catalogue's vocabulary:
    a title and eight to twelve sentences on one area's topics, methods and data."""
    from app.services import synthetic_vocabulary as v

    rng = random.Random(seed)
    texts = []
    for _ in range(count):
        area = rng.choice(v.AREAS)
        topic, method, data = (
            rng.choice(area.topics),
            rng.choice(area.methods),
            rng.choice(area.data),
        )
        words = {"topic": topic, "Topic": topic.capitalize(), "method": method}
        words |= {"Method": method.capitalize(), "data": data}
        sentences = []
        for _ in range(rng.randint(8, 12)):
            kind = rng.randrange(6)
            if kind == 0:
                sentences.append(f"{words['Topic']} is hard because {rng.choice(v.CHALLENGES)}.")
            elif kind == 1:
                sentences.append(
                    f"We study {rng.choice(area.methods)} on {rng.choice(area.data)} and show "
                    f"that {rng.choice(v.FINDINGS)}."
                )
            elif kind == 2:
                sentences.append(
                    f"We propose to combine {method} with {rng.choice(area.methods)} to "
                    f"{rng.choice(v.GOALS)}."
                )
            elif kind == 3:
                sentences.append(
                    f"Applications include {rng.choice(area.domains)} and "
                    f"{rng.choice(area.topics)}."
                )
            elif kind == 4:
                sentences.append(f"The experiments need {rng.choice(v.COMPUTE_USES)}.")
            else:
                sentences.append(
                    f"We release {rng.choice(area.outputs)} and report results at "
                    f"{rng.choice(area.venues)}."
                )
        texts.append(f"{rng.choice(v.TITLE_PATTERNS).format(**words)}\n{' '.join(sentences)}")
    return texts


def neighbour_overlap(reference: np.ndarray, candidate: np.ndarray, k: int = 10) -> np.ndarray:
    """Per text, the share of its `k` nearest other texts under `reference` vectors that are
    also among its `k` nearest under `candidate` vectors: (n,), 1 is identical."""

    def nearest(vectors: np.ndarray) -> np.ndarray:
        similarity = vectors @ vectors.T
        np.fill_diagonal(similarity, -np.inf)
        return np.argpartition(-similarity, k, axis=1)[:, :k]

    ours, theirs = nearest(reference), nearest(candidate)
    return np.array([len(set(a) & set(b)) / k for a, b in zip(ours, theirs, strict=True)])


def development_loss(encoder: Encoder) -> float | None:
    """The development-split loss of `matching.affinity` with `encoder`'s vectors, as
    bench/devloss.py scores the default (None when the harness or its data is absent)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("devloss", ROOT / "bench" / "devloss.py")
    assert spec is not None and spec.loader is not None
    devloss = importlib.util.module_from_spec(spec)
    sys.modules["devloss"] = devloss  # its dataclasses look their module up
    spec.loader.exec_module(devloss)
    if not devloss.HARNESS.exists() or not devloss.DATA_DIR.exists():
        return None
    gs = devloss.load_harness()
    store = devloss.DiskStore(devloss.CACHE_DIR / "embeddings.sqlite")
    bench = devloss.Bench(gs, encoder, store)
    return float(gs.evaluate_matrix(bench.ds, bench.pairs, bench.product(), 0, 0)["loss"])


def section_encoder(args: argparse.Namespace) -> None:
    """torch fp32 against onnxruntime fp32 and int8 on the same texts in the same run, each
    pooled as `--pooling` says (default: the product's setting)."""
    import torch

    from matching.onnx_encoder import INT8_FLAGS, onnxruntime_available

    sets = {
        "demo records": demo_records(),
        "demo texts, 150-200 words": demo_texts(args.encoder_texts, seed=1),
        "synthetic abstracts": synthetic_abstracts(args.encoder_texts),
    }
    texts = [text for group in sets.values() for text in group]
    heading(
        f"encoder backends (all-MiniLM-L6-v2, {len(texts)} texts: "
        + ", ".join(f"{len(group)} {name}" for name, group in sets.items())
        + f"; torch threads {torch.get_num_threads()})"
    )
    backend, reason = encoder_backend()
    pooling = encoder_pooling(args.pooling)
    flags = cpu_flags()
    row("int8 dot-product flags", " ".join(f for f in INT8_FLAGS if f in flags) or "none")
    row("the path this process runs (auto)", f"{backend}: {reason}")
    row("pooling (every backend)", pooling)
    if not onnxruntime_available():
        row("onnxruntime", "not installed: only torch measured")
        return
    started = time.perf_counter()
    encoders = {"torch fp32": make_encoder(backend="torch", pooling=pooling)}
    for name in ("onnx-fp32", "onnx-int8"):
        encoders[name] = make_encoder(backend=name, pooling=pooling)
    row("ONNX build or load (cached after the first)", f"{time.perf_counter() - started:6.1f} s")
    for encoder in encoders.values():
        encoder.model.encode(texts[:4])
    vectors: dict[str, np.ndarray] = {}

    def run(label: str) -> Callable[[], None]:
        model = encoders[label].model
        return lambda: vectors.__setitem__(
            label, pooled_vectors(model, texts, pooling, batch_size=32)
        )

    runs = {label: run(label) for label in encoders}
    wall = best_times(runs, args.repeats)
    cpu = best_times(runs, 1, clock=time.process_time)
    reference = vectors["torch fp32"]
    print(
        f"\nbest of {args.repeats} interleaved (wall); CPU: process CPU seconds of one more run, "
        "steadier than wall on a shared machine"
    )
    verdicts = {}
    for label in encoders:
        cosine = np.sum(vectors[label] * reference, axis=1)
        overlap = neighbour_overlap(reference, vectors[label])
        speed, cpu_speed = wall["torch fp32"] / wall[label], cpu["torch fp32"] / cpu[label]
        row(
            f"  {label}",
            f"{len(texts) / wall[label]:6.2f} texts/s = {speed:4.2f} x, "
            f"{len(texts) / cpu[label]:6.2f} texts/CPU-s = {cpu_speed:4.2f} x; "
            f"cosine min {cosine.min():.4f} mean {cosine.mean():.4f}; "
            f"top-10 overlap mean {overlap.mean():.3f} min {overlap.min():.1f}; "
            f"max |diff| {np.abs(vectors[label] - reference).max():.1e}",
        )
        for name, group in sets.items():
            start = texts.index(group[0])
            part = cosine[start : start + len(group)]
            print(f"{'':6}{name:<40} cosine min {part.min():.4f} mean {part.mean():.4f}")
        verdicts[label] = (min(speed, cpu_speed), cosine.min(), overlap.mean())
    delta: float | None = None
    if not args.no_devloss:
        losses = {label: development_loss(encoders[label]) for label in ("torch fp32", "onnx-int8")}
        if losses["torch fp32"] is None:
            row("development-split loss", "harness or data absent: not measured")
        else:
            delta = losses["onnx-int8"] - losses["torch fp32"]  # type: ignore[operator]
            row(
                "development-split loss, torch fp32 / int8",
                f"{losses['torch fp32']:.4f} / {losses['onnx-int8']:.4f} ({delta:+.4f})",
            )
    speed, cosine, overlap = verdicts["onnx-int8"]
    gates = speed >= 1.5 and cosine >= 0.99 and overlap >= 0.95 and (delta or 0.0) <= 0.005
    row(
        "int8 gates (>= 1.5x, cosine >= 0.99, top-10 >= 0.95, dev loss +0.005)",
        f"{'met' if gates else 'NOT met'} (slower of wall/CPU speed-up {speed:.2f}x"
        + (", dev loss not measured)" if delta is None else ")"),
    )
    row("int8 vectors are cached under", encoders["onnx-int8"].model_name)
    row("load average", load_average())


SECTIONS: dict[str, Callable[[argparse.Namespace], None]] = {
    "machine": section_machine,
    "embeddings": section_embeddings,
    "encoder": section_encoder,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", help=f"comma-separated sections of {','.join(SECTIONS)}")
    parser.add_argument("--texts", type=int, default=500, help="texts for the fp32 figure")
    parser.add_argument(
        "--variant-texts", type=int, default=128, help="texts for each int8 variant"
    )
    parser.add_argument(
        "--encoder-texts", type=int, default=48, help="long texts per set for the backends"
    )
    parser.add_argument("--repeats", type=int, default=2, help="timed runs per backend")
    parser.add_argument(
        "--no-devloss", action="store_true", help="skip the development-split loss of int8"
    )
    parser.add_argument(
        "--pooling", choices=POOLINGS, help="pooling of the encoder section (default: the setting)"
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
