"""Which items may hold a query's words, as the database finds them (`app.services.search`
refines the candidates to whole words in Python).

On PostgreSQL through the GIN full-text indexes of migration 0016, whose expressions are
`PROPOSAL_WORDS` and `OFFER_WORDS`: the lowercased searched text with every run of non-word
characters made a space, parsed by the `simple` configuration (no stemming, no stop words),
so each whole word `_Query.found` can match is one lexeme, and a query word is looked up as
the lexemes it may appear as (itself, or its stem with "s"/"es", as `_word_pattern` allows).
The candidates are then a superset of the whole-word matches, as the LIKE scan was, with far
fewer refined away ("low" no longer brings every "below" and "follow"). Elsewhere (SQLite,
the demo's size), and for a word holding an underscore (which PostgreSQL's parser splits), a
LIKE on the lowercased text: a scan no index serves.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlmodel import Session, col, func

from models import Offer, Organisation, Proposal


def _searched_text(model: type[Proposal] | type[Offer]) -> sa.ColumnElement[str]:
    """The lowercased text a query word may be found in (the haystack of `_candidates`)."""
    if model is Proposal:
        parts = [
            Proposal.title,
            Proposal.abstract,
            Proposal.data_need,
            sa.cast(Proposal.research_areas, sa.Text),
            sa.cast(Proposal.data_domains, sa.Text),
            func.coalesce(Proposal.gpu_type, ""),
        ]
    else:
        parts = [
            Offer.title,
            Offer.description,
            Offer.dataset_description,
            sa.cast(Offer.data_domains, sa.Text),
            func.coalesce(Offer.gpu_type, ""),
            Organisation.name,
        ]
    text = parts[0]
    for part in parts[1:]:
        text = text + " " + part  # type: ignore[operator]
    return func.lower(text)


def _stem(word: str) -> str:
    return word[:-1] if len(word) > 3 and word.endswith("s") and not word.endswith("ss") else word


def _like(word: str) -> str:
    escaped = word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _words_sql(table: str, parts: str) -> str:
    return (
        f"to_tsvector('simple'::regconfig, regexp_replace(lower({parts}), '\\W+', ' ', 'g'))"
    ).replace("$", table + ".")


PROPOSAL_WORDS = _words_sql(
    "proposal",
    "$title || ' ' || $abstract || ' ' || $data_need || ' ' || $research_areas::text"
    " || ' ' || $data_domains::text || ' ' || coalesce($gpu_type, '')",
)
"""The words of a proposal's searched text, as PostgreSQL indexes them (migration 0016, whose
expression this must equal): the lowercased text with every run of non-word characters made
a space, so that each whole word of `_Query.found` is one lexeme."""

OFFER_WORDS = _words_sql(
    "offer",
    "$title || ' ' || $description || ' ' || $dataset_description || ' '"
    " || $data_domains::text || ' ' || coalesce($gpu_type, '')",
)
"""The words of an offer's own searched text (its organisation's name is matched apart)."""

ORGANISATION_WORDS = _words_sql("organisation", "$name")


def _tsquery(words: tuple[str, ...]) -> str | None:
    """The lexemes a whole-word match of any of `words` must hold (each word, singular or
    plural as `_word_pattern` allows), as a tsquery; None when a word holds an underscore,
    which PostgreSQL's parser splits (then LIKE serves)."""
    if not words or any("_" in word for word in words):
        return None
    lexemes = dict.fromkeys(f"{_stem(w)}{end}" for w in words for end in ("", "s", "es"))
    return " | ".join(f"'{lexeme}'" for lexeme in lexemes)


def word_condition(
    session: Session, model: type[Proposal] | type[Offer], words: tuple[str, ...]
) -> sa.ColumnElement[bool]:
    """Items that may hold a query word as a whole word: on PostgreSQL through the full-text
    indexes of migration 0016 (whole words, so no item is missed and few are refined away);
    elsewhere a LIKE on the lowercased text (a scan, fine at the demo's size)."""
    lexemes = _tsquery(words)
    if session.get_bind().dialect.name != "postgresql" or lexemes is None:
        text = _searched_text(model)
        return sa.or_(*(text.like(_like(_stem(w)), escape="\\") for w in words))
    tsquery = sa.cast(sa.literal(lexemes, sa.Text), postgresql.TSQUERY)
    if model is Proposal:
        return sa.literal_column(PROPOSAL_WORDS).bool_op("@@")(tsquery)
    own = sa.select(Offer.id).where(sa.literal_column(OFFER_WORDS).bool_op("@@")(tsquery))
    by_name = (
        sa.select(Offer.id)
        .join(Organisation, col(Organisation.id) == Offer.organisation_id)
        .where(sa.literal_column(ORGANISATION_WORDS).bool_op("@@")(tsquery))
    )
    return col(Offer.id).in_(sa.union(own, by_name))


INDEXES = frozenset({"ix_proposal_search_words", "ix_offer_search_words"})
"""The indexes of migration 0016: on expressions the models cannot declare for both databases,
so schema comparisons (autogenerate, tests/test_migrations.py) leave them out."""


def include_object(
    obj: object, name: str | None, type_: str, reflected: bool, compare_to: object
) -> bool:
    """Alembic's `include_object` hook: everything but the indexes in `INDEXES`."""
    return not (type_ == "index" and reflected and name in INDEXES)
