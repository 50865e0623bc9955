"""The demo data set: fictional universities, companies, people, proposals and offers."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from argon2 import PasswordHasher
from sqlmodel import Session, col, func, select

from app.services import collaborations
from models import (
    Collaboration,
    Match,
    MatchStatus,
    Offer,
    OfferCreate,
    OfferKind,
    OfferStatus,
    Organisation,
    OrganisationCreate,
    Proposal,
    ProposalCreate,
    ProposalStatus,
    Publication,
    PublicationCreate,
    Role,
    User,
    UserCreate,
    utcnow,
)

DATA_DIR = Path(__file__).resolve().parent.parent / "demo" / "data"
DEMO_PASSWORD = "tandem-demo-2026"


@dataclass(frozen=True)
class DemoSummary:
    organisations: int
    users: int
    publications: int
    proposals: int
    offers: int

    @property
    def total(self) -> int:
        return self.organisations + self.users + self.publications + self.proposals + self.offers


def read_demo_data(data_dir: Path = DATA_DIR) -> dict[str, list[dict[str, Any]]]:
    """Merge every `*.json` file of the demo folder (see SCHEMA.md there)."""
    merged: dict[str, list[dict[str, Any]]] = {
        "organisations": [],
        "users": [],
        "proposals": [],
        "offers": [],
        "collaborations": [],
    }
    for path in sorted(data_dir.glob("*.json")):
        content = json.loads(path.read_text(encoding="utf-8"))
        for key, records in content.items():
            if key not in merged:
                raise ValueError(f"{path.name}: unknown section {key!r}")
            merged[key].extend(records)
    return merged


def is_empty(*, session: Session) -> bool:
    """True when no user, proposal or offer exists yet."""
    return all(
        session.exec(select(func.count()).select_from(table)).one() == 0
        for table in (User, Proposal, Offer)
    )


def demo_logins(data: dict[str, list[dict[str, Any]]]) -> list[tuple[str, str, str]]:
    """(role, email, name) of one demo account per role, for the start-up banner."""
    seen: dict[str, tuple[str, str, str]] = {}
    for user in data["users"]:
        seen.setdefault(user["role"], (user["role"], user["email"], user["name"]))
    return [seen[role] for role in ("academic", "company", "admin") if role in seen]


def load_demo(
    *, session: Session, data: dict[str, list[dict[str, Any]]], password: str = DEMO_PASSWORD
) -> DemoSummary:
    """Insert the demo records that are not there yet, matched by natural key (organisation
    name, user email, proposal author+title, offer organisation+title): loading twice adds
    nothing. Every record is validated by its Create schema first; flushes, never commits."""
    organisations = {o.name: o for o in session.exec(select(Organisation))}
    users = {u.email: u for u in session.exec(select(User))}
    proposals = {(p.author_id, p.title) for p in session.exec(select(Proposal))}
    offers = {(o.organisation_id, o.title) for o in session.exec(select(Offer))}
    added = dict.fromkeys(("organisations", "users", "publications", "proposals", "offers"), 0)

    for record in data["organisations"]:
        if record["name"] in organisations:
            continue
        organisation = Organisation.model_validate(
            OrganisationCreate.model_validate(record), update={"verified": record["verified"]}
        )
        session.add(organisation)
        organisations[organisation.name] = organisation
        added["organisations"] += 1
    session.flush()

    password_hash = PasswordHasher().hash(password) if data["users"] else ""
    for record in data["users"]:
        email = record["email"].lower()
        if email in users:
            continue
        fields = {k: v for k, v in record.items() if k not in ("organisation", "publications")}
        organisation_id = organisations[record["organisation"]].id
        checked = UserCreate.model_validate(
            {**fields, "password": password, "organisation_id": organisation_id}
        )
        user = User.model_validate(
            checked.model_dump(exclude={"password"}),
            update={"password_hash": password_hash, "confirmed_at": utcnow()},
        )
        session.add(user)
        session.flush()
        users[email] = user
        added["users"] += 1
        for publication in record.get("publications", []):
            session.add(
                Publication.model_validate(
                    PublicationCreate.model_validate(publication), update={"author_id": user.id}
                )
            )
            added["publications"] += 1

    for record in data["proposals"]:
        author = users[record["author"].lower()]
        if author.role != Role.academic:
            raise ValueError(f"proposal {record['title']!r}: {author.email} is not an academic")
        if (author.id, record["title"]) in proposals:
            continue
        fields = {k: v for k, v in record.items() if k not in ("author", "status")}
        session.add(
            Proposal.model_validate(
                ProposalCreate.model_validate(fields),
                update={"author_id": author.id, "status": ProposalStatus(record["status"])},
            )
        )
        proposals.add((author.id, record["title"]))
        added["proposals"] += 1

    for record in data["offers"]:
        organisation = organisations[record["organisation"]]
        if (organisation.id, record["title"]) in offers:
            continue
        fields = {
            k: v for k, v in record.items() if k not in ("organisation", "created_by", "status")
        }
        session.add(
            Offer.model_validate(
                OfferCreate.model_validate(fields),
                update={
                    "organisation_id": organisation.id,
                    "created_by_id": users[record["created_by"].lower()].id,
                    "status": OfferStatus(record["status"]),
                },
            )
        )
        offers.add((organisation.id, record["title"]))
        added["offers"] += 1
    session.flush()
    return DemoSummary(**added)


def load_collaborations(
    *,
    session: Session,
    data: dict[str, list[dict[str, Any]]],
    now: datetime | None = None,
) -> int:
    """Introduce a few of the best suggested pairs and walk each through the stages its
    script names (`collaborations` in the demo files: days ago, who moved it, the details),
    so a new user sees records at every stage. Pairs involving the demo logins come first.
    Runs after the matcher (it needs suggestions); adds nothing when any collaboration
    exists already, and tells nobody (these changes are history, not news). Returns how many
    records it wrote. Flushes, never commits."""
    scripts = data.get("collaborations", [])
    if not scripts or session.exec(select(func.count()).select_from(Collaboration)).one():
        return 0
    now = now or utcnow()
    logins = {email for _, email, _ in demo_logins(data)}
    login_users = session.exec(select(User).where(col(User.email).in_(logins))).all()
    login_ids = {u.id for u in login_users}
    login_orgs = {u.organisation_id for u in login_users if u.role == Role.company}
    candidates = session.exec(
        select(Match, Proposal, Offer)
        .join(Proposal, col(Proposal.id) == col(Match.proposal_id))
        .join(Offer, col(Offer.id) == col(Match.offer_id))
        .where(
            Match.status == MatchStatus.suggested,
            Proposal.status == ProposalStatus.open,
            Offer.status == OfferStatus.open,
            # Compute offers with room for more than this project: the data offers and the
            # single-place offers stay free for the demo's allocation round.
            Offer.kind == OfferKind.compute,
            col(Offer.max_projects) >= 2,
            col(Offer.created_by_id).is_not(None),
        )
        .order_by(col(Match.score).desc(), col(Match.id))
    ).all()
    candidates = sorted(
        candidates,
        key=lambda row: -(row[1].author_id in login_ids) - (row[2].organisation_id in login_orgs),
    )
    login_academics = {u.id for u in login_users if u.role == Role.academic}
    used_proposals: set[int] = set()
    used_offers: set[int] = set()
    written = 0
    # A script `"with": "academic"` (or "company") goes to the best free pair of that demo
    # login (else to any), before the others take theirs: the login then has a record to
    # move on itself.
    for script in sorted(scripts, key=lambda script: "with" not in script):
        free = [
            (m, p, o)
            for m, p, o in candidates
            if p.id not in used_proposals and o.id not in used_offers
        ]
        side = script.get("with")
        theirs = [
            (m, p, o)
            for m, p, o in free
            if (side == "academic" and p.author_id in login_academics)
            or (side == "company" and o.organisation_id in login_orgs)
        ]
        row = next(iter(theirs or free), None)
        if row is None:
            break
        match, proposal, offer = row
        used_proposals.add(proposal.id)  # type: ignore[arg-type]
        used_offers.add(offer.id)  # type: ignore[arg-type]
        _walk(session, match, proposal, offer, script, now)
        written += 1
    return written


def _walk(
    session: Session,
    match: Match,
    proposal: Proposal,
    offer: Offer,
    script: dict[str, Any],
    now: datetime,
) -> None:
    introduced = now - timedelta(days=script["introduced_days_ago"])
    match.academic_interested_at = match.company_interested_at = introduced
    match.company_contact_id = offer.created_by_id
    match.status = MatchStatus.introduced
    match.introduced_at = introduced
    proposal.status = ProposalStatus.matched
    session.add_all([match, proposal])
    session.flush()
    record = collaborations.start(session=session, match=match, now=introduced)
    movers = {"academic": proposal.author_id, "company": offer.created_by_id}
    most = offer.max_hours_per_project or offer.gpu_hours_budget
    for step in script["steps"]:
        when = now - timedelta(days=step["days_ago"])
        signed = step.get("agreement_signed_days_ago")
        granted = step.get("gpu_hours_granted")
        used = step.get("gpu_hours_used")
        change = collaborations.Change(
            stage=step["stage"],
            agreement_kind=step.get("agreement_kind"),
            agreement_signed_on=(now - timedelta(days=signed)).date() if signed else None,
            gpu_hours_granted=min(granted, most) if granted is not None else None,
            gpu_hours_used=min(used, most) if used is not None else None,
            outcome_link=step.get("outcome_link", ""),
            end_reason=step.get("end_reason"),
            end_reason_text=step.get("end_reason_text", ""),
        )
        collaborations.advance(
            session=session,
            collaboration_id=record.id,  # type: ignore[arg-type]
            user_id=movers[step["by"]],  # type: ignore[arg-type]
            change=change,
            now=when,
            tell=False,
        )
