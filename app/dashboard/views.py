"""The dashboard (what needs the user's attention) and the account page."""

from __future__ import annotations

from flask import Blueprint, redirect, render_template, url_for
from flask.typing import ResponseReturnValue
from flask_security import current_user, login_required

from models import Role

bp = Blueprint("dashboard", __name__)


@bp.route("/dashboard")
@login_required
def index() -> ResponseReturnValue:
    if current_user.role == Role.admin:
        return redirect(url_for("admin.index"))
    if current_user.role == Role.company:
        return redirect(url_for("offers.mine"))
    return redirect(url_for("proposals.mine"))


@bp.route("/account")
@login_required
def account() -> ResponseReturnValue:
    return render_template("dashboard/account.html")
