"""`flask --app app catalogue generate`: a synthetic catalogue of a chosen size, for
benchmarks and load tests (see `app.services.synthetic`)."""

from __future__ import annotations

import time

import click
from flask import Blueprint, current_app

from app.db import db_session
from app.matcher import get_encoder, get_weights
from app.services import synthetic
from matching import Encoder, StandInEncoder

bp = Blueprint("catalogue", __name__, cli_group="catalogue")

ENCODERS = ("model", "stand-in")


@bp.cli.command("generate")
@click.option("--proposals", type=click.IntRange(0, 1_000_000), default=10_000, show_default=True)
@click.option("--offers", type=click.IntRange(0, 1_000_000), default=2_000, show_default=True)
@click.option(
    "--publications-per-academic", type=click.IntRange(0, 100), default=5, show_default=True
)
@click.option("--seed", type=int, default=0, show_default=True, help="Same seed, same catalogue.")
@click.option(
    "--encoder",
    "encoder_name",
    type=click.Choice(ENCODERS),
    default="model",
    show_default=True,
    help="'model': the app's embedding model (TANDEM_MODEL). 'stand-in': a fast hashing "
    "encoder whose rankings are NOT semantic, for benchmarks only.",
)
@click.option(
    "--append",
    is_flag=True,
    help="Add to a database that already holds proposals or offers (they get re-ranked too).",
)
def generate_command(
    proposals: int,
    offers: int,
    publications_per_academic: int,
    seed: int,
    encoder_name: str,
    append: bool,
) -> None:
    """Fill the database with a synthetic catalogue: organisations, academics with
    publications, company members, proposals, offers, recommendations, and matches in
    every state. Accounts get unusable random passwords; addresses end in .example."""
    session = db_session()
    if not append and synthetic.holds_catalogue(session=session):
        raise click.ClickException(
            "The database already holds proposals or offers: a synthetic catalogue would mix "
            "with them. Use an empty database, or pass --append to add to it anyway."
        )
    encoder: Encoder
    if encoder_name == "stand-in":
        encoder = StandInEncoder()
        click.echo(
            "Encoder: stand-in (hashed words, not semantic): rankings follow shared words, not "
            "meaning. For benchmarks only; `flask --app app match recompute` ranks with the "
            "real model."
        )
    else:
        encoder = get_encoder()
        click.echo(f"Encoder: {encoder.model_name}")

    def progress(phase: str, seconds: float) -> None:
        click.echo(f"  {phase:<28} {seconds:8.1f} s")

    started = time.perf_counter()
    report = synthetic.build_catalogue(
        session=session,
        size=synthetic.CatalogueSize(
            proposals=proposals,
            offers=offers,
            publications_per_academic=publications_per_academic,
            seed=seed,
        ),
        encoder=encoder,
        k=current_app.config["TANDEM_TOP_K"],
        weights=get_weights(),
        progress=progress,
    )
    committing = time.perf_counter()
    session.commit()
    progress("commit", time.perf_counter() - committing)
    click.echo(f"  {'total':<28} {time.perf_counter() - started:8.1f} s")

    click.echo("Inserted: " + ", ".join(f"{n} {t}" for t, n in report.inserted.items()))
    click.echo(
        "Moved: "
        + ", ".join(f"{n} {s}" for s, n in report.moved.items())
        + f" ({report.texts_encoded} texts encoded)"
    )
    click.echo("Rows per table now:")
    for table, count in report.table_counts.items():
        click.echo(f"  {table:<14} {count:>9,}")
    for label, states in (
        ("Matches", report.match_states),
        ("Proposals", report.proposal_states),
        ("Offers", report.offer_states),
    ):
        click.echo(f"{label} by state: " + ", ".join(f"{s} {n:,}" for s, n in states.items()))
