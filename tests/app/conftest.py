"""Fixtures shared by the portal's tests."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
from flask import Flask
from sqlmodel import Session, select

from matching import Encoder
from models import Match
from tests.app.outcomes import record_programme
from tests.scenarios import ScenarioFactory
from tests.smtp import ScriptedHandler, SmtpServer, free_port


@pytest.fixture
def make_scenario(
    session: Session,
    encoder: Encoder,
    make_organisation: Callable[..., Any],
    make_user: Callable[..., Any],
    make_proposal: Callable[..., Any],
    make_offer: Callable[..., Any],
) -> ScenarioFactory:
    """Organisations, people, proposals and offers matched by the engine (tests/scenarios.py)."""
    return ScenarioFactory(
        session, encoder, make_organisation, make_user, make_proposal, make_offer
    )


@pytest.fixture
def pair(session: Session, make_scenario: ScenarioFactory) -> dict[str, Any]:
    """An academic's proposal, a company's two offers, and the matches the engine stored."""
    built = make_scenario(
        university={"name": "Northbridge University", "email_domains": ["nb.example.org"]},
        company={"name": "Helios Compute", "email_domains": ["helios.example.com"]},
        academics=[{"email": "ada@nb.example.org", "name": "Ada Okafor"}],
        members=[
            {"email": "sam@helios.example.com", "name": "Sam Reyes"},
            {"email": "kim@helios.example.com", "name": "Kim Lee"},
        ],
        proposals=[{}],
        offers=[
            {"creator": 0},
            {
                "title": "A100 hours for reinforcement learning",
                "description": "A100 hours for offline reinforcement learning on energy "
                "systems data.",
                "gpu_type": "A100",
            },
        ],
    )
    (proposal,), (offer, second) = built.proposals, built.offers
    match = session.exec(
        select(Match).where(Match.proposal_id == proposal.id, Match.offer_id == offer.id)
    ).one()
    return {
        "academic": built.academics[0],
        "member": built.members[0],
        "colleague": built.members[1],
        "proposal": proposal,
        "offer": offer,
        "second": second,
        "match": match,
    }


@pytest.fixture
def programme(
    session: Session,
    make_user: Callable[..., Any],
    make_proposal: Callable[..., Any],
    make_offer: Callable[..., Any],
) -> dict[str, Any]:
    """A small programme history (tests/app/outcomes.py) for the reporting tests."""
    return record_programme(session, make_user, make_proposal, make_offer)


@pytest.fixture
def smtp(app: Flask) -> Iterator[SmtpServer]:
    """A real SMTP server on 127.0.0.1 that the app sends to."""
    server = SmtpServer(port=free_port(), handler=ScriptedHandler())
    app.config.update(MAIL_SERVER="127.0.0.1", MAIL_PORT=server.port)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def page_namespace() -> Iterator[str]:
    """A namespace of this test's own for pages kept in the Redis at REDIS_URL, emptied after
    the test (marked `needs_redis`). A Redis that does not answer fails it."""
    url = os.environ.get("REDIS_URL")
    if not url:
        pytest.fail("a test using page_namespace is marked needs_redis")
    client = redis.Redis.from_url(url)
    try:
        client.ping()
    except redis.RedisError as exc:
        pytest.fail(f"REDIS_URL is set but Redis does not answer: {exc}")
    namespace = f"tandem:test-page:{uuid.uuid4().hex}"
    try:
        yield namespace
    finally:
        keys = list(client.scan_iter(f"{namespace}:*"))
        if keys:
            client.delete(*keys)
        client.close()
