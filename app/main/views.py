"""The home page."""

from __future__ import annotations

from flask import render_template
from flask.typing import ResponseReturnValue

from app.db import db_session
from app.services import catalogue
from app.transaction import Blueprint

bp = Blueprint("main", __name__)


@bp.route("/")
def home() -> ResponseReturnValue:
    session = db_session()
    return render_template(
        "main/home.html",
        counts=catalogue.counts(session=session),
        proposals=catalogue.latest_proposals(session=session),
        offers=catalogue.latest_offers(session=session),
    )
