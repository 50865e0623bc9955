"""`flask --app app catalogue generate`: a synthetic catalogue of the size asked, with
matches in every state, that the app serves like real data, never mixed into real data
unasked, reproducible from its seed, and ranked by the real model unless told otherwise."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import VerifyMismatchError
from flask.testing import FlaskClient, FlaskCliRunner
from sqlmodel import Session, SQLModel, col, func, select

from matching.embeddings import PACKAGED_MODEL
from matching.stand_in import STAND_IN_MODEL
from models import (
    Embedding,
    Match,
    MatchStatus,
    Offer,
    OfferStatus,
    Organisation,
    OrganisationKind,
    Proposal,
    ProposalStatus,
    Publication,
    Role,
    User,
)
from tests.conftest import TEST_PASSWORD, AuthActions
from tests.conftest import test_password_hash as known_password_hash

SMALL = ["--proposals", "60", "--offers", "15", "--publications-per-academic", "3"]


def generate(runner: FlaskCliRunner, *args: str) -> str:
    result = runner.invoke(args=["catalogue", "generate", *args])
    assert result.exit_code == 0, result.output
    return result.output


def count(session: Session, model: type[Any], *where: Any) -> int:
    return session.exec(select(func.count()).select_from(model).where(*where)).one()


def test_writes_the_sizes_asked_and_matches_in_every_state(
    runner: FlaskCliRunner, session: Session
) -> None:
    output = generate(runner, *SMALL, "--seed", "7", "--encoder", "stand-in")

    assert "not semantic" in output
    assert count(session, Proposal) == 60
    assert count(session, Offer) == 15
    academics = session.exec(select(User).where(User.role == Role.academic)).all()
    per_author = Counter(session.exec(select(Publication.author_id)).all())
    assert {per_author[a.id] for a in academics} == {3}
    assert count(session, Organisation, Organisation.kind == OrganisationKind.university) >= 1
    assert count(session, User, User.role == Role.company) >= 1
    assert count(session, Proposal, Proposal.status == ProposalStatus.draft) >= 1
    assert count(session, Offer, Offer.status != OfferStatus.open) >= 1
    states = Counter(session.exec(select(Match.status)).all())
    assert set(states) == set(MatchStatus), states
    assert f"{states[MatchStatus.introduced]} introduced" in output
    # Vectors made by the stand-in are cached under its own name only.
    assert set(session.exec(select(Embedding.model_name)).all()) == {STAND_IN_MODEL}


def test_match_states_follow_the_rules_of_the_match_services(
    runner: FlaskCliRunner, session: Session
) -> None:
    generate(runner, *SMALL, "--encoder", "stand-in")

    for match in session.exec(select(Match)).all():
        proposal, offer = (
            session.get(Proposal, match.proposal_id),
            session.get(Offer, match.offer_id),
        )
        assert match.explanation and match.algorithm_version, "every match is scored"
        if match.status in (MatchStatus.introduced, MatchStatus.withdrawn):
            assert match.academic_interested_at and match.company_interested_at
            assert match.introduced_at is not None
            assert proposal.status == ProposalStatus.matched
        if match.status in (MatchStatus.introduced, MatchStatus.interested_company):
            contact = session.get(User, match.company_contact_id)
            assert contact.organisation_id == offer.organisation_id
        if match.status == MatchStatus.interested_academic:
            assert match.academic_interested_at and not match.company_interested_at
        if match.status in (MatchStatus.declined, MatchStatus.withdrawn):
            assert match.declined_by in ("academic", "company")
            assert match.rank_for_proposal is None and match.rank_for_offer is None
    # No offer is introduced to more projects than it takes.
    introduced = Counter(
        session.exec(select(Match.offer_id).where(Match.status == MatchStatus.introduced)).all()
    )
    for offer_id, projects in introduced.items():
        assert projects <= session.get(Offer, offer_id).max_projects


def test_the_portal_serves_the_generated_catalogue(
    runner: FlaskCliRunner, client: FlaskClient, session: Session, auth: AuthActions
) -> None:
    generate(runner, *SMALL, "--encoder", "stand-in")
    match = session.exec(select(Match).where(Match.status == MatchStatus.introduced)).first()
    proposal = session.get(Proposal, match.proposal_id)
    offer = session.exec(
        select(Offer).where(Offer.status == OfferStatus.open, col(Offer.hidden).is_(False))
    ).first()

    for url in (
        "/",
        "/proposals/",
        "/offers/",
        f"/offers/{offer.id}",
        f"/proposals/{proposal.id}",
        "/search/?q=reinforcement+learning",
    ):
        assert client.get(url).status_code == 200, url

    # The academic of an introduced match sees the company's contact among their proposals.
    author = session.get(User, proposal.author_id)
    contact = session.get(User, match.company_contact_id)
    author.password_hash = known_password_hash()
    session.add(author)
    session.commit()
    auth.login(author.email, TEST_PASSWORD)
    page = client.get("/proposals/mine")
    assert page.status_code == 200
    assert contact.email in page.get_data(as_text=True)


def test_accounts_have_distinct_passwords_nobody_knows(
    runner: FlaskCliRunner, client: FlaskClient, session: Session
) -> None:
    generate(runner, "--proposals", "6", "--offers", "3", "--encoder", "stand-in")
    hashes = session.exec(select(User.password_hash)).all()
    assert len(set(hashes)) == len(hashes)
    with pytest.raises(VerifyMismatchError):
        PasswordHasher().verify(hashes[0], "")
    email = session.exec(select(User.email)).first()
    response = client.post("/login", data={"email": email, "password": TEST_PASSWORD})
    assert response.status_code == 422  # the form again, with its error; not signed in
    assert client.get("/proposals/mine").status_code in (302, 401)


def test_refuses_a_database_with_proposals_unless_told_to_append(
    runner: FlaskCliRunner, session: Session, make_proposal: Callable[..., Proposal]
) -> None:
    make_proposal()
    refused = runner.invoke(args=["catalogue", "generate", *SMALL, "--encoder", "stand-in"])
    assert refused.exit_code != 0
    assert "--append" in refused.output
    assert count(session, Proposal) == 1

    generate(runner, "--proposals", "20", "--offers", "5", "--encoder", "stand-in", "--append")
    assert count(session, Proposal) == 21


def _catalogue(session: Session) -> dict[str, list[tuple[Any, ...]]]:
    """The generated content without ids, timestamps or secrets."""
    email = select(User.email).where(User.id == Proposal.author_id).scalar_subquery()
    proposal = select(Proposal.title).where(Proposal.id == Match.proposal_id).scalar_subquery()
    offer = select(Offer.title).where(Offer.id == Match.offer_id).scalar_subquery()
    return {
        "organisations": sorted(
            session.exec(select(Organisation.name, Organisation.verified)).all()
        ),
        "users": sorted(session.exec(select(User.email, User.name, User.role)).all()),
        "publications": sorted(session.exec(select(Publication.title, Publication.year)).all()),
        "proposals": sorted(
            session.exec(select(Proposal.title, Proposal.abstract, Proposal.status, email)).all()
        ),
        "offers": sorted(session.exec(select(Offer.title, Offer.description, Offer.status)).all()),
        "matches": sorted(
            session.exec(select(proposal, offer, Match.status, Match.score)).all(),
            key=repr,
        ),
    }


def _wipe(session: Session) -> None:
    for table in reversed(SQLModel.metadata.sorted_tables):
        session.execute(sa.delete(table))
    session.commit()


def test_the_same_seed_gives_the_same_catalogue(runner: FlaskCliRunner, session: Session) -> None:
    args = ["--proposals", "30", "--offers", "8", "--encoder", "stand-in"]
    generate(runner, *args, "--seed", "3")
    first = _catalogue(session)
    _wipe(session)
    generate(runner, *args, "--seed", "3")
    assert _catalogue(session) == first
    _wipe(session)
    generate(runner, *args, "--seed", "4")
    assert _catalogue(session)["proposals"] != first["proposals"]


@pytest.mark.semantic
def test_the_real_model_ranks_unless_the_stand_in_is_asked_for(
    runner: FlaskCliRunner, session: Session
) -> None:
    output = generate(
        runner, "--proposals", "4", "--offers", "2", "--publications-per-academic", "1"
    )
    assert f"Encoder: {PACKAGED_MODEL}" in output
    assert "stand-in" not in output and "not semantic" not in output
    # (The test encoder's memory may already hold these texts, so it need not store any.)
    assert STAND_IN_MODEL not in session.exec(select(Embedding.model_name)).all()
