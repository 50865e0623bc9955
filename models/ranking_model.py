"""Ranking models learned from decisions (the outcome loop): one row per fit, evaluated and
either adopted or not; the newest row decides which weights rank."""

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from models._base import utcnow


class RankingModel(SQLModel, table=True):
    """One fit of the score's weights on recorded decisions and its offline evaluation.

    `weights` are the normalised component weights fitted on every decision (empty when too
    few decisions or no component predicts them); `baseline_version` the fixed weights it was
    compared with (`ScoreWeights.version`); `evaluation` the figures of
    `matching.outcomes.Evaluation.to_dict()`; `adopted` whether it beat the baseline by the
    stated margin; `reason` says so in a sentence."""

    __tablename__ = "rankingmodel"

    id: int | None = Field(default=None, primary_key=True)
    weights: dict[str, float] = Field(default_factory=dict, sa_type=sa.JSON)
    baseline_version: str = Field(max_length=200)
    evaluation: dict[str, Any] = Field(default_factory=dict, sa_type=sa.JSON)
    adopted: bool = Field(default=False)
    reason: str = Field(default="", max_length=2_000, sa_type=sa.Text)
    created_at: datetime = Field(default_factory=utcnow, nullable=False, index=True)

    @property
    def version(self) -> str:
        """`learned-<id>`: the model's name in the weights version of the matches it ranks."""
        return f"learned-{self.id}"
