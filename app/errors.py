"""Error pages: every failure a person sees is a page of ours, never a stack trace."""

from __future__ import annotations

import logging

from flask import Flask, render_template
from werkzeug.exceptions import Forbidden as HttpForbidden
from werkzeug.exceptions import HTTPException, InternalServerError

from app.services.errors import Forbidden, NotFound

log = logging.getLogger(__name__)


def register(app: Flask) -> None:
    @app.errorhandler(NotFound)
    def not_found_domain(exc: NotFound):  # type: ignore[no-untyped-def]
        return render_template("errors/404.html", message=str(exc)), 404

    @app.errorhandler(Forbidden)
    def forbidden_domain(exc: Forbidden):  # type: ignore[no-untyped-def]
        return render_template("errors/http.html", error=HttpForbidden(str(exc))), 403

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):  # type: ignore[no-untyped-def]
        if exc.code == 404:
            return render_template("errors/404.html", message=None), 404
        if isinstance(exc, InternalServerError):
            return render_template("errors/500.html"), 500
        return render_template("errors/http.html", error=exc), exc.code or 500

    @app.errorhandler(Exception)
    def unexpected(exc: Exception):  # type: ignore[no-untyped-def]
        log.exception("unhandled error", exc_info=exc)
        return render_template("errors/500.html"), 500
