"""Match actions (POST only; each redirects back to the page it came from)."""

from __future__ import annotations

from flask import flash, redirect, request, url_for
from flask.typing import ResponseReturnValue
from flask_security import current_user, login_required

from app.db import db_session
from app.matcher import queued_rematch
from app.matches import cards
from app.services import matches, notices
from app.services.collaborations import REASON_LABELS
from app.transaction import Blueprint, attempt
from app.web import local_path

bp = Blueprint("matches", __name__, url_prefix="/matches")


bp.add_app_template_global(cards.public_checks, "public_checks")
# The short list a dismissal asks for (optional): value and words, the blank choice first.
bp.add_app_template_global(
    [("", "Choose a reason (optional)")]
    + [(reason.value, label) for reason, label in REASON_LABELS.items()],
    "dismissal_reasons",
)

INTRODUCED = (
    "You are introduced! You can now see each other's contact details, and we are emailing "
    "you both."
)
INTERESTED = (
    "Noted: you are interested. If the other side is interested too, we introduce you and "
    "share contact details with both of you."
)


def _back() -> str:
    """The local page to return to (never another site)."""
    return local_path(request.form.get("next")) or url_for("dashboard.index")


@bp.post("/<int:match_id>/interest")
@login_required
def interest(match_id: int) -> ResponseReturnValue:
    with attempt():
        # Records the interest, or the introduction (its mails and webhooks are written
        # from the recorded event, whatever entry point caused it).
        outcome = matches.express_interest(
            session=db_session(),
            match_id=match_id,
            user_id=current_user.id,
            rematch=queued_rematch(),
        )
        flash(INTRODUCED if outcome.introduced else INTERESTED, "success")
    return redirect(_back())


@bp.post("/<int:match_id>/dismiss")
@login_required
def dismiss(match_id: int) -> ResponseReturnValue:
    with attempt():
        match = matches.dismiss(
            session=db_session(),
            match_id=match_id,
            user_id=current_user.id,
            reason=request.form.get("reason", ""),
            reason_code=request.form.get("reason_code") or None,
        )
        # The pair is set aside for good; the next-best eligible pair moves up.
        queued_rematch().proposal(db_session(), match.proposal_id)
        flash(
            "Dismissed: it has left the list, and the next-best match takes its place. Changed "
            "your mind? Undo it from the dismissed list.",
            "success",
        )
    return redirect(_back())


@bp.post("/<int:match_id>/withdraw")
@login_required
def withdraw(match_id: int) -> ResponseReturnValue:
    session = db_session()
    with attempt():
        match, side = matches.withdraw_interest(
            session=session, match_id=match_id, user_id=current_user.id
        )
        notices.forget_interest(session=session, match=match, withdrawn_side=side)
        # A suggestion again: ranked with the others, it stays listed while it ranks among them.
        queued_rematch().proposal(session, match.proposal_id)
        flash(
            "Interest withdrawn. Nothing was shared, and the other side will not be told of it.",
            "success",
        )
    return redirect(_back())


@bp.post("/<int:match_id>/restore")
@login_required
def restore(match_id: int) -> ResponseReturnValue:
    with attempt():
        match = matches.undo_dismissal(
            session=db_session(), match_id=match_id, user_id=current_user.id
        )
        # Ranked again with the others: it returns to the list if it still ranks among the best.
        queued_rematch().proposal(db_session(), match.proposal_id)
        flash("Dismissal undone. The match is back among the suggestions.", "success")
    return redirect(_back())
