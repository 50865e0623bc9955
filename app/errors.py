"""Error pages: every failure a person sees is a page of ours, never a stack trace."""

from __future__ import annotations

import logging

import sqlalchemy as sa
from flask import Flask, Response, render_template
from werkzeug.exceptions import Conflict as HttpConflict
from werkzeug.exceptions import Forbidden as HttpForbidden
from werkzeug.exceptions import HTTPException, InternalServerError, SecurityError

from app import api
from app.db import rollback_request
from app.services.errors import Conflict, DomainError, Forbidden, InvalidInput, NotFound

log = logging.getLogger(__name__)

API_STATUS: dict[type[DomainError], int] = {
    InvalidInput: 400,
    NotFound: 404,
    Forbidden: 403,
    Conflict: 409,
}


def register(app: Flask) -> None:
    @app.errorhandler(api.ProblemError)
    def api_problem(exc: api.ProblemError):  # type: ignore[no-untyped-def]
        return api.from_problem(exc)

    if hasattr(app, "error_processor"):
        # APIFlask's own errors (invalid query parameters) as problem details too.
        @app.error_processor
        def api_validation(error):  # type: ignore[no-untyped-def]
            return api.problem_response(
                400 if error.status_code == 422 else error.status_code,
                "Some values in the request are not valid." if error.detail else error.message,
                errors=api.validation_errors(error.detail),
                headers=error.headers,
            )

    @app.errorhandler(DomainError)
    def domain_error(exc: DomainError):  # type: ignore[no-untyped-def]
        """A service refused: problem details in the API; pages for the portal, whose views
        handle invalid input and conflicts themselves (so those reaching here are bugs)."""
        if api.is_api_request():
            status = API_STATUS.get(type(exc), 400)
            detail = "Some values in the request are not valid." if status == 400 else str(exc)
            errors = exc.field_errors if isinstance(exc, InvalidInput) else None
            return api.problem_response(status, detail, errors=errors)
        if isinstance(exc, NotFound):
            return render_template("errors/404.html", message=str(exc)), 404
        if isinstance(exc, Forbidden):
            return render_template("errors/http.html", error=HttpForbidden(str(exc))), 403
        return unexpected(exc)

    @app.errorhandler(sa.exc.IntegrityError)
    def conflicting_write(exc: sa.exc.IntegrityError):  # type: ignore[no-untyped-def]
        """Two requests wrote the same unique thing at once (the same address signed up
        twice, say): the later one is refused whole, nothing of it is kept, and the person is
        told to try again, never shown a 500."""
        rollback_request()
        log.info("write refused by a unique constraint: %s", exc.orig)
        detail = (
            "Another request changed the same thing at the same moment, so nothing of this one "
            "was saved. Go back and try again: what you typed is still in the form."
        )
        if api.is_api_request():
            return api.problem_response(409, detail)
        return render_template("errors/http.html", error=HttpConflict(detail)), 409

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):  # type: ignore[no-untyped-def]
        if isinstance(exc, SecurityError):
            # A host outside TRUSTED_HOSTS: no page can be built for it (no URL adapter).
            return Response(
                "Bad request: this address is not served here.\n", 400, mimetype="text/plain"
            )
        if api.is_api_request():
            headers = {k: v for k, v in exc.get_headers() if k.lower() != "content-type"}
            return api.problem_response(
                exc.code or 500, exc.description or exc.name, headers=headers
            )
        if exc.code == 404:
            return render_template("errors/404.html", message=None), 404
        if isinstance(exc, InternalServerError):
            return render_template("errors/500.html"), 500
        return render_template("errors/http.html", error=exc), exc.code or 500

    @app.errorhandler(Exception)
    def unexpected(exc: Exception):  # type: ignore[no-untyped-def]
        if isinstance(exc, RecursionError) and api.is_api_request():
            # A request body nested too deeply to parse: the client's mistake.
            return api.problem_response(400, "The request body is nested too deeply.")
        log.exception("unhandled error", exc_info=exc)
        if api.is_api_request():
            return api.problem_response(500, "Something went wrong on our side; retry later.")
        return render_template("errors/500.html"), 500
