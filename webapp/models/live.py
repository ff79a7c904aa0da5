from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, BigInteger, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db
from .base import UTCDateTime, utcnow


class LiveEvent(db.Model):
    """One change that open agent pages follow (webapp.live streams these).

    Append-only, written in the transaction of the change it announces
    (webapp.services.live). It carries ids and a kind, never customer text:
    pages re-fetch their server-rendered HTML to show what changed.
    """

    __tablename__ = "live_events"
    # AUTOINCREMENT on SQLite: ids are cursors (Last-Event-ID) and must never be reused after pruning.
    __table_args__ = {"sqlite_autoincrement": True}
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer(), "sqlite"), primary_key=True)
    topic: Mapped[str] = mapped_column(String(64))  # tickets | ticket:<id> | customer:<id>
    kind: Mapped[str] = mapped_column(String(32))
    data: Mapped[dict] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
