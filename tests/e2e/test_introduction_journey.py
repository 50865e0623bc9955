"""Journeys 2-4 in a real browser: a company posts an offer, a new academic signs up and
posts a proposal, both say they are interested, and only then see each other's contact."""

from __future__ import annotations

import re

from playwright.sync_api import Browser, Page, expect

from models import Organisation, OrganisationKind, Role, User, utcnow
from tests.conftest import TEST_PASSWORD
from tests.conftest import test_password_hash as shared_password_hash
from tests.e2e.conftest import (
    DESKTOP,
    PHONE,
    LiveServer,
    mail_link,
    mail_text,
    mails,
    screenshot,
    wait_for_mail,
)

ACADEMIC_PASSWORD = "heron-quartz-lantern-58"
NO_HORIZONTAL_SCROLL = "() => document.documentElement.scrollWidth <= window.innerWidth"


def _company_member(server: LiveServer) -> User:
    with server.session() as session:
        helios = Organisation(
            name="Helios Compute",
            kind=OrganisationKind.company,
            email_domains=["helios.example.com"],
            verified=True,
        )
        session.add(helios)
        session.flush()
        member = User(
            email="sam.reyes@helios.example.com",
            name="Sam Reyes",
            role=Role.company,
            organisation_id=helios.id,
            password_hash=shared_password_hash(),
            confirmed_at=utcnow(),
        )
        session.add(member)
        session.commit()
        return member


def _sign_in(page: Page, base: str, email: str, password: str) -> None:
    page.goto(base + "/login")
    page.get_by_label("Email Address").fill(email)
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("button", name="Sign in").click()


def _post_offer(page: Page, base: str) -> None:
    page.goto(base + "/dashboard")
    expect(page.get_by_role("heading", level=1)).to_have_text("Your offers")
    page.get_by_role("link", name="Create your first offer").click()
    page.get_by_label("Compute: GPU hours on our hardware").check()
    page.get_by_label("Title").fill("H100 hours for protein structure research")
    page.get_by_label("Description").fill(
        "Up to 4,000 H100 GPU hours per project for academic groups training protein "
        "structure prediction and molecular modelling networks, with open publication."
    )
    page.get_by_label("GPU type").fill("H100")
    page.get_by_label("GPU memory (GB per GPU)").fill("80")
    page.get_by_label("GPU-hour budget (total)").fill("20000")
    page.get_by_label("Most GPU hours for one project").fill("4000")
    page.get_by_label("Most projects", exact=True).fill("5")
    page.get_by_label("Researchers may publish freely").check()
    screenshot(page, "offer-form")
    page.get_by_role("button", name="Publish offer").click()
    expect(page.locator("body")).to_contain_text("H100 hours for protein structure research")


def _sign_up_and_confirm(page: Page, server: LiveServer) -> None:
    base = server.url
    page.goto(base + "/")
    page.get_by_role("banner").get_by_role("link", name="Sign up").click()
    page.get_by_label("Your name").fill("Grace Hopper")
    page.get_by_label("Email Address").fill("grace@kestrel.example.org")
    page.get_by_label("An academic").check()
    page.get_by_label("Organisation").fill("Kestrel University")
    page.get_by_label("Password", exact=True).fill(ACADEMIC_PASSWORD)
    page.get_by_label("Retype Password").fill(ACADEMIC_PASSWORD)
    page.get_by_role("button", name="Sign up").click()
    expect(page.locator(".flashes")).to_contain_text("grace@kestrel.example.org")
    page.goto(mail_link(wait_for_mail(server, "confirm"), "/confirm/"))
    _sign_in(page, base, "grace@kestrel.example.org", ACADEMIC_PASSWORD)
    expect(page).to_have_url(base + "/proposals/mine")


def _post_proposal(page: Page) -> None:
    page.get_by_role("link", name="Post your first proposal").click()
    page.get_by_label("Title").fill("Learning protein structure from sparse cryo-EM maps")
    page.get_by_label("Abstract").fill(
        "We will train protein structure prediction networks that use sparse cryo-EM density "
        "maps as extra evidence, to model molecular structures that sequence-only methods "
        "get wrong. Results and code will be published openly."
    )
    page.get_by_label("Research areas").fill("computational biology, structure prediction")
    page.get_by_label("GPU hours needed").fill("3000")
    page.get_by_label("Minimum GPU memory (GB)").fill("40")
    page.get_by_label("Duration (months)").fill("6")
    page.get_by_label("I must be free to publish the results").check()
    screenshot(page, "proposal-form")
    page.get_by_role("button", name="Publish").click()


