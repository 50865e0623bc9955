"""A collaboration walked in a real browser from the introduction to "published", both sides
signed in at once, each moving it on through the record's own form (at 1280 and 390 px); the
other side's mails arrive over real SMTP (aiosmtpd), once each."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage

import pytest
from playwright.sync_api import Browser, Page, expect
from sqlmodel import select

from models import Collaboration, CollaborationEvent, CollaborationStage
from tests.e2e.conftest import (
    ACTION_TIMEOUT_MS,
    DESKTOP,
    MAIL_DEADLINE_S,
    NARROW_PHONE,
    LiveServer,
    screenshot,
)
from tests.e2e.forms import (
    FORMS_WITHOUT_NOVALIDATE,
    MATCHED_OFFER,
    MATCHED_PROPOSAL,
    NO_HORIZONTAL_SCROLL,
    UNLABELLED_INPUTS,
    error_at,
    flash,
    make_matched_pair,
    sign_in,
)
from tests.smtp import ScriptedHandler, SmtpServer, free_port

ACADEMIC = "grace@kestrel.example.org"
MEMBER = "sam@helios.example.com"
DOI = "10.5555/kestrel.2026.042"


@pytest.fixture
def smtp(live_server: LiveServer) -> Iterator[SmtpServer]:
    """A real SMTP server the served app sends its mail to."""
    server = SmtpServer(port=free_port(), handler=ScriptedHandler())
    live_server.app.config.update(MAIL_SERVER="127.0.0.1", MAIL_PORT=server.port)
    server.start()
    yield server
    server.stop()


def _received(smtp: SmtpServer, to: str) -> list[str]:
    return [str(m["Subject"]) for m in list(smtp.handler.received) if to in str(m["To"])]


def _wait_for_subjects(
    server: LiveServer, smtp: SmtpServer, to: str, wanted: list[str]
) -> list[EmailMessage]:
    """Block until every subject in `wanted` reached `to` over SMTP (woken each time the
    app's queue finishes a job), then return that person's messages."""
    give_up = time.monotonic() + MAIL_DEADLINE_S
    with server.jobs_done:
        while not all(any(w in s for s in _received(smtp, to)) for w in wanted):
            remaining = give_up - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"{to} got {_received(smtp, to)}, wanted {wanted}")
            server.jobs_done.wait(timeout=remaining)
    return [m for m in list(smtp.handler.received) if to in str(m["To"])]


def _open_page(browser: Browser, viewport: dict[str, int]) -> Page:
    context = browser.new_context(viewport=viewport)  # type: ignore[arg-type]
    context.set_default_timeout(ACTION_TIMEOUT_MS)
    return context.new_page()


def _card(page: Page, title: str):  # noqa: ANN202 (a Playwright locator)
    return page.locator("article.match-card").filter(
        has=page.get_by_role("link", name=title, exact=True)
    )


def _open_record(page: Page) -> None:
    """From the main navigation to the record, as a person finds it again later."""
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Collaborations").click()
    page.get_by_role("link", name=f"{MATCHED_PROPOSAL} × {MATCHED_OFFER}").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Collaboration:")


def _save(page: Page, stage: str) -> None:
    page.get_by_role("button", name="Save the new stage").click()
    expect(flash(page)).to_contain_text(f"now at “{stage}”")
    assert page.evaluate(NO_HORIZONTAL_SCROLL)


@pytest.mark.parametrize("viewport", [DESKTOP, NARROW_PHONE], ids=["1280px", "390px"])
def test_a_collaboration_from_introduction_to_published(
    browser: Browser, live_server: LiveServer, smtp: SmtpServer, viewport: dict[str, int]
) -> None:
    make_matched_pair(live_server, member_email=MEMBER, member_name="Sam Reyes")
    academic = _open_page(browser, viewport)
    company = _open_page(browser, viewport)
    try:
        # Both say they are interested: introduced, and the record starts.
        sign_in(academic, live_server, ACADEMIC)
        academic.get_by_role("link", name=MATCHED_PROPOSAL).first.click()
        _card(academic, MATCHED_OFFER).get_by_role(
            "button", name=re.compile("^I'm interested")
        ).click()
        expect(flash(academic)).to_contain_text("you are interested")
        sign_in(company, live_server, MEMBER)
        company.get_by_role("link", name=MATCHED_OFFER).first.click()
        card = _card(company, MATCHED_PROPOSAL)
        card.get_by_role("button", name=re.compile("^I'm interested")).click()
        expect(flash(company)).to_contain_text("You are introduced")

        # The company: from the introduced card to the record; "Talking".
        _card(company, MATCHED_PROPOSAL).get_by_role(
            "link", name=re.compile("^Collaboration record")
        ).click()
        expect(company.locator(".collaboration-facts")).to_contain_text("Introduced")
        assert company.evaluate(UNLABELLED_INPUTS) == []
        assert company.evaluate(FORMS_WITHOUT_NOVALIDATE) == []
        screenshot(company, f"collaboration-form-{viewport['width']}")
        company.get_by_label(re.compile("^Talking")).check()
        _save(company, "Talking")

        # The academic: agreement signed. A date in the future is refused at the field,
        # with what was typed kept; then the real date.
        academic.reload()
        _open_record(academic)
        academic.get_by_label(re.compile("^Agreement signed")).check()
        academic.get_by_label("Data-use agreement").check()
        future = (datetime.now(UTC) + timedelta(days=10)).date().isoformat()
        academic.get_by_label("Date the agreement was signed").fill(future)
        academic.get_by_role("button", name="Save the new stage").click()
        date_input = academic.get_by_label("Date the agreement was signed")
        expect(error_at(date_input)).to_contain_text("in the future")
        expect(date_input).to_have_value(future)
        expect(academic.get_by_label("Data-use agreement")).to_be_checked()
        date_input.fill("2026-02-02")
        _save(academic, "Agreement signed")

        # The company: started, with the hours granted.
        _open_record(company)
        company.get_by_label(re.compile("^Started")).check()
        company.get_by_label("GPU hours granted").fill("3,000")
        _save(company, "Started")
        expect(company.locator(".collaboration-facts")).to_contain_text("3,000")

        # The academic: published, with the DOI; the record links to it.
        _open_record(academic)
        academic.get_by_label(re.compile("^Published")).check()
        academic.get_by_label("DOI or link of the result").fill(f"doi:{DOI}")
        _save(academic, "Published")
        expect(academic.get_by_role("link", name=f"https://doi.org/{DOI}")).to_be_visible()
        expect(academic.get_by_role("button", name="Save the new stage")).to_have_count(0)
        history = academic.locator(".collaboration-history li")
        expect(history).to_have_count(5)
        screenshot(academic, f"collaboration-published-{viewport['width']}")
    finally:
        academic.context.close()
        company.context.close()

    with live_server.session() as session:
        record = session.exec(select(Collaboration)).one()
        assert record.stage == CollaborationStage.published
        assert record.gpu_hours_granted == 3000
        steps = session.exec(
            select(CollaborationEvent.to_stage).order_by(CollaborationEvent.id)
        ).all()
        assert steps == ["introduced", "talking", "agreement_signed", "started", "published"]

    # Each side is told of the other's moves, over SMTP, once each.
    to_academic = _wait_for_subjects(live_server, smtp, ACADEMIC, [": Talking", ": Started"])
    to_company = _wait_for_subjects(
        live_server, smtp, MEMBER, [": Agreement signed", ": Published"]
    )
    academic_updates = sorted(
        str(m["Subject"]) for m in to_academic if str(m["Subject"]).startswith("Collaboration")
    )
    company_updates = sorted(
        str(m["Subject"]) for m in to_company if str(m["Subject"]).startswith("Collaboration")
    )
    title = MATCHED_PROPOSAL
    assert academic_updates == [
        f"Collaboration “{title}”: Started",
        f"Collaboration “{title}”: Talking",
    ]
    assert company_updates == [
        f"Collaboration “{title}”: Agreement signed",
        f"Collaboration “{title}”: Published",
    ]
    published = next(m for m in to_company if str(m["Subject"]).endswith("Published"))
    body = published.get_body(("plain",)).get_content()
    assert f"https://doi.org/{DOI}" in body and f"{live_server.url}/collaborations/" in body
