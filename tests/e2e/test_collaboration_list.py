"""The list of one's collaborations on a phone: titles, stage, date and hours read as words
and dates, never cut inside a word ("Agree-ment signe-d", "Benchma-rk"), at 1280 and 390 px,
without sideways scroll."""

from __future__ import annotations

from datetime import UTC, date, datetime

from playwright.sync_api import Page, expect
from sqlmodel import select

from app.services import collaborations
from models import Match, MatchStatus
from tests.e2e.conftest import LiveServer
from tests.e2e.forms import (
    MATCHED_OFFER,
    MATCHED_PROPOSAL,
    NO_HORIZONTAL_SCROLL,
    make_matched_pair,
    sign_in,
)

ACADEMIC = "grace@kestrel.example.org"

# Every word (parts of a hyphenated word apart) that the browser split over two lines.
WORDS_CUT = """() => {
  const cut = [];
  for (const cell of document.querySelectorAll('table.collaborations td')) {
    const walker = document.createTreeWalker(cell, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      for (const found of node.data.matchAll(/[^\\s-]+/g)) {
        const range = document.createRange();
        range.setStart(node, found.index);
        range.setEnd(node, found.index + found[0].length);
        const lines = new Set(Array.from(range.getClientRects()).map((r) => Math.round(r.top)));
        if (lines.size > 1) cut.push(found[0]);
      }
    }
  }
  return cut;
}"""


def test_the_stage_and_date_are_never_cut_inside_a_word(
    any_width_page: Page, live_server: LiveServer
) -> None:
    academic, _member = make_matched_pair(
        live_server, member_email="sam@helios.example.com", member_name="Sam Reyes"
    )
    with live_server.app.app_context(), live_server.session() as session:
        match = session.exec(select(Match)).one()
        match.status, match.introduced_at = MatchStatus.introduced, datetime.now(UTC)
        session.add(match)
        session.flush()
        record = collaborations.start(session=session, match=match)
        collaborations.advance(
            session=session,
            collaboration_id=record.id,  # type: ignore[arg-type]
            user_id=academic.id,  # type: ignore[arg-type]
            change=collaborations.Change(
                stage="agreement_signed",
                agreement_kind="data_use",
                agreement_signed_on=date(2026, 2, 2),
            ),
            tell=False,
        )
        session.commit()

    page = any_width_page
    sign_in(page, live_server, ACADEMIC)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Collaborations").click()
    row = page.get_by_role("row").filter(has_text=f"{MATCHED_PROPOSAL} × {MATCHED_OFFER}")
    expect(row).to_contain_text("Agreement signed")
    assert page.evaluate(NO_HORIZONTAL_SCROLL)
    assert page.evaluate(WORDS_CUT) == []
    # The date the record reached its stage, beside the stage.
    expect(row).to_contain_text("since 20")
