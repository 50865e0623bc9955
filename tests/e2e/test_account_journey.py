"""Journey 1, in a real browser: sign up, confirm the address, sign in and out, reset a
forgotten password; and the guards around it (CSRF, weak passwords, phone width, labels)."""

from __future__ import annotations

import re
import time

from passlib.totp import TOTP
from playwright.sync_api import Page, expect
from sqlmodel import select

from models import Notification, Organisation, OrganisationKind, Role, User, utcnow
from tests.conftest import TEST_PASSWORD
from tests.conftest import test_password_hash as shared_password_hash
from tests.e2e.conftest import (
    LiveServer,
    mail_link,
    mail_text,
    screenshot,
    wait_for_mail,
)

NEW_PASSWORD = "juniper-lighthouse-saffron-17"
RESET_PASSWORD = "orchard-basalt-meridian-64"

# Every visible form control a person fills in, without a label of its own.
UNLABELLED_INPUTS = """() => Array.from(document.querySelectorAll('input, select, textarea'))
  .filter(el => !['hidden', 'submit', 'button'].includes(el.type))
  .filter(el => el.offsetParent !== null || el.getClientRects().length > 0)
  .filter(el => el.labels.length === 0 && !el.getAttribute('aria-label'))
  .map(el => el.outerHTML)"""


def _make_member(server: LiveServer, email: str) -> User:
    """A confirmed academic whose password is TEST_PASSWORD, written straight to the database."""
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
            email=email,
            name="Ada Example",
            role=Role.academic,
            organisation_id=organisation.id,
            password_hash=shared_password_hash(),
            confirmed_at=utcnow(),
        )
        session.add(user)
        session.commit()
        return user


def _sign_in(page: Page, email: str, password: str) -> None:
    page.get_by_label("Email address").fill(email)
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("button", name="Sign in").click()


