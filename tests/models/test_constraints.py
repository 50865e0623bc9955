"""The database itself refuses bad rows, whichever code path writes them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pydantic
import pytest
import sqlalchemy as sa
from sqlmodel import Session

from models import (
    Match,
    Offer,
    OfferCreate,
    Proposal,
    ProposalCreate,
    ProposalStatus,
    Role,
    User,
    UserCreate,
)


def test_negative_gpu_hours_are_refused(
    session: Session, make_proposal: Callable[..., Proposal]
) -> None:
    with pytest.raises(sa.exc.IntegrityError):
        make_proposal(gpu_hours_needed=-1)


def test_offer_cannot_promise_more_per_project_than_its_budget(
    session: Session, make_offer: Callable[..., Offer]
) -> None:
    with pytest.raises(sa.exc.IntegrityError):
        make_offer(gpu_hours_budget=1_000, max_hours_per_project=2_000)


def test_offer_needs_room_for_at_least_one_project(
    session: Session, make_offer: Callable[..., Offer]
) -> None:
    with pytest.raises(sa.exc.IntegrityError):
        make_offer(max_projects=0)


def test_email_is_unique(session: Session, make_user: Callable[..., User]) -> None:
    make_user(email="ada@example.org")
    with pytest.raises(sa.exc.IntegrityError):
        make_user(email="ada@example.org")


def test_email_must_be_stored_lowercase_so_uniqueness_ignores_case(
    session: Session, make_user: Callable[..., User]
) -> None:
    with pytest.raises(sa.exc.IntegrityError):
        make_user(email="Ada@Example.org")


def test_invalid_enum_value_is_refused_by_the_database(
    session: Session, make_proposal: Callable[..., Proposal]
) -> None:
    proposal = make_proposal()
    with pytest.raises(sa.exc.IntegrityError):
        session.execute(
            sa.text("UPDATE proposal SET status = 'pending' WHERE id = :id"), {"id": proposal.id}
        )
        session.flush()


def test_invalid_role_is_refused_by_the_database(
    session: Session, make_organisation: Callable[..., Any]
) -> None:
    with pytest.raises(sa.exc.IntegrityError):
        session.execute(
            sa.text(
                'INSERT INTO "user" (email, name, role, notification_preference, '
                "password_hash, fs_uniquifier, active, created_at, updated_at) VALUES "
                "('x@example.org', 'X', 'guest', 'instant', 'h', 'u1', true, "
                "CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
            )
        )
        session.flush()


def test_foreign_keys_are_enforced(session: Session, make_proposal: Callable[..., Any]) -> None:
    with pytest.raises(sa.exc.IntegrityError):
        make_proposal(author_id=987_654)


def test_a_pair_is_matched_at_most_once(
    session: Session,
    make_proposal: Callable[..., Proposal],
    make_offer: Callable[..., Offer],
) -> None:
    proposal, offer = make_proposal(), make_offer()
    for _ in range(2):
        session.add(
            Match(proposal_id=proposal.id, offer_id=offer.id, score=0.5, algorithm_version="t")
        )
    with pytest.raises(sa.exc.IntegrityError):
        session.commit()


def test_timestamps_are_set_and_move_on_update(
    session: Session, make_proposal: Callable[..., Proposal]
) -> None:
    proposal = make_proposal()
    created, updated = proposal.created_at, proposal.updated_at
    assert created.tzinfo is not None and updated >= created
    proposal.title = "Offline reinforcement learning for home batteries"
    session.add(proposal)
    session.commit()
    session.refresh(proposal)
    assert proposal.created_at == created
    assert proposal.updated_at > updated


def test_deleting_a_proposal_removes_its_matches(
    session: Session,
    make_proposal: Callable[..., Proposal],
    make_offer: Callable[..., Offer],
) -> None:
    proposal, offer = make_proposal(), make_offer()
    session.add(Match(proposal_id=proposal.id, offer_id=offer.id, score=0.5, algorithm_version="t"))
    session.commit()
    session.delete(proposal)
    session.commit()
    assert session.scalar(sa.select(sa.func.count()).select_from(Match)) == 0


@pytest.mark.parametrize(
    ("field", "value"),
    [("gpu_hours_needed", -5), ("duration_months", 0), ("title", "ab"), ("ip_stance", "mine")],
)
def test_create_schema_names_the_faulty_field(field: str, value: Any) -> None:
    fields = {"title": "A real title", "abstract": "An abstract long enough to be accepted."}
    with pytest.raises(pydantic.ValidationError) as error:
        ProposalCreate.model_validate({**fields, field: value})
    assert [e["loc"] for e in error.value.errors()] == [(field,)]


def test_user_create_normalises_email_and_requires_a_long_password() -> None:
    user = UserCreate(
        email=" Ada@Example.ORG ",
        name="Ada",
        role=Role.academic,
        password="a long enough passphrase",
    )
    assert user.email == "ada@example.org"
    with pytest.raises(pydantic.ValidationError):
        UserCreate(email="b@example.org", name="B", role=Role.academic, password="short")


def test_offer_create_accepts_the_compute_plus_data_kind() -> None:
    offer = OfferCreate.model_validate(
        {"kind": "compute+data", "title": "GPUs and data", "description": "x" * 30}
    )
    assert offer.kind.value == "compute+data"
    assert ProposalStatus("open") is ProposalStatus.open
