"""Every main page, for every role, in a real browser at phone width: no sideways scrolling,
every input labelled, text contrast at WCAG AA, and no page error."""

from __future__ import annotations

import pytest
from flask_security.proxies import _security
from playwright.sync_api import Browser, Page
from sqlmodel import select

from app.services import demo, matches, recommendations
from app.services.rematching import DeferredRematch
from models import Match, MatchStatus, Offer, Proposal, Role, User
from tests.e2e.conftest import LiveServer, screenshot
from tests.e2e.forms import give_admin_an_authenticator

# Visible form controls a person fills in that have no label of their own.
UNLABELLED_INPUTS = """() => Array.from(document.querySelectorAll('input, select, textarea'))
  .filter(el => !['hidden', 'submit', 'button'].includes(el.type))
  .filter(el => el.getClientRects().length > 0)
  .filter(el => el.labels.length === 0 && !el.getAttribute('aria-label'))
  .map(el => el.outerHTML.slice(0, 200))"""

# Text whose contrast with the background behind it is below WCAG AA (4.5:1; 3:1 for large
# text). The background is the first opaque one among the element and its ancestors.
LOW_CONTRAST = """() => {
  const rgb = c => (c.match(/[\\d.]+/g) || []).map(Number);
  const lum = ([r, g, b]) => {
    const f = v => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
  };
  const background = el => {
    for (; el; el = el.parentElement) {
      const c = rgb(getComputedStyle(el).backgroundColor);
      if (c.length >= 3 && (c.length < 4 || c[3] > 0.9)) return c;
    }
    return [255, 255, 255];
  };
  const bad = [];
  for (const el of document.querySelectorAll('body *')) {
    const own = Array.from(el.childNodes).some(n => n.nodeType === 3 && n.textContent.trim());
    if (!own || el.getClientRects().length === 0) continue;
    const style = getComputedStyle(el);
    const skipped = '[aria-hidden=true], .visually-hidden, .skip-link';
    if (style.visibility === 'hidden' || el.closest(skipped)) continue;
    const [l1, l2] = [lum(rgb(style.color)), lum(background(el))];
    const ratio = (Math.max(l1, l2) + 0.05) / (Math.min(l1, l2) + 0.05);
    const size = parseFloat(style.fontSize), bold = parseInt(style.fontWeight) >= 700;
    const needed = size >= 24 || (bold && size >= 18.66) ? 3 : 4.5;
    const text = el.textContent.trim().slice(0, 40);
    if (ratio < needed) bad.push(`${el.tagName} "${text}" ${ratio.toFixed(2)}`);
  }
  return bad;
}"""

NO_SIDEWAYS_SCROLL = "() => document.documentElement.scrollWidth <= window.innerWidth + 1"


@pytest.fixture
def demo_server(live_server: LiveServer) -> LiveServer:
    with live_server.app.app_context(), live_server.session() as session:
        demo.load_demo(session=session, data=demo.read_demo_data())
        session.flush()
        recommendations.recompute_all(
            session=session, encoder=live_server.app.extensions["tandem.encoder"], k=5
        )
        give_admin_an_authenticator(session)
        session.commit()
    return live_server


