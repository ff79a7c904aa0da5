"""What the customer's status page shows, and fresh status links.

The page shows the ticket row and its public timeline events (status changes,
public replies, the customer's own messages while a person holds the
conversation), nothing else: whatever a customer should see on the page must
be a public ``TicketEvent`` or a column of the ticket. ``page_version`` is a
fingerprint of exactly that, so a polling page learns cheaply whether it has
to fetch the new HTML, and catches up after any gap.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass

from ..extensions import db
from ..models import Conversation, Ticket, TicketEvent
from . import outbox
from .texts import lang_or_default, render_email, render_text
from .tokens import status_url


@dataclass
class PublicView:
    ticket: Ticket
    lang: str
    events: list[TicketEvent]
    version: str


def page_version(ticket: Ticket) -> str:
    """A fingerprint of everything the page shows (two small queries, no rendering)."""
    newest, count = db.session.execute(
        db.select(db.func.max(TicketEvent.id), db.func.count(TicketEvent.id))
        .where(TicketEvent.ticket_id == ticket.id, TicketEvent.public.is_(True))).one()
    customer = ticket.customer
    raw = "|".join(str(part) for part in (
        ticket.status, ticket.subject, ticket.updated_at.isoformat() if ticket.updated_at else "",
        newest, count, lang_or_default(customer.language if customer else None)))
    return hashlib.sha256(raw.encode()).hexdigest()[:20]


def public_view(ticket: Ticket) -> PublicView:
    """The ticket as its customer may see it."""
    events = list(db.session.scalars(
        db.select(TicketEvent).where(TicketEvent.ticket_id == ticket.id, TicketEvent.public.is_(True))
        .order_by(TicketEvent.id)))
    lang = lang_or_default(ticket.customer.language if ticket.customer else None)
    return PublicView(ticket, lang, events, page_version(ticket))


def send_fresh_link(ticket_id: int) -> str | None:
    """Queue a new status link for the ticket's customer, through the outbox.

    To the verified email when there is one, else on WhatsApp (the number that
    owns the ticket). Returns the channel used ("email" or "whatsapp"), or None
    when the customer can be reached on neither. The address is never returned:
    the caller only says which kind of channel.
    """
    ticket = db.session.get(Ticket, ticket_id)
    if ticket is None or ticket.customer is None:
        return None
    customer = ticket.customer
    url = status_url(ticket.id, lang=lang_or_default(customer.language))
    if customer.verified:
        subject, text, html = render_email("status_link", customer.language, ticket=ticket, customer=customer,
                                           url=url)
        outbox.queue_email(customer.email, subject, text, html, customer=customer, ticket=ticket,
                           purpose="status_link")
        channel = "email"
    else:
        conversation = None
        if ticket.conversation_id:
            conversation = db.session.get(Conversation, ticket.conversation_id)
        if conversation is None:
            conversation = db.session.scalar(db.select(Conversation).filter_by(customer_id=customer.id))
        if conversation is None:
            return None
        outbox.queue_whatsapp(conversation, render_text("status_link", customer.language, ticket=ticket,
                                                        customer=customer, url=url),
                              author="system", ticket_id=ticket.id)
        channel = "whatsapp"
    db.session.commit()
    return channel
