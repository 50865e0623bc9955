"""`flask --app app allocate --preview`: solve an allocation round and print it, with the
reason each unassigned proposal got nothing. Offers of unverified organisations are left out
unless `--include-unverified` is given, as on the new-round page."""

from __future__ import annotations

import click
from flask import Blueprint

from app.cli.progress import embed_corpus
from app.db import db_session
from app.matcher import get_encoder, get_weights
from app.services import allocation

bp = Blueprint("allocate", __name__, cli_group=None)


@bp.cli.command("allocate")
@click.option("--preview", is_flag=True, required=True, help="Solve and print; change nothing.")
@click.option(
    "--equity",
    type=click.Choice(["priority", "maxmin"]),
    default=None,
    help="priority: prefer self-declared under-resourced labs; maxmin: raise the worst-off.",
)
@click.option(
    "--min-score",
    type=float,
    default=0.3,
    show_default=True,
    help="Never assign pairs scoring below this (0 to allow any positive score).",
)
@click.option(
    "--include-unverified",
    is_flag=True,
    help="Let offers of unverified organisations take part (left out by default).",
)
def allocate_command(
    preview: bool, equity: str | None, min_score: float, include_unverified: bool
) -> None:
    """Allocate open offers to open proposals (compute pass, then data pass)."""
    session, encoder = db_session(), get_encoder()
    embed_corpus(session=session, encoder=encoder)
    result = allocation.preview_round(
        session=session,
        encoder=encoder,
        weights=get_weights(),
        equity=equity,  # type: ignore[arg-type]
        min_score=min_score or None,
        include_unverified=include_unverified,
    )
    click.echo(f"Allocation preview{f' (equity: {equity})' if equity else ''}")
    click.echo(f"Total score of assigned pairs: {result.objective:.3f}")
    if result.unverified_offers:
        state = "included" if include_unverified else "left out (--include-unverified adds them)"
        click.echo(f"Offers of unverified organisations, {state}: {len(result.unverified_offers)}")
        for offer in result.unverified_offers:
            click.echo(f"   O{offer.id:<4} {offer.title[:48]:<48} {offer.organisation.name}")
    for solved in result.passes:
        outcome = solved.allocation
        click.echo("")
        click.echo(
            f"== {solved.name} pass: {len(solved.assigned)} assigned, "
            f"{len(solved.unassigned)} unassigned; objective {outcome.objective:.3f}, "
            f"status {outcome.status}, gap {outcome.gap:.2%}, {outcome.mode} mode"
        )
        if outcome.equity_cost is not None:
            click.echo(f"   equity cost in total score: {outcome.equity_cost:.3f}")
        if outcome.message:
            click.echo(f"   {outcome.message}")
        for proposal, offer, score in solved.assigned:
            click.echo(f"   {score:5.3f}  P{proposal.id} {proposal.title[:48]:<48} -> O{offer.id}")
        click.echo("   Offer utilisation:")
        for use in solved.offers:
            if not include_unverified and not use.offer.organisation.verified:
                continue
            hours = (
                f"{use.hours_used:>9,.0f} / {use.hours_available:>9,.0f} h"
                if use.hours_available
                else f"{'data':>23}"
            )
            click.echo(
                f"   O{use.offer.id:<4} {use.offer.title[:44]:<44} {hours}  "
                f"{use.projects_used}/{use.projects_available} projects"
            )
        if solved.unassigned:
            click.echo("   Unassigned proposals:")
            for proposal, reason in zip(solved.unassigned, solved.reasons, strict=True):
                click.echo(f"   P{proposal.id:<4} {proposal.title[:70]}")
                click.echo(f"         {reason.text}")
