"""Embedding throughput, and one new item ranked through the real queue.

1. Texts/s on the same texts, in one run: (a) sentence-transformers' default
   `model.encode(texts)` (torch); (b) our bulk path in one process (length-sorted chunks,
   stored in the database: `Queue.embed_bulk` on the embedded queue), on torch and on the
   encoder path the app chose for this CPU (printed); (c) the same path on Redis with
   1 and then 2 `flask --app app worker` processes taking the chunk jobs, on torch, with
   torch threads per worker set so that workers x threads = cores. Each of (b) and (c)
   starts from an empty database; worker start-up and model load are excluded (the
   workers are started with `--warm` and timed from when every one has said it is ready).
2. Single-item latency: a proposal created and committed as the web form does, on a
   catalogue of 10,000 offers, until a `flask --app app worker` (Redis, TANDEM_MODEL=stand-in)
   has re-ranked it; timed from just before the commit to the worker's "complete" event.
   Then as many open offers are edited (a marker appended to the description, replacing the
   last run's) and re-ranked the same way. Each figure is shown with the worker process's CPU
   time for the job (steadier than wall time when other work shares the cores). The worker
   starts with `--warm` (model, catalogue and vectors prepared before it takes jobs); the
   first re-ranking of a fresh worker is shown apart.
   The proposals it creates stay in the catalogue (a few per run).
   The catalogue is generated once with `flask --app app catalogue generate --encoder
   stand-in --proposals 2000 --offers 10000` into BENCH_CATALOGUE_URL (default: a SQLite
   file under instance/bench/) and reused while it holds 10,000 offers.

Needs REDIS_URL (default redis://127.0.0.1:6379/0) for (c) and 2. Options: --texts N,
--rankings N, --skip-workers, --skip-throughput, --skip-latency.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import redis  # noqa: E402
import sqlalchemy as sa  # noqa: E402
from flask import Flask  # noqa: E402

from app import create_app  # noqa: E402
from app.cli.db import upgrade  # noqa: E402
from app.db import db_session, make_engine  # noqa: E402
from app.matcher import get_encoder  # noqa: E402
from app.queue import Queue  # noqa: E402
from app.services import proposals  # noqa: E402
from app.services.demo import read_demo_data  # noqa: E402
from app.services.rematching import DeferredRematch  # noqa: E402
from app.services.synthetic_vocabulary import AREAS, CHALLENGES, FINDINGS, GOALS  # noqa: E402
from matching import load_model  # noqa: E402
from matching.embeddings import encoder_backend, make_encoder  # noqa: E402
from models import Offer  # noqa: E402

REDIS_URL = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0"
CATALOGUE_OFFERS = 10_000
CATALOGUE_PROPOSALS = 2_000
WORKER_READY_S = 600


def cpu_model() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return "unknown (no lscpu)"
    fields = dict(line.split(":", 1) for line in out.splitlines() if ":" in line)
    return fields.get("Model name", "unknown").strip()


def cores() -> int:
    return len(os.sched_getaffinity(0))


def bench_texts(count: int, seed: int = 7) -> list[str]:
    """The demo's proposals, offers and publications, then synthetic abstracts of one to
    eight sentences in the catalogue's vocabulary (varied lengths, as real imports are)."""
    data = read_demo_data()
    texts = [f"{p['title']}\n{p['abstract']}" for p in data["proposals"]]
    texts += [f"{o['title']}\n{o['description']}" for o in data["offers"]]
    texts += [
        f"{pub['title']}\n{pub['abstract']}"
        for user in data["users"]
        for pub in user.get("publications", [])
    ]
    rng = random.Random(seed)
    while len(texts) < count:
        area = rng.choice(AREAS)
        topic, method, data_name = (
            rng.choice(area.topics),
            rng.choice(area.methods),
            rng.choice(area.data),
        )
        sentences = [
            f"{topic.capitalize()} is hard because {rng.choice(CHALLENGES)}.",
            f"We study {method} on {data_name} and show that {rng.choice(FINDINGS)}.",
            f"Our goal is {rng.choice(GOALS)}.",
            f"We release {rng.choice(area.outputs)}.",
        ]
        body = " ".join(rng.choice(sentences) for _ in range(rng.randint(1, 8)))
        texts.append(f"{method.capitalize()} for {topic} ({len(texts)})\n{body}")
    return texts[:count]


