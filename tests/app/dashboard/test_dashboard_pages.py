"""Both dashboards show one page of what a person owns (five proposals, or five offers), say
how many there are in all, and link to the previous and next pages; an action taken on a
later page comes back to that page."""

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
    ProposalStatus,
    Role,
    utcnow,
)
from tests.app.pages import text_of
from tests.conftest import AuthActions


def _links(html: bytes, rel: str) -> list[str]:
    return re.findall(rf'<a rel="{rel}" href="([^"]+)"', html.decode())


def _in_order(page: str, titles: list[str]) -> list[str]:
    """The titles the page names (as the hidden part of each Edit button), in its order."""
    return sorted((t for t in titles if f"“{t}”" in page), key=lambda t: page.index(f"“{t}”"))


def test_the_academic_dashboard_pages_through_every_proposal_open_ones_first(
    client: FlaskClient,
    auth: AuthActions,
    make_user: Callable[..., Any],
    make_proposal: Callable[..., Any],
) -> None:
    academic = make_user(role=Role.academic)
    # Made oldest first: open 0-6, then drafts 0-2, then closed 0-1 (12 in all).
    opened = [make_proposal(author_id=academic.id, title=f"Open study {n}") for n in range(7)]
    drafts = [
        make_proposal(author_id=academic.id, title=f"Draft idea {n}", status=ProposalStatus.draft)
        for n in range(3)
    ]
    closed = [
        make_proposal(author_id=academic.id, title=f"Old project {n}", status=ProposalStatus.closed)
        for n in range(2)
    ]
    stranger = make_proposal(title="Someone else's study")
    auth.login(academic.email)

    titles = [p.title for p in [*opened, *drafts, *closed]]
    seen: list[str] = []
    response = client.get("/proposals/mine")
    assert response.status_code == 200
    page = text_of(response.data)
    assert "Proposals 1–5 of 12" in page and "Page 1 of 3" in page
    assert _links(response.data, "prev") == [] and _links(response.data, "next") == [
        "/proposals/mine?page=2"
    ]
    for number in (2, 3):
        seen += _in_order(page, titles)
        response = client.get(f"/proposals/mine?page={number}")
        assert response.status_code == 200
        page = text_of(response.data)
        assert f"Page {number} of 3" in page
        previous = f"/proposals/mine?page={number - 1}"
        assert _links(response.data, "prev") == [previous]
    seen += _in_order(page, titles)
    assert "Proposals 11–12 of 12" in page and _links(response.data, "next") == []

    # Every proposal once, open ones newest first, then drafts, then closed ones.
    expected = [p.title for p in [*reversed(opened), *reversed(drafts), *reversed(closed)]]
    assert seen == expected
    assert stranger.title not in page
    # A page past the last (an old link) shows the last one.
    assert "Proposals 11–12 of 12" in text_of(client.get("/proposals/mine?page=9").data)


def test_an_action_on_a_later_page_of_the_academic_dashboard_comes_back_to_it(
    client: FlaskClient,
    session: Session,
    auth: AuthActions,
    encoder: Encoder,
    make_organisation: Callable[..., Any],
    make_user: Callable[..., Any],
    make_proposal: Callable[..., Any],
    make_offer: Callable[..., Any],
) -> None:
    academic = make_user(role=Role.academic)
    oldest = make_proposal(
        author_id=academic.id, title="Battery dispatch with reinforcement learning"
    )
    for n in range(5):
        make_proposal(author_id=academic.id, title=f"Newer study {n}")
    company = make_organisation(kind=OrganisationKind.company)
    make_offer(organisation_id=company.id, title="GPU hours for reinforcement learning")
    recommendations.recompute_all(session=session, encoder=encoder, k=5)
    session.commit()
    match = session.exec(select(Match).where(Match.proposal_id == oldest.id)).first()
    assert match is not None
    auth.login(academic.email)

    assert oldest.title not in text_of(client.get("/proposals/mine").data)
    response = client.get("/proposals/mine?page=2")
    html = response.data.decode()
    assert f'action="/matches/{match.id}/interest"' in html
    assert 'name="next" value="/proposals/mine?page=2"' in html
    response = client.post(f"/matches/{match.id}/interest", data={"next": "/proposals/mine?page=2"})
    assert response.status_code == 302
    assert response.headers["Location"] == "/proposals/mine?page=2"
    page = text_of(client.get(response.headers["Location"]).data)
    assert "You said you are interested" in page and oldest.title in page


