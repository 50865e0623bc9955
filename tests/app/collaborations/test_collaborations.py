"""Collaboration records: created with the introduction, seen by the two sides and
administrators only, moved forward by either side with checked details, each change kept and
told to the other side as their mail preference says."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlmodel import Session, col, select

from app.services import collaborations
from app.services.errors import Conflict, InvalidInput, NotFound
from models import (
    Collaboration,
    CollaborationEvent,
    CollaborationStage,
    DeclineReason,
    Match,
    MatchStatus,
    Notification,
    NotificationPreference,
    Role,
    User,
)
from tests.app.pages import FormPage, text_of
from tests.conftest import AuthActions


def _mails(app: Flask) -> list[Any]:
    folder = Path(app.config["TANDEM_MAIL_DIR"])
    if not folder.exists():
        return []
    return [
        message_from_bytes(path.read_bytes(), policy=policy.default)
        for path in sorted(folder.glob("*.eml"))
    ]


def _collaboration_mails(app: Flask) -> list[tuple[str, str, str]]:
    """(recipient, subject, plain body) of every mail about a collaboration (introductions,
    which point to the record that starts, are not)."""
    found = []
    for mail in _mails(app):
        body = mail.get_body(("plain",)).get_content()
        if str(mail["Subject"]).startswith("Introduction:"):
            continue
        if "collaboration" in str(mail["Subject"]).lower() or "/collaborations/" in body:
            found.append((mail["To"].addresses[0].addr_spec, str(mail["Subject"]), body))
    return found


def _introduce(client: FlaskClient, auth: AuthActions, pair: dict[str, Any]) -> None:
    match = pair["match"]
    auth.login(pair["academic"].email)
    client.post(f"/matches/{match.id}/interest")
    auth.logout()
    auth.login(pair["member"].email)
    client.post(f"/matches/{match.id}/interest")
    auth.logout()


def _record(session: Session, match: Match) -> Collaboration:
    session.expire_all()
    found = session.exec(select(Collaboration).where(Collaboration.match_id == match.id)).one()
    return found


def _events(session: Session, collaboration: Collaboration) -> list[CollaborationEvent]:
    return list(
        session.exec(
            select(CollaborationEvent)
            .where(CollaborationEvent.collaboration_id == collaboration.id)
            .order_by(col(CollaborationEvent.id))
        )
    )


def test_the_introduction_starts_the_record_seen_by_both_sides_and_admins_only(
    client: FlaskClient,
    auth: AuthActions,
    session: Session,
    pair: dict[str, Any],
    make_user: Any,
    make_admin: Any,
    make_organisation: Any,
) -> None:
    match = pair["match"]
    auth.login(pair["academic"].email)
    client.post(f"/matches/{match.id}/interest")
    assert session.exec(select(Collaboration)).all() == []  # interest alone starts nothing
    auth.logout()
    auth.login(pair["member"].email)
    client.post(f"/matches/{match.id}/interest")
    record = _record(session, match)
    assert record.stage == CollaborationStage.introduced
    (first,) = _events(session, record)
    assert (first.from_stage, first.to_stage, first.actor_id) == (
        None,
        "introduced",
        pair["member"].id,
    )
    # The match card leads to the record.
    page = client.get(f"/collaborations/match/{match.id}")
    assert page.status_code == 302 and page.headers["Location"] == f"/collaborations/{record.id}"
    auth.logout()

    stranger = make_user(email="eve@elsewhere.example.org", name="Eve Other")
    rival = make_user(
        email="rik@rival.example.com",
        name="Rik Rival",
        role=Role.company,
        organisation_id=make_organisation(name="Rival Labs").id,
    )
    admin = make_admin(email="root@example.org", name="Root Admin")
    for user, seen in [
        (pair["academic"], True),
        (pair["member"], True),
        (pair["colleague"], True),
        (admin, True),
        (stranger, False),
        (rival, False),
    ]:
        auth.login(user.email)
        response = client.get(f"/collaborations/{record.id}")
        listing = text_of(client.get("/collaborations/").data)
        assert response.status_code == (200 if seen else 404), user.email
        assert (pair["proposal"].title in listing) is seen, user.email
        if not seen:
            assert client.get(f"/collaborations/match/{match.id}").status_code == 404
            moved = client.post(f"/collaborations/{record.id}", data={"stage": "talking"})
            assert moved.status_code == 404
        auth.logout()
    assert _record(session, match).stage == CollaborationStage.introduced
    assert len(_events(session, record)) == 1
    assert client.get(f"/collaborations/{record.id}").status_code == 302  # signed out: sign in


def test_either_side_moves_it_forward_and_the_other_side_is_mailed_once_each(
    app: Flask, client: FlaskClient, auth: AuthActions, session: Session, pair: dict[str, Any]
) -> None:
    _introduce(client, auth, pair)
    record = _record(session, pair["match"])
    before = len(_mails(app))

    auth.login(pair["academic"].email)
    page = FormPage(client.get(f"/collaborations/{record.id}").data)
    assert "Kind of agreement" in page.legends  # the form is there, labelled
    assert page.control("GPU hours granted")["tag"] == "input"
    assert client.post(f"/collaborations/{record.id}", data={"stage": "talking"}).status_code == 302
    auth.logout()

    auth.login(pair["member"].email)
    response = client.post(
        f"/collaborations/{record.id}",
        data={
            "stage": "agreement_signed",
            "agreement_kind": "data_use",
            "agreement_signed_on": "2026-01-15",
        },
    )
    assert response.status_code == 302
    client.post(
        f"/collaborations/{record.id}", data={"stage": "started", "gpu_hours_granted": "2,000"}
    )
    auth.logout()

    auth.login(pair["academic"].email)
    client.post(
        f"/collaborations/{record.id}",
        data={"stage": "published", "outcome_link": "doi:10.5555/Tandem.2026.7"},
    )
    record = _record(session, pair["match"])
    assert record.stage == CollaborationStage.published
    assert record.agreement_signed_on == date(2026, 1, 15)
    assert record.gpu_hours_granted == 2000
    assert record.outcome_link == "https://doi.org/10.5555/Tandem.2026.7"
    steps = [(e.from_stage, e.to_stage, e.actor_id) for e in _events(session, record)]
    assert steps[1:] == [
        ("introduced", "talking", pair["academic"].id),
        ("talking", "agreement_signed", pair["member"].id),
        ("agreement_signed", "started", pair["member"].id),
        ("started", "published", pair["academic"].id),
    ]
    history = text_of(client.get(f"/collaborations/{record.id}").data)
    assert "Data-use agreement, signed 2026-01-15" in history
    assert "2,000 GPU hours granted" in history and "(by Sam Reyes)" in history

    mails = _collaboration_mails(app)
    assert len(_mails(app)) - before == len(mails)
    recipients = sorted((to, subject.split(": ")[-1]) for to, subject, _ in mails)
    # The academic's two moves reach both company members; the company's two reach the academic.
    assert recipients == sorted(
        [
            ("kim@helios.example.com", "Talking"),
            ("sam@helios.example.com", "Talking"),
            ("ada@nb.example.org", "Agreement signed"),
            ("ada@nb.example.org", "Started"),
            ("kim@helios.example.com", "Published"),
            ("sam@helios.example.com", "Published"),
        ]
    )
    published = next(body for to, subject, body in mails if subject.endswith("Published"))
    assert "https://doi.org/10.5555/Tandem.2026.7" in published
    assert f"/collaborations/{record.id}" in published


def test_bad_input_is_kept_with_messages_at_the_fields_and_nothing_written(
    app: Flask, client: FlaskClient, auth: AuthActions, session: Session, pair: dict[str, Any]
) -> None:
    _introduce(client, auth, pair)
    record = _record(session, pair["match"])
    mails = len(_mails(app))
    auth.login(pair["academic"].email)
    url = f"/collaborations/{record.id}"
    tomorrow_plus = (datetime.now(UTC) + timedelta(days=3)).date().isoformat()
    cases = [
        ({"stage": "agreement_signed"}, "Kind of agreement", "kind of agreement"),
        (
            {"stage": "agreement_signed", "agreement_kind": "nda"},
            "Date the agreement was signed",
            "date it was signed",
        ),
        (
            {
                "stage": "agreement_signed",
                "agreement_kind": "nda",
                "agreement_signed_on": tomorrow_plus,
            },
            "Date the agreement was signed",
            "in the future",
        ),
        ({"stage": "started"}, "GPU hours granted", "GPU hours granted"),
        ({"stage": "started", "gpu_hours_granted": "-5"}, "GPU hours granted", "0 or more"),
        ({"stage": "started", "gpu_hours_granted": "lots"}, "GPU hours granted", "whole number"),
        (
            {"stage": "started", "gpu_hours_granted": str(pair["offer"].gpu_hours_budget + 1)},
            "GPU hours granted",
            "check the number",
        ),
        (
            {"stage": "published", "outcome_link": "see our paper"},
            "DOI or link of the result",
            "neither a DOI",
        ),
        (
            {"stage": "published", "outcome_link": "ftp://x.example.org/p"},
            "DOI or link of the result",
            "neither a DOI",
        ),
        ({"stage": "ended_without_result"}, "Why it ended", "why it ended"),
        (
            {"stage": "ended_without_result", "end_reason": "other"},
            "More about why (optional)",
            "few words",
        ),
        (
            {
                "stage": "ended_without_result",
                "end_reason": "timing",
                "end_reason_text": "x" * 1001,
            },
            "More about why (optional)",
            "under 1,000",
        ),
        ({"stage": "sideways"}, "Where is it now?", "choose the stage"),
    ]
    for data, label, message in cases:
        response = client.post(url, data=data)
        assert response.status_code == 422, data
        page = FormPage(response.data)
        assert message in page.error(label), (data, page.error(label))
        for name, value in data.items():
            if name in ("gpu_hours_granted", "outcome_link", "agreement_signed_on"):
                assert f'value="{value}"' in response.data.decode(), name  # kept as typed
    record = _record(session, pair["match"])
    assert record.stage == CollaborationStage.introduced
    assert record.agreement_kind is None and record.gpu_hours_granted is None
    assert len(_events(session, record)) == 1
    assert len(_mails(app)) == mails

    # Forward only: from "started" there is no way back to "talking".
    client.post(url, data={"stage": "started", "gpu_hours_granted": "10"})
    response = client.post(url, data={"stage": "talking"})
    assert response.status_code == 422
    assert "it can move on to: Completed, Published" in FormPage(response.data).error(
        "Where is it now?"
    )
    assert _record(session, pair["match"]).stage == CollaborationStage.started


def test_ending_asks_the_reason_and_an_outcome_is_final(
    client: FlaskClient, auth: AuthActions, session: Session, pair: dict[str, Any]
) -> None:
    _introduce(client, auth, pair)
    record = _record(session, pair["match"])
    auth.login(pair["member"].email)
    response = client.post(
        f"/collaborations/{record.id}",
        data={
            "stage": "ended_without_result",
            "end_reason": "capacity",
            "end_reason_text": "Our cluster was booked",
        },
    )
    assert response.status_code == 302
    record = _record(session, pair["match"])
    assert (record.end_reason, record.end_reason_text) == (
        DeclineReason.capacity,
        "Our cluster was booked",
    )
    page = client.get(f"/collaborations/{record.id}")
    assert "Move it on" not in text_of(page.data)
    again = client.post(
        f"/collaborations/{record.id}", data={"stage": "published", "outcome_link": "10.1/x"}
    )
    assert again.status_code == 422
    assert "reached its outcome" in text_of(again.data)
    assert len(_events(session, record)) == 2


def test_admins_read_but_do_not_move(
    client: FlaskClient,
    auth: AuthActions,
    session: Session,
    pair: dict[str, Any],
    make_admin: Any,
) -> None:
    _introduce(client, auth, pair)
    record = _record(session, pair["match"])
    admin = make_admin(email="root@example.org")
    auth.login(admin.email)
    page = text_of(client.get(f"/collaborations/{record.id}").data)
    assert "only the two sides move it on" in page and "Move it on" not in page
    response = client.post(f"/collaborations/{record.id}", data={"stage": "talking"})
    assert response.status_code == 422
    assert _record(session, pair["match"]).stage == CollaborationStage.introduced


@pytest.mark.parametrize("preference", ["daily", "weekly", "off"])
def test_the_other_side_hears_as_their_preference_says(
    app: Flask,
    client: FlaskClient,
    auth: AuthActions,
    session: Session,
    pair: dict[str, Any],
    preference: str,
) -> None:
    from app import notify

    _introduce(client, auth, pair)
    ada = session.get(User, pair["academic"].id)
    ada.notification_preference = NotificationPreference(preference)
    session.add(ada)
    session.commit()
    record = _record(session, pair["match"])
    auth.login(pair["member"].email)
    client.post(f"/collaborations/{record.id}", data={"stage": "talking"})
    assert [m for m in _collaboration_mails(app) if m[0] == "ada@nb.example.org"] == []
    with app.app_context():
        # The digest of the period that includes the change, written once however often
        # the dispatcher runs.
        notify.dispatch(now=datetime.now(UTC) + timedelta(days=8))
        notify.dispatch(now=datetime.now(UTC) + timedelta(days=9))
    session.expire_all()
    to_ada = session.exec(
        select(Notification).where(
            Notification.user_id == pair["academic"].id, Notification.kind == "digest"
        )
    ).all()
    if preference == "off":
        assert to_ada == []
    else:
        (digest,) = to_ada
        assert digest.subject.startswith(f"Your {preference} Tandem digest")
        assert digest.subject.endswith("1 collaboration update")
        assert "moved your collaboration" in digest.text_body and "Talking" in digest.text_body


def test_reminders_a_digest_per_person_once_per_interval_with_an_opt_out(
    app: Flask,
    client: FlaskClient,
    auth: AuthActions,
    session: Session,
    pair: dict[str, Any],
    runner: Any,
) -> None:
    _introduce(client, auth, pair)
    record = _record(session, pair["match"])
    # Nothing stale yet.
    result = runner.invoke(args=["collaborations", "remind", "--days", "7"])
    assert result.exit_code == 0 and "0 written" in result.output
    record.stage_changed_at = datetime.now(UTC) - timedelta(days=10)
    session.add(record)
    session.commit()

    # Kim turns reminders off on the account page.
    auth.login(pair["colleague"].email)
    account = FormPage(client.get("/account").data)
    assert account.checked("Remind me of collaborations that have not moved")
    client.post("/account", data={"notification_preference": "instant", "min_fit": "30"})
    assert not session.get(
        User, pair["colleague"].id, populate_existing=True
    ).collaboration_reminders
    auth.logout()

    result = runner.invoke(args=["collaborations", "remind", "--days", "7"])
    assert result.exit_code == 0 and "2 written" in result.output, result.output
    again = runner.invoke(args=["collaborations", "remind", "--days", "7"])
    assert "0 written" in again.output
    reminders = [m for m in _mails(app) if "waiting for an update" in str(m["Subject"])]
    assert sorted(m["To"].addresses[0].addr_spec for m in reminders) == [
        "ada@nb.example.org",
        "sam@helios.example.com",
    ]
    body = reminders[0].get_body(("plain",)).get_content()
    assert "Introduced for 10 days" in body and f"/collaborations/{record.id}" in body
    # The next interval brings the next one.
    now = collaborations.due_reminders(session=session, days=7)
    later = collaborations.due_reminders(
        session=session, days=7, now=datetime.now(UTC) + timedelta(days=7)
    )
    assert {r.user.email for r in later} == {"ada@nb.example.org", "sam@helios.example.com"}
    assert not {r.key for r in now} & {r.key for r in later}


def test_dismissal_keeps_a_reason_from_the_short_list(
    client: FlaskClient, auth: AuthActions, session: Session, pair: dict[str, Any]
) -> None:
    match = pair["match"]
    auth.login(pair["academic"].email)
    page = FormPage(client.get("/proposals/mine").data)
    assert page.control("Why it is not a fit")["tag"] == "select"
    client.post(f"/matches/{match.id}/dismiss", data={"reason_code": "unknown", "reason": "x"})
    session.expire_all()
    assert session.get(Match, match.id).status == MatchStatus.suggested  # refused, unchanged
    client.post(
        f"/matches/{match.id}/dismiss", data={"reason_code": "terms", "reason": "No NDA for us"}
    )
    session.expire_all()
    dismissed = session.get(Match, match.id)
    assert (dismissed.status, dismissed.decline_reason_code, dismissed.decline_reason) == (
        MatchStatus.declined,
        DeclineReason.terms,
        "No NDA for us",
    )
    client.post(f"/matches/{match.id}/restore")
    session.expire_all()
    assert session.get(Match, match.id).decline_reason_code is None


def test_withdrawing_after_the_introduction_ends_the_record_with_the_reason(
    client: FlaskClient, auth: AuthActions, session: Session, pair: dict[str, Any]
) -> None:
    _introduce(client, auth, pair)
    auth.login(pair["academic"].email)
    client.post(f"/matches/{pair['match'].id}/dismiss", data={"reason_code": "timing"})
    record = _record(session, pair["match"])
    assert (record.stage, record.end_reason) == (
        CollaborationStage.ended_without_result,
        DeclineReason.timing,
    )


def test_service_refuses_strangers_and_bad_values_without_writing(
    session: Session, pair: dict[str, Any], make_user: Any, app: Flask
) -> None:
    from app.services import matches

    class NoRematch:
        def offer(self, *_: Any) -> None:
            return None

        def proposal(self, *_: Any) -> None:
            return None

    for user in (pair["academic"], pair["member"]):
        matches.express_interest(
            session=session, match_id=pair["match"].id, user_id=user.id, rematch=NoRematch()
        )
    session.commit()
    record = _record(session, pair["match"])
    stranger = make_user()
    with pytest.raises(NotFound):
        collaborations.advance(
            session=session,
            collaboration_id=record.id,
            user_id=stranger.id,
            change=collaborations.Change(stage="talking"),
        )
    with pytest.raises(InvalidInput) as refused:
        collaborations.advance(
            session=session,
            collaboration_id=record.id,
            user_id=pair["academic"].id,
            change=collaborations.Change(
                stage="agreement_signed", agreement_kind="nda", gpu_hours_granted=-1
            ),
        )
    assert set(refused.value.field_errors) == {"agreement_signed_on", "gpu_hours_granted"}
    session.rollback()
    assert _record(session, pair["match"]).stage == CollaborationStage.introduced
    assert collaborations.next_stages(CollaborationStage.completed) == (
        CollaborationStage.published,
    )
    assert collaborations.next_stages(CollaborationStage.published) == ()


def test_the_demo_shows_collaborations_at_every_stage(
    client: FlaskClient, auth: AuthActions, session: Session, demo_loaded: str, runner: Any
) -> None:
    assert "Collaborations: 7 introduced pairs, at every stage." in demo_loaded
    records = session.exec(select(Collaboration)).all()
    assert {r.stage for r in records} == set(CollaborationStage)
    published = next(r for r in records if r.stage == CollaborationStage.published)
    assert published.outcome_link == "https://doi.org/10.5555/tandem-demo.2026.001"
    ended = next(r for r in records if r.stage == CollaborationStage.ended_without_result)
    assert ended.end_reason == DeclineReason.terms and ended.end_reason_text
    for record in records:
        match = session.get(Match, record.match_id)
        assert match.status == MatchStatus.introduced
        steps = session.exec(
            select(CollaborationEvent).where(CollaborationEvent.collaboration_id == record.id)
        ).all()
        assert steps[-1].to_stage == record.stage.value
    # Loading again adds nothing; and the demo's history mailed nobody.
    again = runner.invoke(args=["demo", "load"])
    assert "Collaborations:" not in again.output
    assert len(session.exec(select(Collaboration)).all()) == 7
    assert session.exec(select(Notification)).all() == []
    # The demo logins printed at start-up see records of their own.
    from app.services import demo

    for role, email, _ in demo.demo_logins(demo.read_demo_data()):
        if role == "admin":
            continue  # sees every record (tested above); signs in with a second factor
        user = session.exec(select(User).where(User.email == email)).one()
        mine = collaborations.visible(session=session, user_id=user.id).items
        assert mine, role
        auth.login(email, demo.DEMO_PASSWORD)
        page = text_of(client.get("/collaborations/").data)
        assert all(v.proposal.title in page for v in mine), role
        auth.logout()


def test_two_sides_moving_at_once_the_second_is_told_not_applied(
    app: Flask, session: Session, pair: dict[str, Any], client: FlaskClient, auth: AuthActions
) -> None:
    _introduce(client, auth, pair)
    record = _record(session, pair["match"])
    engine = app.extensions["tandem.engine"]
    with Session(engine) as academic_side:
        # The academic's request has read the record (at "introduced") ...
        seen = academic_side.get(Collaboration, record.id)
        assert seen.stage == CollaborationStage.introduced
        # ... when the company's request moves it on and commits.
        with Session(engine) as company_side:
            collaborations.advance(
                session=company_side,
                collaboration_id=record.id,
                user_id=pair["member"].id,
                change=collaborations.Change(stage="ended_without_result", end_reason="capacity"),
            )
            company_side.commit()
        with pytest.raises(Conflict, match="moved this collaboration on a moment ago"):
            collaborations.advance(
                session=academic_side,
                collaboration_id=record.id,
                user_id=pair["academic"].id,
                change=collaborations.Change(stage="talking"),
            )
        academic_side.rollback()
    final = _record(session, pair["match"])
    assert final.stage == CollaborationStage.ended_without_result
    assert [e.to_stage for e in _events(session, final)] == ["introduced", "ended_without_result"]


def test_the_queue_sends_due_reminders_every_hour(
    app: Flask, client: FlaskClient, auth: AuthActions, session: Session, pair: dict[str, Any]
) -> None:
    _introduce(client, auth, pair)
    record = _record(session, pair["match"])
    record.stage_changed_at = datetime.now(UTC) - timedelta(days=30)
    session.add(record)
    session.commit()
    huey = app.extensions["tandem.queue"].huey
    (task,) = [t for t in huey._registry.periodic_tasks if t.name.endswith("reminders")]
    assert task.validate_datetime(datetime(2026, 12, 3, 10, 7))
    assert not task.validate_datetime(datetime(2026, 12, 3, 10, 8))
    assert task.execute() == 3  # Ada, Sam and Kim: 14 days by default, 30 since it moved
    assert task.execute() == 0  # the same period: nothing new
    sent = [m for m in _mails(app) if "waiting for an update" in str(m["Subject"])]
    assert len(sent) == 3