def test_sign_up_confirm_sign_in_out_and_reset_password(
    page: Page, live_server: LiveServer
) -> None:
    base = live_server.url
    email = "grace.hopper@example.com"

    page.goto(base + "/")
    expect(page.get_by_role("heading", level=1)).to_contain_text("Academics propose the work")
    screenshot(page, "home")
    page.get_by_role("banner").get_by_role("link", name="Sign up").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Sign up for Tandem")

    page.get_by_label("Your name").fill("Grace Hopper")
    page.get_by_label("Email address").fill(email)
    page.get_by_label("An academic").check()
    page.get_by_label("Organisation").fill("Northbridge University")
    page.get_by_label("Password", exact=True).fill(NEW_PASSWORD)
    page.get_by_label("Retype password").fill(NEW_PASSWORD)
    screenshot(page, "sign-up")
    page.get_by_role("button", name="Sign up").click()
    expect(page.locator(".flashes")).to_contain_text(
        re.compile(rf"sent a link to {re.escape(email)}\. Open it to confirm your email address")
    )
    welcome = wait_for_mail(live_server, "confirm")
    assert welcome["To"] == email

    # Not confirmed yet: the sign-in is refused with the reason.
    expect(page.get_by_role("heading", level=1)).to_have_text("Sign in")
    screenshot(page, "sign-in")
    _sign_in(page, email, NEW_PASSWORD)
    expect(page.get_by_text("Please confirm your email first")).to_be_visible()
    expect(page.get_by_role("heading", level=1)).to_have_text("Sign in")
    expect(page.get_by_role("button", name="Sign out")).to_have_count(0)

    # The link from the mail confirms the address; then signing in opens the dashboard.
    page.goto(mail_link(welcome, "/confirm/"))
    expect(page.locator(".flashes")).to_contain_text("confirmed")
    with live_server.session() as session:
        user = session.exec(select(User).where(User.email == email)).one()
        assert user.confirmed_at is not None and user.role == Role.academic
        assert session.get(Organisation, user.organisation_id).name == "Northbridge University"
    _sign_in(page, email, NEW_PASSWORD)
    expect(page.get_by_role("heading", level=1)).to_have_text("Your dashboard")
    screenshot(page, "dashboard")

    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("banner").get_by_role("link", name="Sign in")).to_be_visible()
    page.goto(base + "/dashboard")
    expect(page.get_by_role("heading", level=1)).to_have_text("Sign in")

    # Forgotten password: a single-use link by mail.
    page.get_by_role("link", name="Forgot your password?").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Reset your password")
    assert page.evaluate(UNLABELLED_INPUTS) == []
    screenshot(page, "forgot-password")
    page.get_by_label("Email address").fill(email)
    page.get_by_role("button", name="Email me a reset link").click()
    expect(page.locator(".flashes")).to_contain_text(
        f"If {email} has a Tandem account, we sent it a link to choose a new password"
    )
    reset = wait_for_mail(live_server, "reset")
    assert reset["To"] == email
    reset_link = mail_link(reset, "/reset/")
    assert "expires in 2 hours" in mail_text(reset)

    page.goto(reset_link)
    expect(page.get_by_role("heading", level=1)).to_have_text("Choose a new password")
    assert page.evaluate(UNLABELLED_INPUTS) == []
    screenshot(page, "reset-password")
    page.get_by_label("New password").fill(RESET_PASSWORD)
    page.get_by_label("Retype password").fill(RESET_PASSWORD)
    page.get_by_role("button", name="Save my new password").click()
    expect(page.locator(".flashes")).to_contain_text(
        "Your password is changed. Sign in with your new password."
    )
    assert wait_for_mail(live_server, "reset", count=2)["To"] == email  # the notice

    _sign_in(page, email, NEW_PASSWORD)
    expect(page.get_by_text("That email address and password do not match")).to_be_visible()
    _sign_in(page, email, RESET_PASSWORD)
    expect(page.get_by_role("heading", level=1)).to_have_text("Your dashboard")

    # The reset link worked once: opened again, it offers no form but a new link.
    page.get_by_role("button", name="Sign out").click()
    page.goto(reset_link)
    expect(page.locator(".flashes")).to_contain_text(
        "This reset link is not valid or was already used"
    )
    expect(page.get_by_role("heading", level=1)).to_have_text("Reset your password")
    expect(page.get_by_label("Retype password")).to_have_count(0)


def test_sign_up_refuses_a_common_password_at_the_field_and_keeps_the_values(
    page: Page, live_server: LiveServer
) -> None:
    page.goto(live_server.url + "/register")
    page.get_by_label("Your name").fill("Alan Example")
    page.get_by_label("Email address").fill("alan@example.com")
    page.get_by_label("A company member").check()
    page.get_by_label("Organisation").fill("Example Compute Ltd")
    page.get_by_label("Password", exact=True).fill("Password1234!")
    page.get_by_label("Retype password").fill("Password1234!")
    with page.expect_response(lambda r: r.request.method == "POST") as answer:
        page.get_by_role("button", name="Sign up").click()
    assert answer.value.status == 422

    password = page.get_by_label("Password", exact=True)
    expect(password).to_have_attribute("aria-invalid", "true")
    error = page.locator("#" + password.get_attribute("aria-describedby").split()[-1])
    expect(error).to_contain_text(re.compile("common", re.IGNORECASE))
    expect(page.get_by_label("Your name")).to_have_value("Alan Example")
    expect(page.get_by_label("Email address")).to_have_value("alan@example.com")
    expect(page.get_by_label("A company member")).to_be_checked()
    expect(page.get_by_label("Organisation")).to_have_value("Example Compute Ltd")
    with live_server.session() as session:
        assert session.exec(select(User)).all() == []
        assert session.exec(select(Notification)).all() == [], "no mail was queued"