def fresh_sqlite(folder: Path, name: str) -> str:
    url = f"sqlite:///{folder / name}"
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    return url


def make_app(database_url: str, instance: Path, **config: Any) -> Flask:
    os.environ["TANDEM_INSTANCE_PATH"] = str(instance)
    return create_app(
        {
            "DATABASE_URL": database_url,
            "SECRET_KEY": f"bench-{uuid.uuid4().hex}",
            "TANDEM_ENV": "test",
            "TANDEM_QUEUE_THREADS": 0,
            "TANDEM_MAIL_DIR": str(instance / "mail"),
            **config,
        }
    )


class Events:
    """The Redis job-events channel of one queue: wait for a message without polling."""

    def __init__(self, channel: str) -> None:
        self.pubsub = redis.Redis.from_url(REDIS_URL).pubsub(ignore_subscribe_messages=True)
        self.pubsub.subscribe(channel)

    def wait_for(self, wanted: str, timeout_s: float) -> float:
        """Block until a message starting with `wanted` arrives; its arrival time."""
        deadline = time.monotonic() + timeout_s
        while (left := deadline - time.monotonic()) > 0:
            message = self.pubsub.get_message(timeout=left)
            if message is not None and message["data"].decode().startswith(wanted):
                return time.perf_counter()
        raise TimeoutError(f"no {wanted!r} event within {timeout_s} s")

    def close(self) -> None:
        self.pubsub.close()


