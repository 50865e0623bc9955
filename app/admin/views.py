"""Administration pages; every route requires a signed-in administrator (who always signs in
with two-factor). Buttons are plain POST forms; a refused action is flashed and the page it
came from is shown again."""

from __future__ import annotations

import csv
import io
import logging

from flask import (
    Response,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_security import current_user, login_required, roles_required

from app.admin import charts
from app.admin.forms import ModerationForm, RoundForm, TokenForm
from app.db import db_session
from app.matcher import get_encoder, get_rematch, get_weights
from app.services import (
    admin,
    allocation,
    metrics,
    partners,
    programme,
    ranking_model,
    round_publishing,
    round_review,
)
from app.transaction import Blueprint, attempt
from app.web import local_path
from models import Role

log = logging.getLogger(__name__)

bp = Blueprint("admin", __name__, url_prefix="/admin")

CONTENT_KINDS = ("proposals", "offers")


@bp.before_request
@login_required
@roles_required("admin")
def _administrators_only() -> None:
    """Every route of this blueprint, present and future: signed in (else to the sign-in
    page), and an administrator (else 403). Administrators always sign in with two factors."""


def _per_page() -> int:
    return current_app.config["TANDEM_PAGE_SIZE"]


def _back(default: str, **values: object) -> ResponseReturnValue:
    """Back to the list the button was on (a local `next` path), else to `default`."""
    target = local_path(request.form.get("next"))
    if target:
        return redirect(target, 303)
    return redirect(url_for(default, **values), 303)


@bp.route("/")
def index() -> ResponseReturnValue:
    return render_template("admin/index.html", overview=admin.overview(session=db_session()))


# Organisations


@bp.route("/organisations")
def organisations() -> ResponseReturnValue:
    unverified = request.args.get("unverified") == "1"
    rows = admin.list_organisations(session=db_session(), unverified_only=unverified)
    return render_template("admin/organisations.html", rows=rows, unverified=unverified)


def _set_verified(organisation_id: int, verified: bool) -> ResponseReturnValue:
    with attempt():
        organisation = admin.set_organisation_verified(
            session=db_session(), organisation_id=organisation_id, verified=verified
        )
        state = "verified" if verified else "no longer verified"
        flash(f"{organisation.name} is {state}.", "success")
    return _back("admin.organisations")


@bp.route("/organisations/<int:organisation_id>/verify", methods=["POST"])
def verify_organisation(organisation_id: int) -> ResponseReturnValue:
    return _set_verified(organisation_id, True)


@bp.route("/organisations/<int:organisation_id>/unverify", methods=["POST"])
def unverify_organisation(organisation_id: int) -> ResponseReturnValue:
    return _set_verified(organisation_id, False)


# Users


@bp.route("/users")
def users() -> ResponseReturnValue:
    query = (request.args.get("q") or "").strip()[:200]
    role = request.args.get("role") or ""
    if role not in {r.value for r in Role}:
        role = ""
    page = admin.list_users(
        session=db_session(),
        page=request.args.get("page", 1, type=int),
        per_page=_per_page(),
        query=query or None,
        role=Role(role) if role else None,
    )
    return render_template("admin/users.html", page=page, q=query, role=role, roles=list(Role))


def _set_active(user_id: int, active: bool) -> ResponseReturnValue:
    with attempt():
        user = admin.set_user_active(
            session=db_session(),
            user_id=user_id,
            active=active,
            acting_user_id=current_user.id,
            rematch=get_rematch(),
        )
        flash(f"{user.name} is {'reinstated' if active else 'suspended'}.", "success")
    return _back("admin.users")


@bp.route("/users/<int:user_id>/suspend", methods=["POST"])
def suspend_user(user_id: int) -> ResponseReturnValue:
    return _set_active(user_id, False)


@bp.route("/users/<int:user_id>/reinstate", methods=["POST"])
def reinstate_user(user_id: int) -> ResponseReturnValue:
    return _set_active(user_id, True)


# Moderation


@bp.route("/content")
def content() -> ResponseReturnValue:
    kind = request.args.get("kind", "proposals")
    kind = kind if kind in CONTENT_KINDS else "proposals"
    hidden_only = request.args.get("hidden") == "1"
    lister = admin.list_proposals if kind == "proposals" else admin.list_offers
    page = lister(
        session=db_session(),
        page=request.args.get("page", 1, type=int),
        per_page=_per_page(),
        hidden_only=hidden_only,
    )
    return render_template("admin/content.html", kind=kind, page=page, hidden_only=hidden_only)


def _moderate(kind: str, item_id: int, hidden: bool) -> ResponseReturnValue:
    form = ModerationForm()
    if not form.validate_on_submit():
        session = db_session()
        item = (
            admin.get_proposal(session=session, proposal_id=item_id)
            if kind == "proposals"
            else admin.get_offer(session=session, offer_id=item_id)
        )
        page = render_template(
            "admin/moderate.html", form=form, kind=kind, item=item, hidden=hidden
        )
        return page, 422
    reason = (form.reason.data or "").strip()
    setter = admin.set_proposal_hidden if kind == "proposals" else admin.set_offer_hidden
    key = "proposal_id" if kind == "proposals" else "offer_id"
    with attempt():
        setter(
            session=db_session(),
            hidden=hidden,
            reason=reason,
            acting_user_id=current_user.id,
            **{key: item_id},
            rematch=get_rematch(),
        )
        noun = "Proposal" if kind == "proposals" else "Offer"
        message = f"{noun} {item_id} is {'hidden' if hidden else 'visible again'}."
        flash(f"{message} Reason: {reason}" if reason else message, "success")
    return _back("admin.content", kind=kind)


@bp.route("/proposals/<int:proposal_id>/hide", methods=["POST"])
def hide_proposal(proposal_id: int) -> ResponseReturnValue:
    return _moderate("proposals", proposal_id, True)


@bp.route("/proposals/<int:proposal_id>/unhide", methods=["POST"])
def unhide_proposal(proposal_id: int) -> ResponseReturnValue:
    return _moderate("proposals", proposal_id, False)


@bp.route("/offers/<int:offer_id>/hide", methods=["POST"])
def hide_offer(offer_id: int) -> ResponseReturnValue:
    return _moderate("offers", offer_id, True)


@bp.route("/offers/<int:offer_id>/unhide", methods=["POST"])
def unhide_offer(offer_id: int) -> ResponseReturnValue:
    return _moderate("offers", offer_id, False)


# Allocation rounds


@bp.route("/rounds")
def rounds() -> ResponseReturnValue:
    return render_template("admin/rounds.html", rounds=allocation.list_rounds(session=db_session()))


@bp.route("/rounds/new", methods=["GET", "POST"])
def new_round() -> ResponseReturnValue:
    form = RoundForm()
    if form.validate_on_submit():
        with attempt():
            allocation_round = allocation.create_round(
                session=db_session(),
                encoder=get_encoder(),
                weights=get_weights(),
                created_by_id=current_user.id,
                equity=form.equity.data,
                min_score=form.min_fit.data / 100,
                include_unverified=form.include_unverified.data,
            )
            flash(
                f"Round {allocation_round.id} is computed. Review it, then publish or discard it.",
                "success",
            )
            return redirect(url_for("admin.show_round", round_id=allocation_round.id), 303)
    failed = form.errors or request.method == "POST"
    page = render_template(
        "admin/round_new.html",
        form=form,
        unverified_offers=allocation.unverified_open_offers(session=db_session()),
    )
    return page, 422 if failed else 200


@bp.route("/rounds/<int:round_id>")
def show_round(round_id: int) -> ResponseReturnValue:
    return render_template(
        "admin/round.html",
        review=round_review.review_round(session=db_session(), round_id=round_id),
    )


@bp.route("/rounds/<int:round_id>/publish", methods=["POST"])
def publish_round(round_id: int) -> ResponseReturnValue:
    with attempt():
        # Records the publication; its mails and webhooks are written from that event.
        published = round_publishing.publish_round(session=db_session(), round_id=round_id)
        skipped = (
            f" {published.skipped} pair(s) were left out because a side had dismissed the match."
            if published.skipped
            else ""
        )
        flash(
            f"Round {round_id} is published: {published.linked + published.created} pair(s) "
            f"allocated, {len(published.notices)} email(s) on their way.{skipped}",
            "success",
        )
    return redirect(url_for("admin.show_round", round_id=round_id), 303)


@bp.route("/rounds/<int:round_id>/delete", methods=["POST"])
def delete_round(round_id: int) -> ResponseReturnValue:
    with attempt():
        round_publishing.discard_round(session=db_session(), round_id=round_id)
        flash(f"Draft round {round_id} is discarded.", "success")
        return redirect(url_for("admin.rounds"), 303)
    return redirect(url_for("admin.show_round", round_id=round_id), 303)


# Metrics


# Partner API tokens


@bp.route("/partners", methods=["GET", "POST"])
def partner_tokens() -> ResponseReturnValue:
    form = TokenForm()
    created = None
    if form.validate_on_submit():
        with attempt(form):
            created = partners.create_token(
                session=db_session(),
                name=form.name.data or "",
                scopes=form.scopes.data or [],
                created_by_id=current_user.id,
            )
            form = TokenForm(formdata=None)
    status = 422 if form.errors else 200
    tokens = partners.list_tokens(session=db_session())
    return render_template("admin/partners.html", form=form, created=created, tokens=tokens), status


@bp.route("/partners/<int:token_id>/revoke", methods=["POST"])
def revoke_partner_token(token_id: int) -> ResponseReturnValue:
    token = partners.revoke_token(session=db_session(), token_id=token_id)
    flash(f"The token of {token.name} is revoked: it stops working at once.", "success")
    return redirect(url_for("admin.partner_tokens"), 303)


@bp.route("/metrics")
def metrics_page() -> ResponseReturnValue:
    numbers = metrics.platform_metrics(session=db_session())
    status_chart = charts.bar_chart(
        [
            (metrics.MATCH_STATUS_WORDS.get(status, status), count)
            for status, count in numbers.matches_by_status.items()
        ]
    )
    area_chart = charts.bar_chart(numbers.proposals_per_area)
    week_chart = charts.bar_chart(
        [(f"Week of {week.day} {week:%b}", count) for week, count in numbers.introductions_per_week]
    )
    return render_template(
        "admin/metrics.html",
        metrics=numbers,
        status_chart=status_chart,
        area_chart=area_chart,
        week_chart=week_chart,
    )


@bp.route("/programme")
def programme_page() -> ResponseReturnValue:
    """The programme report (funnel, hours, time to agreement, outcomes by field and lab)
    and which weights rank now (the outcome loop's verdict)."""
    session = db_session()
    report = programme.programme_report(session=session)
    state = ranking_model.ranking_state(
        session=session, configured=current_app.extensions["tandem.weights"]
    )
    return render_template(
        "admin/programme.html",
        report=report,
        funnel_chart=charts.bar_chart([(label, count) for _, label, count in report.funnel]),
        lab_chart=charts.bar_chart(
            [(row.group, row.agreement_signed) for row in report.by_lab], scale="linear"
        ),
        ranking=state,
    )


@bp.route("/programme.csv")
def programme_csv() -> ResponseReturnValue:
    """The programme table (per field and per lab resource level) as CSV."""
    out = io.StringIO()
    csv.writer(out).writerows(programme.csv_rows(programme.programme_report(session=db_session())))
    return Response(
        out.getvalue(),
        mimetype="text/csv",
        headers={"Content-Disposition": 'attachment; filename="tandem-programme.csv"'},
    )
