from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from .base import UTCDateTime, utcnow


class InvalidTransition(ValueError):
    """A status change the workflow does not allow."""

    def __init__(self, message: str, old: str, new: str):
        super().__init__(message)
        self.old, self.new = old, new


class TicketStatus:
    """The workflow: new -> open -> in progress / waiting for the customer ->
    resolved -> closed, and a resolved or closed ticket can be reopened."""

    NEW = "new"
    OPEN = "open"
    IN_PROGRESS = "in_progress"  # an agent is working on it
    PENDING = "pending"  # waiting for the customer
    RESOLVED = "resolved"
    CLOSED = "closed"

    ALL = (NEW, OPEN, IN_PROGRESS, PENDING, RESOLVED, CLOSED)
    # Active = not resolved or closed: the assistant reuses these for a handoff.
    ACTIVE = (NEW, OPEN, IN_PROGRESS, PENDING)
    TRANSITIONS = {
        NEW: {OPEN, IN_PROGRESS, CLOSED},  # closed: dismiss spam or a duplicate
        OPEN: {IN_PROGRESS, PENDING, RESOLVED},
        IN_PROGRESS: {OPEN, PENDING, RESOLVED},
        PENDING: {OPEN, IN_PROGRESS, RESOLVED},
        RESOLVED: {CLOSED, OPEN},  # open again: reopen
        CLOSED: {OPEN},  # reopen
    }


class TicketPriority:
    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"
    URGENT = "urgent"

    ALL = (LOW, NORMAL, HIGH, URGENT)
    RANK = {LOW: 0, NORMAL: 1, HIGH: 2, URGENT: 3}


class Ticket(db.Model):
    __tablename__ = "tickets"
    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    conversation_id: Mapped[int | None] = mapped_column(ForeignKey("conversations.id"))
    # The first conversation message that belongs to the story of this ticket.
    context_from_message_id: Mapped[int | None] = mapped_column(Integer)
    subject: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    category: Mapped[str | None] = mapped_column(String(40))
    status: Mapped[str] = mapped_column(String(12), default=TicketStatus.NEW, index=True)
    priority: Mapped[str] = mapped_column(String(10), default="normal")
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id"))
    source: Mapped[str] = mapped_column(String(12), default="whatsapp")
    idempotency_key: Mapped[str | None] = mapped_column(String(80), unique=True)
    # Closing the loop: when the customer was asked whether the ticket may be
    # closed, and the 1-5 rating they gave once it was.
    close_asked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    rating_asked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    satisfaction: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    # The ticket list pages by (sort column, id) with keyset pagination; an
    # agent's own queue ("mine", "unassigned") is one range of the second index.
    __table_args__ = (Index("ix_tickets_updated_at_id", "updated_at", "id"),
                      Index("ix_tickets_assignee_status_updated", "assignee_id", "status", "updated_at"),
                      Index("ix_tickets_priority_updated_at", "priority", "updated_at"))

    customer = relationship("Customer", back_populates="tickets")
    assignee = relationship("Agent")
    events = relationship("TicketEvent", back_populates="ticket", order_by="TicketEvent.id",
                          lazy="dynamic")

    @property
    def number(self) -> int:
        return self.id

    @property
    def is_active(self) -> bool:
        return self.status in TicketStatus.ACTIVE

    def change_status(self, new_status: str) -> str:
        """Apply a validated transition; returns the old status."""
        if new_status not in TicketStatus.ALL:
            raise InvalidTransition(f"unknown status '{new_status}'", self.status, new_status)
        if new_status not in TicketStatus.TRANSITIONS[self.status]:
            raise InvalidTransition(f"a ticket cannot go from '{self.status}' to '{new_status}'",
                                    self.status, new_status)
        old, self.status = self.status, new_status
        return old

    def to_dict(self) -> dict:
        return {
            "id": self.id,
            "number": self.number,
            "customer_id": self.customer_id,
            "subject": self.subject,
            "description": self.description,
            "category": self.category,
            "status": self.status,
            "priority": self.priority,
            "assignee_id": self.assignee_id,
            "assignee": self.assignee.name if self.assignee else None,
            "allowed_statuses": sorted(TicketStatus.TRANSITIONS[self.status]),
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
        }


class TicketEvent(db.Model):
    """The ticket timeline: created, status changes, replies, internal notes."""

    __tablename__ = "ticket_events"
    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    # created | status | priority | category | assignee | reply | note | handoff | handback | customer_message
    kind: Mapped[str] = mapped_column(String(20))
    actor_type: Mapped[str] = mapped_column(String(10))  # agent | customer | bot | system
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id"))
    body: Mapped[str | None] = mapped_column(Text)
    data: Mapped[dict] = mapped_column(JSON, default=dict)
    public: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    ticket = relationship("Ticket", back_populates="events")
    agent = relationship("Agent")
