"""What the form tests share: people written to the database, signing in through the sign-in
page, and reading a field's inline error the way assistive technology does (through the
input's aria-describedby)."""

from __future__ import annotations

import re
from typing import Any

from flask_security.proxies import _security
from playwright.sync_api import Locator, Page, expect
from sqlmodel import Session, select

from models import Organisation, OrganisationKind, Role, User, utcnow
from tests.conftest import TEST_PASSWORD
from tests.conftest import test_password_hash as shared_password_hash
from tests.e2e.conftest import LiveServer

# Every visible form control a person fills in, without a label of its own.
UNLABELLED_INPUTS = """() => Array.from(document.querySelectorAll('input, select, textarea'))
  .filter(el => !['hidden', 'submit', 'button'].includes(el.type))
  .filter(el => el.offsetParent !== null || el.getClientRects().length > 0)
  .filter(el => el.labels.length === 0 && !el.getAttribute('aria-label'))
  .map(el => el.outerHTML)"""
# Forms that leave checking to the browser (its bubbles) instead of Tandem's inline messages.
FORMS_WITHOUT_NOVALIDATE = """() => Array.from(document.querySelectorAll('form[method=post]'))
  .filter(form => form.querySelector('input:not([type=hidden]):not([type=submit]), textarea'))
  .filter(form => !form.noValidate).map(form => form.name || form.action)"""
NO_HORIZONTAL_SCROLL = "() => document.documentElement.scrollWidth <= window.innerWidth"
EMAIL_LABEL = re.compile(r"^email address$", re.IGNORECASE)


def make_person(
    server: LiveServer,
    *,
    email: str,
    name: str,
    role: Role,
    organisation: str,
    kind: OrganisationKind,
) -> User:
    """A confirmed user whose password is TEST_PASSWORD, with a verified organisation."""
    with server.session() as session:
        org = Organisation(
            name=organisation,
            kind=kind,
            email_domains=[email.rsplit("@", 1)[1]],
            verified=True,
        )
        session.add(org)
        session.flush()
        user = User(
            email=email,
            name=name,
            role=role,
            organisation_id=org.id,
            password_hash=shared_password_hash(),
            confirmed_at=utcnow(),
        )
        session.add(user)
        session.commit()
        return user


def give_admin_an_authenticator(session: Session) -> None:
    """The demo's admin signs in with an authenticator app (the admin pages ask for a second
    factor); the caller commits. Inside the live server's app context."""
    admin = session.exec(select(User).where(User.role == Role.admin)).one()
    admin.tf_primary_method = "authenticator"
    admin.tf_totp_secret = _security._totp_factory.generate_totp_secret()
    session.add(admin)


def sign_in(page: Page, server: LiveServer, email: str) -> None:
    """From the home page, through the header's Sign in link and the sign-in form; the
    portal then opens the person's dashboard."""
    page.goto(server.url + "/")
    page.get_by_role("banner").get_by_role("link", name="Sign in", exact=True).click()
    page.get_by_label(EMAIL_LABEL).fill(email)
    page.get_by_label("Password", exact=True).fill(TEST_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()


def error_at(control: Locator) -> Locator:
    """The inline error tied to a control (an input, or a fieldset for a group of choices):
    the control is marked invalid and names the message in its aria-describedby."""
    if control.evaluate("el => el.tagName !== 'FIELDSET'"):
        expect(control).to_have_attribute("aria-invalid", "true")
    described = control.get_attribute("aria-describedby") or ""
    error_ids = [name for name in described.split() if name.endswith("-error")]
    assert error_ids, f"no error is tied to the control; aria-describedby={described!r}"
    return control.page.locator(f"[id='{error_ids[0]}']")


def error_summary(page: Page) -> Locator:
    """The summary at the top of the form that was submitted."""
    return page.get_by_role("alert").filter(has_text="Please correct")


def flash(page: Page) -> Locator:
    return page.locator(".flashes")


def make_sides(
    server: LiveServer, *, academic: tuple[str, str], member: tuple[str, str]
) -> tuple[User, User]:
    """A researcher at Kestrel University and a member of Helios Compute, each given as
    (email, name); returns (academic, member)."""
    researcher = make_person(
        server,
        email=academic[0],
        name=academic[1],
        role=Role.academic,
        organisation="Kestrel University",
        kind=OrganisationKind.university,
    )
    company = make_person(
        server,
        email=member[0],
        name=member[1],
        role=Role.company,
        organisation="Helios Compute",
        kind=OrganisationKind.company,
    )
    return researcher, company


MATCHED_PROPOSAL = "Learning protein structure from sparse cryo-EM maps"
MATCHED_OFFER = "H100 hours for protein structure research"


def make_matched_pair(
    server: LiveServer, *, member_email: str, member_name: str, **proposal: Any
) -> tuple[User, User]:
    """A researcher at Kestrel University with an open proposal (MATCHED_PROPOSAL, with
    `proposal` overriding its fields), a member of Helios Compute with an open compute offer
    (MATCHED_OFFER), and the match the engine stores for them. Returns (academic, member)."""
    from app.services import recommendations
    from models import Offer, OfferKind, OfferStatus, Proposal, ProposalStatus

    academic, member = make_sides(
        server,
        academic=("grace@kestrel.example.org", "Grace Hopper"),
        member=(member_email, member_name),
    )
    fields = {
        "title": MATCHED_PROPOSAL,
        "abstract": "We learn protein structure from sparse cryo-EM density maps with "
        "diffusion models and release the models openly.",
        "research_areas": ["computational biology"],
        "gpu_hours_needed": 2_000,
        "status": ProposalStatus.open,
        "author_id": academic.id,
    }
    with server.app.app_context(), server.session() as session:
        session.add(Proposal(**{**fields, **proposal}))
        session.add(
            Offer(
                kind=OfferKind.compute,
                title=MATCHED_OFFER,
                description="H100 hours for protein structure prediction and cryo-EM "
                "reconstruction research that publishes openly.",
                gpu_type="H100",
                gpu_memory_gb=80,
                gpu_hours_budget=20_000,
                max_hours_per_project=5_000,
                max_projects=4,
                status=OfferStatus.open,
                organisation_id=member.organisation_id,
                created_by_id=member.id,
            )
        )
        session.flush()
        recommendations.recompute_all(
            session=session, encoder=server.app.extensions["tandem.encoder"], k=5
        )
        session.commit()
    return academic, member
