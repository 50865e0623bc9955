"""Interest, dismissal and introductions: consent before contact, checked server-side."""

from __future__ import annotations

from collections.abc import Callable
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlmodel import Session, select

from app.services import corpus, recommendations
from matching import Encoder
from models import Match, MatchStatus, OfferStatus, OrganisationKind, Role
from tests.conftest import AuthActions


def _reload(session: Session, match: Match) -> Match:
    session.expire_all()
    reloaded = session.get(Match, match.id)
    assert reloaded is not None
    return reloaded


def _mails(app: Flask) -> list[Any]:
    folder = Path(app.config["TANDEM_MAIL_DIR"])
    if not folder.exists():
        return []
    return [
        message_from_bytes(path.read_bytes(), policy=policy.default)
        for path in sorted(folder.glob("*.eml"))
    ]


def test_mutual_interest_introduces_both_sides_and_mails_them(
    app: Flask, client: FlaskClient, auth: AuthActions, session: Session, pair: dict[str, Any]
) -> None:
    match = pair["match"]
    auth.login(pair["academic"].email)
    response = client.post(f"/matches/{match.id}/interest", data={"next": "/proposals/mine"})
    assert response.status_code == 302 and response.headers["Location"] == "/proposals/mine"
    match = _reload(session, match)
    assert match.status == MatchStatus.interested_academic
    # The company hears of the interest at once, without learning who the researcher is.
    notices = _mails(app)
    assert sorted(m["To"].addresses[0].addr_spec for m in notices) == [
        "kim@helios.example.com",
        "sam@helios.example.com",
    ]
    for notice in notices:
        body = notice.get_body(("plain",)).get_content()
        assert "A researcher in reinforcement learning at a university" in body
        assert "Ada" not in body and "ada@" not in body and "Ada" not in str(notice["Subject"])
    client.post(f"/matches/{match.id}/interest")  # a second click mails nobody again
    assert len(_mails(app)) == 2

    auth.logout()
    auth.login(pair["member"].email)
    client.post(f"/matches/{match.id}/interest")
    match = _reload(session, match)
    assert match.status == MatchStatus.introduced
    assert match.company_contact_id == pair["member"].id

    mails = [m for m in _mails(app) if str(m["Subject"]).startswith("Introduction")]
    recipients = sorted(m["To"].addresses[0].addr_spec for m in mails)
    assert recipients == ["ada@nb.example.org", "kim@helios.example.com", "sam@helios.example.com"]
    to_academic = next(m for m in mails if "ada@" in str(m["To"]))
    body = to_academic.get_body(("plain",)).get_content()
    assert "Sam Reyes <sam@helios.example.com>" in body
    assert to_academic["Message-ID"] and to_academic["Date"]
    to_company = next(m for m in mails if "sam@" in str(m["To"]))
    assert "Ada Okafor <ada@nb.example.org>" in to_company.get_body(("plain",)).get_content()


def test_interest_mails_only_those_who_want_them_at_once(
    app: Flask, client: FlaskClient, auth: AuthActions, session: Session, pair: dict[str, Any]
) -> None:
    from models import NotificationPreference

    for user in (pair["colleague"], pair["academic"]):
        user.notification_preference = NotificationPreference.weekly
        session.add(user)
    session.commit()
    auth.login(pair["academic"].email)
    client.post(f"/matches/{pair['match'].id}/interest")
    assert [m["To"].addresses[0].addr_spec for m in _mails(app)] == ["sam@helios.example.com"]
    auth.logout()
    # The academic asked for a weekly digest: the company's interest in another pair is not
    # mailed to them at once.
    other = session.exec(
        select(Match).where(
            Match.proposal_id == pair["proposal"].id, Match.offer_id == pair["second"].id
        )
    ).one()
    auth.login(pair["member"].email)
    client.post(f"/matches/{other.id}/interest")
    assert len(_mails(app)) == 1


