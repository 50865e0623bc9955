"""Fixtures shared by the portal's tests."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask
from sqlmodel import Session, select

from app.services import recommendations
from matching import Encoder
from models import Match, OrganisationKind, Role
from tests.smtp import ScriptedHandler, SmtpServer, free_port


@pytest.fixture
def pair(
    session: Session,
    encoder: Encoder,
    make_organisation: Callable[..., Any],
    make_user: Callable[..., Any],
    make_proposal: Callable[..., Any],
    make_offer: Callable[..., Any],
) -> dict[str, Any]:
    """An academic's proposal, a company's two offers, and the matches the engine stored."""
    university = make_organisation(name="Northbridge University", email_domains=["nb.example.org"])
    company = make_organisation(
        name="Helios Compute", kind=OrganisationKind.company, email_domains=["helios.example.com"]
    )
    academic = make_user(
        email="ada@nb.example.org", name="Ada Okafor", organisation_id=university.id
    )
    member = make_user(
        email="sam@helios.example.com",
        name="Sam Reyes",
        role=Role.company,
        organisation_id=company.id,
    )
    colleague = make_user(
        email="kim@helios.example.com",
        name="Kim Lee",
        role=Role.company,
        organisation_id=company.id,
    )
    proposal = make_proposal(author_id=academic.id)
    offer = make_offer(organisation_id=company.id, created_by_id=member.id)
    second = make_offer(
        organisation_id=company.id,
        title="A100 hours for reinforcement learning",
        description="A100 hours for offline reinforcement learning on energy systems data.",
        gpu_type="A100",
    )
    recommendations.recompute_all(session=session, encoder=encoder, k=5)
    session.commit()
    match = session.exec(
        select(Match).where(Match.proposal_id == proposal.id, Match.offer_id == offer.id)
    ).one()
    return {
        "academic": academic,
        "member": member,
        "colleague": colleague,
        "proposal": proposal,
        "offer": offer,
        "second": second,
        "match": match,
    }


@pytest.fixture
def smtp(app: Flask) -> Iterator[SmtpServer]:
    """A real SMTP server on 127.0.0.1 that the app sends to."""
    server = SmtpServer(port=free_port(), handler=ScriptedHandler())
    app.config.update(MAIL_SERVER="127.0.0.1", MAIL_PORT=server.port)
    server.start()
    yield server
    server.stop()
