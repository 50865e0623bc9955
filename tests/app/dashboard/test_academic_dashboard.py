"""The academic's dashboard: their proposals, each open one with its ranked offers."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from flask.testing import FlaskClient
from sqlmodel import Session

from models import (
    Match,
    MatchStatus,
    OfferStatus,
    OrganisationKind,
    ProposalStatus,
    Publication,
    Role,
    utcnow,
)
from tests.app.pages import FormPage, text_of
from tests.conftest import AuthActions


def test_a_new_academic_is_told_the_next_steps(
    client: FlaskClient, auth: AuthActions, make_user: Callable[..., Any]
) -> None:
    make_user(email="new@example.org")
    auth.login("new@example.org")
    response = client.get("/dashboard", follow_redirects=True)
    assert response.status_code == 200 and response.request.path == "/proposals/mine"
    text = text_of(response.data)
    assert "Post your first proposal" in text
    assert "Add publications so the matcher knows your expertise" in text
    assert "How it works" in text and "Introduction by email" in text


def test_dashboard_ranks_offers_and_says_where_each_match_stands(
    client: FlaskClient,
    session: Session,
    auth: AuthActions,
    make_organisation: Callable[..., Any],
    make_user: Callable[..., Any],
    make_proposal: Callable[..., Any],
    make_offer: Callable[..., Any],
) -> None:
    academic = make_user(email="ada@example.org", name="Ada Okafor")
    company = make_organisation(name="Helios Compute", kind=OrganisationKind.company)
    member = make_user(
        email="sam@helios.example.com",
        name="Sam Reyes",
        role=Role.company,
        organisation_id=company.id,
    )
    proposal = make_proposal(author_id=academic.id, title="Grid batteries")
    draft = make_proposal(
        author_id=academic.id, title="Unfinished idea", status=ProposalStatus.draft
    )
    closed = make_proposal(author_id=academic.id, title="Old project", status=ProposalStatus.closed)
    stranger = make_proposal(title="Someone else's proposal")
    session.add(Publication(title="Battery dispatch", year=2022, author_id=academic.id))

    def offer(title: str, **kw: Any) -> Any:
        return make_offer(title=title, organisation_id=company.id, **kw)

    now = utcnow()
    rows = {
        "suggested": (proposal, offer("Offer suggested"), 2, {}),
        "waiting": (
            proposal,
            offer("Offer waiting"),
            3,
            {"status": MatchStatus.interested_academic, "academic_interested_at": now},
        ),
        "wanted": (
            proposal,
            offer("Offer wanting you"),
            1,
            {"status": MatchStatus.interested_company, "company_interested_at": now},
        ),
        "introduced": (
            closed,
            offer("Offer introduced"),
            None,
            {
                "status": MatchStatus.introduced,
                "academic_interested_at": now,
                "company_interested_at": now,
                "introduced_at": now,
                "company_contact_id": member.id,
            },
        ),
        "declined": (
            proposal,
            offer("Offer dismissed"),
            None,
            {
                "status": MatchStatus.declined,
                "declined_by": "academic",
                "decline_reason": "Too little memory",
            },
        ),
        "expired": (proposal, offer("Offer closed", status=OfferStatus.closed), 4, {}),
        "stranger": (stranger, offer("Offer for someone else"), 1, {}),
    }
    matches = {}
    for name, (target, the_offer, rank, fields) in rows.items():
        matches[name] = Match(
            proposal_id=target.id,
            offer_id=the_offer.id,
            score=0.9 - (rank or 5) / 10,
            components={"semantic": 0.7, "fit": 0.5},
            explanation={"shared_terms": ["battery", "dispatch"]},
            algorithm_version="test",
            rank_for_proposal=rank,
            **fields,
        )
        session.add(matches[name])
    session.commit()

    auth.login(academic.email)
    response = client.get("/proposals/mine")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    text = text_of(response.data)

    shown = re.findall(
        r'class="match-title"[^>]*><span class="rank">\d+\.</span> '
        r'<a href="/offers/\d+">(Offer [^<]+)</a>',
        html,
    )
    assert shown == ["Offer wanting you", "Offer suggested", "Offer waiting", "Offer introduced"]
    assert "The company is interested. Say you are interested too" in text
    assert "You said you are interested. Waiting for the company" in text
    assert "Introduced: contact Sam Reyes (Helios Compute), sam@helios.example.com" in text
    assert "1 dismissed offer" in text and "Too little memory" in text
    assert "Someone else's proposal" not in text and "Offer for someone else" not in text
    assert "Both mention battery and dispatch" in text and "Strong match score 80 /100" in text

    interest = set(re.findall(r'action="/matches/(\d+)/interest"', html))
    assert interest == {str(matches["suggested"].id), str(matches["wanted"].id)}
    dismiss = set(re.findall(r'action="/matches/(\d+)/dismiss"', html))
    assert dismiss == {str(matches[n].id) for n in ("suggested", "wanted", "waiting")}
    withdraw = set(re.findall(r'action="/matches/(\d+)/withdraw"', html))
    assert withdraw == {str(matches["waiting"].id)}
    restore = set(re.findall(r'action="/matches/(\d+)/restore"', html))
    assert restore == {str(matches["declined"].id)}
    assert html.count('name="next" value="/proposals/mine"') == 7
    page = FormPage(html)
    assert page.labels.keys() >= {"Reason (optional)"}
    assert "I'm interested" in text

    for target, action in ((draft, "open"), (closed, "open"), (proposal, "close")):
        assert f'action="/proposals/{target.id}/{action}"' in html
        assert f'href="/proposals/{target.id}/edit"' in html
    assert "Only you can see this draft" in text
    assert "Add publications so the matcher knows your expertise" not in text


def test_only_academics_have_this_dashboard(
    client: FlaskClient,
    auth: AuthActions,
    make_organisation: Callable[..., Any],
    make_user: Callable[..., Any],
    make_proposal: Callable[..., Any],
) -> None:
    owner = make_user(email="ada@example.org")
    make_proposal(author_id=owner.id, title="Private draft", status=ProposalStatus.draft)
    response = client.get("/proposals/mine")
    assert response.status_code == 302 and "/login" in response.headers["Location"]

    company = make_organisation(kind=OrganisationKind.company)
    make_user(email="member@example.com", role=Role.company, organisation_id=company.id)
    auth.login("member@example.com")
    response = client.get("/proposals/mine")
    assert response.status_code == 403 and "Private draft" not in response.get_data(as_text=True)

    auth.logout()
    make_user(email="other@example.org")
    auth.login("other@example.org")
    response = client.get("/proposals/mine")
    assert response.status_code == 200
    assert "Private draft" not in response.get_data(as_text=True)
