"""The partner API: tokens and scopes, consent rules, keyset sync, ETags, problem details."""

from __future__ import annotations

import base64
import json
import re
import threading
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlmodel import Session, select

from app import create_app
from app.services import partners
from matching import Encoder
from models import (
    Match,
    MatchStatus,
    PartnerToken,
    Proposal,
    ProposalStatus,
    User,
    utcnow,
)
from tests.conftest import AuthActions

ALL_READ = ("proposals", "offers", "organisations", "matches", "allocations")


@pytest.fixture
def api_app(app: Flask) -> Flask:
    # Changes show at once (the settle delay is tested on its own).
    app.config["TANDEM_API_SETTLE_SECONDS"] = 0
    return app


def _token(session: Session, *scopes: str, name: str = "Research Council") -> str:
    created = partners.create_token(session=session, name=name, scopes=scopes or ALL_READ)
    session.commit()
    return created.secret


def _get(client: FlaskClient, path: str, token: str | None, **params: Any) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return client.get(path, headers=headers, query_string=params)


def _problem(response: Any, status: int, kind: str) -> dict[str, Any]:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    body = response.get_json(force=True)
    assert body["status"] == status and body["type"].endswith(f"/api/#problem-{kind}")
    assert body["title"] and body["detail"]
    return body


def _cursor(stamp: str, record_id: int) -> str:
    """A cursor as a client could forge one."""
    return base64.urlsafe_b64encode(json.dumps([stamp, record_id]).encode()).decode()


def _mirror(client: FlaskClient, token: str, name: str, **params: Any) -> dict[int, Any]:
    copy: dict[int, Any] = {}
    cursor = None
    while True:
        query = {**params, **({"cursor": cursor} if cursor else {})}
        page = _get(client, f"/api/v1/{name}", token, **query).get_json()
        copy.update({item["id"]: item for item in page["items"]})
        for gone in page["deleted"]:
            copy.pop(gone["id"], None)
        cursor = page["next_cursor"]
        if not page["has_more"]:
            return copy


def test_every_auth_failure_is_a_problem_and_changes_nothing(
    api_app: Flask, client: FlaskClient, session: Session, pair: dict[str, Any]
) -> None:
    body = _problem(_get(client, "/api/v1/proposals", None), 401, "unauthorized")
    assert "Bearer" in body["detail"]
    response = client.get("/api/v1/proposals", headers={"Authorization": "Basic abc"})
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    _problem(response, 401, "unauthorized")
    _problem(_get(client, "/api/v1/proposals", "tdm_not-a-token"), 401, "unauthorized")

    token = _token(session, "offers")
    _problem(_get(client, "/api/v1/proposals", token), 403, "forbidden")
    _problem(_get(client, f"/api/v1/proposals/{pair['proposal'].id}", token), 403, "forbidden")
    assert _get(client, "/api/v1/offers", token).status_code == 200

    stored = session.exec(select(PartnerToken)).one()
    assert stored.last_used_at is not None and token not in str(stored.token_hash)
    partners.revoke_token(session=session, token_id=stored.id)
    session.commit()
    body = _problem(_get(client, "/api/v1/offers", token), 401, "unauthorized")
    assert "revoked" in body["detail"]
    _problem(
        client.post("/api/v1/offers", headers={"Authorization": f"Bearer {token}"}),
        405,
        "method-not-allowed",
    )


def test_only_public_records_leave_and_researchers_stay_anonymous(
    api_app: Flask,
    client: FlaskClient,
    session: Session,
    pair: dict[str, Any],
    make_proposal: Callable[..., Any],
) -> None:
    draft = make_proposal(author_id=pair["academic"].id, status=ProposalStatus.draft)
    hidden = make_proposal(author_id=pair["academic"].id, hidden=True)
    token = _token(session)
    page = _get(client, "/api/v1/proposals", token).get_json()
    assert [p["id"] for p in page["items"]] == [pair["proposal"].id]
    assert {d["id"] for d in page["deleted"]} == {draft.id, hidden.id}
    (shown,) = page["items"]
    assert shown["researcher"].startswith("A researcher in ")
    text = str(page)
    assert "Ada" not in text and "ada@" not in text and "excluded" not in text
    _problem(_get(client, f"/api/v1/proposals/{draft.id}", token), 404, "not-found")
    _problem(_get(client, f"/api/v1/proposals/{hidden.id}", token), 404, "not-found")

    offers = _get(client, "/api/v1/offers", token).get_json()["items"]
    assert {o["organisation"] for o in offers} == {"Helios Compute"}
    organisations = _get(client, "/api/v1/organisations", token).get_json()["items"]
    assert {o["name"] for o in organisations} >= {"Helios Compute", "Northbridge University"}


