"""Search proposals and offers by meaning and by keyword.

Only public items are ever candidates (`visible_proposals()` / `visible_offers()`), and a
proposal is searched through its own text alone: never its author's name, email or
publications, which must stay hidden before an introduction.

Ranking blends two signals, both in [0, 1]:

* **meaning**: the cosine similarity between the query's embedding and the item's stored text
  embedding (the text the matcher reads, `app.services.texts`), divided by `FULL_MEANING`
  and clipped;
* **keywords**: `0.5 * coverage + 0.2 * all_words + 0.3 * exact_phrase`, where `coverage` is
  the share of the query's words (stop words left out) found as whole words in the item's
  title, text, research areas, data domains, GPU type or (offers) organisation name; an item
  holding every word ranks higher, and one holding the query as an exact phrase higher still.

`relevance = MEANING_WEIGHT * meaning + KEYWORD_WEIGHT * keywords`. An item that shares none
of the query's words and whose similarity is below `SEMANTIC_THRESHOLD` is not shown.

Candidates are chosen by the database, filters included (JSON-list filters through
`catalogue.has_tag`), and bounded, per kind:

* the newest `KEYWORD_POOL` items that may hold one of the query's words
  (`search_words.word_condition`: on PostgreSQL a full-text index of the whole words, on SQLite
  a LIKE on the lowercased text), refined in Python to whole words;
* the `MEANING_POOL` items nearest to the query in meaning across the whole public catalogue,
  from the per-process meaning index (`search_index`: one matrix product over every public
  item's stored text vector, rebuilt when the catalogue version moves), which the page's own
  query then filters, so filters and visibility hold even for a stale index.

They are scored in memory with one matrix product, from the vectors the Embedding cache holds.
So a page costs about the same whatever the catalogue's size. Browsing (no text) pages through
the database, newest first.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Literal, TypeVar

import numpy as np
import sqlalchemy as sa
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS
from sqlalchemy.orm import selectinload
from sqlmodel import Session, col, func, select

from app.services.catalogue import (
    Page,
    author_label,
    distinct_tags,
    has_tag,
    page_within,
    preload_people,
    research_areas,
)
from app.services.embedding_store import SqlEmbeddingStore
from app.services.search_index import for_version, meaning_index
from app.services.search_words import word_condition
from app.services.texts import offer_text, proposal_text
from app.services.visibility import visible_offers, visible_proposals
from matching import Encoder
from models import Offer, Organisation, Proposal, PublicationTerms

SearchKind = Literal["all", "proposals", "offers"]
HitKind = Literal["proposal", "offer"]
T = TypeVar("T")

SEMANTIC_THRESHOLD = 0.25
"""Cosine similarity (all-MiniLM-L6-v2) below which an item sharing no query word is hidden.

