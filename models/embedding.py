"""Cached text embeddings, keyed by model name and content hash (no text is encoded twice)."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from models._base import utcnow


class Embedding(SQLModel, table=True):
    """One float32 vector, stored as raw little-endian bytes of length 4 * dimension."""

    model_name: str = Field(primary_key=True, max_length=300)
    content_hash: str = Field(primary_key=True, max_length=64, description="SHA-256 hex")
    dimension: int = Field(gt=0)
    vector: bytes = Field(sa_type=sa.LargeBinary)
    created_at: datetime = Field(default_factory=utcnow, nullable=False)
