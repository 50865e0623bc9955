"""`flask --app app partners ...`: partner API tokens from the command line."""

from __future__ import annotations

import click
from flask import Blueprint

from app.db import db_session
from app.services import partners
from app.services.errors import InvalidInput, NotFound

bp = Blueprint("partners", __name__, cli_group="partners")


@bp.cli.command("create-token")
@click.argument("name")
@click.option(
    "--scope",
    "scopes",
    multiple=True,
    type=click.Choice(sorted(partners.SCOPES)),
    help="What it may read (repeat). Default: everything but contacts.",
)
def create_token_command(name: str, scopes: tuple[str, ...]) -> None:
    """Create a token for partner NAME and print it, once (only its hash is kept)."""
    chosen = scopes or tuple(s for s in partners.SCOPES if s != "contacts")
    session = db_session()
    try:
        created = partners.create_token(session=session, name=name, scopes=chosen)
    except InvalidInput as exc:
        raise click.UsageError(
            "; ".join(m for ms in exc.field_errors.values() for m in ms)
        ) from exc
    session.commit()
    click.echo(created.secret)
    click.echo(
        f"Token {created.token.id} for {created.token.name}, scopes: "
        f"{', '.join(created.token.scopes)}. Store it now: it cannot be shown again.",
        err=True,
    )


@bp.cli.command("revoke-token")
@click.argument("token_id", type=int)
def revoke_token_command(token_id: int) -> None:
    """Revoke token TOKEN_ID: it stops working at once."""
    session = db_session()
    try:
        token = partners.revoke_token(session=session, token_id=token_id)
    except NotFound as exc:
        raise click.UsageError(str(exc)) from exc
    session.commit()
    click.echo(f"Token {token.id} ({token.name}) is revoked.")


@bp.cli.command("list-tokens")
def list_tokens_command() -> None:
    """Every token: id, name, scopes, last use, revoked or not."""
    for token in partners.list_tokens(session=db_session()):
        state = f"revoked {token.revoked_at:%Y-%m-%d}" if token.revoked_at else "active"
        used = f"{token.last_used_at:%Y-%m-%d %H:%M}" if token.last_used_at else "never"
        click.echo(
            f"{token.id}\t{token.prefix}…\t{token.name}\t{','.join(token.scopes)}\t"
            f"last used {used}\t{state}"
        )