def test_matches_are_exported_once_introduced_and_contacts_need_their_scope(
    api_app: Flask, client: FlaskClient, session: Session, pair: dict[str, Any]
) -> None:
    plain, with_contacts = _token(session), _token(session, "matches", "contacts")
    assert _get(client, "/api/v1/matches", plain).get_json()["items"] == []
    match = session.get(Match, pair["match"].id)
    match.status, match.introduced_at = MatchStatus.introduced, utcnow()
    match.company_contact_id = pair["member"].id
    session.add(match)
    session.commit()

    (item,) = _get(client, "/api/v1/matches", plain).get_json()["items"]
    assert item["id"] == match.id and item["components"] and item["explanation"]
    # Publication titles identify the researcher; who excluded whom is private.
    assert "best_publications" not in item["explanation"]
    assert not {"same_organisation", "excluded_by_offer", "excluded_by_proposal"} & {
        check["name"] for check in item["explanation"]["checks"]
    }
    assert item["academic"] is None and item["company"] is None
    detail = _get(client, f"/api/v1/matches/{match.id}", with_contacts).get_json()
    assert detail["academic"]["email"] == "ada@nb.example.org"
    assert detail["company"]["email"] == "sam@helios.example.com"


def test_a_suspended_authors_proposals_become_tombstones_for_a_syncing_partner(
    api_app: Flask,
    client: FlaskClient,
    session: Session,
    auth: AuthActions,
    pair: dict[str, Any],
    make_admin: Callable[..., Any],
) -> None:
    token = _token(session, "proposals")
    first = _get(client, "/api/v1/proposals", token).get_json()
    assert [p["id"] for p in first["items"]] == [pair["proposal"].id]
    admin = make_admin()
    auth.login(admin.email)
    assert client.post(f"/admin/users/{pair['academic'].id}/suspend").status_code in (302, 303)
    later = _get(client, "/api/v1/proposals", token, cursor=first["next_cursor"]).get_json()
    assert later["items"] == []
    assert [d["id"] for d in later["deleted"]] == [pair["proposal"].id]
    unchanged = _get(client, "/api/v1/proposals", token, cursor=later["next_cursor"]).get_json()
    assert unchanged == {**unchanged, "items": [], "deleted": [], "has_more": False}


