"""The explanation "N similar proposals reached an agreement with this company" counts only
pairs the partner feed may show: introduced pairs whose proposal and offer are public. A pair
one side withdrew from leaves the feed, and so leaves the count."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from app.services.programme import similar_agreements
from models import Match, MatchStatus


def test_a_withdrawn_pair_no_longer_counts(session: Session, programme: dict[str, Any]) -> None:
    energy, vision, both, _hidden = programme["proposals"]
    first = programme["offers"][0].organisation_id
    assert similar_agreements(session=session, pairs=[(both, first)]) == {(both.id, first): 2}
    withdrawn = session.get(Match, programme["published"].match_id)
    assert withdrawn is not None and withdrawn.proposal_id == energy.id
    withdrawn.status = MatchStatus.withdrawn
    withdrawn.declined_by = "company"
    session.add(withdrawn)
    session.commit()
    assert similar_agreements(session=session, pairs=[(both, first)]) == {(both.id, first): 1}
