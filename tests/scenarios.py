"""The matching scenario the app tests share: a university, a company with its members,
academics with proposals, the company's offers, the recommendations the engine stores for
them, and, when asked, a draft allocation round.

Each test file states only what its scenario has of its own (names, addresses, titles, how
many people); `make_scenario` (a fixture in tests/app/conftest.py) builds it through the
`make_*` factories of tests/conftest.py, in the order a person would: organisations, people,
proposals, offers, then the engine.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlmodel import Session

from app.services import allocation, recommendations
from matching import Encoder
from models import AllocationRound, Offer, Organisation, OrganisationKind, Proposal, Role, User

Fields = Mapping[str, Any]


@dataclass
class Scenario:
    """What `build_scenario` made, in the order it was asked for."""

    university: Organisation | None
    company: Organisation
    academics: list[User]
    members: list[User]
    proposals: list[Proposal]
    offers: list[Offer]
    round: AllocationRound | None


@dataclass
class ScenarioFactory:
    """Builds a `Scenario` in the test's database with the test's encoder."""

    session: Session
    encoder: Encoder
    make_organisation: Callable[..., Any]
    make_user: Callable[..., Any]
    make_proposal: Callable[..., Any]
    make_offer: Callable[..., Any]

    def __call__(
        self,
        *,
        company: Fields,
        academics: Sequence[Fields],
        members: Sequence[Fields],
        proposals: Sequence[Fields],
        offers: Sequence[Fields],
        university: Fields | None = None,
        k: int = 5,
        draft_round: bool = False,
        round_created_by: User | None = None,
    ) -> Scenario:
        """Organisations, people, proposals and offers from the fields given (each mapping
        overrides the `make_*` factory's defaults), then `recompute_all` with `k` and, if
        `draft_round`, a draft allocation round; committed.

        Academics belong to `university` when one is given (else each gets an organisation of
        its own); members to `company`. A proposal's `author` is an index into `academics`
        (default 0); an offer's `creator`, if any, an index into `members`."""
        uni = self.make_organisation(**university) if university is not None else None
        people = [
            self.make_user(**({"organisation_id": uni.id} if uni else {}), **fields)
            for fields in academics
        ]
        organisation = self.make_organisation(kind=OrganisationKind.company, **company)
        staff = [
            self.make_user(role=Role.company, organisation_id=organisation.id, **fields)
            for fields in members
        ]
        made_proposals = [
            self.make_proposal(author_id=people[author].id, **fields)
            for author, fields in (_pop(spec, "author", 0) for spec in proposals)
        ]
        made_offers = []
        for creator, fields in (_pop(spec, "creator", None) for spec in offers):
            if creator is not None:
                fields["created_by_id"] = staff[creator].id
            made_offers.append(self.make_offer(organisation_id=organisation.id, **fields))
        recommendations.recompute_all(session=self.session, encoder=self.encoder, k=k)
        draft = None
        if draft_round:
            draft = allocation.create_round(
                session=self.session,
                encoder=self.encoder,
                created_by_id=round_created_by.id if round_created_by else None,
            )
        self.session.commit()
        return Scenario(
            university=uni,
            company=organisation,
            academics=people,
            members=staff,
            proposals=made_proposals,
            offers=made_offers,
            round=draft,
        )


def _pop(spec: Fields, key: str, default: Any) -> tuple[Any, dict[str, Any]]:
    fields = dict(spec)
    return fields.pop(key, default), fields
