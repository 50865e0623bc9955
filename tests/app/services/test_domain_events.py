"""Domain events: a service records what happened in its own transaction, and the delivery
layer announces it (mails, partner webhooks) after the commit, whatever entry point called
the service. Here the services are called with a plain session, as a CLI command or a job
would, and nothing but `notify.deliver()` runs afterwards."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from flask import Flask
from sqlmodel import Session, select

from app import notify
from app.services import matches, partners, round_publishing, webhooks
from app.services.rematching import DeferredRematch
from models import (
    DomainEvent,
    Match,
    MatchEvent,
    Notification,
    Offer,
    Webhook,
    WebhookDelivery,
)
from tests.scenarios import ScenarioFactory
from tests.smtp import free_port

BASE_URL = "http://127.0.0.1:5000"


def _webhook(session: Session, events: list[str], *scopes: str) -> Webhook:
    """A partner's webhook on a closed local port: its deliveries are written, and fail to
    send (retried later), which is all these tests look at."""
    token = partners.create_token(session=session, name="Funder", scopes=["webhooks", *scopes])
    hook = webhooks.register(
        session=session,
        token=token.token,
        url=f"http://127.0.0.1:{free_port()}/hooks",
        events=events,
        allow_private=True,
    )
    session.commit()
    return hook


def _deliver(app: Flask) -> notify.DeliveryReport:
    with app.app_context():
        return notify.deliver()


def _mails(session: Session, kind: str) -> dict[str, Notification]:
    session.expire_all()
    rows = session.exec(select(Notification).where(Notification.kind == kind)).all()
    assert len({row.recipient_email for row in rows}) == len(rows), "one mail per person"
    return {row.recipient_email: row for row in rows}


def _deliveries(session: Session) -> list[str]:
    session.expire_all()
    return sorted(d.idempotency_key for d in session.exec(select(WebhookDelivery)))


def _written(session: Session, kind: str) -> tuple[list[int], list[str]]:
    """The ids of the mails of this kind, and the webhook deliveries' keys."""
    return sorted(m.id for m in _mails(session, kind).values()), _deliveries(session)  # type: ignore[misc]


def _introduce(session: Session, pair: dict[str, Any]) -> Match:
    """Both sides say they are interested, through the service alone."""
    match = pair["match"]
    for user in (pair["academic"], pair["member"]):
        outcome = matches.express_interest(
            session=session, match_id=match.id, user_id=user.id, rematch=DeferredRematch()
        )
    assert outcome.introduced
    session.commit()
    return match


@pytest.fixture
def world(make_scenario: ScenarioFactory) -> dict[str, Any]:
    """A draft allocation round giving an academic's proposal to a company's offer; the
    company has two members."""
    built = make_scenario(
        company={"name": "Nimbus Labs", "email_domains": ["nimbus.example.com"]},
        academics=[{"name": "Alice Academic", "email": "alice@uni-a.example.org"}],
        members=[
            {"name": "Carl", "email": "carl@nimbus.example.com"},
            {"name": "Cora", "email": "cora@nimbus.example.com"},
        ],
        proposals=[
            {
                "title": "Offline reinforcement learning for grid batteries",
                "research_areas": ["reinforcement learning"],
            }
        ],
        offers=[
            {
                "title": "H100 hours for reinforcement learning research",
                "description": "GPU hours for reinforcement learning on energy systems and "
                "batteries.",
            }
        ],
        draft_round=True,
    )
    assert built.round is not None
    return {
        "academic": built.academics[0],
        "members": built.members,
        "offer": built.offers[0],
        "proposal": built.proposals[0],
        "round_id": built.round.id,
    }


