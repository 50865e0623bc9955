"""`/api/v1/`: the partner API (read-only JSON, bearer tokens with scopes, keyset sync)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from functools import wraps
from typing import Any

from flask import (
    Blueprint,
    Response,
    current_app,
    g,
    render_template,
    request,
)
from flask.typing import ResponseReturnValue
from sqlmodel import Session

from app import db
from app.api import ProblemError, export, schemas
from app.api.serialise import SERIALISERS
from app.db import db_session
from app.services import feed, partners, programme, webhooks
from app.services.errors import NotFound
from app.transaction import APIBlueprint
from app.webhooks import allow_private
from models import PartnerToken

bp = APIBlueprint("api", __name__, url_prefix="/api/v1", tag="Partner API")
docs = Blueprint("api_docs", __name__, url_prefix="/api")

AUTH_RESPONSES: dict[int | str, Any] = {
    401: "No token, or a wrong or revoked one",
    403: "The token lacks the scope this resource needs",
    429: "Too many requests from this token: wait `Retry-After` seconds",
}


def _bearer() -> str | None:
    """The token of an `Authorization: Bearer <token>` header, if there is one."""
    scheme, _, secret = request.headers.get("Authorization", "").partition(" ")
    return (secret.strip() or None) if scheme.lower() == "bearer" else None


def _presented_token() -> PartnerToken | None:
    """The stored token the request presents (revoked or not), looked up once per request:
    the rate limiter and the authentication both need it."""
    if "partner_token" not in g:
        secret = _bearer()
        g.partner_token = (
            partners.find_token(session=db_session(), secret=secret) if secret else None
        )
    return g.partner_token


def token_key() -> str:
    """Rate-limit key: a valid token (so each partner has its own allowance), else the
    address (so inventing tokens buys no extra requests)."""
    token = _presented_token()
    if token is not None and token.active:
        return f"api-token:{token.id}"
    return "api-address:" + (request.remote_addr or "unknown")


@bp.before_request
def authenticate() -> None:
    if _bearer() is None:
        raise ProblemError(
            401,
            "unauthorized",
            "Send your partner token as `Authorization: Bearer <token>`.",
            headers={"WWW-Authenticate": 'Bearer realm="tandem"'},
        )
    session = db_session()
    token = _presented_token()
    if token is None or not token.active:
        raise ProblemError(
            401,
            "unauthorized",
            "This token was revoked." if token is not None else "This token is not valid.",
            headers={"WWW-Authenticate": 'Bearer realm="tandem", error="invalid_token"'},
        )
    # Kept with the request's answer (`one_transaction`): the last successful use.
    partners.mark_used(session=session, token=token)
    g.partner_scopes = frozenset(token.scopes)
    g.partner_token_id = token.id


def _requires(scope: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    def decorate(view: Callable[..., Any]) -> Callable[..., Any]:
        @wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            if scope not in g.partner_scopes:
                raise ProblemError(
                    403, "forbidden", f"This token does not have the `{scope}` scope."
                )
            return view(*args, **kwargs)

        return wrapped

    return decorate


def _list(name: str, query: schemas.ListQuery) -> dict[str, Any]:
    resource = feed.RESOURCES[name]
    session = db_session()
    chunk = feed.page(
        session=session,
        resource=resource,
        cursor=query.cursor,
        updated_since=query.updated_since,
        limit=query.limit,
        settle=timedelta(seconds=current_app.config["TANDEM_API_SETTLE_SECONDS"]),
    )
    serialise = SERIALISERS[name]
    return {
        "items": [serialise(session, record, g.partner_scopes) for record in chunk.public],
        "deleted": [{"id": i, "updated_at": when} for i, when in chunk.deleted],
        "next_cursor": chunk.next_cursor.encode() if chunk.next_cursor else query.cursor,
        "has_more": chunk.has_more,
    }


def _detail(name: str, record_id: int) -> schemas.Schema:
    session = db_session()
    record = feed.one(session=session, resource=feed.RESOURCES[name], record_id=record_id)
    if record is None:
        raise NotFound(f"No public record {record_id} in {name}.")
    return SERIALISERS[name](session, record, g.partner_scopes)


LIST_DOC = (
    "Records in change order, oldest change first. Page with `next_cursor` until `has_more` "
    "is false; keep the last `next_cursor` and pass it later to get only what changed since. "
    "Records that stopped being public are listed in `deleted`."
)


def _endpoints(name: str, scope: str, item: type, page: type, title: str) -> None:
    """List and detail endpoints for one resource."""

    @bp.get(f"/{name}", endpoint=f"list_{name.replace('-', '_')}")
    @bp.input(schemas.ListQuery, location="query", arg_name="query")
    @bp.output(page)
    @bp.doc(
        summary=f"List {title}",
        description=LIST_DOC,
        security="bearer",
        responses={**AUTH_RESPONSES, 400: "A parameter is not valid", 304: "Not modified"},
    )
    @_requires(scope)
    def list_view(query: schemas.ListQuery) -> dict[str, Any]:
        return _list(name, query)

    @bp.get(f"/{name}/<int:record_id>", endpoint=f"get_{name.replace('-', '_')}")
    @bp.output(item)
    @bp.doc(
        summary=f"One of the {title}",
        security="bearer",
        responses={**AUTH_RESPONSES, 404: "No such public record", 304: "Not modified"},
    )
    @_requires(scope)
    def detail_view(record_id: int) -> schemas.Schema:
        return _detail(name, record_id)


_endpoints("proposals", "proposals", schemas.ProposalOut, schemas.ProposalPage, "proposals")
_endpoints("offers", "offers", schemas.OfferOut, schemas.OfferPage, "offers")
_endpoints(
    "organisations",
    "organisations",
    schemas.OrganisationOut,
    schemas.OrganisationPage,
    "organisations",
)
_endpoints("matches", "matches", schemas.MatchOut, schemas.MatchPage, "introduced matches")
_endpoints(
    "allocation-rounds",
    "allocations",
    schemas.AllocationRoundOut,
    schemas.AllocationRoundPage,
    "published allocation rounds",
)

_endpoints(
    "collaborations",
    "outcomes",
    schemas.CollaborationOut,
    schemas.CollaborationPage,
    "collaborations of introduced public pairs",
)


@bp.get("/programme")
@bp.output(schemas.ProgrammeOut)
@bp.doc(
    summary="The programme report",
    description="From suggestion to outcome (each step counts the pairs that reached it or a "
    "later one), GPU hours granted and used, the median time to agreement, and outcomes by "
    "research field and by lab resource level; over pairs whose proposal and offer are both "
    "public.",
    security="bearer",
    responses={**AUTH_RESPONSES, 304: "Not modified"},
)
@_requires("outcomes")
def programme_report() -> dict[str, Any]:
    return programme.programme_report(session=db_session(), public_only=True).to_dict()


@bp.get("/export.ndjson")
@bp.input(schemas.ExportQuery, location="query", arg_name="query")
@bp.doc(
    summary="Everything this token may see, as NDJSON",
    description="One JSON object per line: `{resource, record}` for each public record of "
    "every resource the token's scopes allow, `{resource, deleted}` for records that stopped "
    "being public (with `since`), and last `{cursors}`: pass each as `cursor` to its list "
    "endpoint to keep the copy in sync. Streamed: memory stays flat on both sides.",
    security="bearer",
    responses={
        200: {
            "description": "The export, one JSON object per line",
            "content": {"application/x-ndjson": {"schema": schemas.ExportLine.model_json_schema()}},
        },
        **AUTH_RESPONSES,
        400: "A parameter is not valid",
    },
)
def export_ndjson(query: schemas.ExportQuery) -> Response:
    scopes = g.partner_scopes
    # Checked before the stream starts: once it has, the status is already 200.
    since = feed.as_utc(query.since, "since") if query.since else None
    settle = timedelta(seconds=current_app.config["TANDEM_API_SETTLE_SECONDS"])
    engine = db.engine()

    def body() -> Iterator[str]:
        # Its own session, closed when the stream ends (or the client goes away), whether
        # or not the server closes the response.
        with Session(engine) as session:
            yield from export.ndjson(
                export.lines(session=session, scopes=scopes, since=since, settle=settle)
            )

    return Response(body(), mimetype="application/x-ndjson")


@bp.get("/webhooks")
@bp.output(schemas.WebhookList)
@bp.doc(summary="This token's webhooks", security="bearer", responses=AUTH_RESPONSES)
@_requires("webhooks")
def list_webhooks() -> dict[str, Any]:
    hooks = webhooks.list_for(session=db_session(), token_id=g.partner_token_id)
    return {"items": [h.model_dump(include=set(schemas.WebhookOut.model_fields)) for h in hooks]}


@bp.post("/webhooks")
@bp.input(schemas.WebhookIn, location="json", arg_name="body")
@bp.output(schemas.WebhookCreated, status_code=201)
@bp.doc(
    summary="Register a webhook",
    description="We POST JSON `{id, event, created_at, data}` to the URL for each event, "
    "signed in the `Tandem-Signature` header (`t=<unix time>,v1=<hex HMAC-SHA256 of "
    '"<t>.<body>" with the secret>`). Answer 2xx; other answers are retried with growing '
    "delays for about a day (4xx other than 408 and 429 are not retried; 410 removes the "
    "webhook). `Tandem-Delivery` is the same on every retry.",
    security="bearer",
    responses={**AUTH_RESPONSES, 400: "The URL or events are not valid", 409: "Too many"},
)
@_requires("webhooks")
def create_webhook(body: schemas.WebhookIn) -> dict[str, Any]:
    session = db_session()
    hook = webhooks.register(
        session=session,
        token=partners.get_token(session=session, token_id=g.partner_token_id),
        url=body.url,
        events=body.events,
        allow_private=allow_private(),
    )
    return {**hook.model_dump(include=set(schemas.WebhookOut.model_fields)), "secret": hook.secret}


@bp.delete("/webhooks/<int:webhook_id>")
@bp.doc(
    summary="Remove a webhook",
    security="bearer",
    responses={204: "Removed", **AUTH_RESPONSES, 404: "No such webhook of this token"},
)
@_requires("webhooks")
def delete_webhook(webhook_id: int) -> ResponseReturnValue:
    session = db_session()
    webhooks.remove(session=session, token_id=g.partner_token_id, webhook_id=webhook_id)
    return "", 204


@bp.after_request
def conditional(response: Response) -> Response:
    """ETag on every successful read; `If-None-Match` with the same tag gets 304."""
    if request.method == "GET" and response.status_code == 200 and not response.is_streamed:
        response.add_etag()
        response.make_conditional(request)
    return response


@docs.get("/")
def index() -> ResponseReturnValue:
    """The API's documentation page in the portal."""
    return render_template(
        "api/index.html",
        scopes=partners.SCOPES,
        resources=feed.RESOURCES,
        problems=PROBLEM_TYPES,
    )


PROBLEM_TYPES = {
    "unauthorized": "401: no token, or a wrong or revoked one.",
    "forbidden": "403: the token lacks the scope the resource needs.",
    "not-found": "404: no such public record (private ones look the same).",
    "invalid-request": "400 or 422: a parameter is missing, unknown or not valid; `errors` "
    "says which.",
    "rate-limited": "429: too many requests from this token; retry after `Retry-After` seconds.",
    "method-not-allowed": "405: that method is not offered on this path.",
    "conflict": "409: the request clashes with what exists (e.g. too many webhooks).",
    "server-error": "500: our fault; retry later.",
}
