"""`flask --app app mail send-pending`: deliver the outbox rows that are due, once (cron)."""

from __future__ import annotations

import click
from flask import Blueprint

from app import mail

bp = Blueprint("mail", __name__, cli_group="mail")


@bp.cli.command("send-pending")
@click.option("--limit", type=click.IntRange(1, 100_000), default=1000, help="At most.")
def send_pending_command(limit: int) -> None:
    """Send every email that is due now; temporary failures are retried on a later run."""
    report = mail.send_pending(limit=limit)
    click.echo(f"{report.sent} sent, {report.retried} to retry later, {report.failed} failed.")
