"""`flask --app app export`: the partner export to a file, streamed in constant memory."""

from __future__ import annotations

import sys
from contextlib import ExitStack
from datetime import UTC, datetime

import click
from flask import Blueprint

from app.api import export
from app.db import db_session
from app.services import feed, partners
from app.services.errors import InvalidInput

bp = Blueprint("export", __name__, cli_group=None)


def _timestamp(_ctx: click.Context, _param: click.Parameter, value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        when = datetime.fromisoformat(value)
    except ValueError as exc:
        raise click.BadParameter("give an ISO 8601 time, e.g. 2026-11-28T09:30:00Z") from exc
    try:
        return feed.as_utc(when if when.tzinfo else when.replace(tzinfo=UTC), "since")
    except InvalidInput as exc:
        raise click.BadParameter("that time is out of range") from exc


@bp.cli.command("export")
@click.option("--format", "fmt", type=click.Choice(["ndjson", "json"]), default="ndjson")
@click.option("--since", callback=_timestamp, help="Only changes since (ISO 8601; UTC if no zone).")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, writable=True),
    default="-",
    help="File to write (default: standard output).",
)
@click.option(
    "--with-contacts", is_flag=True, help="Include the names and emails of introduced people."
)
def export_command(fmt: str, since: datetime | None, out: str, with_contacts: bool) -> None:
    """Export every public record, as the partner API shows them."""
    scopes = frozenset(s for s in partners.SCOPES if with_contacts or s != "contacts")
    items = export.lines(session=db_session(), scopes=scopes, since=since)
    stream = sys.stdout if out == "-" else open(out, "w", encoding="utf-8")  # noqa: SIM115
    with ExitStack() as cleanup:
        if stream is not sys.stdout:
            cleanup.callback(stream.close)
            # Records written so far, on standard error (the total is not known in advance).
            items = cleanup.enter_context(
                click.progressbar(items, label="Exporting records", file=sys.stderr)
            )
        if fmt == "json":
            count = export.write_json(items, stream)
        else:
            count = 0
            for line in export.ndjson(items):
                stream.write(line)
                count += line.startswith('{"resource"')
    if out != "-":
        click.echo(f"Wrote {count} lines to {out}.", err=True)
