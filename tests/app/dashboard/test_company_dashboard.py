"""The company dashboard: each offer with the capacity it has promised and its ranked
proposals, researchers anonymous until introduced; nobody else sees it."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from flask.testing import FlaskClient
from sqlmodel import Session, select

from app.services import recommendations
from matching import Encoder
from models import (
    Match,
    MatchStatus,
    OfferStatus,
    OrganisationKind,
    Publication,
    Role,
    utcnow,
)
from tests.app.pages import FormPage, text_of
from tests.conftest import AuthActions


def test_dashboard_shows_capacity_and_ranked_proposals_without_revealing_researchers(
    client: FlaskClient,
    auth: AuthActions,
    session: Session,
    encoder: Encoder,
    make_organisation: Callable[..., Any],
    make_user: Callable[..., Any],
    make_offer: Callable[..., Any],
    make_proposal: Callable[..., Any],
) -> None:
    company = make_organisation(name="Acme Compute", kind=OrganisationKind.company, verified=False)
    member = make_user(role=Role.company, organisation_id=company.id)
    offer = make_offer(organisation_id=company.id, title="H100 hours for open research")
    make_offer(organisation_id=company.id, title="Drafted data offer", status=OfferStatus.draft)
    researchers = [make_user(name=f"Researcher {n}") for n in range(3)]
    proposals = [
        make_proposal(
            author_id=researcher.id,
            title=f"Battery dispatch with offline reinforcement learning, part {n}",
            gpu_hours_needed=1000 * (n + 1),
        )
        for n, researcher in enumerate(researchers)
    ]
    session.add(
        Publication(author_id=researchers[2].id, title="Secret Paper On Grid Storage", year=2022)
    )
    session.commit()
    recommendations.recompute_all(session=session, encoder=encoder, k=5)
    session.commit()
    by_proposal = {
        m.proposal_id: m for m in session.exec(select(Match).where(Match.offer_id == offer.id))
    }
    introduced, interested, suggested = (by_proposal[p.id] for p in proposals)
    now = utcnow()
    introduced.status = MatchStatus.introduced
    introduced.academic_interested_at = introduced.company_interested_at = now
    introduced.introduced_at = now
    interested.status = MatchStatus.interested_academic
    interested.academic_interested_at = now
    session.add_all([introduced, interested])
    session.commit()

    auth.login(member.email)
    response = client.get("/offers/mine")
    assert response.status_code == 200
    page = text_of(response.data)
    assert "Acme Compute is not verified yet" in page
    assert "This offer is a draft, so it is not matched yet" in page
    assert (
        "GPU hours: 1,000 of 20,000 GPU hours promised to introduced projects, and 2,000 more "
        "to matches where someone is interested. 19,000 left." in page
    )
    assert "Project places: 1 of 4 places promised" in page
    assert "The researcher is interested. Say you are interested too" in page
    assert re.search(rf"Introduced: contact Researcher 0 \([^)]+\), {researchers[0].email}", page)
    assert "Suggested by Tandem. Neither side has said it is interested yet" in page
    assert "A researcher in reinforcement learning at a university" in page
    for hidden in (researchers[1], researchers[2]):
        assert hidden.name not in page and hidden.email not in page
    assert "Secret Paper On Grid Storage" not in page
    # Ranked by the offer's ranking, and score components are shown.
    ranked = sorted(
        zip((introduced, interested, suggested), proposals, strict=True),
        key=lambda pair: (pair[0].rank_for_offer, -pair[0].score),
    )
    positions = [page.index(proposal.title) for _, proposal in ranked]
    assert positions == sorted(positions)
    assert re.search(r"(Strong|Good|Fair|Weak) match score \d+ /100", page)
    assert "Why this match" in page
    # The match buttons: interest where it can still be said, dismiss with an optional reason.
    html = response.data.decode()
    for match in (interested, suggested):
        assert f'action="/matches/{match.id}/interest"' in html
        assert f'action="/matches/{match.id}/dismiss"' in html
    assert f'action="/matches/{introduced.id}/interest"' not in html
    assert html.count('name="next" value="/offers/mine"') >= 4
    assert FormPage(response.data).control("Reason (optional)")["tag"] == "textarea"

    # Closing the offer from the dashboard: suggestions go, the introduction stays promised.
    response = client.post(f"/offers/{offer.id}/close", data={"next": "/offers/mine"})
    assert response.status_code == 302 and response.headers["Location"] == "/offers/mine"
    page = text_of(client.get("/offers/mine").data)
    assert re.search(rf"Introduced: contact Researcher 0 \([^)]+\), {researchers[0].email}", page)
    assert proposals[2].title not in page
    assert "1,000 of 20,000 GPU hours promised to introduced projects" in page


def test_dashboard_is_the_members_own_and_explains_the_first_step(
    client: FlaskClient,
    auth: AuthActions,
    session: Session,
    make_organisation: Callable[..., Any],
    make_user: Callable[..., Any],
    make_offer: Callable[..., Any],
) -> None:
    company = make_organisation(kind=OrganisationKind.company)
    offer = make_offer(organisation_id=company.id, title="Private compute offer for Acme")
    newcomer = make_user(
        role=Role.company, organisation_id=make_organisation(kind=OrganisationKind.company).id
    )

    response = client.get("/offers/mine")
    assert response.status_code == 302 and "/login" in response.headers["Location"]
    auth.login(make_user(role=Role.academic).email)
    response = client.get("/offers/mine")
    assert response.status_code == 403 and offer.title not in text_of(response.data)
    auth.logout()

    auth.login(newcomer.email)
    response = client.get("/offers/mine")
    assert response.status_code == 200
    page = text_of(response.data)
    assert offer.title not in page
    assert "No offers yet" in page and "Create your first offer" in page
    assert "How it works" in page
    assert (
        client.post(f"/offers/{offer.id}/close", data={"next": "/offers/mine"}).status_code == 404
    )
    session.refresh(offer)
    assert offer.status == OfferStatus.open
