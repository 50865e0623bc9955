"""The partner API's outcomes: collaborations of introduced public pairs and the programme
report, behind the `outcomes` scope, in the NDJSON export, gone when a pair stops being
public."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlmodel import Session

from app.services import partners
from tests.conftest import AuthActions


@pytest.fixture
def api_app(app: Flask) -> Flask:
    app.config["TANDEM_API_SETTLE_SECONDS"] = 0
    return app


def _token(session: Session, *scopes: str) -> str:
    created = partners.create_token(session=session, name="Research Council", scopes=scopes)
    session.commit()
    return created.secret


def _get(client: FlaskClient, path: str, token: str | None, **params: Any) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return client.get(path, headers=headers, query_string=params)


def test_partners_see_the_collaborations_of_public_pairs_only(
    api_app: Flask, client: FlaskClient, session: Session, programme: dict[str, Any]
) -> None:
    token = _token(session, "outcomes")
    page = _get(client, "/api/v1/collaborations", token).get_json()
    shown = {item["id"]: item for item in page["items"]}
    public = [programme[name] for name in ("published", "ended", "talking")]
    assert sorted(shown) == sorted(c.id for c in public)
    published = shown[programme["published"].id]
    energy, _, _, _ = programme["proposals"]
    assert published["stage"] == "published" and published["proposal_id"] == energy.id
    assert published["outcome_link"] == "10.1234/tandem.5678"
    assert (published["gpu_hours_granted"], published["gpu_hours_used"]) == (1000, 800)
    ended = shown[programme["ended"].id]
    assert ended["end_reason"] == "capacity" and "end_reason_text" not in ended
    assert "elsewhere" not in json.dumps(page)
    private = _get(client, f"/api/v1/collaborations/{programme['private'].id}", token)
    assert private.status_code == 404
    one = _get(client, f"/api/v1/collaborations/{programme['talking'].id}", token)
    assert one.status_code == 200 and one.get_json()["stage"] == "talking"


def test_the_programme_report_counts_public_pairs(
    api_app: Flask, client: FlaskClient, session: Session, programme: dict[str, Any]
) -> None:
    report = _get(client, "/api/v1/programme", _token(session, "outcomes")).get_json()
    funnel = {step["step"]: step["count"] for step in report["funnel"]}
    assert (funnel["suggested"], funnel["introduced"], funnel["published"]) == (6, 3, 1)
    assert (report["gpu_hours_granted"], report["gpu_hours_used"]) == (1500, 900)
    assert report["days_to_agreement_median"] == 20.0
    under = next(g for g in report["by_lab"] if g["group"] == "Under-resourced labs")
    assert (under["introduced"], under["published"]) == (2, 1)


@pytest.mark.parametrize(
    "path", ["/api/v1/collaborations", "/api/v1/collaborations/1", "/api/v1/programme"]
)
def test_wrong_scope_and_anonymous_requests_are_refused(
    api_app: Flask, client: FlaskClient, session: Session, programme: dict[str, Any], path: str
) -> None:
    anonymous = _get(client, path, None)
    assert anonymous.status_code == 401 and anonymous.mimetype == "application/problem+json"
    wrong = _get(client, path, _token(session, "matches", "proposals", "offers"))
    assert wrong.status_code == 403 and "`outcomes` scope" in wrong.get_json(force=True)["detail"]


def test_the_export_carries_collaborations_for_the_scope_only(
    api_app: Flask, client: FlaskClient, session: Session, programme: dict[str, Any]
) -> None:
    export = _get(client, "/api/v1/export.ndjson", _token(session, "outcomes"))
    lines = [json.loads(line) for line in export.text.splitlines()]
    exported = [line["record"]["id"] for line in lines if line.get("resource") == "collaborations"]
    assert sorted(exported) == sorted(programme[n].id for n in ("published", "ended", "talking"))
    assert "collaborations" in lines[-1]["cursors"]
    without = _get(client, "/api/v1/export.ndjson", _token(session, "matches")).text
    assert '"collaborations"' not in without


def test_a_collaboration_leaves_the_feed_when_its_proposal_is_hidden(
    api_app: Flask,
    client: FlaskClient,
    session: Session,
    auth: AuthActions,
    make_admin: Callable[..., Any],
    programme: dict[str, Any],
) -> None:
    token = _token(session, "outcomes")
    first = _get(client, "/api/v1/collaborations", token).get_json()
    assert programme["published"].id in {item["id"] for item in first["items"]}
    auth.login(make_admin().email)
    energy = programme["proposals"][0]
    client.post(f"/admin/proposals/{energy.id}/hide", data={"reason": "spam"})
    later = _get(client, "/api/v1/collaborations", token, cursor=first["next_cursor"]).get_json()
    assert later["items"] == []
    assert [gone["id"] for gone in later["deleted"]] == [programme["published"].id]
