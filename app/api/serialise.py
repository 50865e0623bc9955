"""Records as the partner API shows them (the schemas in `app.api.schemas`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlmodel import Session, col, select

from app.api import schemas
from app.services import catalogue, matches
from models import (
    AllocationAssignment,
    AllocationRound,
    Collaboration,
    Match,
    Offer,
    Organisation,
    Proposal,
    User,
)


def proposal(session: Session, record: Proposal, _scopes: frozenset[str]) -> schemas.ProposalOut:
    return schemas.ProposalOut.model_validate(
        {
            **record.model_dump(include=set(schemas.ProposalOut.model_fields) - {"researcher"}),
            "researcher": catalogue.author_label(session=session, proposal=record),
        }
    )


def offer(session: Session, record: Offer, _scopes: frozenset[str]) -> schemas.OfferOut:
    organisation = session.get(Organisation, record.organisation_id)
    return schemas.OfferOut.model_validate(
        {
            **record.model_dump(include=set(schemas.OfferOut.model_fields) - {"organisation"}),
            "organisation": organisation.name if organisation else "",
        }
    )


def organisation(
    _session: Session, record: Organisation, _scopes: frozenset[str]
) -> schemas.OrganisationOut:
    return schemas.OrganisationOut.model_validate(
        record.model_dump(include=set(schemas.OrganisationOut.model_fields))
    )


def _contact(contact: matches.Contact | None) -> schemas.ContactOut | None:
    if contact is None:
        return None
    return schemas.ContactOut(
        name=contact.name, email=contact.email, organisation=contact.organisation
    )


# What of a match's explanation partners see. Left out: the academic's closest publications
# (their titles identify the researcher) and the identity checks (who excluded whom).
PUBLIC_EXPLANATION = (
    "score",
    "eligible",
    "components",
    "component_labels",
    "weights",
    "fit_parts",
    "shared_terms",
)
PRIVATE_CHECKS = ("same_organisation", "excluded_by_offer", "excluded_by_proposal")


def public_explanation(explanation: dict[str, Any]) -> dict[str, Any]:
    shown = {key: explanation[key] for key in PUBLIC_EXPLANATION if key in explanation}
    shown["checks"] = [
        check
        for check in explanation.get("checks", [])
        if isinstance(check, dict) and check.get("name") not in PRIVATE_CHECKS
    ]
    return shown


def match(session: Session, record: Match, scopes: frozenset[str]) -> schemas.MatchOut:
    fields = record.model_dump(include=set(schemas.MatchOut.model_fields) - {"academic", "company"})
    fields["explanation"] = public_explanation(record.explanation or {})
    if "contacts" in scopes:
        proposal_row = session.get(Proposal, record.proposal_id)
        author = session.get(User, proposal_row.author_id) if proposal_row else None
        fields["academic"] = _contact(matches.contact_of(session, author))
        fields["company"] = _contact(matches.company_contact(session, record))
    return schemas.MatchOut.model_validate(fields)


def allocation_round(
    session: Session, record: AllocationRound, _scopes: frozenset[str]
) -> schemas.AllocationRoundOut:
    assignments = session.exec(
        select(AllocationAssignment)
        .where(AllocationAssignment.round_id == record.id)
        .order_by(col(AllocationAssignment.id))
    ).all()
    return schemas.AllocationRoundOut.model_validate(
        {
            **record.model_dump(include=set(schemas.AllocationRoundOut.model_fields)),
            "assignments": [
                schemas.AssignmentOut.model_validate(
                    a.model_dump(include={*schemas.AssignmentOut.model_fields})
                )
                for a in assignments
            ],
        }
    )


def collaboration(
    session: Session, record: Collaboration, _scopes: frozenset[str]
) -> schemas.CollaborationOut:
    pair = session.get(Match, record.match_id)
    return schemas.CollaborationOut.model_validate(
        {
            **record.model_dump(
                include=set(schemas.CollaborationOut.model_fields) - {"proposal_id", "offer_id"}
            ),
            "proposal_id": pair.proposal_id if pair else 0,
            "offer_id": pair.offer_id if pair else 0,
        }
    )


SERIALISERS: dict[str, Callable[[Session, Any, frozenset[str]], schemas.Schema]] = {
    "proposals": proposal,
    "offers": offer,
    "organisations": organisation,
    "matches": match,
    "allocation-rounds": allocation_round,
    "collaborations": collaboration,
}