@contextmanager
def workers(
    count: int,
    *,
    database_url: str,
    queue_name: str,
    instance: Path,
    model: str | None = None,
    backend: str | None = None,
) -> Iterator[list[subprocess.Popen[bytes]]]:
    """`count` real `flask --app app worker` processes on one Redis queue, warmed up, with
    cores / count torch threads each; stopped (SIGTERM) on exit."""
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "SECRET_KEY": f"bench-{uuid.uuid4().hex}",
        "TANDEM_ENV": "test",
        "TANDEM_INSTANCE_PATH": str(instance),
        "TANDEM_QUEUE": "redis",
        "TANDEM_QUEUE_NAME": queue_name,
        "REDIS_URL": REDIS_URL,
        "TANDEM_MAIL_DIR": str(instance / "mail"),
    }
    if model is not None:
        env["TANDEM_MODEL"] = model
    if backend is not None:
        env["TANDEM_ENCODER_BACKEND"] = backend
    threads = max(1, cores() // count)
    events = Events(f"{queue_name}.job-events")
    started: list[subprocess.Popen[bytes]] = []
    try:
        for number in range(count):
            log = (instance / f"worker-{number}.log").open("wb")
            started.append(
                subprocess.Popen(
                    [
                        *(sys.executable, "-m", "flask", "--app", "app", "worker"),
                        *("--threads", "1", "--torch-threads", str(threads)),
                        *("--warm", "--no-periodic"),
                    ],
                    cwd=ROOT,
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )
        for _ in started:
            events.wait_for("ready worker", WORKER_READY_S)
        yield started
    finally:
        events.close()
        for process in started:
            process.terminate()
        for process in started:
            process.wait(timeout=120)


def throughput(texts: list[str], *, skip_workers: bool) -> None:
    cpu = cores()
    model = load_model()
    model.encode(texts[:16])  # lazy initialisation, paid once
    print(f"texts                           : {len(texts)} (demo texts + synthetic abstracts)")
    print(f"mean length                     : {statistics.mean(map(len, texts)):.0f} characters")

    started = time.perf_counter()
    model.encode(texts)
    default_s = time.perf_counter() - started
    print(
        f"(a) model.encode default        : {len(texts) / default_s:7.1f} texts/s ({cpu} threads)"
    )

    backend, reason = encoder_backend()
    with tempfile.TemporaryDirectory(prefix="tandem-bench-") as scratch:
        folder = Path(scratch)
        # On torch, as (a): what the chunking adds; then on the backend the app runs here,
        # where that is another one (a second torch row would only read the stored vectors).
        rows = [("torch", "torch")] + ([(backend, None)] if backend != "torch" else [])
        for label, chosen in rows:
            app = make_app(
                fresh_sqlite(folder, f"ours-{label}.db"), folder / "ours", TANDEM_QUEUE="immediate"
            )
            with app.app_context():
                encoder = make_encoder(backend=chosen) if chosen else get_encoder()
                encoder.encode(texts[:16])
                session = db_session()
                started = time.perf_counter()
                app.extensions["tandem.queue"].embed_bulk(
                    session=session, encoder=encoder, texts=texts
                )
                session.commit()
                ours_s = time.perf_counter() - started
            app.extensions["tandem.engine"].dispose()
            print(
                f"(b) ours, one process, {label:<9}: {len(texts) / ours_s:7.1f} texts/s "
                f"({default_s / ours_s:.2f}x default; length-sorted chunks, stored)"
            )
        print(f"encoder path the app chose      : {backend} ({reason})")
        if skip_workers:
            return
        # Workers on torch, as (a): `--torch-threads` bounds their threads (ONNX Runtime's
        # are not bounded by it: one per physical core in each worker).
        encoder = make_encoder(backend="torch")
        for count in (1, 2):
            name = f"tandem-bench-{uuid.uuid4().hex[:8]}"
            url = fresh_sqlite(folder, f"workers{count}.db")
            instance = folder / f"workers{count}"
            app = make_app(
                url, instance, TANDEM_QUEUE="redis", TANDEM_QUEUE_NAME=name, REDIS_URL=REDIS_URL
            )
            queue: Queue = app.extensions["tandem.queue"]
            try:
                with (
                    workers(
                        count, database_url=url, queue_name=name, instance=instance, backend="torch"
                    ),
                    app.app_context(),
                ):
                    session = db_session()
                    started = time.perf_counter()
                    queue.embed_bulk(session=session, encoder=encoder, texts=texts)
                    took = time.perf_counter() - started
                    session.commit()
            finally:
                queue.huey.flush()
                app.extensions["tandem.engine"].dispose()
            print(
                f"(c) {count} worker process(es), torch: {len(texts) / took:6.1f} texts/s "
                f"({default_s / took:.2f}x default; {max(1, cpu // count)} torch threads each)"
            )


def catalogue_url(instance: Path) -> str:
    """A catalogue of 10,000 offers (generated once, then reused)."""
    url = os.environ.get("BENCH_CATALOGUE_URL") or f"sqlite:///{instance / 'catalogue.db'}"
    engine = make_engine(url)
    upgrade(engine)
    with engine.connect() as connection:
        offers = connection.execute(sa.text("SELECT count(*) FROM offer")).scalar_one()
    engine.dispose()
    if offers != CATALOGUE_OFFERS:
        if offers:
            raise SystemExit(f"{url} holds {offers} offers, not {CATALOGUE_OFFERS}: use another")
        print(f"generating the catalogue into {url} (once; minutes)...", flush=True)
        subprocess.run(
            [
                *(sys.executable, "-m", "flask", "--app", "app", "catalogue", "generate"),
                *("--encoder", "stand-in", "--offers", str(CATALOGUE_OFFERS)),
                *("--proposals", str(CATALOGUE_PROPOSALS)),
            ],
            cwd=ROOT,
            env={
                **os.environ,
                "DATABASE_URL": url,
                "TANDEM_ENV": "test",
                "SECRET_KEY": "bench",
                "TANDEM_INSTANCE_PATH": str(instance),
            },
            check=True,
            stdout=subprocess.DEVNULL,
        )
    return url


PROPOSAL = {
    "title": "Offline reinforcement learning for grid batteries",
    "abstract": "We learn battery dispatch policies from five years of logged grid data, "
    "with conservative Q-learning and a simulator calibrated on telemetry.",
    "research_areas": ["reinforcement learning", "energy systems"],
    "gpu_hours_needed": 2000,
    "gpu_memory_min_gb": 40,
    "duration_months": 9,
    "data_need": "Hourly telemetry from grid-scale battery sites",
    "data_domains": ["energy", "time series"],
    "collaboration_kinds": ["compute"],
    "ip_stance": "open",
}


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (from /proc), in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


BENCH_EDIT = " [bench edit "


def single_item_latency(rankings: int) -> None:
    instance = ROOT / "instance" / "bench"
    instance.mkdir(parents=True, exist_ok=True)
    url = catalogue_url(instance)
    name = f"tandem-bench-{uuid.uuid4().hex[:8]}"
    app = make_app(
        url,
        instance / "latency",
        TANDEM_QUEUE="redis",
        TANDEM_QUEUE_NAME=name,
        REDIS_URL=REDIS_URL,
        TANDEM_MODEL="stand-in",
    )
    queue: Queue = app.extensions["tandem.queue"]
    latencies: dict[str, list[tuple[float, float]]] = {"proposal": [], "offer": []}
    events = Events(f"{name}.job-events")
    try:
        with (
            workers(
                1,
                database_url=url,
                queue_name=name,
                instance=instance / "latency",
                model="stand-in",
            ) as started,
            app.app_context(),
        ):
            pid = started[0].pid
            engine = app.extensions["tandem.engine"]
            with engine.connect() as connection:
                author = connection.execute(
                    sa.text("SELECT author_id FROM proposal ORDER BY id LIMIT 1")
                ).scalar_one()
                offers = connection.execute(
                    sa.text("SELECT count(*) FROM offer WHERE status = 'open'")
                ).scalar_one()
                edited = list(
                    connection.execute(
                        sa.text("SELECT id FROM offer WHERE status = 'open' ORDER BY id LIMIT :n"),
                        {"n": rankings},
                    ).scalars()
                )

            def timed(kind: str, item_id: int, session: Any) -> tuple[float, float]:
                cpu = cpu_seconds(pid)
                started_at = time.perf_counter()
                session.commit()  # the after-commit hook queues the re-ranking
                finished = events.wait_for(f"complete tandem.rematch {kind} {item_id}", 300)
                session.close()
                return finished - started_at, cpu_seconds(pid) - cpu

            for number in range(rankings + 1):
                session = db_session()
                proposal = proposals.create_proposal(
                    session=session,
                    author_id=author,
                    data={**PROPOSAL, "title": f"{PROPOSAL['title']} {uuid.uuid4().hex[:6]}"},
                    publish=True,
                    rematch=DeferredRematch(),
                )
                latencies["proposal"].append(timed("proposal", proposal.id, session))  # type: ignore[arg-type]
                if number == 0:
                    print(f"catalogue                       : {offers:,} open offers ({url})")
                    first = latencies["proposal"].pop(0)
                    print(
                        f"first re-ranking, fresh worker  : {first[0]:.2f} s "
                        f"(worker CPU {first[1]:.2f} s)"
                    )
            for offer_id in edited:
                session = db_session()
                offer = session.get(Offer, offer_id)
                base = offer.description.split(BENCH_EDIT)[0]
                offer.description = f"{base}{BENCH_EDIT}{uuid.uuid4().hex[:6]}]"
                session.add(offer)
                session.flush()
                DeferredRematch().offer(session, offer_id)
                latencies["offer"].append(timed("offer", offer_id, session))
    finally:
        events.close()
        queue.huey.flush()
        app.extensions["tandem.engine"].dispose()
    for kind, label in (("proposal", "new proposals"), ("offer", "edited offers")):
        walls = [wall for wall, _ in latencies[kind]]
        cpus = [cpu for _, cpu in latencies[kind]]
        print(
            f"single item, commit -> ranked   : median {statistics.median(walls):.2f} s, "
            f"max {max(walls):.2f} s over {len(walls)} {label} (target: 2 s); worker CPU "
            f"median {statistics.median(cpus):.2f} s, max {max(cpus):.2f} s"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--texts", type=int, default=512)
    parser.add_argument("--rankings", type=int, default=5)
    parser.add_argument("--skip-workers", action="store_true")
    parser.add_argument("--skip-latency", action="store_true")
    parser.add_argument("--skip-throughput", action="store_true")
    args = parser.parse_args()
    print(f"CPU                             : {cpu_model()}, {cores()} cores")
    if not args.skip_throughput:
        throughput(bench_texts(args.texts), skip_workers=args.skip_workers)
    if not args.skip_latency:
        single_item_latency(args.rankings)


if __name__ == "__main__":
    main()
