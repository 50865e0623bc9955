"""The account page's collaboration-reminder opt-out, as a person uses it: untick the box,
save, and the page says the reminders are off (not only that match emails were saved), and
the box stays unticked when the page is opened again; ticking it turns them back on."""

from __future__ import annotations

from playwright.sync_api import Page, expect
from sqlmodel import select

from models import User
from tests.e2e.conftest import LiveServer
from tests.e2e.forms import NO_HORIZONTAL_SCROLL, flash, make_sides, sign_in

ACADEMIC = "grace@kestrel.example.org"
REMINDERS = "Remind me of collaborations that have not moved"


def _open_account(page: Page) -> None:
    page.get_by_role("banner").get_by_role("link", name="Account", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Your account")


def _reminders_on(server: LiveServer) -> bool:
    with server.session() as session:
        user = session.exec(select(User).where(User.email == ACADEMIC)).one()
        return user.collaboration_reminders


def test_turning_collaboration_reminders_off_and_on(
    any_width_page: Page, live_server: LiveServer
) -> None:
    page = any_width_page
    make_sides(
        live_server,
        academic=(ACADEMIC, "Grace Hopper"),
        member=("sam@helios.example.com", "Sam Reyes"),
    )
    assert _reminders_on(live_server)
    sign_in(page, live_server, ACADEMIC)
    _open_account(page)
    box = page.get_by_label(REMINDERS)
    expect(box).to_be_checked()
    box.uncheck()
    page.get_by_role("button", name="Save email settings").click()
    expect(flash(page)).to_contain_text("collaboration reminders are off")
    assert page.evaluate(NO_HORIZONTAL_SCROLL)
    assert not _reminders_on(live_server)

    _open_account(page)
    expect(page.get_by_label(REMINDERS)).not_to_be_checked()
    page.get_by_label(REMINDERS).check()
    page.get_by_role("button", name="Save email settings").click()
    expect(flash(page)).to_contain_text("collaboration reminders are on")
    assert _reminders_on(live_server)
