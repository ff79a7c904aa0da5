"""Knowledge-base articles: the answers the assistant can give by itself."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, Index, Integer, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db
from .base import UTCDateTime, utcnow


class Article(db.Model):
    """One article in one language; translations share the slug.

    ``embedding`` is the float32 (little-endian) vector of the article's
    embedded text, computed by ``embedding_model``; ``content_hash`` is the
    SHA-256 of that text, so the vector is only recomputed when the text (or
    the model) changes. ``version`` increases on every change: it guards
    concurrent edits and is part of the search index's fingerprint.
    """

    __tablename__ = "kb_articles"
    __table_args__ = (
        UniqueConstraint("slug", "language", name="uq_kb_articles_slug_language"),
        Index("ix_kb_articles_language_published", "language", "published"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(80))
    language: Mapped[str] = mapped_column(String(5))
    title: Mapped[str] = mapped_column(String(200))
    answer: Mapped[str] = mapped_column(Text)
    tags: Mapped[list] = mapped_column(JSON, default=list)
    published: Mapped[bool] = mapped_column(Boolean, default=False)
    embedding: Mapped[bytes | None] = mapped_column(LargeBinary)
    embedding_model: Mapped[str | None] = mapped_column(String(200))
    content_hash: Mapped[str | None] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer, nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    __mapper_args__ = {"version_id_col": version}

    def to_dict(self) -> dict:
        return {
            "id": self.id,
            "slug": self.slug,
            "language": self.language,
            "title": self.title,
            "answer": self.answer,
            "tags": list(self.tags or []),
            "published": self.published,
            "version": self.version,
            "embedding_model": self.embedding_model,
            "created_at": self.created_at.isoformat() if self.created_at else None,
            "updated_at": self.updated_at.isoformat() if self.updated_at else None,
        }