def test_a_mirror_stays_complete_while_rows_are_inserted_and_updated(
    api_app: Flask,
    client: FlaskClient,
    session: Session,
    make_user: Callable[..., Any],
    make_proposal: Callable[..., Any],
) -> None:
    author = make_user()
    for number in range(30):
        make_proposal(author_id=author.id, title=f"Initial proposal {number:02d}")
    token = _token(session, "proposals")
    engine = api_app.extensions["tandem.engine"]
    api_app.config["TANDEM_API_SETTLE_SECONDS"] = 0.3
    enough_pages = threading.Event()
    failures: list[BaseException] = []

    def write(seed: int) -> None:
        """Insert one proposal and edit the least recently changed one, per transaction: at
        least 10 times, then until the reader has paged enough (or 400 steps)."""
        try:
            with Session(engine) as writer:
                for step in range(400):
                    if step >= 10 and enough_pages.is_set():
                        return
                    writer.add(
                        Proposal(
                            title=f"Written by {seed}, step {step:03d}",
                            abstract="A proposal written while a partner is syncing the data.",
                            author_id=author.id,
                            status=ProposalStatus.open,
                        )
                    )
                    older = writer.exec(
                        select(Proposal).order_by(Proposal.updated_at).limit(1)
                    ).one()
                    older.title = f"Edited by {seed} at step {step:03d}"
                    writer.add(older)
                    writer.commit()
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            failures.append(exc)

    copy: dict[int, Any] = {}
    seen_versions: set[tuple[int, str]] = set()

    def sync(cursor: str | None) -> tuple[str | None, bool]:
        query = {"limit": 7, **({"cursor": cursor} if cursor else {})}
        page = _get(client, "/api/v1/proposals", token, **query).get_json()
        for item in page["items"]:
            version = (item["id"], item["updated_at"])
            assert version not in seen_versions, f"{version} came twice"
            seen_versions.add(version)
            copy[item["id"]] = item
        for gone in page["deleted"]:
            copy.pop(gone["id"], None)
        return page["next_cursor"], page["has_more"]

    writers = [threading.Thread(target=write, args=(seed,)) for seed in range(2)]
    for thread in writers:
        thread.start()
    cursor, pages_while_writing = None, 0
    try:
        while any(thread.is_alive() for thread in writers):
            cursor, _ = sync(cursor)
            pages_while_writing += 1
            if pages_while_writing >= 40:
                enough_pages.set()
    finally:
        enough_pages.set()
        for thread in writers:
            thread.join()
    assert not failures, failures
    assert pages_while_writing >= 10, "the reader paged while the writers wrote"
    # Writes are over: page on from the same cursor, without the settle delay.
    api_app.config["TANDEM_API_SETTLE_SECONDS"] = 0
    has_more = True
    while has_more:
        cursor, has_more = sync(cursor)
    session.expire_all()
    rows = session.exec(select(Proposal)).all()
    assert len(rows) >= 30 + 2 * 10
    assert {i: c["title"] for i, c in copy.items()} == {p.id: p.title for p in rows}


def test_updated_since_etags_and_the_settle_delay(
    api_app: Flask, client: FlaskClient, session: Session, pair: dict[str, Any]
) -> None:
    token = _token(session, "proposals")
    response = _get(client, "/api/v1/proposals", token)
    etag = response.headers["ETag"]
    again = client.get(
        "/api/v1/proposals",
        headers={"Authorization": f"Bearer {token}", "If-None-Match": etag},
    )
    assert again.status_code == 304 and again.data == b""
    updated = response.get_json()["items"][0]["updated_at"]
    later = (
        session.get(Proposal, pair["proposal"].id).updated_at + timedelta(seconds=1)
    ).isoformat()
    assert _get(client, "/api/v1/proposals", token, updated_since=updated).get_json()["items"]
    assert _get(client, "/api/v1/proposals", token, updated_since=later).get_json()["items"] == []

    api_app.config["TANDEM_API_SETTLE_SECONDS"] = 3600
    held = _get(client, "/api/v1/proposals", token).get_json()
    assert held["items"] == [] and held["next_cursor"] is None, "an hour's changes wait"


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": "0"}, "limit"),
        ({"limit": "501"}, "limit"),
        ({"limit": "many"}, "limit"),
        ({"cursor": "not-a-cursor"}, "cursor"),
        ({"cursor": _cursor("2020-01-01T00:00:00+00:00", 2**63)}, "cursor"),
        ({"cursor": _cursor("9999-12-31T23:59:59-05:00", 1)}, "cursor"),
        ({"cursor": "1795858200000000.12.3"}, "cursor"),
        ({"updated_since": "2026-11-28T09:30Z"}, "updated_since"),  # RFC 3339 needs seconds
        ({"updated_since": "2026-11-28T09:30:00+0500"}, "updated_since"),
        ({"updated_since": "yesterday"}, "updated_since"),
        ({"colour": "blue"}, "colour"),
    ],
)
def test_bad_parameters_are_problems_naming_the_parameter(
    api_app: Flask, client: FlaskClient, session: Session, params: dict[str, str], field: str
) -> None:
    token = _token(session, "proposals")
    body = _problem(_get(client, "/api/v1/proposals", token, **params), 400, "invalid-request")
    assert field in body["errors"]


