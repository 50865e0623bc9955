"""`flask --app app match ...`: recommendations from the command line."""

from __future__ import annotations

import click
from flask import Blueprint, current_app

from app.db import db_session
from app.matcher import get_encoder
from app.services import recommendations

bp = Blueprint("match", __name__, cli_group="match")


@bp.cli.command("recompute")
@click.option("-k", "--top-k", type=click.IntRange(1, 1000), default=None, help="Per side.")
def recompute_command(top_k: int | None) -> None:
    """Recompute every recommendation (top-k offers per proposal and proposals per offer)."""
    session = db_session()
    result = recommendations.recompute_all(
        session=session,
        encoder=get_encoder(),
        k=top_k or current_app.config["TANDEM_TOP_K"],
    )
    session.commit()
    click.echo(
        f"{result.suggested} matches kept, {result.removed} removed, for {result.proposals} "
        f"proposals x {result.offers} offers ({result.texts_encoded} texts encoded)."
    )
