"""A synthetic catalogue of a chosen size, for benchmarks and load tests: organisations,
academics with publications, company members, proposals and offers across research areas,
people's responses to a share of the recommended pairs (matches in every state, as the match
services leave them), and the recommendations the app's own recompute makes around them.

Everything is drawn from one seed (`random.Random`), so a seed gives the same catalogue on an
empty database; only secrets differ between runs: each account gets a random, unusable
password hash (an argon2id string whose digest is random bytes, so no password matches it,
not even one that we know) and a random session identifier. Email domains end in `.example`,
which never resolves, so no mail can reach anyone.

Rows are written with bulk Core inserts; the ranking is the app's own (`corpus.make_matcher`,
`recommendations.recompute_all`) with the encoder the caller chose, which dominates the time
at scale. Flushes, never commits.
"""

from __future__ import annotations

import math
import random
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, func, select

from app.services import recommendations
from app.services.synthetic_responses import MATCH_SHARES, respond
from app.services.synthetic_support import (
    _capitalised,
    _count_by,
    _insert,
    _Person,
    _slug,
    _unique,
    _unique_domain,
    table_counts,
    unusable_password_hash,
)
from app.services.synthetic_vocabulary import (
    AREAS,
    CHALLENGES,
    COMPANY_FIRST,
    COMPANY_SECOND,
    COMPUTE_USES,
    FINDINGS,
    FIRST_NAMES,
    GOALS,
    GPUS,
    HOURS_PER_PROJECT,
    LAST_NAMES,
    OTHER_ORGANISATIONS,
    PLACES,
    PUBLICATION_PATTERNS,
    TITLE_PATTERNS,
    UNIVERSITY_PATTERNS,
    Area,
)
from matching import Encoder
from matching.scoring import ScoreWeights
from models import (
    AccessMode,
    CollaborationKind,
    Embedding,
    IpStance,
    LabResourceLevel,
    Match,
    NotificationPreference,
    Offer,
    OfferKind,
    OfferStatus,
    Organisation,
    OrganisationKind,
    Proposal,
    ProposalStatus,
    Publication,
    PublicationTerms,
    Role,
    User,
    utcnow,
)

PROPOSALS_PER_ACADEMIC = 2  # on average; every academic writes at least one
ACADEMICS_PER_UNIVERSITY = 100
OFFERS_PER_COMPANY = 8
REPORTED_TABLES: tuple[type[Any], ...] = (
    Organisation,
    User,
    Publication,
    Proposal,
    Offer,
    Match,
    Embedding,
)


@dataclass(frozen=True)
class CatalogueSize:
    """How much to generate: proposals and offers, and publications per academic."""

    proposals: int
    offers: int
    publications_per_academic: int
    seed: int = 0


@dataclass(frozen=True)
class CatalogueReport:
    """What was written: rows inserted per table, responses recorded per match state, the
    counts of the whole database afterwards, and seconds per phase in the order they ran."""

    inserted: dict[str, int]
    moved: dict[str, int]
    table_counts: dict[str, int]
    match_states: dict[str, int]
    proposal_states: dict[str, int]
    offer_states: dict[str, int]
    timings: dict[str, float] = field(default_factory=dict)
    texts_encoded: int = 0


def holds_catalogue(*, session: Session) -> bool:
    """True when any proposal or offer exists: generating into it would mix synthetic
    records with real ones."""
    return any(
        session.exec(select(func.count()).select_from(model)).one() for model in (Proposal, Offer)
    )