def _sign_in(page: Page, server: LiveServer, role: Role) -> None:
    with server.session() as session:
        user = session.exec(select(User).where(User.role == role)).first()
        assert user is not None
        email, secret = user.email, user.tf_totp_secret
    page.goto(server.url + "/login")
    page.get_by_label("Email Address").fill(email)
    page.get_by_label("Password", exact=True).fill(demo.DEMO_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    if secret:
        with server.app.app_context():
            code = _security._totp_factory.generate_totp_password(secret)
        page.get_by_label("Authentication Code").fill(code)
        page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(lambda url: "/login" not in url and "/tf-" not in url)


def _check(page: Page, url: str, name: str) -> list[str]:
    response = page.goto(url)
    assert response is not None and response.status == 200, url
    problems = [f"{url}: unlabelled {html}" for html in page.evaluate(UNLABELLED_INPUTS)]
    problems += [f"{url}: contrast {text}" for text in page.evaluate(LOW_CONTRAST)]
    if not page.evaluate(NO_SIDEWAYS_SCROLL):
        width = page.evaluate("() => document.documentElement.scrollWidth")
        problems.append(f"{url}: scrolls sideways ({width}px wide)")
    if 'aria-invalid="None"' in page.content() or '="None"' in page.content():
        problems.append(f"{url}: an attribute reads None")
    screenshot(page, f"phone-{name}")
    return problems


@pytest.mark.parametrize(
    ("role", "paths"),
    [
        (
            None,
            ["/", "/proposals/", "/offers/", "/search/?q=medical+imaging", "/register", "/api/"],
        ),
        (Role.academic, ["/proposals/mine", "/proposals/new", "/publications/", "/account"]),
        (Role.company, ["/offers/mine", "/offers/new", "/offers/exclusions"]),
        (
            Role.admin,
            [
                "/admin/",
                "/admin/organisations",
                "/admin/users",
                "/admin/content",
                "/admin/rounds/new",
                "/admin/metrics",
                "/admin/partners",
            ],
        ),
    ],
    ids=["public", "academic", "company", "admin"],
)
def test_main_pages_at_phone_width(
    phone_page: Page, demo_server: LiveServer, role: Role | None, paths: list[str]
) -> None:
    if role is not None:
        _sign_in(phone_page, demo_server, role)
    with demo_server.session() as session:
        proposal = session.exec(select(Proposal).where(Proposal.status == "open")).first()
        offer = session.exec(select(Offer).where(Offer.status == "open")).first()
        assert proposal is not None and offer is not None
    if role is None:
        paths = [*paths, f"/proposals/{proposal.id}", f"/offers/{offer.id}"]
    problems: list[str] = []
    for path in paths:
        name = f"{role.value if role else 'public'}{path.replace('/', '-').split('?')[0]}"
        problems += _check(phone_page, demo_server.url + path, name.rstrip("-"))
    assert problems == []


def _introduce(server: LiveServer, role: Role) -> tuple[int, int]:
    """Introduce the best open match of the first user of `role` (both sides say interested
    through the service), so the pages show contact details; returns (proposal, offer) ids."""
    with server.app.app_context(), server.session() as session:
        user = session.exec(select(User).where(User.role == role)).first()
        assert user is not None
        query = select(Match, Proposal, Offer).join(Proposal).join(Offer)
        if role == Role.academic:
            query = query.where(Proposal.author_id == user.id)
        else:
            query = query.where(Offer.organisation_id == user.organisation_id)
        match, proposal, offer = session.exec(
            query.where(Match.status == MatchStatus.suggested).order_by(Match.score.desc())  # type: ignore[attr-defined]
        ).first()
        company = session.exec(
            select(User).where(
                User.organisation_id == offer.organisation_id, User.role == "company"
            )
        ).first()
        assert company is not None
        for side in (proposal.author_id, company.id):
            matches.express_interest(
                session=session, match_id=match.id, user_id=side, rematch=DeferredRematch()
            )
        session.commit()
        return proposal.id, offer.id


@pytest.mark.parametrize("role", [Role.academic, Role.company], ids=["academic", "company"])
@pytest.mark.parametrize("width", [320, 390])
def test_pages_after_an_introduction_at_phone_width(
    browser: Browser, demo_server: LiveServer, role: Role, width: int
) -> None:
    """Contact details (long names and addresses) appear only after an introduction: every
    page that shows them still fits the phone."""
    proposal_id, offer_id = _introduce(demo_server, role)
    context = browser.new_context(viewport={"width": width, "height": 800})
    page = context.new_page()
    try:
        _sign_in(page, demo_server, role)
        own = "/proposals/mine" if role == Role.academic else "/offers/mine"
        paths = [own, f"/proposals/{proposal_id}", f"/offers/{offer_id}", "/account"]
        problems: list[str] = []
        for path in paths:
            name = f"introduced-{role.value}-{width}{path.replace('/', '-')}"
            problems += _check(page, demo_server.url + path, name)
        page.goto(demo_server.url + own)
        assert page.locator(".match-status-introduced .contact-email").count() >= 1
        assert problems == []
    finally:
        context.close()