def test_every_cursor_and_time_of_the_documented_forms_is_accepted(
    api_app: Flask, client: FlaskClient, session: Session, pair: dict[str, Any]
) -> None:
    """The OpenAPI document gives the cursor's form as a pattern and times as RFC 3339: a
    client that follows it is never refused (Schemathesis found cursors it was)."""
    token = _token(session, "proposals")
    spec = client.get("/api/v1/openapi.json").get_json()
    parameters = spec["paths"]["/api/v1/proposals"]["get"]["parameters"]
    (pattern,) = [p["schema"]["pattern"] for p in parameters if p["name"] == "cursor"]
    first = _get(client, "/api/v1/proposals", token).get_json()
    assert [p["id"] for p in first["items"]] == [pair["proposal"].id]
    assert re.fullmatch(pattern, first["next_cursor"]), "cursors given out have that form"

    def ids(**params: Any) -> list[int]:
        page = _get(client, "/api/v1/proposals", token, **params)
        assert page.status_code == 200, page.get_data(as_text=True)
        return [p["id"] for p in page.get_json()["items"]]

    # Any text of that form is a position in the change order: the start, or past the end.
    assert ids(cursor="0.0") == [pair["proposal"].id]
    assert ids(cursor="99999999999999999.9999999999") == []
    assert ids(cursor=first["next_cursor"]) == []
    # Cursors given out before (base64 JSON) still continue where they were.
    assert ids(cursor=_cursor("2000-01-01T00:00:00+00:00", 0)) == [pair["proposal"].id]
    assert ids(cursor=_cursor(first["items"][0]["updated_at"], pair["proposal"].id)) == []
    # Valid times outside years 1-9999 once in UTC: everything since the start, nothing since
    # the end of time.
    assert ids(updated_since="0001-01-01T00:00:00+05:00") == [pair["proposal"].id]
    assert ids(updated_since="9999-12-31T23:59:59-05:00") == []
    assert ids(updated_since="2000-01-01t00:00:00z") == [pair["proposal"].id]


def test_a_token_over_its_rate_limit_gets_429_with_retry_after(
    app: Flask, encoder: Encoder, session: Session
) -> None:
    limited = create_app({**app.config, "TANDEM_API_RATE_LIMIT": "3 per minute"})
    limited.extensions["tandem.encoder"] = encoder
    client = limited.test_client()
    token, other = _token(session, "offers"), _token(session, "offers", name="Other")
    for _ in range(3):
        assert _get(client, "/api/v1/offers", token).status_code == 200
    response = _get(client, "/api/v1/offers", token)
    _problem(response, 429, "rate-limited")
    assert int(response.headers["Retry-After"]) > 0
    assert _get(client, "/api/v1/offers", other).status_code == 200, "limits are per token"
    limited.extensions["tandem.engine"].dispose()


