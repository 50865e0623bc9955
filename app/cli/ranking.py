"""`flask --app app ranking ...`: the outcome loop (learned weights) from the command line.

`flask --app app ranking fit` fits the score's weights on the recorded decisions, evaluates
them on the later ones against the configured weights (and a per-company adjustment beside
the weights alone), records the fit and says which weights rank now. Run it periodically
(e.g. weekly from cron); `--recompute` re-ranks everything at once so that every stored
match carries the new weights version.
"""

from __future__ import annotations

import click
from flask import Blueprint, current_app

from app.cli.progress import embed_corpus
from app.db import db_session
from app.matcher import get_encoder, get_weights
from app.services import ranking_model, recommendations

bp = Blueprint("ranking", __name__, cli_group="ranking")


@bp.cli.command("fit")
@click.option("--recompute", is_flag=True, help="Re-rank every match with the weights chosen.")
def fit_command(recompute: bool) -> None:
    """Fit, evaluate and (when better by the margin) adopt learned score weights."""
    session = db_session()
    configured = current_app.extensions["tandem.weights"]
    model = ranking_model.fit_ranking_model(session=session, baseline=configured)
    session.commit()
    figures = model.evaluation
    click.echo(
        f"{figures['decisions']} decisions: {figures['train_decisions']} to fit "
        f"({figures['train_pairs']} preference pairs), {figures['test_decisions']} later ones "
        f"to test ({figures['test_proposals']} proposals with mixed answers)."
    )
    if model.weights:
        weights = ", ".join(f"{name} {value:.3f}" for name, value in model.weights.items())
        click.echo(f"Learned weights ({model.version}): {weights}")
    click.echo(f"Verdict: {model.reason}")
    adjustment = model.evaluation.get("adjustment") or {}
    if adjustment:
        adopted = "adopted" if adjustment.get("adopted") else "not adopted"
        click.echo(f"Per-company adjustment ({adopted}): {adjustment['reason']}")
    state = ranking_model.ranking_state(session=session, configured=configured)
    click.echo(state.summary)
    if recompute:
        encoder = get_encoder()
        embed_corpus(session=session, encoder=encoder)
        result = recommendations.recompute_all(
            session=session,
            encoder=encoder,
            k=current_app.config["TANDEM_TOP_K"],
            weights=get_weights(),
        )
        session.commit()
        click.echo(f"Re-ranked: {result.suggested} matches kept, {result.removed} removed.")


@bp.cli.command("status")
def status_command() -> None:
    """Say which weights rank now and why."""
    state = ranking_model.ranking_state(
        session=db_session(), configured=current_app.extensions["tandem.weights"]
    )
    click.echo(state.summary)
