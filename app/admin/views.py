"""Administration pages; every route requires the admin role."""

from __future__ import annotations

from flask import Blueprint, render_template
from flask.typing import ResponseReturnValue
from flask_security import roles_required

bp = Blueprint("admin", __name__, url_prefix="/admin")


@bp.route("/")
@roles_required("admin")
def index() -> ResponseReturnValue:
    return render_template("admin/index.html")
