"""Offer pages: the listing and one offer with its recommended proposals."""

from __future__ import annotations

from flask import Blueprint, current_app, render_template, request
from flask.typing import ResponseReturnValue
from flask_security import login_required

from app.db import db_session
from app.services import catalogue, recommendations
from models import OfferKind

bp = Blueprint("offers", __name__, url_prefix="/offers")


@bp.route("/")
def index() -> ResponseReturnValue:
    kind = request.args.get("kind") or None
    if kind not in {k.value for k in OfferKind}:
        kind = None
    page = catalogue.list_offers(
        session=db_session(),
        page=request.args.get("page", 1, type=int),
        per_page=current_app.config["TANDEM_PAGE_SIZE"],
        kind=kind,
    )
    return render_template("offers/index.html", page=page, kind=kind, kinds=list(OfferKind))


@bp.route("/<int:offer_id>")
def show(offer_id: int) -> ResponseReturnValue:
    session = db_session()
    offer = catalogue.get_offer(session=session, offer_id=offer_id)
    ranked = [
        (match, proposal, catalogue.author_label(session=session, proposal=proposal))
        for match, proposal in catalogue.recommended_proposals(
            session=session, offer_id=offer_id, limit=current_app.config["TANDEM_TOP_K"]
        )
    ]
    return render_template(
        "offers/show.html",
        offer=offer,
        recommendations=ranked,
        eligibility=recommendations.eligibility_summary(session=session, offer_id=offer_id),
    )


@bp.route("/mine")
@login_required
def mine() -> ResponseReturnValue:
    """The company's dashboard: its offers, each with its ranked proposals and capacity."""
    return render_template("dashboard/company.html")
