"""`flask --app app demo load`: the demo data set, loaded idempotently."""

from __future__ import annotations

import secrets

import click
from flask import Blueprint, current_app
from sqlmodel import col, select

from app.cli.progress import embed_corpus
from app.config import DEV_ENVIRONMENTS
from app.db import db_session
from app.matcher import get_encoder, get_weights
from app.services import demo, recommendations
from models import User

bp = Blueprint("demo", __name__, cli_group="demo")


@bp.cli.command("load")
@click.option("--if-empty", is_flag=True, help="Load only into a database with no data yet.")
def load_command(if_empty: bool) -> None:
    """Load the demo organisations, people, proposals and offers, then recommend."""
    session = db_session()
    data = demo.read_demo_data()
    # The demo's published password would let anyone sign in as its administrator: outside
    # development the demo accounts get a random one, shown here once.
    development = current_app.debug or current_app.config["TANDEM_ENV"] in DEV_ENVIRONMENTS
    password = demo.DEMO_PASSWORD if development else secrets.token_urlsafe(18)
    added_users = 0
    if if_empty and not demo.is_empty(session=session):
        click.echo("The database already holds data: demo data not loaded.")
    else:
        summary = demo.load_demo(session=session, data=data, password=password)
        added_users = summary.users
        click.echo(
            f"Demo data: added {summary.organisations} organisations, {summary.users} users, "
            f"{summary.publications} publications, {summary.proposals} proposals, "
            f"{summary.offers} offers."
        )
        if summary.total:
            encoder = get_encoder()
            embed_corpus(session=session, encoder=encoder)
            result = recommendations.recompute_all(
                session=session,
                encoder=encoder,
                k=current_app.config["TANDEM_TOP_K"],
                weights=get_weights(),
            )
            click.echo(
                f"Recommendations: {result.suggested} suggested matches for "
                f"{result.proposals} proposals x {result.offers} offers "
                f"({result.texts_encoded} texts encoded)."
            )
        # Needs the suggestions above; adds nothing once any collaboration exists.
        records = demo.load_collaborations(session=session, data=data)
        if records:
            # The introductions used offers' capacity: rank again, as an introduction does.
            recommendations.recompute_all(
                session=session,
                encoder=get_encoder(),
                k=current_app.config["TANDEM_TOP_K"],
                weights=get_weights(),
            )
            click.echo(f"Collaborations: {records} introduced pairs, at every stage.")
        session.commit()

    logins = demo.demo_logins(data)
    present = set(
        session.exec(select(User.email).where(col(User.email).in_([e for _, e, _ in logins])))
    )
    if present and not development and not added_users:
        click.echo("Demo logins (their password was shown once, when they were loaded):")
    elif present:
        shown = "" if development else ", shown only this once"
        click.echo(f"Demo logins (password for all: {password}{shown}):")
        for role, email, name in logins:
            if email in present:
                click.echo(f"  {role:<9} {email}  ({name})")