def test_interest_from_people_not_on_the_match_changes_nothing(
    client: FlaskClient,
    auth: AuthActions,
    session: Session,
    pair: dict[str, Any],
    make_user: Callable[..., Any],
    make_organisation: Callable[..., Any],
) -> None:
    match = pair["match"]
    other_academic = make_user(email="eve@other.example.org")
    rival = make_user(
        email="mallory@rival.example.com",
        role=Role.company,
        organisation_id=make_organisation(kind=OrganisationKind.company).id,
    )
    assert client.post(f"/matches/{match.id}/interest").status_code == 302  # anonymous
    assert "/login" in client.post(f"/matches/{match.id}/interest").headers["Location"]
    for user in (other_academic, rival):
        auth.login(user.email)
        assert client.post(f"/matches/{match.id}/interest").status_code == 404
        assert client.post(f"/matches/{match.id}/dismiss", data={"reason": "x"}).status_code == 404
        auth.logout()
    match = _reload(session, match)
    assert match.status == MatchStatus.suggested
    assert match.academic_interested_at is None and match.company_interested_at is None


def test_dismissed_pair_is_never_suggested_again_and_the_next_offer_moves_up(
    client: FlaskClient,
    auth: AuthActions,
    session: Session,
    encoder: Encoder,
    pair: dict[str, Any],
) -> None:
    match = pair["match"]
    auth.login(pair["academic"].email)
    client.post(f"/matches/{match.id}/dismiss", data={"reason": "We need GPUs in Europe."})
    match = _reload(session, match)
    assert match.status == MatchStatus.declined
    assert match.declined_by == "academic" and match.decline_reason == "We need GPUs in Europe."
    assert match.rank_for_proposal is None

    recommendations.recompute_all(session=session, encoder=encoder, k=5)
    session.commit()
    match = _reload(session, match)
    assert match.status == MatchStatus.declined and match.rank_for_proposal is None
    ranked = session.exec(
        select(Match).where(
            Match.proposal_id == pair["proposal"].id, Match.status == MatchStatus.suggested
        )
    ).all()
    assert [m.offer_id for m in ranked] == [pair["second"].id]
    assert ranked[0].rank_for_proposal == 1

    # A dismissed match cannot be revived by interest.
    response = client.post(f"/matches/{match.id}/interest", follow_redirects=True)
    assert "dismissed" in response.get_data(as_text=True)
    assert _reload(session, match).status == MatchStatus.declined


def test_interest_in_a_closed_offer_is_refused_with_a_message(
    client: FlaskClient, auth: AuthActions, session: Session, pair: dict[str, Any]
) -> None:
    offer = pair["offer"]
    offer.status = OfferStatus.closed
    session.add(offer)
    session.commit()
    auth.login(pair["academic"].email)
    response = client.post(f"/matches/{pair['match'].id}/interest", follow_redirects=True)
    assert response.status_code == 200
    assert "no longer open" in response.get_data(as_text=True)
    assert _reload(session, pair["match"]).status == MatchStatus.suggested


def test_redirects_only_to_local_pages(
    client: FlaskClient, auth: AuthActions, pair: dict[str, Any]
) -> None:
    auth.login(pair["academic"].email)
    for target in ("https://evil.example.com/", "//evil.example.com/x"):
        response = client.post(f"/matches/{pair['match'].id}/interest", data={"next": target})
        assert response.headers["Location"] == "/dashboard"


def test_withdrawing_after_an_introduction_frees_the_offer_capacity(
    client: FlaskClient, auth: AuthActions, session: Session, pair: dict[str, Any]
) -> None:
    match = pair["match"]
    auth.login(pair["academic"].email)
    client.post(f"/matches/{match.id}/interest")
    auth.logout()
    auth.login(pair["member"].email)
    client.post(f"/matches/{match.id}/interest")
    assert _reload(session, match).status == MatchStatus.introduced
    client.post(f"/matches/{match.id}/dismiss", data={"reason": "Budget moved"})
    match = _reload(session, match)
    assert match.status == MatchStatus.withdrawn and match.declined_by == "company"
    snapshot = corpus.load_snapshot(session=session)
    offer_index = snapshot.offer_index()[pair["offer"].id]
    assert snapshot.corpus.offers.hours_left[offer_index] == pair["offer"].gpu_hours_budget


