"""The account forms tests/e2e/test_account_journey.py does not submit, filled through their
labels and sent with what the page renders: each one as it comes (every empty field says what
to enter, in Tandem's words), the account page's email settings, the re-authentication
page, and the two-factor help request."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from playwright.sync_api import Page, expect
from sqlmodel import select

from models import NotificationPreference, Organisation, OrganisationKind, Role, User, utcnow
from tests.conftest import TEST_PASSWORD
from tests.conftest import test_password_hash as shared_password_hash
from tests.e2e.conftest import LiveServer, mail_text, wait_for_mail

# The account page's threshold field (its exact words belong to the dashboard's form).
LOWEST_SCORE = re.compile(r"^Lowest .* worth an email")


@pytest.fixture
def page(any_width_page: Page) -> Page:
    """Every test here runs at 1280 px and again at 390 px (a phone)."""
    return any_width_page


def _member(server: LiveServer, *, two_factor: bool = False) -> User:
    """A confirmed academic whose password is TEST_PASSWORD, written to the database."""
    with server.session() as session:
        organisation = Organisation(
            name="Northbridge University",
            kind=OrganisationKind.university,
            email_domains=["example.com"],
            verified=True,
        )
        session.add(organisation)
        session.flush()
        user = User(
            email="ada@example.com",
            name="Ada Example",
            role=Role.academic,
            organisation_id=organisation.id,
            password_hash=shared_password_hash(),
            confirmed_at=utcnow(),
        )
        if two_factor:
            with server.app.app_context():
                from flask_security.proxies import _security

                user.tf_primary_method = "authenticator"
                user.tf_totp_secret = _security._totp_factory.generate_totp_secret()
        session.add(user)
        session.commit()
        return user


def _message_at(page: Page, label: str) -> str:
    """The error shown at the field with this label (tied to it by aria-describedby)."""
    field = page.get_by_label(label, exact=True)
    expect(field).to_have_attribute("aria-invalid", "true")
    error_id = field.get_attribute("aria-describedby").split()[-1]
    return page.locator(f"#{error_id}").inner_text().strip()


def test_each_account_form_sent_as_it_comes_says_what_to_enter(
    page: Page, live_server: LiveServer
) -> None:
    page.goto(live_server.url + "/")
    header = page.get_by_role("banner")

    header.get_by_role("link", name="Sign up").click()
    with page.expect_response(lambda r: r.request.method == "POST") as answer:
        page.get_by_role("button", name="Sign up").click()
    assert answer.value.status == 422
    expect(page.locator("#form-errors")).to_contain_text("Please correct the 6 fields")
    assert _message_at(page, "Your name") == "Enter your name, e.g. Ada Lovelace."
    assert _message_at(page, "Email address") == "Enter your email address, e.g. ada@example.com."
    assert _message_at(page, "Organisation") == (
        "Enter your university, institute or company, e.g. Northbridge University."
    )
    assert _message_at(page, "Password").startswith("Choose a password: at least 12")
    assert _message_at(page, "Retype password") == "Type your password again."
    expect(page.locator("#role-field")).to_contain_text(
        "Choose whether you join as an academic or a company member."
    )

    page.get_by_role("main").get_by_role("link", name="Sign in").click()
    page.get_by_role("button", name="Sign in").click()
    assert _message_at(page, "Email address") == "Enter your email address, e.g. ada@example.com."
    assert _message_at(page, "Password") == "Enter your password."
    # What was typed stays; a mistyped address is named at the field.
    page.get_by_label("Email address").fill("ada.example.com")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_label("Email address")).to_have_value("ada.example.com")
    assert "e.g. ada@example.com" in _message_at(page, "Email address")

    page.get_by_role("link", name="Forgot your password?").click()
    page.get_by_role("button", name="Email me a reset link").click()
    assert _message_at(page, "Email address") == "Enter your email address, e.g. ada@example.com."
    page.get_by_label("Email address").fill("nobody@example.com")
    page.get_by_role("button", name="Email me a reset link").click()
    # An unknown address is answered as a known one: the page tells nobody who has an account.
    expect(page.locator(".flashes")).to_contain_text(
        "If nobody@example.com has a Tandem account, we sent it a link"
    )
    assert page.locator(".field-error").count() == 0

    page.get_by_role("main").get_by_role("link", name="Sign in").click()
    page.get_by_role("link", name="Did not get the confirmation email?").click()
    page.get_by_role("button", name="Send the link again").click()
    assert _message_at(page, "Email address") == "Enter your email address, e.g. ada@example.com."


def test_email_settings_save_as_shown_and_as_changed(page: Page, live_server: LiveServer) -> None:
    user = _member(live_server)
    page.goto(live_server.url + "/login")
    page.get_by_label("Email address").fill(user.email)
    page.get_by_label("Password", exact=True).fill(TEST_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("banner").get_by_role("link", name="Account").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Your account")

    # Saved as the page shows it: nothing changes, and nothing is refused.
    shown_fit = page.get_by_label(LOWEST_SCORE).input_value()
    page.get_by_role("button", name="Save email settings").click()
    expect(page.locator(".flashes")).to_contain_text("Saved")
    expect(page.get_by_label("Right away, as things happen")).to_be_checked()
    expect(page.get_by_label(LOWEST_SCORE)).to_have_value(shown_fit)

    page.get_by_label("A weekly digest").check()
    page.get_by_label(LOWEST_SCORE).fill("55")
    page.get_by_role("button", name="Save email settings").click()
    expect(page.locator(".flashes")).to_contain_text("Saved")
    expect(page.get_by_label("A weekly digest")).to_be_checked()
    expect(page.get_by_label(LOWEST_SCORE)).to_have_value("55")
    with live_server.session() as session:
        saved = session.exec(select(User).where(User.email == user.email)).one()
        assert saved.notification_preference == NotificationPreference.weekly
        assert saved.notify_min_score == 0.55

    # A fit out of range is refused at the field, with the choice kept.
    page.get_by_label(LOWEST_SCORE).fill("150")
    page.get_by_role("button", name="Save email settings").click()
    expect(page.get_by_label(LOWEST_SCORE)).to_have_value("150")
    expect(page.get_by_label(LOWEST_SCORE)).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_label("A weekly digest")).to_be_checked()


def test_a_sign_in_gone_stale_asks_for_the_password_before_two_factor_setup(
    page: Page, live_server: LiveServer
) -> None:
    user = _member(live_server)
    config = live_server.app.config
    page.goto(live_server.url + "/login")
    page.get_by_label("Email address").fill(user.email)
    page.get_by_label("Password", exact=True).fill(TEST_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("banner").get_by_role("link", name="Account").click()

    # The sign-in ages past SECURITY_FRESHNESS (a day, normally) while the tab stays open.
    usual_freshness = config["SECURITY_FRESHNESS"]
    config["SECURITY_FRESHNESS"] = timedelta(microseconds=1)
    page.get_by_role("link", name="Turn on two-factor sign-in").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Confirm it is you")
    config["SECURITY_FRESHNESS"] = usual_freshness
    page.get_by_role("button", name="Continue").click()
    assert _message_at(page, "Password") == "Enter your password."
    page.get_by_label("Password", exact=True).fill("not-my-password-1")
    page.get_by_role("button", name="Continue").click()
    assert _message_at(page, "Password") == "That password is not right. Check it and try again."
    page.get_by_label("Password", exact=True).fill(TEST_PASSWORD)
    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Two-factor sign-in")


def test_someone_without_their_phone_asks_an_administrator_for_help(
    page: Page, live_server: LiveServer
) -> None:
    user = _member(live_server, two_factor=True)
    page.goto(live_server.url + "/login")
    page.get_by_label("Email address").fill(user.email)
    page.get_by_label("Password", exact=True).fill(TEST_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Enter your sign-in code")

    page.get_by_role("button", name="Sign in").click()
    assert _message_at(page, "Authentication code").startswith("Enter the six-digit code")
    page.get_by_label("Ask an administrator to help me").check()
    page.get_by_role("button", name="Get help").click()
    expect(page.locator("main")).to_contain_text("We asked an administrator to help you")
    help_request = wait_for_mail(live_server, "Two-factor help")
    assert help_request["To"] == live_server.app.config["TANDEM_SUPPORT_EMAIL"]
    text = mail_text(help_request)
    assert "Ada Example (ada@example.com) cannot sign in" in text
    assert f"users reset_access {user.email}" in text
