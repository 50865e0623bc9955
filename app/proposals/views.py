"""Proposal pages: the listing, one proposal with its recommended offers, and the academic's
own proposals (write, publish, close) on their dashboard."""

from __future__ import annotations

from flask import current_app, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_security import current_user, login_required, roles_required

from app import dashcache
from app.db import db_session
from app.matcher import queued_rematch
from app.matches import cards
from app.proposals.forms import ProposalForm
from app.services import catalogue, eligibility, programme, proposals
from app.transaction import Blueprint, attempt, show_errors
from app.web import local_path

bp = Blueprint("proposals", __name__, url_prefix="/proposals")


def _back(default: str) -> str:
    """The local page a button came from (never another site)."""
    return local_path(request.form.get("next")) or default


def _submitted_and_valid(form: ProposalForm) -> bool:
    """Like `validate_on_submit`, but when some values do not even parse, the model's limits
    are checked on the others too, so that every problem shows at once."""
    if not form.is_submitted():
        return False
    if form.validate():
        return True
    show_errors(
        form,
        {
            name: messages
            for name, messages in proposals.check_proposal(data=form.to_data()).items()
            if name in form and not form[name].errors
        },
    )
    return False


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
    areas = catalogue.research_areas(session=session)
    return render_template(
        "proposals/index.html",
        page=page,
        area=area,
        # An area no open proposal has any more (a saved link) stays chosen, with no results.
        areas=areas if area is None or area in areas else sorted([*areas, area]),
    )


@bp.route("/<int:proposal_id>")
def show(proposal_id: int) -> ResponseReturnValue:
    session = db_session()
    viewer_id = current_user.id if current_user.is_authenticated else None
    proposal = proposals.get_for_viewer(
        session=session, proposal_id=proposal_id, viewer_id=viewer_id
    )
    # Every offer matched with the proposal, for the coverage of its needs; the best are shown.
    matched = catalogue.recommended_offers(session=session, proposal_id=proposal_id, limit=None)
    shown = matched[: current_app.config["TANDEM_TOP_K"]]
    catalogue.preload_people(
        session=session,
        proposals=[proposal],
        offers=[offer for _, offer in shown],
        matches=[match for match, _ in shown],
    )
    record = programme.similar_agreements(
        session=session, pairs=[(proposal, offer.organisation_id) for _, offer in shown]
    )
    offer_cards = [
        (
            cards.for_viewer(
                session=session,
                viewer=current_user,
                match=match,
                proposal=proposal,
                offer=offer,
                similar_agreements=record.get((proposal.id, offer.organisation_id), 0),
            ),
            offer,
        )
        for match, offer in shown
    ]
    is_author = viewer_id is not None and proposal.author_id == viewer_id
    return render_template(
        "proposals/show.html",
        proposal=proposal,
        is_author=is_author,
        author=catalogue.author_label(session=session, proposal=proposal),
        recommendations=offer_cards,
        coverage=proposals.coverage(proposal, [offer for _, offer in matched]),
        eligibility=eligibility.stored_summary(session=session, proposal_id=proposal_id),
    )


@bp.route("/new", methods=["GET", "POST"])
@login_required
@roles_required("academic")
def create() -> ResponseReturnValue:
    form = ProposalForm()
    if _submitted_and_valid(form):
        publish = bool(form.publish.data)
        with attempt(form):
            proposal = proposals.create_proposal(
                session=db_session(),
                author_id=current_user.id,
                data=form.to_data(),
                publish=publish,
                rematch=queued_rematch(),
            )
            flash(
                "Your proposal is open: companies can see it and we are matching it."
                if publish
                else "Draft saved. Only you can see it until you publish it.",
                "success",
            )
            return redirect(url_for("proposals.show", proposal_id=proposal.id))
    return render_template("proposals/form.html", form=form, proposal=None), (
        422 if form.errors else 200
    )


@bp.route("/<int:proposal_id>/edit", methods=["GET", "POST"])
@login_required
@roles_required("academic")
def edit(proposal_id: int) -> ResponseReturnValue:
    session = db_session()
    proposal = proposals.get_own_proposal(
        session=session, proposal_id=proposal_id, author_id=current_user.id
    )
    form = ProposalForm(obj=proposal)
    if _submitted_and_valid(form):
        with attempt(form):
            proposals.update_proposal(
                session=session,
                proposal_id=proposal_id,
                author_id=current_user.id,
                data=form.to_data(),
                rematch=queued_rematch(),
            )
            flash("Your changes are saved and the proposal's matches are updated.", "success")
            return redirect(url_for("proposals.show", proposal_id=proposal_id))
    return render_template("proposals/form.html", form=form, proposal=proposal), (
        422 if form.errors else 200
    )


STATUS_CHANGES = {
    "open": (
        proposals.open_proposal,
        "Your proposal is open: companies can see it and we are matching it.",
    ),
    "close": (
        proposals.close_proposal,
        "Your proposal is closed: it is no longer listed or matched. Introductions already "
        "made are kept.",
    ),
}


def _change_status(proposal_id: int, action: str) -> ResponseReturnValue:
    change, done = STATUS_CHANGES[action]
    with attempt():
        change(
            session=db_session(),
            proposal_id=proposal_id,
            author_id=current_user.id,
            rematch=queued_rematch(),
        )
        flash(done, "success")
    return redirect(_back(url_for("proposals.mine")))


@bp.post("/<int:proposal_id>/open", endpoint="open")
@login_required
@roles_required("academic")
def open_(proposal_id: int) -> ResponseReturnValue:
    return _change_status(proposal_id, "open")


@bp.post("/<int:proposal_id>/close")
@login_required
@roles_required("academic")
def close(proposal_id: int) -> ResponseReturnValue:
    return _change_status(proposal_id, "close")


@bp.route("/mine")
@login_required
@roles_required("academic")
@dashcache.cached
def mine() -> ResponseReturnValue:
    """The academic's dashboard: one page of their proposals, each with its ranked offers."""
    session = db_session()
    overview = proposals.dashboard(
        session=session, author_id=current_user.id, page=request.args.get("page", 1, type=int)
    )
    dashcache.shown_page(overview.page)
    listed = [(entry.proposal, item) for entry in overview.proposals for item in entry.offers]
    # The academic and the companies' contacts of introduced pairs, in two statements rather
    # than some per card.
    shown = [item for entry in overview.proposals for item in [*entry.offers, *entry.set_aside]]
    catalogue.preload_people(
        session=session,
        proposals=[entry.proposal for entry in overview.proposals],
        offers=[item.offer for item in shown],
        matches=[item.match for item in shown],
    )
    record = programme.similar_agreements(
        session=session, pairs=[(p, item.offer.organisation_id) for p, item in listed]
    )
    offer_cards = {
        item.match.id: cards.for_viewer(
            session=session,
            viewer=current_user,
            match=item.match,
            proposal=entry.proposal,
            offer=item.offer,
            similar_agreements=record.get((entry.proposal.id, item.offer.organisation_id), 0),
        )
        for entry in overview.proposals
        for item in [*entry.offers, *entry.set_aside]
    }
    return render_template(
        "dashboard/academic.html",
        overview=overview,
        cards=offer_cards,
        coverage={
            entry.proposal.id: proposals.coverage(
                entry.proposal, [item.offer for item in entry.offers]
            )
            for entry in overview.proposals
        },
    )
