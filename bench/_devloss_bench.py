"""The development benchmark's data for `bench/devloss.py`: the harness, the vector cache and
`Bench`, the score matrices every variant is built from.

Not a benchmark itself: `make bench` runs bench/*.py except files starting with `_`.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sqlite3
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from types import ModuleType

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from matching.affinity import affinity, aggregate_profiles  # noqa: E402
from matching.embeddings import Encoder  # noqa: E402

HARNESS = ROOT.parent / "shared" / "eval" / "goldstandard.py"
DATA_DIR = ROOT.parent / "shared" / "data" / "goldstandard-dev"
CACHE_DIR = Path(os.environ.get("TANDEM_DEVLOSS_CACHE", "/tmp/tandem-devloss"))


def load_harness() -> ModuleType:
    spec = importlib.util.spec_from_file_location("goldstandard", HARNESS)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["goldstandard"] = module
    spec.loader.exec_module(module)
    return module


class DiskStore:
    """An `EmbeddingStore` in one SQLite file outside the repository (vectors of dev texts)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(path)
        self.db.execute(
            "CREATE TABLE IF NOT EXISTS vectors "
            "(model TEXT, hash TEXT, vector BLOB, PRIMARY KEY (model, hash))"
        )

    def get_many(self, model_name: str, hashes: Sequence[str]) -> dict[str, np.ndarray]:
        found: dict[str, np.ndarray] = {}
        for start in range(0, len(hashes), 500):
            chunk = list(hashes[start : start + 500])
            marks = ",".join("?" * len(chunk))
            rows = self.db.execute(
                f"SELECT hash, vector FROM vectors WHERE model = ? AND hash IN ({marks})",
                [model_name, *chunk],
            )
            found.update((h, np.frombuffer(blob, dtype=np.float32)) for h, blob in rows)
        return found

    def put_many(self, model_name: str, vectors: Mapping[str, np.ndarray]) -> None:
        self.db.executemany(
            "INSERT OR REPLACE INTO vectors VALUES (?, ?, ?)",
            [(model_name, h, np.asarray(v, np.float32).tobytes()) for h, v in vectors.items()],
        )
        self.db.commit()


@dataclass
class Bench:
    """The dev data as the harness reads it, with every score matrix the variants need.

    Score matrices are (papers, profiles): profile column v * R + r is researcher r's profile in
    profile set v, as the harness lays them out.
    """

    gs: ModuleType
    encoder: Encoder
    store: DiskStore

    @cached_property
    def ds(self):  # noqa: ANN201 - the harness's Dataset
        return self.gs.load_dataset(str(DATA_DIR))

    @cached_property
    def pairs(self):  # noqa: ANN201 - the harness's PairTable
        return self.gs.build_pairs(self.ds)

    @property
    def n_researchers(self) -> int:
        return len(self.ds.reviewers)

    @cached_property
    def queries(self) -> list[str]:
        return [self.ds.paper_text[p] for p in self.ds.papers]

    @cached_property
    def profiles(self) -> list[list[str]]:
        return [self.ds.profiles[v][r] for v in self.ds.versions for r in self.ds.reviewers]

    @cached_property
    def sizes(self) -> list[int]:
        return [len(p) for p in self.profiles]

    @cached_property
    def flat(self) -> list[str]:
        return [text for profile in self.profiles for text in profile]

    @cached_property
    def starts(self) -> np.ndarray:
        return np.concatenate(([0], np.cumsum(self.sizes)[:-1])).astype(np.int64)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        return self.encoder.encode(list(texts), store=self.store)

    @cached_property
    def cosines(self) -> np.ndarray:
        """Whole-text cosines (papers, profile texts), as `matching.affinity` computes them."""
        return self.encode(self.queries) @ self.encode(self.flat).T

    def aggregate(self, similarities: np.ndarray, how: str, **options: float) -> np.ndarray:
        return aggregate_profiles(similarities, self.sizes, how, **options).astype(np.float64)  # type: ignore[arg-type]

    def product(self, **keywords: object) -> np.ndarray:
        """`matching.affinity` itself, with `keywords`: the function the product calls."""
        return affinity(
            self.queries, self.profiles, encoder=self.encoder, store=self.store, **keywords
        ).astype(np.float64)  # type: ignore[arg-type]

    @cached_property
    def years(self) -> np.ndarray:
        """Publication year of every profile text, in `flat` order (read from the archives)."""
        years: list[int] = []
        for version in self.ds.versions:
            for researcher in self.ds.reviewers:
                path = (
                    DATA_DIR / "evaluation_datasets" / version / "archives" / f"~{researcher}.jsonl"
                )
                if path.exists():
                    for line in path.read_text(encoding="utf-8").splitlines():
                        if line.strip():
                            years.append(int(json.loads(line)["content"].get("year") or 0))
        assert len(years) == len(self.flat)
        return np.asarray(years, dtype=np.float64)

    def errors(self, scores: np.ndarray) -> np.ndarray:
        """Each researcher's rating-weighted wrongly ordered pairs, mean over profile sets: (R,)."""
        per_set = []
        n = self.n_researchers
        for v in range(len(self.ds.versions)):
            column = v * n + self.pairs.rev
            wrong, _ = self.gs.per_reviewer_loss(
                self.pairs, scores[self.pairs.a, column], scores[self.pairs.b, column], n
            )
            per_set.append(wrong)
        return np.mean(per_set, axis=0)

    @cached_property
    def weights(self) -> np.ndarray:
        """Each researcher's total pair weight (the loss's denominator): (R,)."""
        _, total = self.gs.per_reviewer_loss(
            self.pairs,
            np.zeros(len(self.pairs.rev)),
            np.zeros(len(self.pairs.rev)),
            self.n_researchers,
        )
        return total
