"""`matching_pending`, which makes a page say matches are being found and refresh itself."""

from __future__ import annotations

from datetime import timedelta

import pytest

from models import Offer, OfferStatus, Proposal, ProposalStatus, utcnow


@pytest.mark.parametrize(
    ("model", "draft", "matched"),
    [
        (Proposal, ProposalStatus.draft, ProposalStatus.open),
        (Offer, OfferStatus.draft, OfferStatus.open),
    ],
)
def test_pending_from_a_request_until_its_ranking_ran_and_never_for_a_draft(
    model: type[Proposal] | type[Offer], draft: str, matched: str
) -> None:
    asked = utcnow()
    assert not model(status=matched).matching_pending
    assert model(status=matched, rematch_requested_at=asked).matching_pending
    ranked = asked + timedelta(seconds=1)
    assert not model(
        status=matched, rematch_requested_at=asked, rematched_at=ranked
    ).matching_pending
    assert model(status=matched, rematch_requested_at=ranked, rematched_at=asked).matching_pending
    # Nothing is matched with a draft: its page has nothing to wait for.
    assert not model(status=draft, rematch_requested_at=asked).matching_pending
