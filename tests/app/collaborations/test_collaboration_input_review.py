"""What a collaboration record accepts from its form, tried with hostile and odd input: the
result link is later rendered as a link on the record, so it is a DOI or an https:// address
and nothing else; odd numbers and dates get a message at the field, never a 500."""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlmodel import Session, select

from models import Collaboration, CollaborationStage, Match
from tests.app.pages import FormPage
from tests.conftest import AuthActions

LINK = "DOI or link of the result"


def _introduced(client: FlaskClient, auth: AuthActions, session: Session, pair: dict) -> int:
    match: Match = pair["match"]
    for side in ("academic", "member"):
        auth.login(pair[side].email)
        client.post(f"/matches/{match.id}/interest")
        auth.logout()
    session.expire_all()
    record = session.exec(select(Collaboration).where(Collaboration.match_id == match.id)).one()
    return record.id  # type: ignore[return-value]


@pytest.mark.parametrize(
    "link",
    [
        "http://example.org/paper.pdf",
        "HTTP://example.org/paper.pdf",
        "javascript:alert(document.cookie)",
        "javascript://example.org/%0aalert(1)",
        "data:text/html,<script>alert(1)</script>",
        "//evil.example/paper",
        " http://arxiv.org/abs/2401.00001",
        'https://example.org/x"onmouseover="alert(1)',
        "https://example.org/<script>alert(1)</script>",
        "10.1234/x<script>alert(1)</script>",
    ],
)
def test_a_result_link_that_is_not_https_or_a_doi_is_refused_at_the_field(
    client: FlaskClient, auth: AuthActions, session: Session, pair: dict[str, Any], link: str
) -> None:
    record_id = _introduced(client, auth, session, pair)
    auth.login(pair["academic"].email)
    response = client.post(
        f"/collaborations/{record_id}", data={"stage": "published", "outcome_link": link}
    )
    assert response.status_code == 422, link
    assert "https://" in FormPage(response.data).error(LINK)
    session.expire_all()
    record = session.get(Collaboration, record_id)
    assert record is not None
    assert record.stage == CollaborationStage.introduced and record.outcome_link in (None, "")


@pytest.mark.parametrize(
    ("typed", "stored"),
    [
        ("https://arxiv.org/abs/2401.00001", "https://arxiv.org/abs/2401.00001"),
        ("10.1234/abcd.5678", "https://doi.org/10.1234/abcd.5678"),
        ("doi:10.1234/abcd.5678", "https://doi.org/10.1234/abcd.5678"),
        ("http://dx.doi.org/10.1234/abcd.5678", "https://doi.org/10.1234/abcd.5678"),
    ],
)
def test_a_doi_or_https_link_is_kept_and_shown_as_an_https_link(
    client: FlaskClient,
    auth: AuthActions,
    session: Session,
    pair: dict[str, Any],
    typed: str,
    stored: str,
) -> None:
    record_id = _introduced(client, auth, session, pair)
    auth.login(pair["academic"].email)
    response = client.post(
        f"/collaborations/{record_id}", data={"stage": "published", "outcome_link": typed}
    )
    assert response.status_code == 302
    page = client.get(f"/collaborations/{record_id}").get_data(as_text=True)
    assert f'href="{stored}"' in page


@pytest.mark.parametrize(
    ("data", "label"),
    [
        ({"stage": "started", "gpu_hours_granted": "NaN"}, "GPU hours granted"),
        ({"stage": "started", "gpu_hours_granted": "inf"}, "GPU hours granted"),
        ({"stage": "started", "gpu_hours_granted": "1e9"}, "GPU hours granted"),
        ({"stage": "started", "gpu_hours_granted": "9" * 30}, "GPU hours granted"),
        ({"stage": "started", "gpu_hours_granted": "12.5"}, "GPU hours granted"),
        (
            {"stage": "started", "gpu_hours_granted": "10", "gpu_hours_used": "-1"},
            "GPU hours used so far (optional)",
        ),
        (
            {"stage": "started", "gpu_hours_granted": "10", "gpu_hours_used": "9" * 19},
            "GPU hours used so far (optional)",
        ),
    ]
    + [
        (
            {"stage": "agreement_signed", "agreement_kind": "nda", "agreement_signed_on": d},
            "Date the agreement was signed",
        )
        for d in ("2026-02-30", "0001-01-01", "99999-01-01", "yesterday")
    ]
    + [
        ({"stage": "agreement_signed", "agreement_kind": "<b>x</b>"}, "Kind of agreement"),
        ({"stage": "ended_without_result", "end_reason": "\u202e"}, "Why it ended"),
    ],
)
def test_odd_numbers_and_dates_get_a_message_at_the_field(
    client: FlaskClient,
    auth: AuthActions,
    session: Session,
    pair: dict[str, Any],
    data: dict[str, str],
    label: str,
) -> None:
    record_id = _introduced(client, auth, session, pair)
    auth.login(pair["member"].email)
    response = client.post(f"/collaborations/{record_id}", data=data)
    assert response.status_code == 422, data
    assert FormPage(response.data).error(label), data
    session.expire_all()
    assert session.get(Collaboration, record_id).stage == CollaborationStage.introduced  # type: ignore[union-attr]


def test_a_number_too_long_for_python_gets_the_fields_own_message(
    client: FlaskClient, auth: AuthActions, session: Session, pair: dict[str, Any]
) -> None:
    record_id = _introduced(client, auth, session, pair)
    auth.login(pair["academic"].email)
    response = client.post(
        f"/collaborations/{record_id}", data={"stage": "started", "gpu_hours_granted": "9" * 5000}
    )
    assert response.status_code == 422
    message = FormPage(response.data).error("GPU hours granted")
    assert "4300" not in message and "set_int_max_str_digits" not in message, message
    assert "whole number of GPU hours" in message or "check the number" in message, message
