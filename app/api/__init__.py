"""The partner API. Every error it answers is RFC 9457 problem details with a stable `type`."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from flask import Response, current_app, request

API_PREFIX = "/api/v1/"
PROBLEM_JSON = "application/problem+json"


class ProblemError(Exception):
    """Raised in API views: answered as problem details."""

    def __init__(
        self,
        status: int,
        kind: str,
        detail: str,
        *,
        errors: Mapping[str, list[str]] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status, self.kind, self.detail = status, kind, detail
        self.errors = dict(errors) if errors else None
        self.headers = dict(headers or {})


TITLES = {
    400: "Invalid request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    422: "Invalid request",
    429: "Too many requests",
    500: "Server error",
}
KINDS = {
    400: "invalid-request",
    401: "unauthorized",
    403: "forbidden",
    404: "not-found",
    405: "method-not-allowed",
    409: "conflict",
    422: "invalid-request",
    429: "rate-limited",
    500: "server-error",
}


def is_api_request() -> bool:
    return request.path.startswith(API_PREFIX) or request.path == API_PREFIX.rstrip("/")


def problem_type(kind: str) -> str:
    """A stable URI per kind of error; it is documented on the API page."""
    return f"{current_app.config['TANDEM_BASE_URL'].rstrip('/')}/api/#problem-{kind}"


def problem_response(
    status: int,
    detail: str,
    *,
    kind: str | None = None,
    errors: Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
) -> Response:
    """The one error helper of the API: problem details with a stable `type`."""
    kind = kind or KINDS.get(status, "server-error" if status >= 500 else "invalid-request")
    body: dict[str, Any] = {
        "type": problem_type(kind),
        "title": TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
    }
    if errors:
        body["errors"] = {str(k): [str(m) for m in v] for k, v in errors.items()}
    response = Response(json.dumps(body), status=status, mimetype=PROBLEM_JSON)
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def from_problem(error: ProblemError) -> Response:
    return problem_response(
        error.status, error.detail, kind=error.kind, errors=error.errors, headers=error.headers
    )


def validation_errors(detail: Any) -> dict[str, list[str]]:
    """APIFlask's `{"query": {"limit": ["..."]}}` as `{"limit": ["..."]}`; a nested path
    (`events.0`) is reported under its parameter (`events`)."""
    flat: dict[str, list[str]] = {}
    if isinstance(detail, Mapping):
        for location in detail.values():
            if not isinstance(location, Mapping):
                continue
            for name, messages in location.items():
                field, _, rest = str(name).partition(".")
                texts = messages if isinstance(messages, list) else [messages]
                flat.setdefault(field, []).extend(
                    f"{rest}: {text}" if rest else str(text) for text in texts
                )
    return flat


def init_app(app: Any, views: Any) -> None:
    """Register the API (after `auth.init_app`: it needs the limiter and CSRF protection)."""
    from app.auth import csrf

    app.config["SECURITY_SCHEMES"] = {
        "bearer": {"type": "http", "scheme": "bearer", "description": "A partner token"}
    }
    app.config["INFO"] = {
        "description": "Read-only export of Tandem's public data for partner organisations. "
        "See the API page in the portal for a walk-through."
    }
    app.config["VALIDATION_ERROR_STATUS_CODE"] = 400
    app.spec_processor(problem_details_in_spec)
    limiter = app.extensions["tandem.limiter"]
    limiter.limit(app.config["TANDEM_API_RATE_LIMIT"], key_func=views.token_key)(views.bp)
    csrf.exempt(views.bp)
    app.register_blueprint(views.bp)
    app.register_blueprint(views.docs)
    # Only the API's blueprint is described in the OpenAPI document; APIFlask expects every
    # other blueprint to say so.
    for blueprint in app.blueprints.values():
        if not hasattr(blueprint, "enable_openapi"):
            blueprint.enable_openapi = False


def problem_details_in_spec(spec: dict[str, Any]) -> dict[str, Any]:
    """Every documented error answers `application/problem+json` with the `Problem` schema
    (APIFlask would document its own JSON error shape)."""
    from app.api.schemas import Problem

    reference = {"$ref": "#/components/schemas/Problem"}
    for operations in spec.get("paths", {}).values():
        for operation in operations.values():
            if "requestBody" in operation:
                operation["requestBody"]["required"] = True  # no endpoint takes an empty body
            for status, response in operation.get("responses", {}).items():
                if str(status)[0] in "45":
                    response["content"] = {PROBLEM_JSON: {"schema": reference}}
    schemas = spec.setdefault("components", {}).setdefault("schemas", {})
    for unused in ("HTTPError", "ValidationError"):
        schemas.pop(unused, None)
    schemas["Problem"] = Problem.model_json_schema()
    _webhook_urls_as_served(schemas)
    return spec


def _webhook_urls_as_served(schemas: dict[str, Any]) -> None:
    """Outside development the server takes only https:// and host names for webhooks: the
    document says so (a client that follows it is never refused, and Schemathesis finds the
    two agree)."""
    from app.services.webhooks import PUBLIC_URL_PATTERN
    from app.webhooks import allow_private

    url = schemas.get("WebhookIn", {}).get("properties", {}).get("url")
    if url is None or allow_private():
        return
    url["pattern"] = PUBLIC_URL_PATTERN
    url["description"] = (
        "Where to POST notifications: https:// and the endpoint's host name (not an IP "
        "address). Names that resolve to private networks are refused at delivery."
    )