def build_catalogue(
    *,
    session: Session,
    size: CatalogueSize,
    encoder: Encoder,
    k: int,
    weights: ScoreWeights | None = None,
    today: date | None = None,
    progress: Callable[[str, float], None] | None = None,
) -> CatalogueReport:
    """Insert a catalogue of `size`; have people respond to a share of the pairs the
    engine recommends with `encoder` (`respond`); then recommend as the app does after
    those responses (declined pairs set aside, introduced ones using up capacity).

    `progress(phase, seconds)` is called as each phase ends. Flushes, never commits."""
    today = today or date.today()
    timings: dict[str, float] = {}

    def phase(name: str, started: float) -> None:
        timings[name] = time.perf_counter() - started
        if progress is not None:
            progress(name, timings[name])

    inserted, proposal_ids = _Generator(session, size, today).run(phase)
    encoded_before = encoder.encoded_count

    started = time.perf_counter()
    moved = respond(
        session=session,
        encoder=encoder,
        k=k,
        weights=weights,
        proposal_ids=proposal_ids,
        seed=size.seed,
        today=today,
    )
    phase("responses", started)

    started = time.perf_counter()
    recommendations.recompute_all(
        session=session, encoder=encoder, k=k, weights=weights, today=today
    )
    phase("recommendations", started)

    return CatalogueReport(
        inserted=inserted,
        moved={state.value: moved.get(state, 0) for state in MATCH_SHARES},
        table_counts=table_counts(session=session),
        match_states=_count_by(session, Match.status),
        proposal_states=_count_by(session, Proposal.status),
        offer_states=_count_by(session, Offer.status),
        timings=timings,
        texts_encoded=encoder.encoded_count - encoded_before,
    )


