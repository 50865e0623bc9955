"""The dashboard (what needs the user's attention), the account page and unsubscribing."""

from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_security import current_user, login_required

from app import unsubscribe as unsubscribe_links
from app.auth import csrf
from app.dashboard.forms import NotificationForm
from app.db import db_session
from app.services import accounts, collaborations
from app.transaction import Blueprint, attempt
from models import NotificationPreference, Role, User

bp = Blueprint("dashboard", __name__)


@bp.route("/dashboard")
@login_required
def index() -> ResponseReturnValue:
    if current_user.role == Role.admin:
        return redirect(url_for("admin.index"))
    if current_user.role == Role.company:
        return redirect(url_for("offers.mine"))
    return redirect(url_for("proposals.mine"))


@bp.route("/account", methods=["GET", "POST"])
@login_required
def account() -> ResponseReturnValue:
    form = NotificationForm(
        notification_preference=getattr(
            current_user.notification_preference, "value", current_user.notification_preference
        ),
        min_fit=round(current_user.notify_min_score * 100),
        collaboration_reminders=current_user.collaboration_reminders,
    )
    if form.validate_on_submit():
        with attempt(form):
            accounts.set_notification_preference(
                session=db_session(),
                user_id=current_user.id,
                preference=NotificationPreference(form.notification_preference.data),
                min_score=form.min_fit.data / 100,
            )
            collaborations.set_reminders(
                session=db_session(),
                user_id=current_user.id,
                on=form.collaboration_reminders.data,
            )
            reminders = "on" if form.collaboration_reminders.data else "off"
            flash(
                f"Saved: we will email you about matches as you chose; collaboration "
                f"reminders are {reminders}.",
                "success",
            )
            return redirect(url_for("dashboard.account"))
    status = 422 if form.errors else 200
    return render_template("dashboard/account.html", form=form), status


@bp.route("/unsubscribe/<token>", methods=["GET", "POST"])
@csrf.exempt  # the signed token is the credential; mail clients POST here (RFC 8058)
def unsubscribe(token: str) -> ResponseReturnValue:
    """GET shows a confirmation button; POST (the button, or a mail client's one-click
    request) turns match emails off. No sign-in is needed."""
    found = unsubscribe_links.read_token(token)
    session = db_session()
    user = session.get(User, found[0]) if found else None
    if user is None or found is None or user.email != found[1]:
        return render_template("dashboard/unsubscribe.html", user=None), 404
    if request.method == "POST":
        accounts.set_notification_preference(
            session=session, user_id=user.id, preference=NotificationPreference.off
        )
        return render_template("dashboard/unsubscribe.html", user=user, done=True)
    return render_template("dashboard/unsubscribe.html", user=user, done=False)