def test_from_the_home_page_to_an_introduction(browser: Browser, live_server: LiveServer) -> None:
    base = live_server.url
    company = browser.new_context(viewport=DESKTOP)  # type: ignore[arg-type]
    academic = browser.new_context(viewport=PHONE)  # type: ignore[arg-type]
    try:
        company_page, academic_page = company.new_page(), academic.new_page()
        member = _company_member(live_server)

        # Journey 3: the company posts an offer.
        _sign_in(company_page, base, member.email, TEST_PASSWORD)
        _post_offer(company_page, base)

        # Journeys 1-2: a new academic, on a phone, signs up and posts a proposal.
        _sign_up_and_confirm(academic_page, live_server)
        _post_proposal(academic_page)
        expect(academic_page.get_by_role("heading", level=1)).to_have_text(
            "Learning protein structure from sparse cryo-EM maps"
        )
        expect(academic_page.locator("body")).to_contain_text("H100 hours for protein structure")
        # Within seconds, the queue mails both sides about the new match (the researcher
        # stays anonymous to the company).
        wait_for_mail(live_server, "New match", count=2)
        new_matches = [m for m in mails(live_server.mail_dir) if "New match" in m["Subject"]]
        by_recipient = {m["To"].addresses[0].addr_spec: m for m in new_matches}
        assert sorted(by_recipient) == ["grace@kestrel.example.org", "sam.reyes@helios.example.com"]
        assert "Grace" not in mail_text(by_recipient["sam.reyes@helios.example.com"])
        academic_page.get_by_role("navigation", name="Main").get_by_role(
            "link", name="Dashboard"
        ).click()
        expect(academic_page).to_have_url(base + "/proposals/mine")
        expect(
            academic_page.get_by_role("link", name="H100 hours for protein structure research")
        ).to_be_visible()
        expect(academic_page.locator("body")).to_contain_text("Helios Compute")
        assert academic_page.evaluate(NO_HORIZONTAL_SCROLL)
        screenshot(academic_page, "academic-dashboard")
        academic_page.get_by_role("button", name="I'm interested").first.click()
        expect(academic_page.locator(".flashes")).to_contain_text("you are interested")

        # Journey 4: the company sees an anonymous researcher, says interested, and only
        # then both sides see each other's contact details.
        company_page.goto(base + "/offers/mine")
        body = company_page.locator("body")
        expect(body).to_contain_text("Learning protein structure from sparse cryo-EM maps")
        expect(body).to_contain_text("A researcher in computational biology at a university")
        expect(body).not_to_contain_text("Grace")
        expect(body).not_to_contain_text("grace@kestrel.example.org")
        expect(body).to_contain_text("interested")
        screenshot(company_page, "company-dashboard")
        company_page.get_by_role("button", name=re.compile("^I.m interested")).first.click()
        expect(company_page.locator(".flashes")).to_contain_text("You are introduced")
        expect(company_page.locator("body")).to_contain_text("grace@kestrel.example.org")
        screenshot(company_page, "company-introduced")

        academic_page.reload()
        expect(academic_page.locator("body")).to_contain_text("sam.reyes@helios.example.com")
        screenshot(academic_page, "academic-introduced")

        wait_for_mail(live_server, "Introduction", count=2)
        introductions = [m for m in mails(live_server.mail_dir) if "Introduction" in m["Subject"]]
        recipients = sorted(m["To"].addresses[0].addr_spec for m in introductions)
        assert recipients == ["grace@kestrel.example.org", "sam.reyes@helios.example.com"]
        to_grace = next(m for m in introductions if "grace@" in str(m["To"]))
        assert "sam.reyes@helios.example.com" in mail_text(to_grace)
    finally:
        company.close()
        academic.close()


def test_sign_in_and_post_by_keyboard_alone(page: Page, live_server: LiveServer) -> None:
    member = _company_member(live_server)
    page.goto(live_server.url + "/login")
    page.keyboard.press("Tab")  # the skip link comes first
    focused = page.evaluate("() => document.activeElement.textContent")
    assert "Skip to content" in focused
    page.get_by_label("Email Address").focus()
    page.keyboard.type(member.email)
    page.keyboard.press("Tab")
    page.keyboard.type(TEST_PASSWORD)
    page.keyboard.press("Enter")
    expect(page).to_have_url(live_server.url + "/offers/mine")
    # Focus is visible: the focused control gets an outline.
    page.get_by_role("link", name="Create your first offer").focus()
    outline = page.evaluate("() => getComputedStyle(document.activeElement).outlineStyle")
    assert outline != "none"
