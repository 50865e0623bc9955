"""A proposal just published is ranked on the job queue: its page says so and refreshes
itself until the offers appear, without the person reloading it."""

from __future__ import annotations

import re
from typing import Any

from playwright.sync_api import Page, expect
from sqlmodel import select

from models import Match, Offer, OfferKind, OfferStatus, Proposal, ProposalStatus, utcnow
from tests.e2e.conftest import LiveServer, screenshot
from tests.e2e.forms import flash, make_matched_pair, make_sides, sign_in

TITLE = "Offline reinforcement learning for grid battery dispatch"
OFFER = "H100 hours for reinforcement learning on energy data"
# The page refreshes every 2 s: the offers appear within a few refreshes of the ranking.
RANKED_WITHIN_MS = 20_000


def test_the_page_says_offers_are_being_found_and_refreshes_itself_until_they_are(
    page: Page, live_server: LiveServer
) -> None:
    academic, member = make_sides(
        live_server,
        academic=("ada@kestrel.example.org", "Ada Okafor"),
        member=("sam@helios.example.com", "Sam Reyes"),
    )
    with live_server.session() as session:
        session.add(
            Offer(
                kind=OfferKind.compute,
                title=OFFER,
                description="H100 hours for reinforcement learning on grid and battery data, "
                "for research that publishes openly.",
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
        session.commit()
    # Another re-ranking holds the lock: this proposal's waits in the queue (retried each
    # second) until the lock is released below.
    queue = live_server.app.extensions["tandem.queue"]
    busy = queue.huey.lock_task("rematch")
    busy.__enter__()
    try:
        sign_in(page, live_server, academic.email)
        page.get_by_role("link", name="Propose research").click()
        page.get_by_label("Title").fill(TITLE)
        page.get_by_label("Abstract").fill(
            "We learn dispatch policies for grid-scale batteries from five years of logged "
            "operations and publish policies and code."
        )
        page.get_by_label("Research areas").fill("reinforcement learning, energy systems")
        page.get_by_label("GPU hours needed").fill("2000")
        page.get_by_label("Compute (GPU time)").check()
        page.get_by_role("button", name="Publish").click()
        expect(flash(page)).to_contain_text("Your proposal is open")
        if page.get_by_role("heading", level=1).inner_text() != TITLE:
            page.get_by_role("link", name=TITLE).first.click()
        expect(page.get_by_role("heading", level=1)).to_have_text(TITLE)

        notice = page.get_by_role("status").filter(has_text="Finding offers for this proposal")
        expect(notice).to_be_visible()
        expect(notice).to_contain_text("this page refreshes itself")
        expect(page.locator('meta[name="tandem-refresh"]')).to_have_count(1)
        screenshot(page, "ranking-wait-pending")
        # Still waiting after a refresh of its own: the page counts them in its address.
        expect(page).to_have_url(re.compile(r"waited=1$"), timeout=RANKED_WITHIN_MS)
        expect(notice).to_be_visible()
        expect(page.get_by_text(OFFER)).to_have_count(0)
    finally:
        busy.__exit__(None, None, None)

    # The ranking runs once the lock is free; the page shows its offers by itself.
    expect(page.get_by_text(OFFER).first).to_be_visible(timeout=RANKED_WITHIN_MS)
    expect(page.get_by_text("Finding offers for this proposal")).to_have_count(0)
    expect(page.locator('meta[name="tandem-refresh"]')).to_have_count(0)
    screenshot(page, "ranking-wait-ranked")


def test_the_page_never_reloads_under_a_person_typing_in_one_of_its_forms(
    any_width_page: Page, live_server: LiveServer
) -> None:
    """A researcher writes why a suggestion is not a fit while another proposal of theirs is
    still being ranked: the dashboard stops refreshing itself, keeps the open form and the
    words typed, says to reload later, and the dismissal is sent with its reason."""
    page = any_width_page
    academic = _academic_with_a_proposal_being_ranked(live_server)
    sign_in(page, live_server, academic.email)
    page.goto(live_server.url + "/proposals/mine")
    expect(page.locator('meta[name="tandem-refresh"]')).to_have_count(1)
    page.get_by_text("Not a fit? Dismiss").first.click()
    reason = page.get_by_label("Reason (optional)").first
    reason.fill("We need more GPU memory than this offer has")

    paused = page.get_by_role("status").filter(has_text="stopped refreshing itself")
    expect(paused).to_be_visible(timeout=RANKED_WITHIN_MS)
    expect(page).not_to_have_url(re.compile(r"waited="))
    expect(reason).to_have_value("We need more GPU memory than this offer has")
    page.get_by_role("button", name=re.compile(r"^Dismiss")).first.click()
    expect(flash(page)).to_be_visible()
    with live_server.session() as session:
        reasons = session.exec(select(Match.decline_reason)).all()
    assert "We need more GPU memory than this offer has" in reasons


def test_the_page_never_reloads_under_a_person_leaving_it(
    page: Page, live_server: LiveServer
) -> None:
    """A researcher follows a link from a dashboard that is still waiting for a ranking, as
    its reload falls due: they reach the page they chose, not the dashboard again. The page's
    clock is the test's, so the reload falls due exactly when the test says."""
    academic = _academic_with_a_proposal_being_ranked(live_server)
    sign_in(page, live_server, academic.email)
    page.clock.install()
    page.goto(live_server.url + "/proposals/mine")
    expect(page.locator('meta[name="tandem-refresh"]')).to_have_count(1)

    # Left alone, or after a jump within the page, it reloads itself when due.
    page.get_by_role("link", name="Skip to content").focus()
    page.keyboard.press("Enter")
    page.clock.run_for(3_000)
    expect(page).to_have_url(re.compile(r"waited=1$"))

    # The person follows a link as the next reload falls due. The browser is kept from
    # following it at once, so that the reload comes first for certain: the page asks for
    # nothing more of its own, and the person's page is the next to load.
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    page.evaluate("document.addEventListener('click', (event) => event.preventDefault())")
    page.get_by_role("navigation", name="Account").get_by_role("link", name="Account").click()
    page.clock.run_for(3_000)
    page.goto(live_server.url + "/account")
    expect(page.get_by_role("heading", level=1)).to_be_visible()
    assert not [url for url in requested if "waited=" in url]


def _academic_with_a_proposal_being_ranked(live_server: LiveServer) -> Any:
    """An academic with a matched proposal, and another whose ranking is asked for and not
    yet run (no job was queued for it): their dashboard waits for it."""
    academic, _ = make_matched_pair(
        live_server, member_email="sam@helios.example.com", member_name="Sam Reyes"
    )
    with live_server.session() as session:
        session.add(
            Proposal(
                title=TITLE,
                abstract="We learn dispatch policies for grid-scale batteries from logged data.",
                research_areas=["reinforcement learning"],
                gpu_hours_needed=2_000,
                status=ProposalStatus.open,
                author_id=academic.id,
                rematch_requested_at=utcnow(),
            )
        )
        session.commit()
    return academic