def test_the_openapi_document_describes_every_endpoint_with_examples(
    api_app: Flask, client: FlaskClient
) -> None:
    spec = client.get("/api/v1/openapi.json").get_json()
    assert spec["openapi"].startswith("3.1")
    names = [
        "proposals",
        "offers",
        "organisations",
        "matches",
        "allocation-rounds",
        "collaborations",
    ]
    assert sorted(spec["paths"]) == sorted(
        [f"/api/v1/{n}" for n in names]
        + [f"/api/v1/{n}/{{record_id}}" for n in names]
        + ["/api/v1/export.ndjson", "/api/v1/webhooks", "/api/v1/webhooks/{webhook_id}"]
        + ["/api/v1/programme"]
    )
    listing = spec["paths"]["/api/v1/proposals"]["get"]
    assert {p["name"] for p in listing["parameters"]} == {"cursor", "updated_since", "limit"}
    assert {"200", "401", "403", "429"} <= set(listing["responses"])
    assert listing["security"] == [{"bearer": []}]
    problem = {"schema": {"$ref": "#/components/schemas/Problem"}}
    assert listing["responses"]["401"]["content"] == {"application/problem+json": problem}
    assert spec["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    assert "examples" in str(spec["components"]["schemas"]["ProposalOut"])
    page = client.get("/api/").get_data(as_text=True)
    assert "/api/v1/openapi.json" in page and "next_cursor" in page


def test_administrators_create_and_revoke_tokens_and_no_one_else_can(
    api_app: Flask,
    client: FlaskClient,
    session: Session,
    auth: AuthActions,
    make_admin: Callable[..., Any],
    make_user: Callable[..., Any],
) -> None:
    academic = make_user()
    auth.login(academic.email)
    assert client.get("/admin/partners").status_code in (302, 403)
    refused = client.post("/admin/partners", data={"name": "Sneaky", "scopes": ["offers"]})
    assert refused.status_code in (302, 403)
    auth.logout()
    assert session.exec(select(PartnerToken)).all() == []

    admin = make_admin()
    auth.login(admin.email)
    bad = client.post("/admin/partners", data={"name": "", "scopes": ["offers"]})
    assert bad.status_code == 422 and "Give the partner" in bad.get_data(as_text=True)
    response = client.post(
        "/admin/partners", data={"name": "Northern Research Council", "scopes": ["offers"]}
    )
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    (stored,) = session.exec(select(PartnerToken)).all()
    secret = page.split('<code class="token">')[1].split("</code>")[0]
    assert secret.startswith("tdm_") and stored.token_hash == partners.hash_token(secret)
    assert stored.scopes == ["offers"] and stored.created_by_id == admin.id
    assert secret not in client.get("/admin/partners").get_data(as_text=True), "shown once"
    assert _get(client, "/api/v1/offers", secret).status_code == 200
    client.post(f"/admin/partners/{stored.id}/revoke")
    assert _get(client, "/api/v1/offers", secret).status_code == 401


def test_the_cli_prints_a_token_once_and_revokes_it(
    api_app: Flask, client: FlaskClient, session: Session
) -> None:
    runner = api_app.test_cli_runner()
    result = runner.invoke(args=["partners", "create-token", "Consortium X", "--scope", "offers"])
    assert result.exit_code == 0, result.output
    secret = result.stdout.strip().splitlines()[0]
    assert _get(client, "/api/v1/offers", secret).status_code == 200
    (stored,) = session.exec(select(PartnerToken)).all()
    listing = runner.invoke(args=["partners", "list-tokens"]).output
    assert "Consortium X" in listing and secret not in listing
    assert runner.invoke(args=["partners", "revoke-token", str(stored.id)]).exit_code == 0
    assert _get(client, "/api/v1/offers", secret).status_code == 401
    bad = runner.invoke(args=["partners", "create-token", "X", "--scope", "everything"])
    assert bad.exit_code != 0
    assert session.exec(select(User)).all() == []


def test_the_ndjson_export_streams_what_the_token_may_see_and_hands_over_to_sync(
    api_app: Flask,
    client: FlaskClient,
    session: Session,
    pair: dict[str, Any],
    make_proposal: Callable[..., Any],
) -> None:
    make_proposal(author_id=pair["academic"].id, status=ProposalStatus.draft)
    token = _token(session, "proposals", "offers")
    response = _get(client, "/api/v1/export.ndjson", token)
    assert response.status_code == 200 and response.mimetype == "application/x-ndjson"
    assert response.is_streamed
    lines = [json.loads(line) for line in response.get_data(as_text=True).splitlines()]
    records = [line for line in lines if "record" in line]
    assert sorted((r["resource"], r["record"]["id"]) for r in records) == sorted(
        [
            ("proposals", pair["proposal"].id),
            ("offers", pair["offer"].id),
            ("offers", pair["second"].id),
        ]
    ), "no draft, no organisations (no scope), no tombstones on a full export"
    assert set(lines[-1]["cursors"]) == {"proposals", "offers"}
    # The cursors continue with the list endpoints: nothing new, then exactly the change.
    cursor = lines[-1]["cursors"]["proposals"]
    assert _get(client, "/api/v1/proposals", token, cursor=cursor).get_json()["items"] == []
    proposal = session.get(Proposal, pair["proposal"].id)
    proposal.title = "Offline reinforcement learning for grid batteries, revised"
    session.add(proposal)
    session.commit()
    (changed,) = _get(client, "/api/v1/proposals", token, cursor=cursor).get_json()["items"]
    assert changed["title"].endswith("revised")
    since = _get(client, "/api/v1/export.ndjson", token, since=changed["updated_at"])
    assert [
        json.loads(line).get("resource") for line in since.get_data(as_text=True).splitlines()
    ] == [
        "proposals",
        None,
    ]


def test_the_export_command_writes_ndjson_and_json_with_the_same_records(
    api_app: Flask, session: Session, pair: dict[str, Any], tmp_path: Path
) -> None:
    runner = api_app.test_cli_runner()
    for fmt in ("ndjson", "json"):
        out = tmp_path / f"export.{fmt}"
        result = runner.invoke(args=["export", "--format", fmt, "--out", str(out)])
        assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in (tmp_path / "export.ndjson").read_text().splitlines()]
    document = json.loads((tmp_path / "export.json").read_text())
    from_lines: dict[str, list[int]] = {}
    for line in lines[:-1]:
        from_lines.setdefault(line["resource"], []).append(line["record"]["id"])
    from_document = {
        name: [r["id"] for r in records]
        for name, records in document.items()
        if name not in ("deleted", "cursors")
    }
    assert from_lines == from_document
    assert set(from_lines) == {"proposals", "offers", "organisations"}
    assert document["cursors"] == lines[-1]["cursors"]
    later = runner.invoke(args=["export", "--since", "2999-01-01T00:00:00Z"])
    assert [json.loads(line) for line in later.stdout.splitlines()][:-1] == []
    bad = runner.invoke(args=["export", "--since", "last week"])
    assert bad.exit_code != 0 and "ISO 8601" in bad.output


