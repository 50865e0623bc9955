"""`flask --app app match ...`: recommendations and explanations from the command line."""

from __future__ import annotations

import click
from flask import Blueprint, current_app

from app.cli.progress import embed_corpus
from app.db import db_session
from app.matcher import get_encoder, get_weights
from app.services import eligibility, recommendations
from app.services.errors import DomainError
from matching.scoring import COMPONENT_LABELS

bp = Blueprint("match", __name__, cli_group="match")


@bp.cli.command("recompute")
@click.option("-k", "--top-k", type=click.IntRange(1, 1000), default=None, help="Per side.")
def recompute_command(top_k: int | None) -> None:
    """Recompute every recommendation (top-k offers per proposal and proposals per offer).

    New texts are embedded first: on `flask --app app worker` processes in parallel when
    the queue is on Redis, here otherwise (a progress bar on standard error)."""
    session = db_session()
    encoder = get_encoder()
    embed_corpus(session=session, encoder=encoder)
    click.echo("Ranking...", err=True)
    result = recommendations.recompute_all(
        session=session,
        encoder=encoder,
        k=top_k or current_app.config["TANDEM_TOP_K"],
        weights=get_weights(),
    )
    session.commit()
    click.echo(
        f"{result.suggested} matches kept, {result.removed} removed, for {result.proposals} "
        f"proposals x {result.offers} offers ({result.texts_encoded} texts encoded)."
    )


@bp.cli.command("explain")
@click.argument("proposal_id", type=int)
@click.argument("offer_id", type=int)
def explain_command(proposal_id: int, offer_id: int) -> None:
    """Explain the score of proposal PROPOSAL_ID against offer OFFER_ID."""
    try:
        explanation = eligibility.explain_pair(
            session=db_session(),
            encoder=get_encoder(),
            proposal_id=proposal_id,
            offer_id=offer_id,
            weights=get_weights(),
        )
    except DomainError as exc:
        raise click.ClickException(str(exc)) from exc
    verdict = "eligible" if explanation.eligible else "NOT eligible"
    click.echo(
        f"Proposal {proposal_id} x offer {offer_id}: score {explanation.score:.3f}, {verdict}"
    )
    click.echo("Components (value x weight):")
    for name, value in explanation.components.items():
        weight = explanation.weights[name]
        click.echo(f"  {COMPONENT_LABELS[name]:<34} {value:6.3f} x {weight:.2f}")
    if explanation.fit_parts:
        parts = ", ".join(f"{k} {v:.2f}" for k, v in explanation.fit_parts.items())
        click.echo(f"Resource fit parts: {parts}")
    click.echo(f"Shared key terms: {', '.join(explanation.shared_terms) or '(none)'}")
    if explanation.best_publications:
        click.echo("Author's best-fitting publications:")
        for title, similarity in explanation.best_publications:
            click.echo(f"  {similarity:5.2f}  {title}")
    click.echo("Constraints:")
    for check in explanation.checks:
        click.echo(f"  [{'pass' if check.passed else 'FAIL'}] {check.label}: {check.reason}")
