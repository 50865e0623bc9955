"""domain events: an introduction or a published round, recorded in its own transaction and
announced (mails, webhooks) by the delivery layer after the commit

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-04 09:00:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "domainevent",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(length=50), nullable=False),
        sa.Column("subject_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("handled_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_domainevent")),
        sa.UniqueConstraint("key", name=op.f("uq_domainevent_key")),
    )
    with op.batch_alter_table("domainevent", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_domainevent_handled_at"), ["handled_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("domainevent", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_domainevent_handled_at"))
    op.drop_table("domainevent")
