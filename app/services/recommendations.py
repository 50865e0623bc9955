"""Recommendations: each proposal's k best eligible offers and each offer's k best eligible
proposals, stored as matches with their score, components, ranks and weights version.

A full recompute streams over proposal chunks (`recompute_all`); editing one proposal or offer
re-embeds only its text and recomputes only its row or column, plus the columns or rows whose
top-k it enters or leaves (`refresh_proposal`, `refresh_offer`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from typing import Literal, Protocol

import numpy as np
import sqlalchemy as sa
from sqlmodel import Session, col, select

from app.services import notices
from app.services.embedding_store import SqlEmbeddingStore
from app.services.errors import DomainError, NotFound
from app.services.texts import offer_text, proposal_text, publication_text
from matching import Encoder
from matching.eligibility import (
    CONSTRAINT_LABELS,
    OfferFacts,
    ProposalFacts,
    check_eligibility,
)
from matching.engine import Corpus, Explanation, Matcher
from matching.fit import FitInputs
from matching.lexical import WORD_PATTERN, TfidfSimilarity, explanation_vectorizer
from matching.scoring import ScoreWeights
from models import (
    Match,
    MatchStatus,
    Offer,
    OfferStatus,
    Organisation,
    Proposal,
    ProposalStatus,
    Publication,
    User,
    utcnow,
)

MATCHABLE_PROPOSALS = (ProposalStatus.open, ProposalStatus.matched)
COMMITTED = (MatchStatus.introduced,)
SET_ASIDE = (MatchStatus.declined, MatchStatus.withdrawn)


@dataclass(frozen=True)
class RecomputeSummary:
    proposals: int
    offers: int
    suggested: int
    removed: int
    texts_encoded: int


@dataclass(frozen=True)
class Snapshot:
    """The matchable records, in corpus order, and the corpus built from them."""

    proposals: list[Proposal]
    offers: list[Offer]
    corpus: Corpus

    def proposal_index(self) -> dict[int, int]:
        return {p.id: i for i, p in enumerate(self.proposals)}  # type: ignore[misc]

    def offer_index(self) -> dict[int, int]:
        return {o.id: j for j, o in enumerate(self.offers)}  # type: ignore[misc]


def _date64(value: date | None) -> np.datetime64:
    return np.datetime64(value, "D") if value else np.datetime64("NaT", "D")


def _identities(organisation: Organisation | None, email: str | None = None) -> list[str]:
    names = [email.rsplit("@", 1)[1]] if email and "@" in email else []
    if organisation is not None:
        names += [organisation.name, *organisation.email_domains]
    return names


def visible_proposals() -> tuple[sa.ColumnElement[bool], ...]:
    """Proposals that take part in matching: open or matched, not hidden by an administrator,
    and by an author who is not suspended."""
    return (
        col(Proposal.status).in_(MATCHABLE_PROPOSALS),
        col(Proposal.hidden).is_(False),
        col(Proposal.author_id).in_(select(User.id).where(col(User.active).is_(True))),
    )


def visible_offers() -> tuple[sa.ColumnElement[bool], ...]:
    """Offers that take part in matching: open and not hidden by an administrator."""
    return (Offer.status == OfferStatus.open, col(Offer.hidden).is_(False))


def load_snapshot(*, session: Session) -> Snapshot:
    """Read every open proposal and offer, with the authors' publications and each offer's
    capacity left after the matches already introduced."""
    proposals = list(
        session.exec(select(Proposal).where(*visible_proposals()).order_by(col(Proposal.id)))
    )
    offers = list(session.exec(select(Offer).where(*visible_offers()).order_by(col(Offer.id))))
    authors = {p.author_id for p in proposals}
    users = {u.id: u for u in session.exec(select(User).where(col(User.id).in_(authors)))}
    organisations = {o.id: o for o in session.exec(select(Organisation))}
    publications: dict[int, list[Publication]] = defaultdict(list)
    for publication in session.exec(
        select(Publication)
        .where(col(Publication.author_id).in_(authors))
        .order_by(col(Publication.year).desc(), col(Publication.id))
    ):
        publications[publication.author_id].append(publication)

    hours_committed: dict[int, float] = defaultdict(float)
    projects_committed: dict[int, int] = defaultdict(int)
    for match, hours in session.exec(
        select(Match, Proposal.gpu_hours_needed)
        .join(Proposal, col(Proposal.id) == Match.proposal_id)
        .where(col(Match.status).in_(COMMITTED))
    ):
        hours_committed[match.offer_id] += hours
        projects_committed[match.offer_id] += 1

    def author_identities(proposal: Proposal) -> list[str]:
        author = users.get(proposal.author_id)
        if author is None:
            return []
        return _identities(organisations.get(author.organisation_id), author.email)

    proposal_records = [
        {
            "gpu_hours_needed": p.gpu_hours_needed,
            "gpu_memory_min_gb": p.gpu_memory_min_gb,
            "gpu_type": p.gpu_type,
            "needs_data": p.needs_data,
            "requires_open_publication": p.requires_open_publication,
            "requires_open_source": p.requires_open_source,
            "ip_stance": p.ip_stance.value,
            "identities": author_identities(p),
            "excluded": p.excluded_companies,
        }
        for p in proposals
    ]
    offer_records = [
        {
            "kind": o.kind.value,
            "is_open": o.status == OfferStatus.open,
            "deadline": o.deadline,
            "gpu_memory_gb": o.gpu_memory_gb,
            "gpu_type": o.gpu_type,
            "max_hours_per_project": o.max_hours_per_project,
            "hours_left": max(0.0, o.gpu_hours_budget - hours_committed[o.id]),
            "projects_left": o.max_projects - projects_committed[o.id],
            "publication_terms": o.publication_terms.value,
            "code_release_allowed": o.code_release_allowed,
            "ip_stance": o.ip_stance.value,
            "identities": _identities(organisations.get(o.organisation_id)),
            "excluded": o.excluded_institutions,
        }
        for o in offers
    ]
    proposal_facts = ProposalFacts.from_records(proposal_records)
    offer_facts = OfferFacts.from_records(offer_records)
    fit = FitInputs.from_facts(
        proposal_facts,
        offer_facts,
        proposal_domains=[frozenset(p.data_domains) for p in proposals],
        start=np.array([_date64(p.earliest_start) for p in proposals], dtype="datetime64[D]"),
        duration_months=np.array([p.duration_months for p in proposals], dtype=np.float64),
        offer_domains=[
            frozenset(o.data_domains) if o.kind.offers_data else frozenset() for o in offers
        ],
        available_until=np.array(
            [_date64(o.available_until) for o in offers], dtype="datetime64[D]"
        ),
    )
    corpus = Corpus(
        proposal_texts=[proposal_text(p) for p in proposals],
        offer_texts=[offer_text(o) for o in offers],
        author_publications=[
            [publication_text(pub) for pub in publications[p.author_id]] for p in proposals
        ],
        publication_titles=[[pub.title for pub in publications[p.author_id]] for p in proposals],
        proposals=proposal_facts,
        offers=offer_facts,
        fit=fit,
        set_aside=_set_aside(session, proposals, offers),
    )
    return Snapshot(proposals=proposals, offers=offers, corpus=corpus)


def _set_aside(
    session: Session, proposals: list[Proposal], offers: list[Offer]
) -> dict[int, list[int]]:
    """Pairs a side dismissed (declined or withdrawn), as corpus indices: never suggested
    again, so the next-best offer moves up instead of the list shrinking."""
    proposal_index = {p.id: i for i, p in enumerate(proposals)}
    offer_index = {o.id: j for j, o in enumerate(offers)}
    set_aside: dict[int, list[int]] = defaultdict(list)
    for proposal_id, offer_id in session.exec(
        select(Match.proposal_id, Match.offer_id).where(col(Match.status).in_(SET_ASIDE))
    ):
        if proposal_id in proposal_index and offer_id in offer_index:
            set_aside[proposal_index[proposal_id]].append(offer_index[offer_id])
    return dict(set_aside)


def make_matcher(
    *,
    session: Session,
    encoder: Encoder,
    snapshot: Snapshot,
    weights: ScoreWeights | None = None,
    today: date | None = None,
) -> Matcher:
    """A matcher over `snapshot`. Its lexical score has no IDF, so a pair's lexical score
    depends on the two texts alone: an incremental refresh then agrees with a full recompute
    (IDF would shift every pair's score whenever any text changes). Explanations name shared
    terms with IDF fitted on the snapshot, so rarer, telling words come first."""
    texts = [*snapshot.corpus.proposal_texts, *snapshot.corpus.offer_texts]
    return Matcher(
        encoder,
        weights=weights,
        lexical=TfidfSimilarity(use_idf=False, token_pattern=WORD_PATTERN).fit(texts),
        terms=explanation_vectorizer(texts),
        store=SqlEmbeddingStore(session),
        today=today,
    )


def _apply(
    *,
    session: Session,
    snapshot: Snapshot,
    matcher: Matcher,
    ranks: dict[tuple[int, int], tuple[int | None, int | None]],
    existing: Iterable[Match],
    announce: bool = False,
) -> tuple[int, int]:
    """Make the stored matches among `existing` agree with `ranks` (corpus indices).

    A pair is kept when it is in either top-k or when either side has acted on it; kept pairs
    get fresh scores, ranks and the weights version. With `announce`, a pair that enters a
    side's list records new-match events for the people on that side (`notices`).
    Returns (kept, removed)."""
    proposal_index, offer_index = snapshot.proposal_index(), snapshot.offer_index()
    stored: dict[tuple[int, int], Match] = {}
    removed = 0
    for match in existing:
        key = (proposal_index.get(match.proposal_id, -1), offer_index.get(match.offer_id, -1))
        # Acted on: a side responded, or a published allocation round assigned the pair.
        acted_on = match.status != MatchStatus.suggested or match.allocation_round_id is not None
        if key[0] >= 0 and key[1] >= 0 and (key in ranks or acted_on):
            stored[key] = match
        elif not acted_on:
            session.delete(match)
            removed += 1
        else:
            # Acted on, but one side is no longer open: keep the record, drop it from every
            # top-k so it cannot raise the bar newcomers must clear.
            match.rank_for_proposal = match.rank_for_offer = None
            session.add(match)
    pairs = sorted(set(ranks) | set(stored))
    offers_of: dict[int, list[int]] = defaultdict(list)
    for p, o in pairs:
        offers_of[p].append(o)
    version = matcher.weights.version
    arrivals: list[tuple[Match, bool, bool]] = []
    for p, offers in offers_of.items():
        for o, explanation in zip(offers, matcher.explain(snapshot.corpus, p, offers), strict=True):
            key = (p, o)
            match = stored.get(key) or Match(
                proposal_id=snapshot.proposals[p].id, offer_id=snapshot.offers[o].id
            )
            before = (match.rank_for_proposal, match.rank_for_offer)
            details = explanation.to_dict()
            match.score = details["score"]
            match.components = details["components"]
            match.explanation = details
            match.algorithm_version = version
            match.rank_for_proposal, match.rank_for_offer = ranks.get(key, (None, None))
            session.add(match)
            # New to a side: it just entered that side's list.
            academic = before[0] is None and match.rank_for_proposal is not None
            company = before[1] is None and match.rank_for_offer is not None
            if academic or company:
                arrivals.append((match, academic, company))
    session.flush()
    if announce:
        notices.record_arrivals(
            session=session,
            arrivals=[notices.Arrival(m, academic, company) for m, academic, company in arrivals],
        )
    return len(pairs), removed


def recompute_all(
    *,
    session: Session,
    encoder: Encoder,
    k: int,
    weights: ScoreWeights | None = None,
    today: date | None = None,
    announce: bool = False,
) -> RecomputeSummary:
    """Recompute every recommendation; suggestions that left every top-k are removed.
    Without `announce` (the default: a bulk recompute after loading data or changing the
    weights) no new-match mails follow; changes to single items always announce."""
    encoded_before = encoder.encoded_count
    snapshot = load_snapshot(session=session)
    matcher = make_matcher(
        session=session, encoder=encoder, snapshot=snapshot, weights=weights, today=today
    )
    ranks = matcher.recommend(snapshot.corpus, k).ranks()
    kept, removed = _apply(
        session=session,
        snapshot=snapshot,
        matcher=matcher,
        ranks=ranks,
        existing=session.exec(select(Match)),
        announce=announce,
    )
    return RecomputeSummary(
        proposals=len(snapshot.proposals),
        offers=len(snapshot.offers),
        suggested=kept,
        removed=removed,
        texts_encoded=encoder.encoded_count - encoded_before,
    )


def _refresh(
    *,
    session: Session,
    snapshot: Snapshot,
    matcher: Matcher,
    rows: np.ndarray,
    columns: np.ndarray,
    k: int,
    touched_match_filter: object,
) -> tuple[int, int]:
    """Recompute the rows `rows` and columns `columns` (corpus indices) and reconcile every
    stored match touching them; other rows and columns keep their stored ranks."""
    corpus = snapshot.corpus
    row_best = matcher.recommend(corpus, k, rows=rows).best_offers() if len(rows) else {}
    column_best = (
        matcher.recommend(corpus, k, columns=columns).best_proposals() if len(columns) else {}
    )
    existing = list(session.exec(select(Match).where(touched_match_filter)))  # type: ignore[arg-type]
    proposal_index, offer_index = snapshot.proposal_index(), snapshot.offer_index()
    ranks: dict[tuple[int, int], tuple[int | None, int | None]] = {}
    for match in existing:
        key = (proposal_index.get(match.proposal_id, -1), offer_index.get(match.offer_id, -1))
        if key[0] >= 0 and key[1] >= 0:
            ranks[key] = (match.rank_for_proposal, match.rank_for_offer)
    for p, best in row_best.items():
        for key in [key for key in ranks if key[0] == p]:
            ranks[key] = (None, ranks[key][1])
        for rank, o in enumerate(best, start=1):
            ranks[(p, o)] = (rank, ranks.get((p, o), (None, None))[1])
    for o, best in column_best.items():
        for key in [key for key in ranks if key[1] == o]:
            ranks[key] = (ranks[key][0], None)
        for rank, p in enumerate(best, start=1):
            ranks[(p, o)] = (ranks.get((p, o), (None, None))[0], rank)
    ranks = {key: value for key, value in ranks.items() if value != (None, None)}
    return _apply(
        session=session,
        snapshot=snapshot,
        matcher=matcher,
        ranks=ranks,
        existing=existing,
        announce=True,
    )


def _threshold(matches: Iterable[Match], attribute: str, k: int) -> float:
    """The score an outsider must reach to enter a top-k: the k-th best stored score (or
    -inf while the list has fewer than k entries)."""
    scores = sorted((m.score for m in matches if getattr(m, attribute) is not None), reverse=True)
    return scores[k - 1] if len(scores) >= k else -np.inf


def _refresh_one(
    *,
    session: Session,
    encoder: Encoder,
    side: Literal["proposal", "offer"],
    item_id: int,
    k: int,
    weights: ScoreWeights | None,
    today: date | None,
) -> RecomputeSummary:
    """Recompute one proposal's row (or one offer's column) and every column (row) whose
    top-k it enters or leaves: those where it was ranked, and those whose k-th best stored
    score its new score reaches. Rows and columns it cannot affect keep their stored ranks."""
    own, other = ("proposal_id", "offer_id") if side == "proposal" else ("offer_id", "proposal_id")
    other_rank = "rank_for_offer" if side == "proposal" else "rank_for_proposal"
    encoded_before = encoder.encoded_count
    started = utcnow()
    snapshot = load_snapshot(session=session)
    matcher = make_matcher(
        session=session, encoder=encoder, snapshot=snapshot, weights=weights, today=today
    )
    own_index = snapshot.proposal_index() if side == "proposal" else snapshot.offer_index()
    other_index = snapshot.offer_index() if side == "proposal" else snapshot.proposal_index()
    others = snapshot.offers if side == "proposal" else snapshot.proposals

    stored = list(session.exec(select(Match)))
    by_other: dict[int, list[Match]] = defaultdict(list)
    for match in stored:
        if getattr(match, own) != item_id:
            by_other[getattr(match, other)].append(match)
    affected = {
        getattr(m, other) for m in stored if getattr(m, own) == item_id and getattr(m, other_rank)
    }
    mine = np.array([], dtype=np.int64)
    index = own_index.get(item_id)
    if index is not None and len(others):
        mine = np.array([index])
        if side == "proposal":
            scores = matcher.block(snapshot.corpus, mine).masked()[0]
        else:
            everyone = np.arange(snapshot.corpus.shape[0])
            scores = matcher.block(snapshot.corpus, everyone, mine).masked()[:, 0]
        for position, record in enumerate(others):
            if np.isfinite(scores[position]) and scores[position] >= _threshold(
                by_other[record.id],
                other_rank,
                k,  # type: ignore[arg-type]
            ):
                affected.add(record.id)
    theirs = np.array(sorted(other_index[i] for i in affected if i in other_index), dtype=np.int64)
    their_ids = [others[i].id for i in theirs]
    rows, columns = (mine, theirs) if side == "proposal" else (theirs, mine)
    kept, removed = _refresh(
        session=session,
        snapshot=snapshot,
        matcher=matcher,
        rows=rows,
        columns=columns,
        k=k,
        touched_match_filter=(getattr(Match, own) == item_id)
        | col(getattr(Match, other)).in_(their_ids),
    )
    # Every change requested before `started` is now reflected in its matches.
    table = (Proposal if side == "proposal" else Offer).__table__
    session.execute(
        sa.update(table)
        .where(table.c.id == item_id)
        .values(rematched_at=started, updated_at=table.c.updated_at)
    )
    return RecomputeSummary(
        proposals=len(rows),
        offers=len(columns),
        suggested=kept,
        removed=removed,
        texts_encoded=encoder.encoded_count - encoded_before,
    )


def refresh_proposal(
    *,
    session: Session,
    encoder: Encoder,
    proposal_id: int,
    k: int,
    weights: ScoreWeights | None = None,
    today: date | None = None,
) -> RecomputeSummary:
    """After one proposal was created, edited, opened or closed: re-embed its text, recompute
    its row, and recompute the columns of the offers whose top-k it enters or leaves."""
    if session.get(Proposal, proposal_id) is None:
        raise NotFound(f"No proposal {proposal_id}")
    return _refresh_one(
        session=session,
        encoder=encoder,
        side="proposal",
        item_id=proposal_id,
        k=k,
        weights=weights,
        today=today,
    )


def refresh_offer(
    *,
    session: Session,
    encoder: Encoder,
    offer_id: int,
    k: int,
    weights: ScoreWeights | None = None,
    today: date | None = None,
) -> RecomputeSummary:
    """After one offer was created, edited, opened or closed: re-embed its text, recompute its
    column, and recompute the rows of the proposals whose top-k it enters or leaves."""
    if session.get(Offer, offer_id) is None:
        raise NotFound(f"No offer {offer_id}")
    return _refresh_one(
        session=session,
        encoder=encoder,
        side="offer",
        item_id=offer_id,
        k=k,
        weights=weights,
        today=today,
    )


def ineligible_pairs(
    *, session: Session, pairs: Iterable[tuple[int, int]], today: date | None = None
) -> set[tuple[int, int]]:
    """The (proposal id, offer id) pairs that fail a hard constraint now, or whose proposal or
    offer left matching: things change between a suggestion and the moment someone acts on
    it (an exclusion added, terms tightened, capacity promised elsewhere)."""
    pairs = list(pairs)
    if not pairs:
        return set()
    snapshot = load_snapshot(session=session)
    proposal_index, offer_index = snapshot.proposal_index(), snapshot.offer_index()
    failed: set[tuple[int, int]] = set()
    for proposal_id, offer_id in pairs:
        p, o = proposal_index.get(proposal_id), offer_index.get(offer_id)
        if p is None or o is None:
            failed.add((proposal_id, offer_id))
            continue
        eligibility = check_eligibility(
            snapshot.corpus.proposals.take(np.array([p])),
            snapshot.corpus.offers.take(np.array([o])),
            today=today,
        )
        if not eligibility.mask[0, 0]:
            failed.add((proposal_id, offer_id))
    return failed


class Rematcher(Protocol):
    """What services call after a change that moves recommendations: now (`Rematch`) or
    after the commit, on the job queue (`DeferredRematch`)."""

    def proposal(self, session: Session, proposal_id: int) -> object: ...

    def offer(self, session: Session, offer_id: int) -> object: ...

    def author(self, session: Session, author_id: int) -> None: ...


# `session.info` key: the (kind, id) pairs a transaction asked to recompute after its commit.
REMATCH_REQUESTS = "tandem.rematch_requests"


def _authors_proposals(session: Session, author_id: int) -> list[int]:
    return [
        proposal_id  # type: ignore[misc]
        for proposal_id in session.exec(
            select(Proposal.id)
            .where(Proposal.author_id == author_id, col(Proposal.status).in_(MATCHABLE_PROPOSALS))
            .order_by(col(Proposal.id))
        ).all()
    ]


class DeferredRematch:
    """Marks the item as waiting for new matches (`matching_pending`) and records the request
    in `session.info`; the app queues the work once the transaction has committed."""

    def proposal(self, session: Session, proposal_id: int) -> None:
        self._defer(session, Proposal, "proposal", proposal_id)

    def offer(self, session: Session, offer_id: int) -> None:
        self._defer(session, Offer, "offer", offer_id)

    def author(self, session: Session, author_id: int) -> None:
        for proposal_id in _authors_proposals(session, author_id):
            self.proposal(session, proposal_id)

    @staticmethod
    def _defer(
        session: Session, model: type[Proposal] | type[Offer], kind: str, item_id: int
    ) -> None:
        item = session.get(model, item_id)
        if item is None:
            raise NotFound(f"No {kind} {item_id}")
        item.rematch_requested_at = utcnow()
        session.add(item)
        session.flush()
        requests = session.info.setdefault(REMATCH_REQUESTS, [])
        if (kind, item_id) not in requests:
            requests.append((kind, item_id))


@dataclass(frozen=True)
class Rematch:
    """What re-ranking after a change needs (the encoder, k, the weights), bundled so that
    services can take one argument and stay Flask-free."""

    encoder: Encoder
    k: int
    weights: ScoreWeights | None = None
    today: date | None = None

    def proposal(self, session: Session, proposal_id: int) -> RecomputeSummary:
        return refresh_proposal(
            session=session,
            encoder=self.encoder,
            proposal_id=proposal_id,
            k=self.k,
            weights=self.weights,
            today=self.today,
        )

    def offer(self, session: Session, offer_id: int) -> RecomputeSummary:
        return refresh_offer(
            session=session,
            encoder=self.encoder,
            offer_id=offer_id,
            k=self.k,
            weights=self.weights,
            today=self.today,
        )

    def author(self, session: Session, author_id: int) -> None:
        """Every matchable proposal of the author: their publications or standing changed."""
        for proposal_id in _authors_proposals(session, author_id):
            self.proposal(session, proposal_id)


def explain_pair(
    *,
    session: Session,
    encoder: Encoder,
    proposal_id: int,
    offer_id: int,
    weights: ScoreWeights | None = None,
    today: date | None = None,
) -> Explanation:
    """The full explanation of one (proposal, offer) pair, eligible or not."""
    if session.get(Proposal, proposal_id) is None:
        raise NotFound(f"No proposal {proposal_id}")
    if session.get(Offer, offer_id) is None:
        raise NotFound(f"No offer {offer_id}")
    snapshot = load_snapshot(session=session)
    p = snapshot.proposal_index().get(proposal_id)
    o = snapshot.offer_index().get(offer_id)
    if p is None:
        raise DomainError(f"Proposal {proposal_id} is not open, so it is not matched")
    if o is None:
        raise DomainError(f"Offer {offer_id} is not open, so it is not matched")
    matcher = make_matcher(
        session=session, encoder=encoder, snapshot=snapshot, weights=weights, today=today
    )
    return matcher.explain(snapshot.corpus, p, [o])[0]


# Conflict-of-interest and exclusion counts are left out of public summaries: a company could
# otherwise learn an anonymous author's institution by excluding guesses one at a time.
IDENTITY_CONSTRAINTS = frozenset({"same_organisation", "excluded_by_offer", "excluded_by_proposal"})


@dataclass(frozen=True)
class EligibilitySummary:
    """How many counterparts are eligible, and how many fail each constraint (label, count),
    most common first. A counterpart failing several constraints counts under each; the
    identity-revealing constraints are never itemised."""

    candidates: int
    eligible: int
    failures: list[tuple[str, int]]


def eligibility_summary(
    *,
    session: Session,
    proposal_id: int | None = None,
    offer_id: int | None = None,
    today: date | None = None,
) -> EligibilitySummary:
    """Why a proposal's (or an offer's) list of recommendations is as short as it is.

    Needs no embeddings: only the hard constraints are evaluated."""
    snapshot = load_snapshot(session=session)
    corpus = snapshot.corpus
    if proposal_id is not None:
        index = snapshot.proposal_index().get(proposal_id)
        if index is None:
            return EligibilitySummary(0, 0, [])
        result = check_eligibility(
            corpus.proposals.take(np.array([index])), corpus.offers, today=today or date.today()
        )
        axis_failures = {name: int(m[0].sum()) for name, m in result.failures.items()}
        eligible, candidates = int(result.mask[0].sum()), len(snapshot.offers)
    else:
        index = snapshot.offer_index().get(offer_id)  # type: ignore[arg-type]
        if index is None:
            return EligibilitySummary(0, 0, [])
        result = check_eligibility(
            corpus.proposals, corpus.offers.take(np.array([index])), today=today or date.today()
        )
        axis_failures = {name: int(m[:, 0].sum()) for name, m in result.failures.items()}
        eligible, candidates = int(result.mask[:, 0].sum()), len(snapshot.proposals)
    failures = sorted(
        (
            (CONSTRAINT_LABELS[name], count)
            for name, count in axis_failures.items()
            if count and name not in IDENTITY_CONSTRAINTS
        ),
        key=lambda item: (-item[1], item[0]),
    )
    return EligibilitySummary(candidates=candidates, eligible=eligible, failures=failures)