def test_the_company_dashboard_pages_through_the_organisations_offers(
    client: FlaskClient,
    auth: AuthActions,
    make_organisation: Callable[..., Any],
    make_user: Callable[..., Any],
    make_offer: Callable[..., Any],
) -> None:
    company = make_organisation(kind=OrganisationKind.company)
    member = make_user(role=Role.company, organisation_id=company.id)
    offers = [make_offer(organisation_id=company.id, title=f"Compute offer {n}") for n in range(6)]
    offers.append(
        make_offer(organisation_id=company.id, title="Drafted offer", status=OfferStatus.draft)
    )
    other = make_offer(
        organisation_id=make_organisation(kind=OrganisationKind.company).id,
        title="Another company's offer",
    )
    auth.login(member.email)

    response = client.get("/offers/mine")
    assert response.status_code == 200
    first = text_of(response.data)
    assert "Offers 1–5 of 7" in first and "Page 1 of 2" in first
    assert _links(response.data, "next") == ["/offers/mine?page=2"]
    response = client.get("/offers/mine?page=2")
    second = text_of(response.data)
    assert "Offers 6–7 of 7" in second and _links(response.data, "prev") == ["/offers/mine?page=1"]
    assert 'name="next" value="/offers/mine?page=2"' in response.data.decode()

    # Newest first, each offer on exactly one page, nobody else's.
    newest_first = [offer.title for offer in reversed(offers)]
    assert [t for t in newest_first if t in first] == newest_first[:5]
    assert [t for t in newest_first if t in second] == newest_first[5:]
    assert other.title not in first + second


def test_each_offer_lists_its_best_suggestions_and_every_pair_someone_acted_on(
    client: FlaskClient,
    session: Session,
    auth: AuthActions,
    encoder: Encoder,
    make_organisation: Callable[..., Any],
    make_user: Callable[..., Any],
    make_offer: Callable[..., Any],
    make_proposal: Callable[..., Any],
) -> None:
    company = make_organisation(kind=OrganisationKind.company)
    member = make_user(role=Role.company, organisation_id=company.id)
    offer = make_offer(organisation_id=company.id, title="H100 hours for open research")
    for n in range(8):
        make_proposal(
            title=f"Battery dispatch with reinforcement learning, part {n}",
            gpu_hours_needed=1000,
        )
    recommendations.recompute_all(session=session, encoder=encoder, k=5)
    session.commit()
    # The offer's ranking: by its rank for the offer (the best k ranked), then by score.
    ranked = sorted(
        session.exec(select(Match).where(Match.offer_id == offer.id)),
        key=lambda m: (m.rank_for_offer is None, m.rank_for_offer or 0, -m.score, m.proposal_id),
    )
    assert len(ranked) == 8
    # The researcher of the least fitting pair says they are interested.
    ranked[-1].status = MatchStatus.interested_academic
    ranked[-1].academic_interested_at = utcnow()
    session.add(ranked[-1])
    session.commit()
    auth.login(member.email)

    html = client.get("/offers/mine").data.decode()
    cards = re.findall(r'<article class="card match-card[^"]*" id="match-(\d+)"', html)
    shown = {int(match_id) for match_id in cards}
    assert shown == {match.id for match in ranked[:5]} | {ranked[-1].id}
    assert "2 more proposals fit this offer less well" in text_of(html.encode())
