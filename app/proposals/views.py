"""Proposal pages: the listing and one proposal with its recommended offers."""

from __future__ import annotations

from flask import Blueprint, current_app, render_template, request
from flask.typing import ResponseReturnValue
from flask_security import login_required

from app.db import db_session
from app.services import catalogue, recommendations

bp = Blueprint("proposals", __name__, url_prefix="/proposals")


@bp.route("/")
def index() -> ResponseReturnValue:
    session = db_session()
    area = request.args.get("area") or None
    page = catalogue.list_proposals(
        session=session,
        page=request.args.get("page", 1, type=int),
        per_page=current_app.config["TANDEM_PAGE_SIZE"],
        area=area,
    )
    return render_template(
        "proposals/index.html",
        page=page,
        area=area,
        areas=catalogue.research_areas(session=session),
    )


@bp.route("/<int:proposal_id>")
def show(proposal_id: int) -> ResponseReturnValue:
    session = db_session()
    proposal = catalogue.get_proposal(session=session, proposal_id=proposal_id)
    return render_template(
        "proposals/show.html",
        proposal=proposal,
        author=catalogue.author_label(session=session, proposal=proposal),
        recommendations=catalogue.recommended_offers(
            session=session, proposal_id=proposal_id, limit=current_app.config["TANDEM_TOP_K"]
        ),
        eligibility=recommendations.eligibility_summary(session=session, proposal_id=proposal_id),
    )


@bp.route("/mine")
@login_required
def mine() -> ResponseReturnValue:
    """The academic's dashboard: their proposals, each with its ranked offers."""
    return render_template("dashboard/academic.html")
