"""`flask --app app mail send-pending`: deliver what is due, once, and exit (for cron)."""

from __future__ import annotations

import click
from flask import Blueprint

from app import notify

bp = Blueprint("mail", __name__, cli_group="mail")


@bp.cli.command("send-pending")
@click.option("--limit", type=click.IntRange(1, 100_000), default=1000, help="At most.")
def send_pending_command(limit: int) -> None:
    """Write the match mails and digests that are due, then send every email that is due;
    temporary failures are retried on a later run."""
    report = notify.deliver(batch_size=limit)
    click.echo(
        f"{report.dispatched} match mail(s) or digest(s) written; {report.sent} sent, "
        f"{report.retried} to retry later, {report.failed} failed."
    )
