"""The demo data set: fictional universities, companies, people, proposals and offers."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from argon2 import PasswordHasher
from sqlmodel import Session, func, select

from models import (
    Offer,
    OfferCreate,
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
