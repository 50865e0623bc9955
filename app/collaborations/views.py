"""Collaboration pages: the list of one's collaborations (all of them for administrators),
one record with its history and the form that moves it on, and the reminder command."""

from __future__ import annotations

from datetime import UTC, datetime

import click
from flask import current_app, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_security import current_user, login_required

from app import notify
from app.collaborations.forms import AdvanceForm
from app.db import db_session
from app.services import collaborations
from app.services.collaborations import AGREEMENT_LABELS, REASON_LABELS, STAGE_LABELS
from app.transaction import Blueprint, attempt
from models import CollaborationStage

bp = Blueprint("collaborations", __name__, url_prefix="/collaborations")


@bp.app_template_global("collaboration_labels")
class Labels:
    """Words for the stored values, for pages and mails."""

    stages = {stage.value: label for stage, label in STAGE_LABELS.items()}
    agreements = {kind.value: label for kind, label in AGREEMENT_LABELS.items()}
    reasons = {reason.value: label for reason, label in REASON_LABELS.items()}


@bp.get("/")
@login_required
def index() -> ResponseReturnValue:
    page = collaborations.visible(
        session=db_session(),
        user_id=current_user.id,
        page=request.args.get("page", 1, type=int),
        per_page=current_app.config["TANDEM_PAGE_SIZE"],
    )
    return render_template("collaborations/index.html", page=page)


@bp.get("/match/<int:match_id>")
@login_required
def for_match(match_id: int) -> ResponseReturnValue:
    view = collaborations.for_match(
        session=db_session(), match_id=match_id, user_id=current_user.id
    )
    return redirect(url_for("collaborations.show", collaboration_id=view.collaboration.id))


@bp.route("/<int:collaboration_id>", methods=["GET", "POST"])
@login_required
def show(collaboration_id: int) -> ResponseReturnValue:
    session = db_session()
    view = collaborations.get(
        session=session, collaboration_id=collaboration_id, user_id=current_user.id
    )
    form = AdvanceForm().for_stage(view.collaboration.stage)
    if form.validate_on_submit():
        with attempt(form, others_at="stage"):
            collaboration = collaborations.advance(
                session=session,
                collaboration_id=collaboration_id,
                user_id=current_user.id,
                change=form.change(),
            )
            flash(
                f"Saved: the collaboration is now at “{STAGE_LABELS[collaboration.stage]}”. "
                "The other side is told as their email settings say.",
                "success",
            )
            return redirect(url_for("collaborations.show", collaboration_id=collaboration_id))
        # Refused: what was written is undone; show the record as it stands, with the input.
        view = collaborations.get(
            session=session, collaboration_id=collaboration_id, user_id=current_user.id
        )
    status = 422 if form.errors else 200
    return render_template(
        "collaborations/show.html",
        view=view,
        form=form,
        history=collaborations.history(session=session, collaboration_id=collaboration_id),
        # From "Completed" the only step left is "Published": no reason to end is asked.
        can_end=CollaborationStage.ended_without_result
        in collaborations.next_stages(view.collaboration.stage),
    ), status


@bp.cli.command("remind")
@click.option(
    "--days",
    type=click.IntRange(min=1),
    default=None,
    help="Remind of records that have not moved for this many days "
    "(default: TANDEM_COLLABORATION_REMINDER_DAYS).",
)
def remind_command(days: int | None) -> None:
    """Write the reminder digests that are due (one per person per interval) and send mail."""
    days = days or current_app.config.get("TANDEM_COLLABORATION_REMINDER_DAYS", 14)
    written = notify.send_reminders(days=days, now=datetime.now(UTC))
    click.echo(f"Collaboration reminders: {written} written (records still for {days}+ days).")