def test_sign_in_without_a_csrf_token_is_refused(page: Page, live_server: LiveServer) -> None:
    email = "ada@example.com"
    _make_member(live_server, email)
    page.goto(live_server.url + "/login")

    forged = page.request.post(
        live_server.url + "/login",
        form={"email": email, "password": TEST_PASSWORD},
        max_redirects=0,
    )
    assert forged.status == 400
    assert "CSRF" in forged.text()
    page.goto(live_server.url + "/dashboard")
    expect(page.get_by_role("heading", level=1)).to_have_text("Sign in")

    # The same credentials through the form (which carries the token) do sign in.
    _sign_in(page, email, TEST_PASSWORD)
    expect(page.get_by_role("heading", level=1)).to_have_text("Your dashboard")


def test_sign_up_page_fits_a_phone_and_labels_every_input(
    phone_page: Page, live_server: LiveServer
) -> None:
    phone_page.goto(live_server.url + "/register")
    expect(phone_page.get_by_role("heading", level=1)).to_have_text("Sign up for Tandem")
    width = phone_page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert width[0] <= width[1], f"the page scrolls sideways: {width[0]}px in {width[1]}px"
    assert phone_page.evaluate(UNLABELLED_INPUTS) == []
    screenshot(phone_page, "sign-up-phone")


def test_account_pages_change_password_and_two_factor_sign_in(
    page: Page, live_server: LiveServer
) -> None:
    """Tandem's versions of the other account pages work and label every input."""
    email = "ada@example.com"
    _make_member(live_server, email)
    base = live_server.url

    page.goto(base + "/confirm")
    expect(page.get_by_role("heading", level=1)).to_have_text("Send the confirmation link again")
    assert page.evaluate(UNLABELLED_INPUTS) == []

    page.goto(base + "/login")
    _sign_in(page, email, TEST_PASSWORD)
    page.goto(base + "/account")
    page.get_by_role("link", name="Change password").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Change your password")
    assert page.evaluate(UNLABELLED_INPUTS) == []
    page.get_by_label("Current password").fill(TEST_PASSWORD)
    page.get_by_label("New password", exact=True).fill(NEW_PASSWORD)
    page.get_by_label("Retype new password").fill(NEW_PASSWORD)
    page.get_by_role("button", name="Change password").click()
    expect(page.locator(".flashes")).to_contain_text("changed")
    notice = wait_for_mail(live_server, "changed")
    assert notice["To"] == email
    assert mail_link(notice, "/reset")

    page.goto(base + "/account")
    page.get_by_role("link", name="Turn on two-factor sign-in").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Two-factor sign-in")
    assert page.evaluate(UNLABELLED_INPUTS) == []
    page.get_by_label("An authenticator app").check()
    page.get_by_role("button", name="Continue").click()
    expect(page.locator("#qrcode")).to_be_visible()
    assert page.evaluate(UNLABELLED_INPUTS) == []
    screenshot(page, "two-factor-setup")
    key = page.locator("#authr-key").inner_text()
    page.get_by_label("Authentication code").fill(_totp(key))
    page.get_by_role("button", name="Turn on two-factor sign-in").click()
    expect(page.locator(".flashes")).to_contain_text("Two-factor sign-in is on")
    with live_server.session() as session:
        user = session.exec(select(User).where(User.email == email)).one()
        assert user.tf_primary_method == "authenticator"

    page.get_by_role("button", name="Sign out").click()
    page.goto(base + "/login")
    _sign_in(page, email, NEW_PASSWORD)
    expect(page.get_by_role("heading", level=1)).to_have_text("Enter your sign-in code")
    assert page.evaluate(UNLABELLED_INPUTS) == []
    screenshot(page, "two-factor-code")
    page.get_by_label("Authentication code").fill("000000" if _totp(key) != "000000" else "111111")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_text("That code is not right")).to_be_visible()
    # The next step's code: accepted within the allowed clock drift, and never the code the
    # setup just used (a code is good once).
    page.get_by_label("Authentication code").fill(_totp(key, ahead=30))
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Your dashboard")


def _totp(pretty_key: str, ahead: int = 0) -> str:
    """The code an authenticator app shows (`ahead` seconds from now) for the key displayed
    on the setup page."""
    totp = TOTP(key=re.sub(r"[^A-Z2-7]", "", pretty_key.upper()), format="base32")
    return totp.generate(time.time() + ahead).token
