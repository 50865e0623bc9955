"""Publication pages of the signed-in academic: their expertise profile."""

from __future__ import annotations

from flask import flash, redirect, render_template, url_for
from flask.typing import ResponseReturnValue
from flask_security import current_user, login_required, roles_required

from app.db import db_session
from app.matcher import queued_rematch
from app.publications.forms import BibtexForm, PublicationForm
from app.services import publications
from app.transaction import Blueprint, attempt, show_errors

bp = Blueprint("publications", __name__, url_prefix="/publications")


def _page(
    form: PublicationForm,
    bibtex_form: BibtexForm,
    *,
    status: int = 200,
    report: publications.ImportReport | None = None,
) -> ResponseReturnValue:
    items = publications.list_publications(session=db_session(), author_id=current_user.id)
    return (
        render_template(
            "publications/index.html",
            form=form,
            bibtex_form=bibtex_form,
            publications=items,
            report=report,
        ),
        status,
    )


@bp.route("/")
@login_required
@roles_required("academic")
def index() -> ResponseReturnValue:
    return _page(PublicationForm(), BibtexForm(prefix="bibtex"))


@bp.post("/")
@login_required
@roles_required("academic")
def add() -> ResponseReturnValue:
    form = PublicationForm()
    if not form.validate_on_submit():
        # A value that did not parse stops the form; the model's limits are still checked
        # on the other fields, so that every mistake shows after the first submission.
        show_errors(
            form,
            {
                name: messages
                for name, messages in publications.check_publication(data=form.to_data()).items()
                if name in form and not form[name].errors
            },
        )
    else:
        with attempt(form):
            publication = publications.add_publication(
                session=db_session(),
                author_id=current_user.id,
                data=form.to_data(),
                rematch=queued_rematch(),
            )
            flash(f"Added “{publication.title}” to your profile.", "success")
            return redirect(url_for("publications.index"))
    return _page(form, BibtexForm(prefix="bibtex", formdata=None), status=422)


@bp.post("/import")
@login_required
@roles_required("academic")
def import_bibtex() -> ResponseReturnValue:
    bibtex_form = BibtexForm(prefix="bibtex")
    if bibtex_form.validate_on_submit():
        # Unreadable BibTeX or too many entries: said at the pasted text, kept for trimming.
        with attempt(bibtex_form, others_at="text"):
            report = publications.import_bibtex(
                session=db_session(),
                author_id=current_user.id,
                text=bibtex_form.text.data or "",
                rematch=queued_rematch(),
            )
            # The per-entry report is shown at once rather than flashed: a long report would
            # not fit in the session cookie. Posting again is harmless, as titles already on
            # the profile are skipped.
            return _page(
                PublicationForm(formdata=None),
                BibtexForm(prefix="bibtex", formdata=None),
                report=report,
            )
    return _page(PublicationForm(formdata=None), bibtex_form, status=422)


@bp.post("/<int:publication_id>/delete")
@login_required
@roles_required("academic")
def delete(publication_id: int) -> ResponseReturnValue:
    # Usually gone because it was deleted a moment ago from another tab: the list shows
    # what is left.
    with attempt(gone="That publication is no longer on your profile."):
        publication = publications.delete_publication(
            session=db_session(),
            author_id=current_user.id,
            publication_id=publication_id,
            rematch=queued_rematch(),
        )
        flash(f"Removed “{publication.title}” from your profile.", "success")
    return redirect(url_for("publications.index"))