def test_an_introduced_match_leaves_the_feed_when_its_proposal_is_hidden(
    api_app: Flask,
    client: FlaskClient,
    session: Session,
    auth: AuthActions,
    pair: dict[str, Any],
    make_admin: Callable[..., Any],
) -> None:
    match = session.get(Match, pair["match"].id)
    match.status, match.introduced_at = MatchStatus.introduced, utcnow()
    session.add(match)
    session.commit()
    token = _token(session, "matches")
    first = _get(client, "/api/v1/matches", token).get_json()
    assert [m["id"] for m in first["items"]] == [match.id]
    auth.login(make_admin().email)
    client.post(f"/admin/proposals/{pair['proposal'].id}/hide", data={"reason": "spam"})
    later = _get(client, "/api/v1/matches", token, cursor=first["next_cursor"]).get_json()
    assert later["items"] == [] and [d["id"] for d in later["deleted"]] == [match.id]


def test_edge_requests_are_problems_not_server_errors(
    api_app: Flask, client: FlaskClient, session: Session
) -> None:
    token = _token(session, "offers", "webhooks")
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    nested = "[" * 100_000 + "]" * 100_000
    _problem(client.post("/api/v1/webhooks", data=nested, headers=headers), 400, "invalid-request")
    _problem(client.get("/api/v1"), 404, "not-found")
    # A valid time past the year 9999 in UTC: nothing has changed since.
    late = _get(client, "/api/v1/export.ndjson", token, since="9999-12-31T23:59:59-05:00")
    assert late.status_code == 200
    assert [json.loads(line) for line in late.text.splitlines()] == [{"cursors": {"offers": None}}]
    bad = api_app.test_cli_runner().invoke(args=["export", "--since", "9999-12-31T23:59:59-05:00"])
    assert bad.exit_code != 0 and "out of range" in bad.output


def test_invented_tokens_share_the_address_limit(
    app: Flask, encoder: Encoder, session: Session
) -> None:
    limited = create_app({**app.config, "TANDEM_API_RATE_LIMIT": "3 per minute"})
    limited.extensions["tandem.encoder"] = encoder
    client = limited.test_client()
    statuses = [
        _get(client, "/api/v1/offers", f"tdm_invented-{number}").status_code for number in range(5)
    ]
    assert statuses == [401, 401, 401, 429, 429]
    limited.extensions["tandem.engine"].dispose()
