"""Offer pages: the listing, one offer with its recommended proposals, and what a company
member does with their organisation's offers (create, edit, open, close, exclusions, dashboard).
"""

from __future__ import annotations

from flask import current_app, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_security import current_user, login_required, roles_required

from app import dashcache
from app.db import db_session
from app.matcher import queued_rematch
from app.matches import cards
from app.offers.forms import ExclusionsForm, OfferForm, lines
from app.services import catalogue, company_dashboard, eligibility, offers
from app.transaction import Blueprint, attempt, show_errors
from app.web import local_path
from models import Offer, OfferKind, OfferStatus

bp = Blueprint("offers", __name__, url_prefix="/offers")


def _back(default: str) -> str:
    """The local page a button came from (never another site), else `default`."""
    return local_path(request.form.get("next")) or default


def _submitted_and_valid(form: OfferForm, *, stored: Offer | None = None) -> bool:
    """Like `validate_on_submit`, but when some values do not even parse, the service's
    checks run on the others too, so that every problem shows at once, at its field.
    `stored` is the offer being edited (its own dates may have passed)."""
    if not form.is_submitted():
        return False
    if form.validate():
        return True
    refused = form.refused_fields()
    problems = offers.check_offer(data=form.to_checked_data(), stored=stored)
    ignored = form.ignored_fields()
    show_errors(
        form,
        {
            name: messages
            for name, messages in problems.items()
            if name not in refused and name not in ignored
        },
    )
    return False


@bp.route("/")
def index() -> ResponseReturnValue:
    """The open offers, of one kind when the filter says so. A kind that is not one (a link
    typed by hand) is said at the filter, and every offer is listed meanwhile."""
    kind = request.args.get("kind") or None
    kind_error = kind is not None and kind not in {k.value for k in OfferKind}
    if kind_error:
        kind = None
    page = catalogue.list_offers(
        session=db_session(),
        page=request.args.get("page", 1, type=int),
        per_page=current_app.config["TANDEM_PAGE_SIZE"],
        kind=kind,
    )
    return render_template(
        "offers/index.html", page=page, kind=kind, kinds=list(OfferKind), kind_error=kind_error
    ), (422 if kind_error else 200)


def _render_show(offer_id: int) -> ResponseReturnValue:
    session = db_session()
    viewer_id = current_user.id if current_user.is_authenticated else None
    offer = offers.viewable_offer(session=session, offer_id=offer_id, viewer_id=viewer_id)
    is_member = offers.is_member(session=session, user_id=viewer_id, offer=offer)
    takes_projects = company_dashboard.offer_takes_projects(offer)
    recommended = catalogue.recommended_proposals(
        session=session, offer_id=offer_id, limit=current_app.config["TANDEM_TOP_K"]
    )
    catalogue.preload_people(
        session=session,
        proposals=[proposal for _, proposal in recommended],
        offers=[offer],
        matches=[match for match, _ in recommended],
    )
    ranked = [
        (
            cards.for_viewer(
                session=session,
                viewer=current_user,
                match=match,
                proposal=proposal,
                offer=offer,
                takes_interest=takes_projects,
            ),
            proposal,
            catalogue.author_label(session=session, proposal=proposal),
        )
        for match, proposal in recommended
    ]
    return render_template(
        "offers/show.html",
        offer=offer,
        recommendations=ranked,
        eligibility=eligibility.stored_summary(session=session, offer_id=offer_id),
        is_member=is_member,
    )


@bp.route("/<int:offer_id>")
def show(offer_id: int) -> ResponseReturnValue:
    return _render_show(offer_id)


@bp.route("/new", methods=["GET", "POST"])
@login_required
@roles_required("company")
def create() -> ResponseReturnValue:
    session = db_session()
    member = offers.membership(session=session, user_id=current_user.id)
    form = OfferForm()
    if request.method == "GET":
        form.excluded_institutions.data = "\n".join(
            offers.organisation_exclusions(session=session, organisation_id=member.organisation.id)
        )
    if _submitted_and_valid(form):
        with attempt(form):
            offer = offers.create_offer(
                session=session,
                user_id=current_user.id,
                data=form.to_data(),
                rematch=queued_rematch(),
                open_now=bool(form.publish.data),
            )
            flash(
                "Your offer is open: it is listed and matched with proposals."
                if offer.status == OfferStatus.open
                else "Your offer is saved as a draft. Open it when you are ready to be matched.",
                "success",
            )
            return redirect(url_for("offers.show", offer_id=offer.id))
    return render_template(
        "offers/form.html", form=form, offer=None, organisation=member.organisation
    ), (422 if form.errors else 200)


