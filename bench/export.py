"""The partner export (NDJSON) over 10,000 records: throughput and peak memory.

On a fresh migrated SQLite database holding N public proposals (and a few offers and
organisations), it measures in one run:
- the export as `GET /api/v1/export.ndjson` streams it (`app.api.export`): keyset batches of
  500, each record serialised and written, then dropped;
- the baseline a naive export would use: load every record, serialise them all into one list,
  then dump it.
For N = 2,000 and N = 10,000 it prints records/s and the traced peak memory of each. Bounded
memory shows as a streaming peak that stays flat while N grows five-fold, where the naive
peak grows with N. Asserts nothing. Run with `make bench` or `.venv/bin/python
bench/export.py`.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import sys
import tempfile
import time
import tracemalloc
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from sqlmodel import Session, select  # noqa: E402

from app import create_app  # noqa: E402
from app.api import export  # noqa: E402
from app.api.serialise import SERIALISERS  # noqa: E402
from app.cli.db import upgrade  # noqa: E402
from app.services import feed, partners  # noqa: E402
from models import (  # noqa: E402
    Organisation,
    OrganisationKind,
    Proposal,
    ProposalStatus,
    Role,
    User,
)

SCOPES = frozenset(s for s in partners.SCOPES if s != "contacts")


def fill(engine: object, n: int) -> None:
    with Session(engine) as session:  # type: ignore[arg-type]
        university = Organisation(name="Northbridge University", kind=OrganisationKind.university)
        session.add(university)
        session.flush()
        authors = []
        for i in range(50):
            author = User(
                email=f"author{i}@nb.example.org",
                name=f"Author {i}",
                role=Role.academic,
                password_hash="x",
                organisation_id=university.id,
            )
            session.add(author)
            authors.append(author)
        session.flush()
        for i in range(n):
            session.add(
                Proposal(
                    title=f"Proposal number {i} on learning from sparse signals",
                    abstract="We study how to learn from sparse and noisy signals at scale. " * 8,
                    research_areas=["machine learning", "signal processing"],
                    gpu_hours_needed=100 + i % 5000,
                    author_id=authors[i % len(authors)].id,
                    status=ProposalStatus.open,
                )
            )
            if i % 1000 == 999:
                session.flush()
        session.commit()


def streamed(engine: object, *, traced: bool) -> tuple[int, float, int]:
    sink = io.StringIO()
    if traced:
        tracemalloc.start()
    start = time.perf_counter()
    with Session(engine) as session:  # type: ignore[arg-type]
        lines = 0
        for line in export.ndjson(export.lines(session=session, scopes=SCOPES)):
            sink.write(line)
            lines += 1
            if sink.tell() > 1 << 20:  # a network socket would not keep what it sent
                sink.seek(0)
                sink.truncate()
    elapsed = time.perf_counter() - start
    peak = 0
    if traced:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    return lines - 1, elapsed, peak


def naive(engine: object, *, traced: bool) -> tuple[int, float, int]:
    if traced:
        tracemalloc.start()
    start = time.perf_counter()
    with Session(engine) as session:  # type: ignore[arg-type]
        records = []
        for name, resource in feed.RESOURCES.items():
            if resource.scope not in SCOPES:
                continue
            rows = session.exec(select(resource.model).where(resource.public())).all()
            records += [
                {
                    "resource": name,
                    "record": SERIALISERS[name](session, r, SCOPES).model_dump(mode="json"),
                }
                for r in rows
            ]
        text = "\n".join(json.dumps(r) for r in records)
    elapsed = time.perf_counter() - start
    peak = 0
    if traced:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    del text
    return len(records), elapsed, peak


def main() -> None:
    print(
        "records | streamed export: records/s, peak MiB"
        " | naive (all in memory): records/s, peak MiB"
    )
    for n in (2_000, 10_000):
        workdir = Path(tempfile.mkdtemp(prefix="tandem-bench-export-"))
        try:
            app = create_app(
                {
                    "DATABASE_URL": f"sqlite:///{workdir / 'bench.db'}",
                    "SECRET_KEY": "bench",
                    "TANDEM_ENV": "test",
                    "TANDEM_QUEUE": "immediate",
                }
            )
            engine = app.extensions["tandem.engine"]
            with app.app_context():
                upgrade(engine)
                fill(engine, n)
                # Time without tracemalloc (it slows Python down), then memory with it.
                count, seconds, _ = streamed(engine, traced=False)
                naive_count, naive_seconds, _ = naive(engine, traced=False)
                _, _, peak = streamed(engine, traced=True)
                _, _, naive_peak = naive(engine, traced=True)
            assert count == naive_count, (count, naive_count)
            print(
                f"{count:>7} | {count / seconds:8.0f} records/s, {peak / 2**20:6.1f} MiB | "
                f"{naive_count / naive_seconds:8.0f} records/s, {naive_peak / 2**20:6.1f} MiB"
            )
            engine.dispose()
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
    print(f"(batches of 500 records; settle {timedelta(0)}; SQLite; tracemalloc peaks)")


if __name__ == "__main__":
    main()
