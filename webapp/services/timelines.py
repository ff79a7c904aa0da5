"""Chronological timelines for the agent UI: one ticket's story, and
everything that ever happened with one customer."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..extensions import db
from ..models import Conversation, Customer, Message, Outbox, Ticket, TicketEvent, VerificationCode
from .tickets import conversation_messages

# Events that only repeat a message already on the timeline.
_DUPLICATES = ("reply", "customer_message")
CUSTOMER_LIMIT = 500


@dataclass
class Item:
    kind: str  # message | event | email | ticket
    at: datetime
    obj: Any

    @property
    def order(self) -> tuple:
        # Same instant: a message before the events it caused.
        return (self.at, {"ticket": 0, "message": 1, "email": 2, "event": 3}[self.kind], self.obj.id)


def ticket_timeline(ticket: Ticket) -> list[Item]:
    """The WhatsApp messages of the ticket's story, its notes and its changes."""
    items = [Item("message", m.created_at, m) for m in conversation_messages(ticket)]
    items += [Item("event", e.created_at, e) for e in ticket.events.filter(TicketEvent.kind.not_in(_DUPLICATES))]
    return sorted(items, key=lambda item: item.order)


def customer_emails(customer: Customer, *, as_stored: bool = False) -> list[str]:
    """Every address the customer gave: the current one and those they
    verified or tried (lowercased; ``as_stored`` adds them as written)."""
    given = {e for e in db.session.scalars(
        db.select(VerificationCode.email).filter_by(customer_id=customer.id).distinct()) if e}
    if customer.email:
        given.add(customer.email)
    emails = {e.lower() for e in given}
    return sorted(emails | given) if as_stored else sorted(emails)


def customer_timeline(customer: Customer, limit: int | None = CUSTOMER_LIMIT) -> tuple[list[Item], bool]:
    """Tickets, WhatsApp messages (customer, assistant, agents, system) and
    emails, oldest first; the newest ``limit`` items and whether there are more."""
    fetch = (limit + 1) if limit else None
    tickets = db.select(Ticket).filter_by(customer_id=customer.id).order_by(Ticket.id.desc()).limit(fetch)
    items = [Item("ticket", t.created_at, t) for t in db.session.scalars(tickets)]
    conversation = db.session.scalar(db.select(Conversation).filter_by(customer_id=customer.id))
    if conversation is not None:
        messages = db.select(Message).filter_by(conversation_id=conversation.id).order_by(Message.id.desc())
        items += [Item("message", m.created_at, m) for m in db.session.scalars(messages.limit(fetch))]
    emails = customer_emails(customer, as_stored=True)
    if emails:  # recipient is indexed: compare it as stored, not lower()ed
        rows = db.select(Outbox).where(Outbox.channel == "email", Outbox.recipient.in_(emails))
        items += [Item("email", o.created_at, o) for o in db.session.scalars(rows.order_by(Outbox.id.desc())
                                                                             .limit(fetch))]
    items.sort(key=lambda item: item.order)
    more = bool(limit) and len(items) > limit
    return (items[-limit:] if limit else items), more