def test_interest_is_refused_once_the_pair_no_longer_fits(
    client: FlaskClient, auth: AuthActions, session: Session, pair: dict[str, Any]
) -> None:
    """An exclusion added after the suggestion stops the pair at the next step; the message
    does not say which rule, so an exclusion list cannot be probed this way."""
    auth.login(pair["academic"].email)
    client.post(f"/matches/{pair['match'].id}/interest")
    offer = pair["offer"]
    offer.excluded_institutions = ["nb.example.org"]
    session.add(offer)
    session.commit()
    auth.logout()
    auth.login(pair["member"].email)
    response = client.post(f"/matches/{pair['match'].id}/interest", follow_redirects=True)
    page = response.get_data(as_text=True)
    assert "no longer fit" in page and "nb.example.org" not in page.split("<main")[1][:3000]
    assert _reload(session, pair["match"]).status == MatchStatus.interested_academic


def test_a_line_break_in_a_title_does_not_break_the_introduction_mail(
    app: Flask, client: FlaskClient, auth: AuthActions, session: Session, pair: dict[str, Any]
) -> None:
    proposal = pair["proposal"]
    proposal.title = "Offline RL\nfor grid batteries"
    session.add(proposal)
    session.commit()
    auth.login(pair["academic"].email)
    client.post(f"/matches/{pair['match'].id}/interest")
    auth.logout()
    auth.login(pair["member"].email)
    assert client.post(f"/matches/{pair['match'].id}/interest").status_code == 302
    assert _reload(session, pair["match"]).status == MatchStatus.introduced
    subjects = {str(m["Subject"]) for m in _mails(app) if "Introduction" in str(m["Subject"])}
    assert subjects and all(
        "\n" not in s and "Offline RL for grid batteries" in s for s in subjects
    )


def test_interest_can_be_withdrawn_until_the_other_side_answers(
    client: FlaskClient, auth: AuthActions, session: Session, pair: dict[str, Any]
) -> None:
    match = pair["match"]
    auth.login(pair["academic"].email)
    client.post(f"/matches/{match.id}/interest")
    response = client.post(f"/matches/{match.id}/withdraw", follow_redirects=True)
    assert "Interest withdrawn" in response.get_data(as_text=True)
    match = _reload(session, match)
    assert match.status == MatchStatus.suggested and match.academic_interested_at is None
    auth.logout()

    # The company's interest now waits for the researcher instead of introducing anyone.
    auth.login(pair["member"].email)
    client.post(f"/matches/{match.id}/interest")
    assert _reload(session, match).status == MatchStatus.interested_company
    auth.logout()

    auth.login(pair["academic"].email)
    client.post(f"/matches/{match.id}/interest")
    assert _reload(session, match).status == MatchStatus.introduced
    response = client.post(f"/matches/{match.id}/withdraw", follow_redirects=True)
    assert "You are already introduced" in response.get_data(as_text=True)
    assert _reload(session, match).status == MatchStatus.introduced


def test_a_dismissal_can_be_undone_by_the_side_that_dismissed(
    client: FlaskClient,
    auth: AuthActions,
    session: Session,
    pair: dict[str, Any],
    make_user: Callable[..., Any],
) -> None:
    match = pair["match"]
    auth.login(pair["member"].email)
    client.post(f"/matches/{match.id}/interest")
    auth.logout()
    auth.login(pair["academic"].email)
    client.post(f"/matches/{match.id}/dismiss", data={"reason": "Wrong hardware"})
    assert _reload(session, match).status == MatchStatus.declined
    page = client.get("/proposals/mine").get_data(as_text=True)
    assert f'action="/matches/{match.id}/restore"' in page and "Wrong hardware" in page
    auth.logout()

    # The company cannot bring back what the researcher dismissed; a stranger sees nothing.
    auth.login(pair["member"].email)
    response = client.post(f"/matches/{match.id}/restore", follow_redirects=True)
    assert "Only a suggestion your side dismissed" in response.get_data(as_text=True)
    assert _reload(session, match).status == MatchStatus.declined
    auth.logout()
    make_user(email="eve@elsewhere.example.org")
    auth.login("eve@elsewhere.example.org")
    assert client.post(f"/matches/{match.id}/restore").status_code == 404
    assert _reload(session, match).status == MatchStatus.declined
    auth.logout()

    auth.login(pair["academic"].email)
    response = client.post(f"/matches/{match.id}/restore", follow_redirects=True)
    assert "Dismissal undone" in response.get_data(as_text=True)
    match = _reload(session, match)
    assert match.status == MatchStatus.interested_company, "the company's interest still stands"
    assert match.declined_by is None and match.decline_reason == ""


