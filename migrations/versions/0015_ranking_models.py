"""ranking models: each fit of the outcome loop, its evaluation and whether it was adopted

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-03 17:00:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "rankingmodel",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("weights", sa.JSON(), nullable=False),
        sa.Column("baseline_version", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("evaluation", sa.JSON(), nullable=False),
        sa.Column("adopted", sa.Boolean(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rankingmodel")),
    )
    with op.batch_alter_table("rankingmodel", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_rankingmodel_created_at"), ["created_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("rankingmodel", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_rankingmodel_created_at"))
    op.drop_table("rankingmodel")
