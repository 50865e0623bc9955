"""Mails about a collaboration in a real browser: the introduction mail points to the record
that starts with it, and the mail telling one side the other moved it on asks for what a
person can do (read the record, see all their collaborations), not to "say whether you are
interested", which has nothing to do with a collaboration; each link opens in the browser."""

from __future__ import annotations

import re

from playwright.sync_api import Browser, Page, expect

from tests.e2e.conftest import (
    ACTION_TIMEOUT_MS,
    DESKTOP,
    LiveServer,
    mail_link,
    mail_text,
    wait_for_mail,
)
from tests.e2e.forms import (
    MATCHED_OFFER,
    MATCHED_PROPOSAL,
    NO_HORIZONTAL_SCROLL,
    flash,
    make_matched_pair,
    sign_in,
)

ACADEMIC = "grace@kestrel.example.org"
MEMBER = "sam@helios.example.com"


def _card(page: Page, title: str):  # noqa: ANN202 (a Playwright locator)
    return page.locator("article.match-card").filter(
        has=page.get_by_role("link", name=title, exact=True)
    )


def test_the_other_side_is_told_of_a_move_with_links_to_the_record(
    any_width_page: Page, browser: Browser, live_server: LiveServer
) -> None:
    make_matched_pair(live_server, member_email=MEMBER, member_name="Sam Reyes")
    academic = any_width_page
    sign_in(academic, live_server, ACADEMIC)
    academic.get_by_role("link", name=MATCHED_PROPOSAL).first.click()
    _card(academic, MATCHED_OFFER).get_by_role("button", name=re.compile("^I'm interested")).click()
    expect(flash(academic)).to_contain_text("you are interested")

    context = browser.new_context(viewport=DESKTOP)  # type: ignore[arg-type]
    context.set_default_timeout(ACTION_TIMEOUT_MS)
    company = context.new_page()
    try:
        sign_in(company, live_server, MEMBER)
        company.get_by_role("link", name=MATCHED_OFFER).first.click()
        card = _card(company, MATCHED_PROPOSAL)
        card.get_by_role("button", name=re.compile("^I'm interested")).click()
        expect(flash(company)).to_contain_text("You are introduced")
        # The introduction mail points to the record that starts now.
        introduction = wait_for_mail(live_server, "Introduction", count=2)
        link = mail_link(introduction, "/collaborations/")
        company.goto(link)
        company.get_by_role("link", name=f"{MATCHED_PROPOSAL} × {MATCHED_OFFER}").click()
        expect(company.locator(".collaboration-facts")).to_contain_text("Introduced")
        company.get_by_label(re.compile("^Talking")).check()
        company.get_by_role("button", name="Save the new stage").click()
        expect(flash(company)).to_contain_text("now at “Talking”")
    finally:
        context.close()

    told = wait_for_mail(live_server, "Collaboration")
    assert ACADEMIC in str(told["To"])
    text = mail_text(told)
    assert "moved your collaboration" in text and "Talking" in text
    # Nothing in this mail waits for the academic's interest: no such request.
    assert "interested" not in text.lower(), text
    html = told.get_body(preferencelist=("html",))
    assert html is not None and "interested" not in html.get_content().lower()

    # Both links open in the academic's browser: all collaborations, then the record.
    links = re.findall(r"https?://\S+/collaborations/\d*", text)
    listing = next(link for link in links if link.endswith("/collaborations/"))
    academic.goto(listing)
    expect(academic.get_by_role("heading", level=1)).to_have_text("Collaborations")
    academic.get_by_role("link", name=f"{MATCHED_PROPOSAL} × {MATCHED_OFFER}").click()
    record = next(link for link in links if re.search(r"/collaborations/\d+$", link))
    assert academic.url == record
    expect(academic.locator(".collaboration-facts")).to_contain_text("Talking")
    assert academic.evaluate(NO_HORIZONTAL_SCROLL)
