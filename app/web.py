"""Request-level guards shared by every blueprint: safe redirects, bounded ids, clean text."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from flask import Flask, render_template, request
from werkzeug.routing import IntegerConverter

from app import api

# Ids are 32-bit in PostgreSQL; a larger number in a URL is simply not found (never a 500).
MAX_ID = 2**31 - 1
# C0 control characters other than tab, line feed and carriage return, and DEL: nobody types
# them, PostgreSQL refuses NUL in text, and mail headers must not carry them.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


class IdConverter(IntegerConverter):
    """`<int:...>` in every route: non-negative and within the database's id range."""

    def __init__(self, map, *args, **kwargs):  # type: ignore[no-untyped-def]
        kwargs.setdefault("max", MAX_ID)
        super().__init__(map, *args, **kwargs)


def local_path(target: str | None) -> str | None:
    """`target` when it is a path on this site, else None: no scheme, no host, no
    protocol-relative `//`, no backslashes or control characters browsers would drop."""
    if not target or any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in target):
        return None
    if "\\" in target or not target.startswith("/") or target.startswith("//"):
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return None
    return target


def init_app(app: Flask) -> None:
    app.url_map.converters["int"] = IdConverter

    @app.before_request
    def refuse_control_characters():  # type: ignore[no-untyped-def]
        values = [*request.args.values(), *request.form.values()]
        if any(_CONTROL.search(value) for value in values):
            message = (
                "Your request contained invisible control characters (such as NUL), which "
                "text on Tandem cannot hold. Please retype or paste the text again."
            )
            if api.is_api_request():
                return api.problem_response(400, message)
            return render_template("errors/400.html", message=message), 400
        return None