def test_each_side_acts_on_a_match_where_it_is_listed(
    client: FlaskClient,
    auth: AuthActions,
    session: Session,
    pair: dict[str, Any],
    make_user: Callable[..., Any],
) -> None:
    """The ranked lists on the proposal's and the offer's pages carry the same actions as the
    dashboards, for the two sides only."""
    match, proposal, offer = pair["match"], pair["proposal"], pair["offer"]
    interest = f'action="/matches/{match.id}/interest"'
    proposal_page, offer_page = f"/proposals/{proposal.id}", f"/offers/{offer.id}"

    assert interest not in client.get(proposal_page).get_data(as_text=True)
    make_user(email="eve@elsewhere.example.org")
    auth.login("eve@elsewhere.example.org")
    assert interest not in client.get(proposal_page).get_data(as_text=True)
    auth.logout()

    auth.login(pair["member"].email)
    for page in (proposal_page, offer_page):
        html = client.get(page).get_data(as_text=True)
        assert interest in html and f'name="next" value="{page}"' in html
    auth.logout()

    auth.login(pair["academic"].email)
    assert interest in client.get(offer_page).get_data(as_text=True), "their own proposal"
    response = client.post(f"/matches/{match.id}/interest", data={"next": proposal_page})
    assert response.headers["Location"] == proposal_page
    html = client.get(proposal_page).get_data(as_text=True)
    assert f'action="/matches/{match.id}/withdraw"' in html
    assert "You said you are interested. Waiting for the company" in html
    assert _reload(session, match).status == MatchStatus.interested_academic


def test_a_data_need_no_fitting_offer_covers_is_told_to_the_author(
    client: FlaskClient, auth: AuthActions, session: Session, pair: dict[str, Any]
) -> None:
    """The fitting offers give compute only: their scores are not marked down for data, and
    the author is told that the data need is open, on the dashboard and the proposal page."""
    proposal = pair["proposal"]
    proposal.data_need = "Smart-meter readings from households"
    proposal.data_domains = ["energy"]
    session.add(proposal)
    session.commit()
    auth.login(pair["academic"].email)
    note = "also needs data in energy, and none of the offers that fit it provides that yet"
    for page in ("/proposals/mine", f"/proposals/{proposal.id}"):
        html = client.get(page).get_data(as_text=True)
        assert note in html
        assert "compute only: the data must come from a data offer" in html
    auth.logout()
    assert note not in client.get(f"/proposals/{proposal.id}").get_data(as_text=True)


def test_a_data_offer_below_the_shown_five_still_covers_the_data_need(
    client: FlaskClient,
    auth: AuthActions,
    session: Session,
    encoder: Encoder,
    pair: dict[str, Any],
    make_offer: Callable[..., Any],
) -> None:
    """The page shows the best five offers; whether the data need is covered is judged on
    every offer matched with the proposal, not on those five alone."""
    proposal = pair["proposal"]
    proposal.data_need = "Smart-meter readings from households"
    proposal.data_domains = ["energy"]
    session.add(proposal)
    session.commit()
    for number in range(5):
        make_offer(
            organisation_id=pair["offer"].organisation_id,
            title=f"H100 hours for battery dispatch learning, batch {number}",
            description="H100 hours for offline reinforcement learning of grid battery "
            "dispatch policies from logged operation data.",
        )
    make_offer(
        kind="data",
        title="Household smart-meter readings",
        description="Anonymised half-hourly smart-meter readings from 40,000 households.",
        dataset_description="Half-hourly electricity readings, 2019-2024, research licence.",
        data_domains=["energy"],
        gpu_type=None,
        gpu_memory_gb=None,
        gpu_hours_budget=0,
        max_hours_per_project=0,
    )
    recommendations.recompute_all(session=session, encoder=encoder, k=5)
    session.commit()
    auth.login(pair["academic"].email)
    html = client.get(f"/proposals/{proposal.id}").get_data(as_text=True)
    assert html.count('class="card match-card') == 5
    assert "Household smart-meter readings" not in html, "the data offer ranks sixth or lower"
    assert "none of the offers that fit it provides that yet" not in html