class _Generator:
    """Draws every record from one `random.Random(seed)` and inserts them table by table."""

    def __init__(self, session: Session, size: CatalogueSize, today: date) -> None:
        self.session = session
        self.size = size
        self.today = today
        self.now = utcnow()
        self.rng = random.Random(size.seed)
        self.taken_names = {n.lower() for n in session.exec(select(Organisation.name))}
        self.taken_emails = set(session.exec(select(User.email)))
        self.taken_domains: set[str] = set()
        for domains in session.exec(select(Organisation.email_domains)):
            self.taken_domains.update(domains or [])

    def run(self, phase: Callable[[str, float], None]) -> tuple[dict[str, int], list[int]]:
        size, rng = self.size, self.rng
        academics = math.ceil(size.proposals / PROPOSALS_PER_ACADEMIC)
        started = time.perf_counter()
        universities = self._organisations(
            OrganisationKind.university,
            math.ceil(academics / ACADEMICS_PER_UNIVERSITY),
            [p.format(place=place) for p in UNIVERSITY_PATTERNS for place in PLACES],
            verified_share=0.95,
        )
        companies = self._organisations(
            OrganisationKind.company,
            math.ceil(size.offers / OFFERS_PER_COMPANY),
            [f"{a} {b}" for a in COMPANY_FIRST for b in COMPANY_SECOND],
            verified_share=0.8,
        )
        others = self._organisations(
            OrganisationKind.other,
            math.ceil((len(universities) + len(companies)) / 40),
            [p.format(place=place) for p in OTHER_ORGANISATIONS for place in PLACES],
            verified_share=1.0,
        )
        phase("organisations", started)

        started = time.perf_counter()
        scholars = self._people(Role.academic, [rng.choice(universities) for _ in range(academics)])
        members = self._people(
            Role.company, [org for org in companies for _ in range(rng.randint(1, 3))]
        )
        for person in scholars:
            person.areas = tuple(rng.sample(AREAS, rng.choice((1, 1, 2))))
        phase("users", started)

        started = time.perf_counter()
        publications = self._publications(scholars)
        phase("publications", started)

        started = time.perf_counter()
        company_names = {
            org_id: name
            for org_id, name in self.session.execute(
                select(Organisation.id, Organisation.name).where(
                    col(Organisation.id).in_(companies)
                )
            )
        }
        proposal_ids = self._proposals(scholars, sorted(company_names.values()))
        phase("proposals", started)

        started = time.perf_counter()
        offers = self._offers(companies, company_names, members, universities)
        phase("offers", started)
        inserted = {
            "organisation": len(universities) + len(companies) + len(others),
            "user": len(scholars) + len(members),
            "publication": publications,
            "proposal": len(proposal_ids),
            "offer": offers,
        }
        return inserted, proposal_ids

    # -- records ------------------------------------------------------------------------

    def _created(self, max_days: int = 540) -> dict[str, datetime]:
        created = self.now - timedelta(days=self.rng.uniform(1, max_days))
        updated = min(self.now, created + timedelta(days=self.rng.uniform(0, 30)))
        return {"created_at": created, "updated_at": updated}

    def _organisations(
        self, kind: OrganisationKind, count: int, names: list[str], *, verified_share: float
    ) -> list[int]:
        pool = list(names)
        self.rng.shuffle(pool)
        rows = []
        for index in range(count):
            name = _unique(pool[index % len(pool)], self.taken_names)
            domain = _unique_domain(_slug(name), self.taken_domains)
            rows.append(
                {
                    "name": name,
                    "kind": kind.value,
                    "email_domains": [domain],
                    "verified": self.rng.random() < verified_share,
                    **self._created(900),
                }
            )
        return _insert(self.session, Organisation, rows)

    def _people(self, role: Role, organisations: list[int]) -> list[_Person]:
        domains = {
            org_id: domains[0]
            for org_id, domains in self.session.execute(
                select(Organisation.id, Organisation.email_domains).where(
                    col(Organisation.id).in_(set(organisations))
                )
            )
        }
        preferences = list(NotificationPreference)
        rows = []
        for organisation in organisations:
            first, last = self.rng.choice(FIRST_NAMES), self.rng.choice(LAST_NAMES)
            local, number = f"{first}.{last}".lower(), 1
            email = f"{local}@{domains[organisation]}"
            while email in self.taken_emails:
                number += 1
                email = f"{local}{number}@{domains[organisation]}"
            self.taken_emails.add(email)
            created = self._created(900)
            rows.append(
                {
                    "email": email,
                    "name": f"{first} {last}",
                    "role": role.value,
                    "notification_preference": self.rng.choices(preferences, weights=(5, 3, 2, 1))[
                        0
                    ].value,
                    "notify_min_score": self.rng.choice((0.2, 0.3, 0.3, 0.4)),
                    "password_hash": unusable_password_hash(),
                    "fs_uniquifier": uuid.uuid4().hex,
                    "active": True,
                    "confirmed_at": created["created_at"] if self.rng.random() < 0.97 else None,
                    "organisation_id": organisation,
                    **created,
                }
            )
        ids = _insert(self.session, User, rows)
        return [_Person(id=i, organisation=o) for i, o in zip(ids, organisations, strict=True)]

    def _words(self, area: Area) -> dict[str, str]:
        rng = self.rng
        method, topic, data = (
            rng.choice(area.methods),
            rng.choice(area.topics),
            rng.choice(area.data),
        )
        return {
            "method": method,
            "Method": _capitalised(method),
            "topic": topic,
            "Topic": _capitalised(topic),
            "data": data,
        }

    def _publications(self, scholars: list[_Person]) -> int:
        rng, per_author = self.rng, self.size.publications_per_academic
        rows = []
        for person in scholars:
            for _ in range(per_author):
                area = rng.choice(person.areas)
                words = self._words(area)
                abstract = " ".join(
                    (
                        f"{words['Topic']} is hard because {rng.choice(CHALLENGES)}.",
                        f"We study {words['method']} on {words['data']} and show that "
                        f"{rng.choice(FINDINGS)}.",
                        f"We release {rng.choice(area.outputs)}.",
                    )
                )
                rows.append(
                    {
                        "title": rng.choice(PUBLICATION_PATTERNS).format(**words),
                        "abstract": abstract,
                        "year": self.today.year - rng.randint(0, 10),
                        "venue": rng.choice(area.venues),
                        "author_id": person.id,
                        **self._created(),
                    }
                )
        if rows:
            self.session.execute(sa.insert(Publication.__table__), rows)
        return len(rows)

    def _proposals(self, scholars: list[_Person], company_names: Sequence[str]) -> list[int]:
        rng, count = self.rng, self.size.proposals
        if not count:
            return []
        authors = scholars + [rng.choice(scholars) for _ in range(count - len(scholars))]
        rng.shuffle(authors)
        rows = []
        for author in authors:
            area = rng.choice(author.areas) if rng.random() < 0.85 else rng.choice(AREAS)
            areas = [area.name]
            if rng.random() < 0.3:
                areas.append(rng.choice([a for a in AREAS if a is not area]).name)
            words = self._words(area)
            needs_compute = rng.random() < 0.85
            needs_data = rng.random() < 0.4 or not needs_compute
            low, high = area.gpu_hours
            hours = round(math.exp(rng.uniform(math.log(low), math.log(high))), -2)
            hours = int(hours) if needs_compute else 0
            memory = rng.choice(area.memory_gb) if needs_compute and rng.random() < 0.6 else None
            gpu_type = None
            if needs_compute and rng.random() < 0.25:
                gpu_type = rng.choice([name for name, gb in GPUS if gb >= (memory or 0)])
            domains = rng.sample(area.domains, min(len(area.domains), rng.choice((1, 1, 2))))
            sentences = [
                f"{words['Topic']} matters for {domains[0]}, yet progress is slow because "
                f"{rng.choice(CHALLENGES)}.",
                f"Our group has previously shown that {rng.choice(FINDINGS)}.",
                f"We propose to combine {words['method']} with "
                f"{rng.choice(area.methods)} to {rng.choice(GOALS)}.",
            ]
            if needs_compute:
                sentences.append(
                    f"The project needs about {hours:,} GPU hours, mainly for "
                    f"{rng.choice(COMPUTE_USES)}."
                )
            if needs_data:
                sentences.append(f"We are looking for a partner able to share {words['data']}.")
            sentences.append(
                f"Outputs will include {rng.choice(area.outputs)} and a paper at "
                f"{rng.choice(area.venues)}."
            )
            kinds = [CollaborationKind.compute] if needs_compute else []
            kinds += [CollaborationKind.data] if needs_data else []
            kinds += rng.sample(
                [
                    CollaborationKind.co_authorship,
                    CollaborationKind.internship,
                    CollaborationKind.engineering_support,
                    CollaborationKind.advisory,
                ],
                rng.randint(0, 2),
            )
            status = rng.choices(
                (ProposalStatus.open, ProposalStatus.draft, ProposalStatus.closed),
                weights=(80, 10, 10),
            )[0]
            rows.append(
                {
                    "title": rng.choice(TITLE_PATTERNS).format(**words),
                    "abstract": " ".join(sentences),
                    "research_areas": areas,
                    "gpu_hours_needed": hours,
                    "gpu_memory_min_gb": memory,
                    "gpu_type": gpu_type,
                    "duration_months": rng.choice((3, 6, 6, 9, 12, 12, 18, 24)),
                    "data_need": (
                        f"{_capitalised(words['data'])}, at least {rng.choice((6, 12, 24))} "
                        "months of records"
                        if needs_data
                        else ""
                    ),
                    "data_domains": domains if needs_data else [],
                    "collaboration_kinds": [kind.value for kind in kinds],
                    "requires_open_publication": rng.random() < 0.75,
                    "requires_open_source": rng.random() < 0.35,
                    "ip_stance": rng.choices(list(IpStance), weights=(60, 30, 10))[0].value,
                    "earliest_start": (
                        self.today + timedelta(days=rng.randint(0, 180))
                        if rng.random() < 0.7
                        else None
                    ),
                    "lab_resource_level": rng.choices(list(LabResourceLevel), weights=(25, 55, 20))[
                        0
                    ].value,
                    "excluded_companies": (
                        [rng.choice(company_names)] if company_names and rng.random() < 0.03 else []
                    ),
                    "hidden": status == ProposalStatus.open and rng.random() < 0.005,
                    "author_id": author.id,
                    "status": status.value,
                    **self._created(),
                }
            )
        return _insert(self.session, Proposal, rows)

    def _offers(
        self,
        companies: list[int],
        company_names: dict[int, str],
        members: list[_Person],
        universities: list[int],
    ) -> int:
        rng = self.rng
        if not self.size.offers:
            return 0
        staff: dict[int, list[int]] = defaultdict(list)
        for person in members:
            staff[person.organisation].append(person.id)
        focus = {org: tuple(rng.sample(AREAS, rng.randint(1, 3))) for org in companies}
        university_domains = [
            domains[0]
            for (domains,) in self.session.execute(
                select(Organisation.email_domains)
                .where(col(Organisation.id).in_(universities))
                .order_by(col(Organisation.id))
            )
        ]
        rows = []
        # Every company makes at least one offer; the rest go to companies at random.
        owners = companies + [
            rng.choice(companies) for _ in range(self.size.offers - len(companies))
        ]
        for company in owners[: self.size.offers]:
            rows.append(self._offer(company, company_names[company], focus[company], staff))
            if university_domains and rng.random() < 0.03:
                rows[-1]["excluded_institutions"] = [rng.choice(university_domains)]
        rng.shuffle(rows)
        return len(_insert(self.session, Offer, rows))

    def _offer(
        self, company: int, name: str, areas: tuple[Area, ...], staff: dict[int, list[int]]
    ) -> dict[str, Any]:
        rng = self.rng
        area = rng.choice(areas)
        words = self._words(area)
        kind = rng.choices(list(OfferKind), weights=(50, 25, 25))[0]
        gpu, memory, per_project, projects, budget = None, None, 0, rng.randint(1, 12), 0
        sentences = []
        if kind.offers_compute:
            gpu, memory = rng.choice(GPUS)
            per_project = rng.choice(HOURS_PER_PROJECT)
            budget = max(
                per_project, int(round(per_project * projects * rng.uniform(0.7, 1.0), -2))
            )
            sentences += [
                f"{name} is setting aside {budget:,} {gpu} GPU hours for university groups "
                f"working on {area.name}.",
                f"Each accepted project receives up to {per_project:,} hours on {memory} GB "
                f"{gpu} nodes.",
            ]
        sentences.append(
            f"We are particularly interested in {words['topic']} and "
            f"{rng.choice(area.topics)}, and in work using {words['method']}."
        )
        if kind.offers_data:
            sentences.append(f"We share {words['data']} with academic partners.")
        publication = rng.choices(list(PublicationTerms), weights=(60, 30, 10))[0]
        sentences.append(
            {
                PublicationTerms.allowed: "There is no review of publications.",
                PublicationTerms.after_review: "We review papers for confidential information "
                "within 30 days before submission.",
                PublicationTerms.not_allowed: "Results stay confidential to the partners.",
            }[publication]
        )
        if kind == OfferKind.compute:
            title = rng.choice(
                (
                    f"{gpu} hours for {area.name} research",
                    f"{name} research credits: {gpu} GPUs for {words['topic']}",
                    f"Compute grants for {words['topic']}",
                )
            )
        elif kind == OfferKind.data:
            title = f"{_capitalised(words['data'])} for research on {words['topic']}"
        else:
            title = f"{gpu} hours and {words['data']} for {words['topic']}"
        status = rng.choices(
            (OfferStatus.open, OfferStatus.draft, OfferStatus.closed), weights=(85, 5, 10)
        )[0]
        if status == OfferStatus.closed and rng.random() < 0.5:
            deadline: date | None = self.today - timedelta(days=rng.randint(1, 200))
        elif rng.random() < 0.85:
            deadline = self.today + timedelta(days=rng.randint(30, 540))
        else:
            deadline = None
        until = (deadline or self.today) + timedelta(days=rng.randint(90, 365))
        domains = rng.sample(area.domains, min(len(area.domains), rng.choice((1, 2))))
        return {
            "kind": kind.value,
            "title": title[:300],
            "description": " ".join(sentences),
            "gpu_type": gpu,
            "gpu_memory_gb": memory,
            "gpu_hours_budget": budget,
            "max_hours_per_project": per_project,
            "max_projects": projects,
            "dataset_description": (
                f"{_capitalised(words['data'])} covering {' and '.join(domains)}: about "
                f"{rng.choice(('ten thousand', 'fifty thousand', 'a million', '20 million'))} "
                f"records over {rng.randint(1, 10)} years."
                if kind.offers_data
                else ""
            ),
            "data_domains": domains if kind.offers_data else [],
            "access_mode": rng.choices(list(AccessMode), weights=(60, 15, 25))[0].value,
            "publication_terms": publication.value,
            "ip_stance": rng.choices(list(IpStance), weights=(55, 35, 10))[0].value,
            "nda_required": rng.random() < (0.5 if kind.offers_data else 0.15),
            "code_release_allowed": rng.random() < 0.8,
            "deadline": deadline,
            "available_until": until if rng.random() < 0.7 else None,
            "excluded_institutions": [],
            "hidden": status == OfferStatus.open and rng.random() < 0.005,
            "organisation_id": company,
            "created_by_id": rng.choice(staff[company]) if staff[company] else None,
            "status": status.value,
            **self._created(),
        }