@bp.route("/<int:offer_id>/edit", methods=["GET", "POST"])
@login_required
def edit(offer_id: int) -> ResponseReturnValue:
    session = db_session()
    offer = offers.own_offer(session=session, user_id=current_user.id, offer_id=offer_id)
    form = OfferForm()
    if request.method == "GET":
        form.fill_from(offer)
    if _submitted_and_valid(form, stored=offer):
        with attempt(form):
            offers.update_offer(
                session=session,
                user_id=current_user.id,
                offer_id=offer_id,
                data=form.to_data(),
                rematch=queued_rematch(),
            )
            flash("Your changes are saved.", "success")
            return redirect(url_for("offers.show", offer_id=offer_id))
    return render_template(
        "offers/form.html", form=form, offer=offer, organisation=offer.organisation
    ), (422 if form.errors else 200)


def _change_status(offer_id: int, action: str) -> ResponseReturnValue:
    change = offers.open_offer if action == "open" else offers.close_offer
    # A refusal (e.g. from a tab left open from before) is said where the button was.
    with attempt():
        change(
            session=db_session(),
            user_id=current_user.id,
            offer_id=offer_id,
            rematch=queued_rematch(),
        )
        flash(
            "The offer is open: it is listed and matched with proposals."
            if action == "open"
            else "The offer is closed: it takes no new projects. Matches already taken up stay "
            "on your dashboard.",
            "success",
        )
    return redirect(_back(url_for("offers.show", offer_id=offer_id)))


@bp.post("/<int:offer_id>/open", endpoint="open")
@login_required
def open_offer(offer_id: int) -> ResponseReturnValue:
    return _change_status(offer_id, "open")


@bp.post("/<int:offer_id>/close", endpoint="close")
@login_required
def close_offer(offer_id: int) -> ResponseReturnValue:
    return _change_status(offer_id, "close")


@bp.route("/exclusions", methods=["GET", "POST"])
@login_required
@roles_required("company")
def exclusions() -> ResponseReturnValue:
    session = db_session()
    member = offers.membership(session=session, user_id=current_user.id)
    current = offers.organisation_exclusions(
        session=session, organisation_id=member.organisation.id
    )
    form = ExclusionsForm()
    if request.method == "GET":
        form.excluded_institutions.data = "\n".join(current)
    if form.validate_on_submit():
        with attempt(form):
            changed = offers.save_exclusions(
                session=session,
                user_id=current_user.id,
                entries=lines(form.excluded_institutions.data),
                rematch=queued_rematch(),
            )
            flash(
                f"Saved. The list now applies to all your offers ({len(changed)} updated)."
                if changed
                else "Saved. Nothing changed.",
                "success",
            )
            return redirect(url_for("offers.exclusions"))
    return render_template(
        "offers/exclusions.html",
        form=form,
        organisation=member.organisation,
        has_offers=bool(
            offers.offer_count(session=session, organisation_id=member.organisation.id)
        ),
    ), (422 if form.errors else 200)


@bp.route("/mine")
@login_required
@roles_required("company")
@dashcache.cached
def mine() -> ResponseReturnValue:
    """The company's dashboard: its offers, each with its ranked proposals and capacity."""
    dashboard = company_dashboard.company_dashboard(
        session=db_session(),
        user_id=current_user.id,
        page=request.args.get("page", 1, type=int),
        suggestions_per_offer=current_app.config["TANDEM_TOP_K"],
    )
    dashcache.shown_page(dashboard.page)
    proposal_cards = {
        row.match.id: cards.build(
            match=row.match,
            proposal=row.proposal,
            offer=panel.offer,
            side="company",
            contact=row.contact,
            takes_interest=panel.takes_projects,
        )
        for panel in dashboard.panels
        for row in [*panel.proposals, *panel.set_aside]
    }
    return render_template("dashboard/company.html", dashboard=dashboard, cards=proposal_cards)