Calibrated on the demo data: unrelated queries ("poetry about cats", "football transfer
market") stay below 0.2 against every item, while a short relevant query reaches 0.25-0.6
against an abstract of a few hundred words. Also the point from which a result is labelled
"similar in meaning"."""

FULL_MEANING = 0.6
"""Similarity at which the meaning signal counts fully: about the best a short query reaches
against a full abstract."""

MEANING_WEIGHT = 0.6
KEYWORD_WEIGHT = 0.4

RELEVANCE_LABELS: tuple[tuple[float, str], ...] = (
    (0.6, "Strong match"),
    (0.35, "Good match"),
    (0.0, "Possible match"),
)
"""(lowest relevance, label), best first: what a person sees instead of a raw score."""

KEYWORD_POOL = 200
"""Per kind, the most items holding a query word that are scored (the newest first)."""

MEANING_POOL = 100
"""Per kind, the most items scored for their meaning alone: the nearest to the query in the
whole public catalogue (`app.services.search_index`) that the page's filters admit."""

MEANING_SCAN = 1_000
"""Per kind, how many of the nearest items (above `SEMANTIC_THRESHOLD`) are checked against
the page's query for `MEANING_POOL`: room for filters that leave most of them out."""

SNIPPET_LENGTH = 280
"""Characters of an item's text shown on its result card."""

_TOKEN = re.compile(r"\w+")


@dataclass(frozen=True)
class SearchCriteria:
    """What was asked for. `text` empty means browsing: the filters alone, newest first."""

    text: str = ""
    kind: SearchKind = "all"
    area: str | None = None
    gpu_type: str | None = None
    min_hours: int | None = None
    domain: str | None = None
    terms: PublicationTerms | None = None

    @property
    def browsing(self) -> bool:
        return not self.text.strip()

    @property
    def filtered(self) -> bool:
        return self.kind != "all" or any(
            value not in (None, "")
            for value in (self.area, self.gpu_type, self.min_hours, self.domain, self.terms)
        )


@dataclass(frozen=True)
class Segment:
    """A run of displayed text; `marked` runs are query words, highlighted on the page."""

    text: str
    marked: bool = False


@dataclass(frozen=True)
class SearchHit:
    """One result. `author` is the anonymous label of a proposal's author (None for offers);
    `relevance` is None when browsing."""

    kind: HitKind
    item: Proposal | Offer
    title: tuple[Segment, ...]
    snippet: tuple[Segment, ...]
    author: str | None
    relevance: float | None = None
    relevance_label: str | None = None
    matched_words: tuple[str, ...] = ()
    exact_phrase: bool = False
    similar_in_meaning: bool = False

    @property
    def id(self) -> int:
        return int(self.item.id)  # type: ignore[arg-type]


@dataclass(frozen=True)
class SearchResults:
    criteria: SearchCriteria
    page: Page[SearchHit]


@dataclass(frozen=True)
class FilterOptions:
    """The values the filters offer, taken from the public items."""

    areas: list[str]
    domains: list[str]
    gpu_types: list[str]


@dataclass(frozen=True)
class _Candidate:
    kind: HitKind
    item: Proposal | Offer
    title: str
    body: str
    text: str
    haystack: str


@dataclass(frozen=True)
class _Query:
    words: tuple[str, ...]
    patterns: tuple[re.Pattern[str], ...]
    phrase: str

    @classmethod
    def parse(cls, text: str) -> _Query:
        tokens = [token.lower() for token in _TOKEN.findall(text)]
        words = [t for t in dict.fromkeys(tokens) if t not in ENGLISH_STOP_WORDS]
        return cls(
            words=tuple(words),
            patterns=tuple(_word_pattern(word) for word in words),
            phrase=" ".join(tokens),
        )

    def found(self, haystack: str) -> tuple[str, ...]:
        return tuple(
            w for w, p in zip(self.words, self.patterns, strict=True) if p.search(haystack)
        )

    def has_phrase(self, haystack: str) -> bool:
        normalised = " ".join(_TOKEN.findall(haystack.lower()))
        return bool(self.phrase) and f" {self.phrase} " in f" {normalised} "

    def segments(self, text: str) -> tuple[Segment, ...]:
        """`text` cut into plain and matched runs."""
        if not self.patterns:
            return (Segment(text),)
        combined = re.compile("|".join(f"(?:{p.pattern})" for p in self.patterns), re.IGNORECASE)
        segments: list[Segment] = []
        position = 0
        for match in combined.finditer(text):
            if match.start() > position:
                segments.append(Segment(text[position : match.start()]))
            segments.append(Segment(match.group(0), marked=True))
            position = match.end()
        if position < len(text):
            segments.append(Segment(text[position:]))
        return tuple(segments)


def _word_pattern(word: str) -> re.Pattern[str]:
    """A whole word, singular or plural: "gpus" finds "GPU" and "GPUs"."""
    stem = word[:-1] if len(word) > 3 and word.endswith("s") and not word.endswith("ss") else word
    return re.compile(rf"(?<!\w){re.escape(stem)}(?:s|es)?(?!\w)", re.IGNORECASE)


def filter_options(*, session: Session) -> FilterOptions:
    """Research areas, data domains and GPU types of the public proposals and offers, the
    distinct values found by the database (spellings differing only in case shown once); kept
    per process until the catalogue version moves (`search_index.for_version`)."""
    return for_version(session, "filter options", lambda _: _filter_options(session))


def _filter_options(session: Session) -> FilterOptions:
    domains: dict[str, str] = {}
    gpu_types: dict[str, str] = {}
    for model, conditions in (
        (Proposal, visible_proposals()),
        (Offer, visible_offers()),
    ):
        for domain in sorted(distinct_tags(session, model.data_domains, *conditions)):
            domains.setdefault(domain.lower(), domain)
        for (gpu_type,) in session.execute(
            sa.select(model.gpu_type)
            .where(*conditions, col(model.gpu_type).is_not(None), model.gpu_type != "")
            .distinct()
            .order_by(model.gpu_type)
        ):
            gpu_types.setdefault(gpu_type.lower(), gpu_type)
    return FilterOptions(
        areas=research_areas(session=session),
        domains=sorted(domains.values(), key=str.lower),
        gpu_types=sorted(gpu_types.values(), key=str.lower),
    )


def _proposal_statement(session: Session, criteria: SearchCriteria) -> sa.Select | None:
    """The public proposals meeting the filters (None: the kind asked for excludes them)."""
    if criteria.kind == "offers":
        return None
    statement = select(Proposal).where(*visible_proposals())
    if criteria.gpu_type:
        statement = statement.where(
            func.lower(col(Proposal.gpu_type)) == criteria.gpu_type.strip().lower()
        )
    if criteria.min_hours is not None:
        statement = statement.where(col(Proposal.gpu_hours_needed) >= criteria.min_hours)
    if criteria.terms == PublicationTerms.not_allowed:
        # Requiring open publication rules out only offers that forbid publishing (eligibility's
        # publication_terms constraint); every proposal accepts the other two terms.
        statement = statement.where(col(Proposal.requires_open_publication).is_(False))
    if criteria.area:
        statement = statement.where(has_tag(session, Proposal.research_areas, criteria.area))
    if criteria.domain:
        statement = statement.where(
            has_tag(session, Proposal.data_domains, criteria.domain, ignore_case=True)
        )
    return statement


def _offer_statement(session: Session, criteria: SearchCriteria) -> sa.Select | None:
    if criteria.kind == "proposals" or criteria.area:
        return None  # offers have no research area
    statement = (
        select(Offer)
        .join(Organisation, col(Organisation.id) == Offer.organisation_id)
        .where(*visible_offers())
        .options(selectinload(Offer.organisation))  # type: ignore[arg-type]
    )
    if criteria.gpu_type:
        statement = statement.where(
            func.lower(col(Offer.gpu_type)) == criteria.gpu_type.strip().lower()
        )
    if criteria.min_hours is not None:
        statement = statement.where(col(Offer.gpu_hours_budget) >= criteria.min_hours)
    if criteria.terms is not None:
        statement = statement.where(Offer.publication_terms == criteria.terms)
    if criteria.domain:
        statement = statement.where(
            has_tag(session, Offer.data_domains, criteria.domain, ignore_case=True)
        )
    return statement


def _newest(statement: sa.Select, model: type[Proposal] | type[Offer]) -> sa.Select:
    return statement.order_by(col(model.created_at).desc(), col(model.id).desc())


def _keyword_pool(
    session: Session, statement: sa.Select, model: type[Proposal] | type[Offer], query: _Query
) -> dict[int, Proposal | Offer]:
    """The newest `KEYWORD_POOL` items of one kind that may hold a query word."""
    if not query.words:
        return {}
    words = word_condition(session, model, query.words)
    newest = _newest(statement.where(words), model).limit(KEYWORD_POOL)
    return {item.id: item for item in session.exec(newest)}


def _meaning_pool(
    session: Session,
    statement: sa.Select,
    model: type[Proposal] | type[Offer],
    nearest: list[int],
    skip: Collection[int],
) -> list[Proposal | Offer]:
    """The `MEANING_POOL` items of `nearest` (ids from the meaning index, most similar first)
    that the page's own query admits (public, filters met), leaving out those in `skip`."""
    if not nearest:
        return []
    admitted = set(
        session.exec(statement.with_only_columns(model.id).where(col(model.id).in_(nearest)))
    )
    chosen = [i for i in nearest if i in admitted and i not in skip][:MEANING_POOL]
    if not chosen:
        return []
    return list(session.exec(statement.where(col(model.id).in_(chosen))))


def _proposal_candidate(p: Proposal) -> _Candidate:
    body = "\n".join(part for part in (p.abstract, p.data_need) if part)
    extra = [*p.research_areas, *p.data_domains, p.gpu_type or ""]
    return _Candidate(
        "proposal", p, p.title, body, proposal_text(p), "\n".join([p.title, body, *extra])
    )


def _offer_candidate(o: Offer) -> _Candidate:
    body = "\n".join(part for part in (o.description, o.dataset_description) if part)
    extra = [*o.data_domains, o.gpu_type or "", o.organisation.name]
    return _Candidate("offer", o, o.title, body, offer_text(o), "\n".join([o.title, body, *extra]))


def _candidates(
    session: Session,
    encoder: Encoder,
    criteria: SearchCriteria,
    query: _Query,
    admit: Callable[[str], None] | None,
) -> tuple[list[_Candidate], np.ndarray | None]:
    """The bounded candidates (module docstring) and the query's embedding (None when there
    is nothing to compare it with, so the query is neither embedded nor counted)."""
    kinds = [
        (statement, model)
        for statement, model in (
            (_proposal_statement(session, criteria), Proposal),
            (_offer_statement(session, criteria), Offer),
        )
        if statement is not None
    ]
    pools = [_keyword_pool(session, statement, model, query) for statement, model in kinds]
    index = meaning_index(session=session, encoder=encoder) if kinds else None
    indexed = index is not None and any(
        len((index.proposals if model is Proposal else index.offers).ids) for _, model in kinds
    )
    query_vector = None
    if indexed or any(pools):
        text = criteria.text.strip()
        if admit is not None and not encoder.knows(text):
            admit(text)
        query_vector = encoder.encode([text])[0]
    if indexed:
        assert index is not None and query_vector is not None
        for (statement, model), pool in zip(kinds, pools, strict=True):
            nearest = (index.proposals if model is Proposal else index.offers).nearest(
                query_vector, threshold=SEMANTIC_THRESHOLD, limit=MEANING_SCAN
            )
            for item in _meaning_pool(session, statement, model, nearest, pool):
                pool[item.id] = item
    candidates = [
        (_proposal_candidate if model is Proposal else _offer_candidate)(item)
        for (_, model), pool in zip(kinds, pools, strict=True)
        for item in pool.values()
    ]
    return candidates, query_vector


def _browse(session: Session, criteria: SearchCriteria, page: int, per_page: int) -> SearchResults:
    """Newest first, through the database: counts, then at most `page * per_page` rows of
    each kind merged (two statements of each whatever the catalogue's size)."""
    statements = [
        (statement, model)
        for statement, model in (
            (_proposal_statement(session, criteria), Proposal),
            (_offer_statement(session, criteria), Offer),
        )
        if statement is not None
    ]
    total = sum(
        int(session.exec(select(func.count()).select_from(statement.subquery())).one())
        for statement, _ in statements
    )
    page = page_within(page, total, per_page)
    candidates = [
        (_proposal_candidate if model is Proposal else _offer_candidate)(item)
        for statement, model in statements
        for item in session.exec(_newest(statement, model).limit(page * per_page))
    ]
    candidates.sort(key=lambda c: (c.item.created_at, c.kind, c.item.id), reverse=True)
    shown = candidates[(page - 1) * per_page : page * per_page]
    hits = _hits(session, [(c, None) for c in shown], query=None)
    return SearchResults(criteria, Page(hits, total, page, per_page))


def _snippet(body: str, query: _Query | None) -> str:
    """About SNIPPET_LENGTH characters of `body`, starting near the first query word when
    that word would otherwise be cut off."""
    text = " ".join(body.split())
    if len(text) <= SNIPPET_LENGTH:
        return text
    first = min(
        (m.start() for p in (query.patterns if query else ()) if (m := p.search(text))),
        default=0,
    )
    start = 0
    if first > SNIPPET_LENGTH - 60:
        start = text.find(" ", first - 80) + 1
    end = text.rfind(" ", start, start + SNIPPET_LENGTH)
    end = end if end > start else start + SNIPPET_LENGTH
    return ("… " if start else "") + text[start:end] + ("…" if end < len(text) else "")


def _label(relevance: float) -> str:
    return next(label for floor, label in RELEVANCE_LABELS if relevance >= floor)


@dataclass(frozen=True)
class _Scored:
    candidate: _Candidate
    relevance: float
    found: tuple[str, ...]
    phrase: bool
    similar: bool


def _score(query: _Query, candidate: _Candidate, cosine: float) -> _Scored | None:
    """The blended relevance (module docstring), or None for an item not to be shown."""
    found = query.found(candidate.haystack)
    similar = cosine >= SEMANTIC_THRESHOLD
    if not found and not similar:
        return None
    phrase = bool(found) and query.has_phrase(candidate.haystack)
    coverage = len(found) / len(query.words) if query.words else 0.0
    keywords = 0.5 * coverage + 0.2 * (coverage == 1.0) + 0.3 * phrase
    meaning = min(1.0, max(0.0, cosine / FULL_MEANING))
    relevance = MEANING_WEIGHT * meaning + KEYWORD_WEIGHT * keywords
    return _Scored(candidate, relevance, found, phrase, similar)


def _page_of(items: list[T], page: int, per_page: int) -> tuple[list[T], int]:
    """The items of page `page` (clamped to 1..last) and that page's number."""
    page = page_within(page, len(items), per_page)
    return items[(page - 1) * per_page : page * per_page], page


def search(
    *,
    session: Session,
    encoder: Encoder,
    criteria: SearchCriteria,
    page: int = 1,
    per_page: int = 20,
    admit: Callable[[str], None] | None = None,
) -> SearchResults:
    """One page of public proposals and offers matching `criteria`, best first (newest first
    when browsing). A page past the end shows the last page.

    Item embeddings come from the Embedding cache through `session` (a text never embedded
    before is encoded and added, so the caller may commit to keep it); the query's embedding
    stays in the encoder's memory only, so searches leave no trace in the database. `admit`
    is called with a query the model is about to embed for the first time, the one costly
    step, and may refuse it by raising: a search that embeds nothing is never counted."""
    if criteria.browsing:
        return _browse(session, criteria, page, per_page)
    query = _Query.parse(criteria.text)
    candidates, query_vector = _candidates(session, encoder, criteria, query, admit)
    if not candidates or query_vector is None:
        return SearchResults(criteria, Page([], 0, 1, per_page))
    item_vectors = encoder.encode([c.text for c in candidates], store=SqlEmbeddingStore(session))
    similarity = (item_vectors @ query_vector).tolist()
    scored = [
        s
        for candidate, cosine in zip(candidates, similarity, strict=True)
        if (s := _score(query, candidate, cosine)) is not None
    ]
    scored.sort(key=lambda s: (-s.relevance, s.candidate.kind, -(s.candidate.item.id or 0)))
    shown, number = _page_of(scored, page, per_page)
    hits = _hits(session, [(s.candidate, s) for s in shown], query=query)
    return SearchResults(criteria, Page(hits, len(scored), number, per_page))


def _hits(
    session: Session,
    shown: list[tuple[_Candidate, _Scored | None]],
    *,
    query: _Query | None,
) -> list[SearchHit]:
    """The hits of one page, their authors loaded together (`preload_people`)."""
    preload_people(
        session=session,
        proposals=[c.item for c, _ in shown if isinstance(c.item, Proposal)],
    )
    return [_hit(session, c, query=query, scored=s) for c, s in shown]


def _hit(
    session: Session, candidate: _Candidate, *, query: _Query | None, scored: _Scored | None = None
) -> SearchHit:
    item = candidate.item
    author = author_label(session=session, proposal=item) if isinstance(item, Proposal) else None
    snippet = _snippet(candidate.body, query)
    return SearchHit(
        kind=candidate.kind,
        item=item,
        title=query.segments(candidate.title) if query else (Segment(candidate.title),),
        snippet=query.segments(snippet) if query else (Segment(snippet),),
        author=author,
        relevance=scored.relevance if scored else None,
        relevance_label=_label(scored.relevance) if scored else None,
        matched_words=scored.found if scored else (),
        exact_phrase=scored.phrase if scored else False,
        similar_in_meaning=scored.similar if scored else False,
    )
