"""The administration pages in a real browser, used as an administrator does: reached by
clicking links from the header, every form filled through its labels and submitted with the
defaults the page renders. Covers verifying an organisation, suspending a user, hiding a
proposal, computing rounds (with and without unverified organisations' offers), reviewing,
discarding and publishing them, partner tokens, and the metrics charts at 1280 and 390 px."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from flask_security.proxies import _security
from playwright.sync_api import Locator, Page, expect
from sqlmodel import select

from app.services import demo, recommendations
from models import (
    AllocationAssignment,
    AllocationRound,
    AllocationRoundStatus,
    Match,
    MatchStatus,
    Offer,
    Organisation,
    PartnerToken,
    Proposal,
    Role,
    User,
)
from tests.e2e.conftest import LiveServer, wait_for_mail
from tests.e2e.forms import (
    FORMS_WITHOUT_NOVALIDATE,
    NO_HORIZONTAL_SCROLL,
    UNLABELLED_INPUTS,
    flash,
    give_admin_an_authenticator,
)

SHOTS = Path("/tmp/shots")
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}
UNVERIFIED = ["Brightclause Legal Technologies", "Transitmesh Data"]


@pytest.fixture
def demo_server(live_server: LiveServer) -> LiveServer:
    """The demo catalogue with its recommendations; the demo administrator signs in with an
    authenticator app, as every administrator must."""
    with live_server.app.app_context(), live_server.session() as session:
        demo.load_demo(session=session, data=demo.read_demo_data())
        session.flush()
        recommendations.recompute_all(
            session=session, encoder=live_server.app.extensions["tandem.encoder"], k=5
        )
        give_admin_an_authenticator(session)
        session.commit()
    return live_server


def _sign_in_as_admin(page: Page, server: LiveServer) -> None:
    """From the home page: the header's Sign in link, the password, the authenticator code,
    then the header's Admin link."""
    with server.session() as session:
        admin = session.exec(select(User).where(User.role == Role.admin)).one()
        email, secret = admin.email, admin.tf_totp_secret
    page.goto(server.url + "/")
    page.get_by_role("banner").get_by_role("link", name="Sign in", exact=True).click()
    page.get_by_label(re.compile(r"^email address$", re.IGNORECASE)).fill(email)
    page.get_by_label("Password", exact=True).fill(demo.DEMO_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    with server.app.app_context():
        code = _security._totp_factory.generate_totp_password(secret)
    page.get_by_label("Authentication Code").fill(code)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("banner").get_by_role("link", name="Admin", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Administration")


def _section(page: Page, name: str) -> None:
    page.get_by_role("navigation", name="Administration").get_by_role(
        "link", name=name, exact=True
    ).click()


def _form_page_is_sound(page: Page) -> None:
    """Every input labelled, Tandem's own checks (no browser bubbles), no sideways scroll."""
    assert page.evaluate(UNLABELLED_INPUTS) == []
    assert page.evaluate(FORMS_WITHOUT_NOVALIDATE) == []
    assert page.evaluate(NO_HORIZONTAL_SCROLL)


def _shoot(page: Page, name: str) -> None:
    """A full-page screenshot under /tmp/shots, plus parts of a tall page (to look at)."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"admin-{name}.png"), full_page=True)
    width, height = page.viewport_size["width"], _height(page)  # type: ignore[index]
    if height > 2_000:
        for part, top in enumerate(range(0, height, 1_600)):
            clip = {"x": 0, "y": top, "width": width, "height": min(1_600, height - top)}
            page.screenshot(
                path=str(SHOTS / f"admin-{name}-part{part}.png"),
                full_page=True,
                clip=clip,  # type: ignore[arg-type]
            )


def _height(page: Page) -> int:
    return int(page.evaluate("() => document.documentElement.scrollHeight"))


def test_admin_verifies_an_organisation_suspends_a_user_and_hides_a_proposal(
    page: Page, demo_server: LiveServer
) -> None:
    with demo_server.session() as session:
        academic = session.exec(
            select(User).where(User.role == Role.academic).order_by(User.id)  # type: ignore[arg-type]
        ).first()
        assert academic is not None
        academic_id, academic_name = academic.id, academic.name
    _sign_in_as_admin(page, demo_server)

    _section(page, "Organisations")
    page.get_by_role("link", name="Unverified only").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Organisations")
    _form_page_is_sound(page)
    page.get_by_role("button", name=f"Verify {UNVERIFIED[0]}").click()
    expect(flash(page)).to_contain_text(f"{UNVERIFIED[0]} is verified.")
    expect(page.get_by_role("button", name=f"Verify {UNVERIFIED[0]}")).to_have_count(0)
    with demo_server.session() as session:
        organisation = session.exec(
            select(Organisation).where(Organisation.name == UNVERIFIED[0])
        ).one()
        assert organisation.verified

    _section(page, "Users")
    _form_page_is_sound(page)
    page.get_by_label("Name or email").fill(academic_name)
    page.get_by_role("button", name="Search").click()
    page.get_by_role("button", name=f"Suspend {academic_name}").click()
    expect(flash(page)).to_contain_text(f"{academic_name} is suspended.")
    expect(page.get_by_role("button", name=f"Reinstate {academic_name}")).to_be_visible()
    with demo_server.session() as session:
        assert session.get(User, academic_id).active is False  # type: ignore[union-attr]

    _section(page, "Content")
    _form_page_is_sound(page)
    card = page.locator("article.moderation-card").first
    title = card.get_by_role("heading").inner_text().strip()
    number = re.search(r"Proposal (\d+)", card.inner_text())
    assert number
    card.get_by_label("Reason (optional)").fill("Duplicate of another proposal")
    card.get_by_role("button", name=f"Hide proposal {number[1]}").click()
    expect(flash(page)).to_contain_text(
        f"Proposal {number[1]} is hidden. Reason: Duplicate of another proposal"
    )
    with demo_server.session() as session:
        hidden = session.get(Proposal, int(number[1]))
        assert hidden is not None and hidden.hidden and hidden.title == title
    page.get_by_role("link", name="Hidden only").click()
    expect(page.locator("article.moderation-card")).to_have_count(1)


def _compute_round(page: Page, *, include_unverified: bool) -> None:
    _section(page, "Allocation rounds")
    page.get_by_role("link", name="Compute a new round").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Compute an allocation round")
    _form_page_is_sound(page)
    # The page's defaults: no equity option, a minimum fit of 30, unverified offers left out.
    expect(page.get_by_label("None: maximise the total score")).to_be_checked()
    expect(page.get_by_label("Minimum fit (out of 100)")).to_have_value("30")
    box = page.get_by_label("Include offers from unverified organisations")
    expect(box).not_to_be_checked()
    expect(page.get_by_text("2 open offers are from unverified organisations")).to_be_visible()
    if include_unverified:
        box.check()
    page.get_by_role("button", name="Compute the round").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Allocation round")


def _summary_figure(page: Page, caption: str) -> str:
    return page.locator(".round-stats li").filter(has_text=caption).inner_text()


def test_admin_computes_reviews_discards_and_publishes_rounds(
    page: Page, demo_server: LiveServer
) -> None:
    _sign_in_as_admin(page, demo_server)
    _compute_round(page, include_unverified=False)
    expect(flash(page)).to_contain_text("is computed. Review it, then publish or discard it.")

    # The summary comes first, in words and numbers a person reads at a glance.
    assert re.fullmatch(r"\d+\s+of \d+ proposals got an offer", _summary_figure(page, "proposals"))
    assert re.fullmatch(r"[\d,]+\s+of [\d,]+ GPU hours allocated", _summary_figure(page, "GPU"))
    assert re.fullmatch(r"\d+\s+of \d+ offers used", _summary_figure(page, "offers used"))
    assert re.fullmatch(
        r"\d{1,3}/100\s+average fit: (strong|good|fair|weak)", _summary_figure(page, "fit")
    )
    expect(page.get_by_text("Total score")).to_have_count(0)
    notice = page.locator("#unverified-offers")
    expect(notice).to_contain_text(
        f"2 offers were left out because their organisations are not verified: "
        f"{UNVERIFIED[0]}, {UNVERIFIED[1]}."
    )
    with demo_server.session() as session:
        draft = session.exec(select(AllocationRound)).one()
        unverified_offers = {
            offer.id
            for offer in session.exec(select(Offer).join(Organisation))
            if not offer.organisation.verified
        }
        given = {a.offer_id for a in session.exec(select(AllocationAssignment))}
        assert given and not given & unverified_offers
        first_id = draft.id

    # Short on a desktop and on a phone (it was 8,600 and 18,700 px): each offer's pairs and
    # each group of reasons fold away under a one-line summary.
    assert _height(page) < 3_500, _height(page)
    _shoot(page, "round-preview-1280")
    page.set_viewport_size(PHONE)
    assert page.evaluate(NO_HORIZONTAL_SCROLL)
    assert _height(page) < 7_000, _height(page)
    _shoot(page, "round-preview-390")
    page.set_viewport_size(DESKTOP)
    offer = page.locator("details.round-offer").first
    offer.locator("summary").click()
    expect(offer.get_by_role("columnheader", name="Fit")).to_be_visible()
    group = page.locator("details.round-group").filter(has_text="Below the round's minimum fit")
    group.first.locator("summary").click()
    reasons = group.first.locator("li")
    expect(reasons.first).to_be_visible()
    expect(reasons.filter(has_text="below the round's minimum of 30/100")).to_have_count(
        reasons.count()
    )
    _shoot(page, "round-preview-open-1280")
    page.set_viewport_size(PHONE)
    assert page.evaluate(NO_HORIZONTAL_SCROLL)
    _shoot(page, "round-preview-open-390")
    page.set_viewport_size(DESKTOP)

    # The way to verify is one click away.
    notice.get_by_role("link", name="Verify organisations on the organisations page").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Organisations")
    expect(page.get_by_role("button", name=f"Verify {UNVERIFIED[1]}")).to_be_visible()
    page.go_back()

    page.get_by_role("button", name="Discard this draft").click()
    expect(flash(page)).to_contain_text(f"Draft round {first_id} is discarded.")

    _compute_round(page, include_unverified=True)
    expect(page.locator("#unverified-offers")).to_contain_text(
        "This round includes 2 offers from unverified organisations"
    )
    with demo_server.session() as session:
        draft = session.exec(select(AllocationRound)).one()
        assert draft.summary["include_unverified"] is True
        round_id = draft.id
    page.get_by_role("button", name=f"Publish round {round_id}").click()
    expect(flash(page)).to_contain_text(f"Round {round_id} is published:")
    expect(page.get_by_role("button", name=f"Publish round {round_id}")).to_have_count(0)
    with demo_server.session() as session:
        published = session.get(AllocationRound, round_id)
        assert published is not None and published.status == AllocationRoundStatus.published
    mail = wait_for_mail(demo_server, f"Tandem round {round_id}:")
    assert str(mail["Subject"]) == str(mail["Subject"]).strip()
    assert re.fullmatch(
        rf"Tandem round {round_id}: \d+ proposals? allocated to your offers", str(mail["Subject"])
    )


def test_admin_creates_and_revokes_a_partner_token(page: Page, demo_server: LiveServer) -> None:
    _sign_in_as_admin(page, demo_server)
    _section(page, "Partner API")
    _form_page_is_sound(page)
    page.get_by_label("Partner", exact=True).fill("Northern Research Council")
    page.get_by_role("button", name="Create token").click()
    secret = page.locator("code.token").inner_text()
    assert len(secret) > 20
    with demo_server.session() as session:
        token = session.exec(select(PartnerToken)).one()
        assert token.name == "Northern Research Council"
        assert "contacts" not in token.scopes and token.scopes
    expect(page.get_by_label("Partner", exact=True)).to_have_value("")
    page.get_by_role("button", name="Revoke Northern Research Council").click()
    expect(flash(page)).to_contain_text("The token of Northern Research Council is revoked")
    expect(page.get_by_role("cell", name=re.compile(r"^Revoked "))).to_be_visible()


def _inside(inner: Locator, outer: Locator) -> bool:
    a, b = inner.bounding_box(), outer.bounding_box()
    assert a and b
    return (
        a["x"] >= b["x"] - 0.5
        and a["y"] >= b["y"] - 0.5
        and a["x"] + a["width"] <= b["x"] + b["width"] + 0.5
        and a["y"] + a["height"] <= b["y"] + b["height"] + 0.5
    )


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["1280", "390"])
def test_metrics_charts_read_at_desktop_and_phone_width(
    page: Page, demo_server: LiveServer, viewport: dict[str, int]
) -> None:
    """One interest among hundreds of suggestions: its bar, its count and the rate all show."""
    with demo_server.session() as session:
        match = session.exec(select(Match).order_by(Match.id)).first()  # type: ignore[arg-type]
        assert match is not None
        match.status = MatchStatus.interested_academic
        session.add(match)
        session.commit()
        total = len(session.exec(select(Match)).all())
    page.set_viewport_size(viewport)
    _sign_in_as_admin(page, demo_server)
    _section(page, "Metrics")
    expect(page.get_by_role("heading", level=1)).to_have_text("Platform metrics")
    assert page.evaluate(NO_HORIZONTAL_SCROLL)
    rate = page.locator("dd").filter(has_text="at least one side said")
    expect(rate).to_contain_text(f"<1% (1 of {total})")

    status = page.locator("figure").filter(has_text="Matches by status")
    interested = status.get_by_role("row", name=re.compile("Academic interested"))
    expect(interested.locator(".bar-value")).to_have_text("1")
    width = interested.locator(".bar-fill").bounding_box()
    assert width and width["width"] >= 10, width
    expect(status).to_contain_text("Logarithmic scale")
    for figure in page.locator("figure.chart-figure").all():
        for text in figure.locator("th, .bar-value, .bar-axis span").all():
            size = float(text.evaluate("el => parseFloat(getComputedStyle(el).fontSize)"))
            assert size >= 12, (text.inner_text(), size)
            assert _inside(text, figure), text.inner_text()
    _shoot(page, f"metrics-{viewport['width']}")


def test_admin_unverifies_filters_users_by_role_and_hides_with_a_reason_then_unhides(
    page: Page, demo_server: LiveServer
) -> None:
    """The remaining admin forms: Unverify, the users' Role filter, the moderation page a
    refused reason opens (the text kept, fixed there), and Unhide."""
    with demo_server.session() as session:
        verified = session.exec(
            select(Organisation).where(Organisation.verified).order_by(Organisation.name)  # type: ignore[arg-type]
        ).first()
        assert verified is not None
        verified_id, verified_name = verified.id, verified.name
    _sign_in_as_admin(page, demo_server)

    _section(page, "Organisations")
    page.get_by_role("button", name=f"Unverify {verified_name}").click()
    expect(flash(page)).to_contain_text(f"{verified_name} is no longer verified.")
    expect(page.get_by_role("button", name=f"Verify {verified_name}")).to_be_visible()
    with demo_server.session() as session:
        assert session.get(Organisation, verified_id).verified is False  # type: ignore[union-attr]

    _section(page, "Users")
    page.get_by_label("Role").select_option(label="company")
    page.get_by_role("button", name="Search").click()
    expect(page.get_by_label("Role")).to_have_value("company")
    roles = page.locator(".data-table tbody tr td:nth-child(3)").all_inner_texts()
    with demo_server.session() as session:
        companies = session.exec(select(User).where(User.role == Role.company)).all()
    assert set(roles) == {"company"} and 0 < len(roles) <= len(companies)

    _section(page, "Content")
    card = page.locator("article.moderation-card").first
    number = re.search(r"Proposal (\d+)", card.inner_text())
    assert number
    too_long = "Duplicate. " * 50
    # The page caps the box at 500 characters; a pasted text from a page that did not (an
    # older tab) reaches the server's own check, which must keep it and say why.
    card.get_by_label("Reason (optional)").evaluate("box => box.removeAttribute('maxlength')")
    card.get_by_label("Reason (optional)").fill(too_long)
    card.get_by_role("button", name=f"Hide proposal {number[1]}").click()
    # The refused reason opens the moderation page with the message at the field.
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Hide proposal {number[1]}")
    reason = page.get_by_label("Reason (optional)")
    expect(reason).to_have_value(too_long)
    expect(page.locator("#reason-error")).to_contain_text("Keep the reason under 500 characters")
    _form_page_is_sound(page)
    with demo_server.session() as session:
        assert not session.get(Proposal, int(number[1])).hidden  # type: ignore[union-attr]
    reason.fill("Duplicate of another proposal")
    page.get_by_role("button", name="Hide proposal").click()
    expect(flash(page)).to_contain_text(f"Proposal {number[1]} is hidden.")

    page.get_by_role("link", name="Hidden only").click()
    hidden_card = page.locator("article.moderation-card").first
    hidden_card.get_by_role("button", name=f"Unhide proposal {number[1]}").click()
    expect(flash(page)).to_contain_text(f"Proposal {number[1]} is visible again.")
    with demo_server.session() as session:
        assert not session.get(Proposal, int(number[1])).hidden  # type: ignore[union-attr]