def test_an_introduction_by_the_service_alone_is_mailed_and_sent_to_partners(
    app: Flask, session: Session, pair: dict[str, Any]
) -> None:
    introductions = _webhook(session, ["match.introduced"], "matches")
    both = _webhook(session, ["match.introduced", "round.published"], "matches", "allocations")
    _webhook(session, ["round.published"], "allocations")
    match = pair["match"]

    matches.express_interest(
        session=session, match_id=match.id, user_id=pair["academic"].id, rematch=DeferredRematch()
    )
    session.commit()
    told = session.exec(select(MatchEvent).where(MatchEvent.kind == "interest")).all()
    assert sorted(e.user_id for e in told) == sorted([pair["member"].id, pair["colleague"].id]), (
        "the company hears of the researcher's interest"
    )

    _introduce(session, pair)
    offer = session.get(Offer, match.offer_id)
    assert offer is not None and offer.rematch_requested_at is not None, "the offer is re-ranked"
    assert _mails(session, "introduction") == {} and _deliveries(session) == []

    report = _deliver(app)

    assert report.announced == 1
    mails = _mails(session, "introduction")
    assert sorted(mails) == sorted(
        [pair["academic"].email, pair["member"].email, pair["colleague"].email]
    )
    to_academic = mails[pair["academic"].email]
    assert to_academic.idempotency_key == (
        f"introduction:proposal-{match.proposal_id}:offer-{match.offer_id}:{pair['academic'].email}"
    )
    assert to_academic.subject == f"Introduction: {pair['proposal'].title} × {pair['offer'].title}"
    assert "Sam Reyes <sam@helios.example.com>" in to_academic.text_body
    assert f"{BASE_URL}/dashboard" in to_academic.text_body
    assert "Ada Okafor <ada@nb.example.org>" in mails[pair["member"].email].text_body
    assert _deliveries(session) == [
        f"match.introduced:match-{match.id}:webhook-{hook.id}" for hook in (introductions, both)
    ]
    (event,) = session.exec(select(DomainEvent)).all()
    assert event.key == f"match.introduced:match-{match.id}" and event.handled_at is not None

    before = _written(session, "introduction")
    assert _deliver(app).announced == 0, "running delivery again announces nothing"
    assert _written(session, "introduction") == before


def test_a_round_published_by_the_service_alone_is_mailed_and_sent_to_partners(
    app: Flask, session: Session, world: dict[str, Any]
) -> None:
    rounds = _webhook(session, ["round.published"], "allocations")
    _webhook(session, ["match.introduced"], "matches")
    round_id = world["round_id"]

    published = round_publishing.publish_round(session=session, round_id=round_id)
    session.commit()
    assert published.created + published.linked == 1
    assert _mails(session, "round_published") == {} and _deliveries(session) == []

    report = _deliver(app)

    assert report.announced == 1
    academic, (carl, cora) = world["academic"], world["members"]
    mails = _mails(session, "round_published")
    assert sorted(mails) == sorted([academic.email, carl.email, cora.email])
    assert {m.idempotency_key for m in mails.values()} == {
        f"round:{round_id}:{email}" for email in mails
    }
    offer, proposal = world["offer"], world["proposal"]
    to_academic = mails[academic.email]
    assert to_academic.subject == "Your proposal was allocated an offer on Tandem"
    assert f"{BASE_URL}/offers/{offer.id}" in to_academic.text_body
    assert f'href="{BASE_URL}/offers/{offer.id}"' in to_academic.html_body
    to_company = mails[cora.email]
    assert to_company.subject == round_publishing.round_subject(round_id, 1)
    assert f"{BASE_URL}/proposals/{proposal.id}" in to_company.text_body
    assert f"{BASE_URL}/dashboard" in to_company.text_body
    assert academic.name not in to_company.text_body, "the researcher stays anonymous"
    assert _deliveries(session) == [f"round.published:round-{round_id}:webhook-{rounds.id}"]

    before = _written(session, "round_published")
    assert _deliver(app).announced == 0, "running delivery again announces nothing"
    assert _written(session, "round_published") == before


def test_two_deliveries_at_once_announce_each_event_once(
    app: Flask, session: Session, pair: dict[str, Any]
) -> None:
    """Two workers run delivery at the same moment (the queue after two commits): each
    event is announced by one of them, and each mail and webhook delivery is written once."""
    hook = _webhook(session, ["match.introduced"], "matches")
    match = _introduce(session, pair)
    start = threading.Barrier(2)

    def run(_: int) -> int:
        start.wait()
        return _deliver(app).announced

    with ThreadPoolExecutor(max_workers=2) as pool:
        announced = list(pool.map(run, range(2)))

    assert sorted(announced) == [0, 1]
    assert sorted(_mails(session, "introduction")) == sorted(
        [pair["academic"].email, pair["member"].email, pair["colleague"].email]
    )
    assert _deliveries(session) == [f"match.introduced:match-{match.id}:webhook-{hook.id}"]


def test_an_event_that_cannot_be_announced_stays_pending_for_the_next_run(
    app: Flask, session: Session, world: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    """Announcing fails (here the site's address is missing, so no link can be written):
    nothing of the event is written, the run goes on, and the next run announces it."""
    round_publishing.publish_round(session=session, round_id=world["round_id"])
    session.commit()
    app.config["TANDEM_BASE_URL"] = None

    assert _deliver(app).announced == 0
    assert "Could not announce event round.published" in caplog.text
    assert _mails(session, "round_published") == {}
    (event,) = session.exec(select(DomainEvent)).all()
    assert event.handled_at is None

    app.config["TANDEM_BASE_URL"] = BASE_URL
    assert _deliver(app).announced == 1
    assert len(_mails(session, "round_published")) == 3
