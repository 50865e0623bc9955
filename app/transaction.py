"""One transaction per portal request, and what a page shows when a service refuses.

Every view of a portal blueprint (`Blueprint` below), of the partner API (`APIBlueprint`) and
of the account pages (wrapped in `app.auth`) runs inside `one_transaction`: the
request's session is committed once, when the view answers with a page or a redirect
(status below 400), and rolled back when it answers with an error page or raises. The
commit happens inside the view call, so a write refused by the database (an
`IntegrityError`) still reaches the 409 page of `app.errors`, as it would not from an
`after_request` hook. Services only flush; views call one service inside `attempt`, which
turns a refusal (`DomainError`) into messages at the form's fields or a flashed message,
after undoing what the request had written.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from functools import wraps
from typing import Any

import apiflask
import flask
from flask import current_app, flash
from flask.globals import request_ctx
from flask.typing import ResponseReturnValue
from flask_wtf import FlaskForm
from wtforms import HiddenField, SubmitField

from app.db import commit_request, rollback_request
from app.services.errors import DomainError, InvalidInput, NotFound


def one_transaction(view: Callable[..., ResponseReturnValue]) -> Callable[..., flask.Response]:
    """`view`, committing the request's writes when its answer is a page or a redirect and
    rolling them back when it is an error (4xx, 5xx) or an exception.

    Whatever the method: the one GET that writes is the search, which keeps the embedding of
    a text searched for the first time on purpose, and committing a transaction that only
    read costs no more than the rollback that closing the session would do."""

    @wraps(view)
    def in_one_transaction(*args: Any, **kwargs: Any) -> flask.Response:
        flashed_before = list(flask.session.get("_flashes", ()))
        try:
            response = current_app.make_response(view(*args, **kwargs))
            if response.status_code < 400:
                commit_request()
            else:
                rollback_request()
        except BaseException:
            rollback_request()
            _unflash_since(flashed_before)
            raise
        return response

    return in_one_transaction


def _unflash_since(flashed_before: list[Any]) -> None:
    """Forget the messages the view flashed ("Your changes are saved.") when its writes were
    not kept after all, so that the error page does not contradict itself."""
    if flashed_before:
        flask.session["_flashes"] = flashed_before
    elif "_flashes" in flask.session:
        del flask.session["_flashes"]
    request_ctx.flashes = None  # the view's page may have read them already


class _InOneTransaction:
    """Registers each view of the blueprint wrapped in `one_transaction`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # One wrapper per view function, so that a view with two routes stays one endpoint.
        self._in_transaction: dict[Callable[..., Any], Callable[..., flask.Response]] = {}

    def add_url_rule(
        self,
        rule: str,
        endpoint: str | None = None,
        view_func: Callable[..., Any] | None = None,
        provide_automatic_options: bool | None = None,
        **options: Any,
    ) -> None:
        if view_func is not None:
            if view_func not in self._in_transaction:
                self._in_transaction[view_func] = one_transaction(view_func)
            view_func = self._in_transaction[view_func]
        super().add_url_rule(  # type: ignore[misc]
            rule, endpoint, view_func, provide_automatic_options, **options
        )


class Blueprint(_InOneTransaction, flask.Blueprint):
    """A portal blueprint: each of its views runs in `one_transaction`."""


class APIBlueprint(_InOneTransaction, apiflask.APIBlueprint):
    """A blueprint of the partner API: each of its views runs in `one_transaction` too."""


def show_errors(
    form: FlaskForm, field_errors: Mapping[str, list[str]], *, others_at: str | None = None
) -> None:
    """Put each message at the field it names, after the form's own. A message that names no
    field a person can correct (the key "", a button, a hidden field, a name the form lacks)
    goes to the field `others_at` when given, else above the form."""
    for name, messages in field_errors.items():
        field = form._fields.get(name) if name else None
        if field is None or isinstance(field, SubmitField | HiddenField):
            field = form._fields.get(others_at) if others_at else None
        if field is None:
            form.form_errors.extend(messages)
        else:
            field.errors = [*field.errors, *messages]


@contextmanager
def attempt(
    form: FlaskForm | None = None, *, others_at: str | None = None, gone: str | None = None
) -> Iterator[None]:
    """Run the block, usually one service call and the answer to its success. When the
    service refuses (`DomainError`), what this request wrote is rolled back at once, so a
    later commit cannot keep half of it; the messages go to the form's fields (`show_errors`,
    with `others_at`), or are flashed when there is no form; and the view continues after the
    block to answer the refusal (the form's page again, or a redirect back).

    `NotFound` is not a refusal: it propagates and the person sees the 404 page, unless
    `gone` is given, which is then flashed instead (a record deleted a moment ago from
    another tab, say)."""
    try:
        yield
    except NotFound:
        if gone is None:
            raise
        rollback_request()
        flash(gone, "error")
    except DomainError as refusal:
        rollback_request()
        messages = (
            refusal.field_errors if isinstance(refusal, InvalidInput) else {"": [str(refusal)]}
        )
        if form is not None:
            show_errors(form, messages, others_at=others_at)
            return
        for found in messages.values():
            for message in found:
                flash(message, "error")
