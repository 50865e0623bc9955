"""Search pages."""

from __future__ import annotations

from flask import current_app, render_template, request
from flask.typing import ResponseReturnValue

from app.db import db_session
from app.matcher import get_encoder
from app.search import limits
from app.search.forms import SearchForm
from app.services import search
from app.transaction import Blueprint

bp = Blueprint("search", __name__, url_prefix="/search")


@bp.route("/")
def index() -> ResponseReturnValue:
    """Anyone may search; only public proposals and offers are ever found. The embedding of
    an item text searched for the first time is kept: the request commits what it wrote."""
    session = db_session()
    form = SearchForm(request.args, options=search.filter_options(session=session))
    if not form.validate():
        return render_template("search/index.html", form=form, results=None), 422
    try:
        results = search.search(
            session=session,
            encoder=get_encoder(),
            criteria=form.criteria(),
            page=form.page.data or 1,
            per_page=current_app.config["TANDEM_PAGE_SIZE"],
            admit=limits.admit,
        )
    except limits.SearchLimited as limited:
        page = render_template("search/index.html", form=form, results=None, wait=limited.wait)
        return page, 429, {"Retry-After": str(limited.wait)}
    return render_template(
        "search/index.html", form=form, results=results, link_args=form.link_args()
    )
