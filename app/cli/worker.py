"""`flask --app app worker`: consume the job queue (Redis in production) until stopped."""

from __future__ import annotations

import logging
from datetime import timedelta

import click
from flask import Blueprint

from app.matcher import get_encoder
from app.queue import get_queue

bp = Blueprint("worker", __name__, cli_group=None)


@bp.cli.command("worker")
@click.option(
    "--threads", type=click.IntRange(1, 64), default=2, show_default=True, help="Worker threads."
)
@click.option("--no-periodic", is_flag=True, help="Leave the every-minute delivery to others.")
@click.option(
    "--torch-threads",
    type=click.IntRange(1, 256),
    default=None,
    help="CPU threads torch may use for embedding (default: torch's own, every core). With "
    "several workers on one machine, give each cores / workers.",
)
@click.option(
    "--warm",
    is_flag=True,
    help="Load the embedding model and the catalogue re-rankings need before taking jobs (else "
    "the first job that needs them does).",
)
def worker_command(threads: int, no_periodic: bool, torch_threads: int | None, warm: bool) -> None:
    """Run queued jobs (mail delivery, re-ranking, bulk embedding; the every-minute run for
    retries and digests).

    Run as many of these as you like, on any machine that reaches the same Redis and
    database. At start it queues again every re-ranking that was asked for and never
    finished (its worker was killed). Jobs run on threads, not forked processes (torch cannot
    run inference in a process forked after it ran). Stop with Ctrl-C or SIGTERM: running
    jobs finish first."""
    queue = get_queue()
    if queue.huey.immediate:
        raise click.UsageError("TANDEM_QUEUE=immediate runs jobs in the caller: no worker.")
    logging.getLogger("huey").setLevel(logging.INFO)
    if torch_threads is not None:
        import torch

        torch.set_num_threads(torch_threads)
    click.echo(f"Tandem worker: {threads} thread(s) on the {type(queue.huey).__name__} queue")
    # Whatever re-ranking a killed worker took off the queue is queued again now, not after
    # the every-minute sweep's grace period (a live worker's duplicate costs only time).
    requeued = queue.requeue_unfinished(older_than=timedelta(0), include_running=True)
    if requeued:
        click.echo(f"Queued {len(requeued)} unfinished re-ranking(s) again")
    if warm:
        get_encoder().encode(["warm-up"])
        queue.warm_rematching()
    queue.announce_ready()
    consumer = queue.huey.create_consumer(
        workers=threads,
        worker_type="thread",
        periodic=not no_periodic,
        max_delay=1.0,
        graceful_signal="TERM",
    )
    consumer.run()
