"""collaborations: what followed each introduction (stage, agreement, hours, outcome) with a
history row per change; a reason code on dismissed matches; the reminder opt-out on users.
Matches introduced before this revision get their collaboration record here.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-03 16:40:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STAGES = (
    "introduced",
    "talking",
    "agreement_signed",
    "started",
    "completed",
    "published",
    "ended_without_result",
)
REASONS = ("topic", "terms", "capacity", "timing", "other")


def _enum(values: tuple[str, ...], name: str) -> sa.Enum:
    return sa.Enum(*values, name=name, native_enum=False, create_constraint=True)


def upgrade() -> None:
    op.create_table(
        "collaboration",
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("updated_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("stage", _enum(STAGES, "collaboration_stage"), nullable=False),
        sa.Column(
            "agreement_kind",
            _enum(("nda", "data_use", "collaboration"), "agreement_kind"),
            nullable=True,
        ),
        sa.Column("agreement_signed_on", sa.Date(), nullable=True),
        sa.Column("gpu_hours_granted", sa.Integer(), nullable=True),
        sa.Column("gpu_hours_used", sa.Integer(), nullable=True),
        sa.Column("outcome_link", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True),
        sa.Column("end_reason", _enum(REASONS, "collaboration_end_reason"), nullable=True),
        sa.Column("end_reason_text", sa.Text(), nullable=False),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("match_id", sa.Integer(), nullable=False),
        sa.Column("stage_changed_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.CheckConstraint(
            "gpu_hours_granted IS NULL OR gpu_hours_granted >= 0",
            name=op.f("ck_collaboration_hours_granted_nonneg"),
        ),
        sa.CheckConstraint(
            "gpu_hours_used IS NULL OR gpu_hours_used >= 0",
            name=op.f("ck_collaboration_hours_used_nonneg"),
        ),
        sa.ForeignKeyConstraint(
            ["match_id"],
            ["match.id"],
            name=op.f("fk_collaboration_match_id_match"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_collaboration")),
        sa.UniqueConstraint("match_id", name=op.f("uq_collaboration_match_id")),
    )
    with op.batch_alter_table("collaboration", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_collaboration_stage"), ["stage"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_collaboration_stage_changed_at"), ["stage_changed_at"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_collaboration_updated_at"), ["updated_at"], unique=False
        )

    op.create_table(
        "collaborationevent",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("collaboration_id", sa.Integer(), nullable=False),
        sa.Column("actor_id", sa.Integer(), nullable=True),
        sa.Column("from_stage", sqlmodel.sql.sqltypes.AutoString(length=30), nullable=True),
        sa.Column("to_stage", sqlmodel.sql.sqltypes.AutoString(length=30), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["actor_id"],
            ["user.id"],
            name=op.f("fk_collaborationevent_actor_id_user"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["collaboration_id"],
            ["collaboration.id"],
            name=op.f("fk_collaborationevent_collaboration_id_collaboration"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_collaborationevent")),
    )
    with op.batch_alter_table("collaborationevent", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_collaborationevent_actor_id"), ["actor_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_collaborationevent_collaboration_id"),
            ["collaboration_id"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_collaborationevent_created_at"), ["created_at"], unique=False
        )

    with op.batch_alter_table("match", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("decline_reason_code", _enum(REASONS, "decline_reason"), nullable=True)
        )
    with op.batch_alter_table("user", schema=None) as batch_op:
        # Everyone starts with reminders on; the account settings turn them off.
        batch_op.add_column(
            sa.Column(
                "collaboration_reminders",
                sa.Boolean(),
                nullable=False,
                server_default=sa.true(),
            )
        )

    _backfill()


def _backfill() -> None:
    """A collaboration at "introduced" (and its first history row) for every match already
    introduced, dated from the introduction."""
    match = sa.table(
        "match",
        sa.column("id", sa.Integer()),
        sa.column("status", sa.String()),
        sa.column("introduced_at", sqlmodel.sql.sqltypes.UTCDateTime()),
        sa.column("updated_at", sqlmodel.sql.sqltypes.UTCDateTime()),
    )
    collaboration = sa.table(
        "collaboration",
        sa.column("id", sa.Integer()),
        sa.column("match_id", sa.Integer()),
        sa.column("stage", sa.String()),
        sa.column("end_reason_text", sa.Text()),
        sa.column("stage_changed_at", sqlmodel.sql.sqltypes.UTCDateTime()),
        sa.column("created_at", sqlmodel.sql.sqltypes.UTCDateTime()),
        sa.column("updated_at", sqlmodel.sql.sqltypes.UTCDateTime()),
    )
    event = sa.table(
        "collaborationevent",
        sa.column("collaboration_id", sa.Integer()),
        sa.column("from_stage", sa.String()),
        sa.column("to_stage", sa.String()),
        sa.column("details", sa.JSON()),
        sa.column("created_at", sqlmodel.sql.sqltypes.UTCDateTime()),
    )
    when = sa.func.coalesce(match.c.introduced_at, match.c.updated_at)
    op.execute(
        collaboration.insert().from_select(
            [
                "match_id",
                "stage",
                "end_reason_text",
                "stage_changed_at",
                "created_at",
                "updated_at",
            ],
            sa.select(
                match.c.id,
                sa.literal("introduced"),
                sa.literal(""),
                when,
                when,
                when,
            ).where(match.c.status == "introduced"),
        )
    )
    op.execute(
        event.insert().from_select(
            ["collaboration_id", "from_stage", "to_stage", "details", "created_at"],
            sa.select(
                collaboration.c.id,
                sa.null(),
                sa.literal("introduced"),
                sa.literal({}, sa.JSON()),
                collaboration.c.created_at,
            ),
        )
    )


def downgrade() -> None:
    with op.batch_alter_table("user", schema=None) as batch_op:
        batch_op.drop_column("collaboration_reminders")
    with op.batch_alter_table("match", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("ck_match_decline_reason"), type_="check")
        batch_op.drop_column("decline_reason_code")
    with op.batch_alter_table("collaborationevent", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_collaborationevent_created_at"))
        batch_op.drop_index(batch_op.f("ix_collaborationevent_collaboration_id"))
        batch_op.drop_index(batch_op.f("ix_collaborationevent_actor_id"))
    op.drop_table("collaborationevent")
    with op.batch_alter_table("collaboration", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_collaboration_updated_at"))
        batch_op.drop_index(batch_op.f("ix_collaboration_stage_changed_at"))
        batch_op.drop_index(batch_op.f("ix_collaboration_stage"))
    op.drop_table("collaboration")
