"""Explanations cite the record: a proposal's card says how many similar proposals (sharing
a research field, public pairs only) reached an agreement with the offer's company."""

from __future__ import annotations

import re
from html import unescape
from typing import Any

from flask.testing import FlaskClient
from sqlmodel import Session

from app.services.programme import similar_agreements


def test_similar_means_another_public_proposal_in_a_shared_field(
    session: Session, programme: dict[str, Any]
) -> None:
    energy, vision, both, _hidden = programme["proposals"]
    first, second = (offer.organisation_id for offer in programme["offers"])
    counts = similar_agreements(
        session=session,
        pairs=[(both, first), (energy, first), (vision, first), (both, second)],
    )
    # energy and vision signed with the first company; the hidden proposal's agreement and
    # a proposal's own agreement never count.
    assert counts == {
        (both.id, first): 2,
        (energy.id, first): 0,
        (vision.id, first): 0,
        (both.id, second): 0,
    }


def test_the_proposal_page_cites_the_record(client: FlaskClient, programme: dict[str, Any]) -> None:
    both = programme["proposals"][2]
    page = client.get(f"/proposals/{both.id}")
    assert page.status_code == 200
    text = re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", " ", page.get_data(as_text=True))))
    assert "2 similar proposals reached an agreement with this company" in text
