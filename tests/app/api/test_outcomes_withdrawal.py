"""A side that withdraws from an introduced pair takes the pair out of the partner feed, and
its collaboration with it, even when the collaboration had already reached an outcome: a
partner's mirror must be told (a tombstone), not keep showing it."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlmodel import Session

from app.services import partners
from models import Match, MatchStatus
from tests.conftest import AuthActions


@pytest.fixture
def api_app(app: Flask) -> Flask:
    app.config["TANDEM_API_SETTLE_SECONDS"] = 0
    return app


def _get(client: FlaskClient, path: str, token: str, **params: Any) -> Any:
    return client.get(path, headers={"Authorization": f"Bearer {token}"}, query_string=params)


def test_withdrawing_after_the_outcome_sends_the_partner_a_tombstone(
    api_app: Flask,
    client: FlaskClient,
    session: Session,
    auth: AuthActions,
    programme: dict[str, Any],
) -> None:
    token = partners.create_token(session=session, name="Research Council", scopes=["outcomes"])
    session.commit()
    first = _get(client, "/api/v1/collaborations", token.secret).get_json()
    published = programme["published"]
    assert published.id in {item["id"] for item in first["items"]}

    auth.login("ada@nb.example.org")
    withdrawn = client.post(f"/matches/{published.match_id}/dismiss", data={"reason": "moved on"})
    assert withdrawn.status_code in (302, 303)
    session.expire_all()
    assert session.get(Match, published.match_id).status == MatchStatus.withdrawn  # type: ignore[union-attr]

    later = _get(
        client, "/api/v1/collaborations", token.secret, cursor=first["next_cursor"]
    ).get_json()
    assert later["items"] == []
    assert [gone["id"] for gone in later["deleted"]] == [published.id]
