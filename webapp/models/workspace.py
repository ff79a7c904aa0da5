"""The agents' workspace: saved replies and the tickets' search documents."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import DDL, ForeignKey, String, Text, event
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from .base import UTCDateTime, utcnow


class CannedResponse(db.Model):
    """A saved reply an agent inserts into the reply box (admins manage them)."""

    __tablename__ = "canned_responses"
    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(120), unique=True)
    body: Mapped[str] = mapped_column(Text)
    # pt | en, or None for both: the ticket page offers the customer's language first.
    language: Mapped[str | None] = mapped_column(String(5))
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    created_by = relationship("Agent")

    def to_dict(self) -> dict:
        return {"id": self.id, "title": self.title, "body": self.body, "language": self.language}


class TicketSearch(db.Model):
    """One search document per ticket: subject, description, customer name,
    phone and email, the ticket's messages and notes, lowercased and without
    accents, punctuation as spaces. ``services.ticket_search`` keeps it
    current; the index over it is per dialect (see below)."""

    __tablename__ = "ticket_search"
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"), primary_key=True)
    document: Mapped[str] = mapped_column(Text, default="")


# The index over ticket_search.document: word search with prefixes on both
# dialects (documents hold words and numbers only, see services.ticket_search):
# - SQLite: an FTS5 table over ticket_search (external content, kept in sync
#   by triggers), with prefix indexes for 2 and 3 characters and no positions
#   (queries are words, never phrases);
# - PostgreSQL: a stored generated tsvector column (to_tsvector('simple')) and
#   a GIN index on it; stored, so checking a row never re-parses its document.
# They live outside the models' metadata (Alembic cannot describe them); the
# migration 0003 creates them, and so does create_all through these events.
FTS_TABLE = "ticket_search_fts"
FTS_INDEX = "ix_ticket_search_document_fts"
PG_VECTOR = "search_vector"

SQLITE_SEARCH_DDL = (
    f"CREATE VIRTUAL TABLE IF NOT EXISTS {FTS_TABLE} USING fts5("
    "document, content='ticket_search', content_rowid='ticket_id', "
    "tokenize='unicode61 remove_diacritics 2', prefix='2 3', detail='none')",
    f"CREATE TRIGGER IF NOT EXISTS {FTS_TABLE}_ai AFTER INSERT ON ticket_search BEGIN "
    f"INSERT INTO {FTS_TABLE}(rowid, document) VALUES (new.ticket_id, new.document); END",
    f"CREATE TRIGGER IF NOT EXISTS {FTS_TABLE}_ad AFTER DELETE ON ticket_search BEGIN "
    f"INSERT INTO {FTS_TABLE}({FTS_TABLE}, rowid, document) VALUES ('delete', old.ticket_id, old.document); END",
    f"CREATE TRIGGER IF NOT EXISTS {FTS_TABLE}_au AFTER UPDATE ON ticket_search BEGIN "
    f"INSERT INTO {FTS_TABLE}({FTS_TABLE}, rowid, document) VALUES ('delete', old.ticket_id, old.document); "
    f"INSERT INTO {FTS_TABLE}(rowid, document) VALUES (new.ticket_id, new.document); END",
)
SQLITE_SEARCH_DROP = (f"DROP TABLE IF EXISTS {FTS_TABLE}",)
POSTGRES_SEARCH_DDL = (
    f"ALTER TABLE ticket_search ADD COLUMN IF NOT EXISTS {PG_VECTOR} tsvector "
    "GENERATED ALWAYS AS (to_tsvector('simple'::regconfig, document)) STORED",
    f"CREATE INDEX IF NOT EXISTS {FTS_INDEX} ON ticket_search USING gin ({PG_VECTOR})",
)
POSTGRES_SEARCH_DROP = (f"DROP INDEX IF EXISTS {FTS_INDEX}",)


def search_index_ddl(dialect: str, drop: bool = False) -> tuple[str, ...]:
    if dialect == "sqlite":
        return SQLITE_SEARCH_DROP if drop else SQLITE_SEARCH_DDL
    if dialect == "postgresql":
        return POSTGRES_SEARCH_DROP if drop else POSTGRES_SEARCH_DDL
    return ()


def is_search_index_object(name: str | None) -> bool:
    """Whether a reflected table, column or index is the search index (for
    Alembic's autogenerate, which must neither drop nor compare it)."""
    return bool(name) and (name.startswith(FTS_TABLE) or name in (FTS_INDEX, PG_VECTOR))


for _dialect in ("sqlite", "postgresql"):
    for _statement in search_index_ddl(_dialect):
        event.listen(TicketSearch.__table__, "after_create", DDL(_statement).execute_if(dialect=_dialect))
    for _statement in search_index_ddl(_dialect, drop=True):
        event.listen(TicketSearch.__table__, "before_drop", DDL(_statement).execute_if(dialect=_dialect))
