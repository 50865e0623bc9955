"""search word indexes: on PostgreSQL, GIN full-text indexes over the words search looks in

Search chooses its keyword candidates with `to_tsvector('simple', ...) @@ tsquery` over the
same text it refines in Python (`app.services.search`), instead of `LIKE '%word%'`, which no
index serves. The indexes are on the expressions themselves, so they follow every write with
no trigger or extra column. The expressions here must stay identical to
`app.services.search.PROPOSAL_WORDS` / `OFFER_WORDS` (tests/app/search checks that the plan
uses them). SQLite keeps its LIKE scan (the demo's size): nothing to do there.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-03 17:45:00

"""

from collections.abc import Sequence

from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_PROPOSAL = (
    "to_tsvector('simple'::regconfig, regexp_replace(lower(title || ' ' || abstract || ' ' || "
    "data_need || ' ' || research_areas::text || ' ' || data_domains::text || ' ' || "
    "coalesce(gpu_type, '')), '\\W+', ' ', 'g'))"
)
_OFFER = (
    "to_tsvector('simple'::regconfig, regexp_replace(lower(title || ' ' || description || ' ' || "
    "dataset_description || ' ' || data_domains::text || ' ' || coalesce(gpu_type, '')), "
    "'\\W+', ' ', 'g'))"
)


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(f"CREATE INDEX ix_proposal_search_words ON proposal USING gin ({_PROPOSAL})")
    op.execute(f"CREATE INDEX ix_offer_search_words ON offer USING gin ({_OFFER})")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP INDEX IF EXISTS ix_offer_search_words")
    op.execute("DROP INDEX IF EXISTS ix_proposal_search_words")
