"""Closing the loop: no ticket is closed without asking the customer.

- An agent marks a ticket resolved: the customer is asked on WhatsApp whether
  the problem was solved and the ticket may be closed (``ask``). The assistant
  hears the answer: every message sent to Rasa carries the tickets awaiting
  that answer (``awaiting_close``) in its metadata.
- Yes: closed (``close_by_customer``), the customer is told and asked for a
  1-5 rating; a rating message is recorded by the webapp itself
  (``take_rating``), never guessed by NLU.
- No: reopened, back to its agent with a note (``reopen_by_customer``).
- No answer within ``CLOSE_AFTER_DAYS``: closed automatically with a message
  (``close_unanswered``, run by the worker).
- A customer may also ask to close one of their own tickets; the assistant
  confirms first and the API only accepts the owner's phone.
"""
from __future__ import annotations

import re
from datetime import timedelta

from flask import current_app

from ..extensions import db
from ..models import Conversation, Message, Ticket, TicketEvent, TicketStatus, utcnow
from . import live, outbox
from .errors import Invalid
from .texts import render_text

RATING_WINDOW = timedelta(days=3)
STARS = re.compile(r"^\s*(⭐\s*){1,5}$")
DIGIT = re.compile(r"^\s*(?:nota\s*|score\s*|rating\s*)?([1-5])\s*(?:/\s*5|estrelas?|stars?|⭐)?\s*[.!]*\s*$",
                   re.IGNORECASE)


def _conversation(ticket: Ticket) -> Conversation | None:
    conversation = db.session.get(Conversation, ticket.conversation_id) if ticket.conversation_id else None
    return conversation or db.session.scalar(db.select(Conversation).filter_by(customer_id=ticket.customer_id))


def _say(ticket: Ticket, template: str, **context) -> None:
    conversation = _conversation(ticket)
    if conversation is None:
        return
    customer = ticket.customer
    days = float(current_app.config["CLOSE_AFTER_DAYS"])
    text = render_text(template, customer.language, ticket=ticket, customer=customer,
                       days=int(days) if days.is_integer() else days, **context)
    outbox.queue_whatsapp(conversation, text, author="system", ticket_id=ticket.id)


def ask(ticket: Ticket) -> None:
    """The agent resolved the ticket: ask whether it may be closed (in the
    caller's transaction). Replaces the plain "status changed" message."""
    ticket.close_asked_at = utcnow()
    _say(ticket, "close_question")
    db.session.add(TicketEvent(ticket=ticket, kind="close_asked", actor_type="system", public=True))


def forget_question(ticket: Ticket) -> None:
    """The ticket left 'resolved' some other way (reopened, closed by an agent)."""
    ticket.close_asked_at = None


def awaiting_close(customer_id: int) -> list[int]:
    """Ticket numbers whose closing question this customer has not answered, newest first."""
    return list(db.session.scalars(
        db.select(Ticket.id).where(Ticket.customer_id == customer_id, Ticket.status == TicketStatus.RESOLVED,
                                   Ticket.close_asked_at.is_not(None)).order_by(Ticket.close_asked_at.desc())))


def _owned(ticket_number: int, customer) -> Ticket:
    from .errors import NotFound
    ticket = db.session.get(Ticket, ticket_number)
    if ticket is None or ticket.customer_id != customer.id:
        raise NotFound("ticket not found")
    return ticket


def close_by_customer(ticket_number: int, customer) -> Ticket:
    """The customer agreed (or asked) to close their own ticket."""
    from .tickets import _set_status
    ticket = _owned(ticket_number, customer)
    if ticket.status == TicketStatus.CLOSED:
        return ticket
    if ticket.status not in (TicketStatus.RESOLVED, TicketStatus.NEW):
        # Asked by the customer while it was still being worked on.
        _set_status(ticket, TicketStatus.RESOLVED, None, notify=False)
    _set_status(ticket, TicketStatus.CLOSED, None, notify=False)
    db.session.add(TicketEvent(ticket=ticket, kind="closed_by_customer", actor_type="customer", public=True))
    ticket.close_asked_at = None
    ticket.rating_asked_at = utcnow()
    _say(ticket, "closed_ask_rating")
    live.ticket_changed(ticket, "updated")
    db.session.commit()
    return ticket


def reopen_by_customer(ticket_number: int, customer) -> Ticket:
    """The customer says the problem is not solved: back to its agent."""
    from .tickets import _set_status, hold
    ticket = _owned(ticket_number, customer)
    if ticket.status not in (TicketStatus.RESOLVED, TicketStatus.CLOSED):
        return ticket  # still open: nothing to reopen
    _set_status(ticket, TicketStatus.OPEN, None, notify=False)
    ticket.close_asked_at = None
    db.session.add(TicketEvent(ticket=ticket, kind="note", actor_type="system", public=False,
                               body="The customer says the problem is not solved: the ticket was reopened."))
    db.session.add(TicketEvent(ticket=ticket, kind="reopened_by_customer", actor_type="customer", public=True))
    conversation = _conversation(ticket)
    if conversation is not None and conversation.handoff_ticket_id is None:
        # "A person will follow up": the customer's next messages go to that
        # person on this ticket, not to the assistant.
        hold(conversation, ticket, "customer_disagreed")
    _say(ticket, "reopened")
    live.ticket_changed(ticket, "updated")
    db.session.commit()
    return ticket


def parse_rating(text: str | None) -> int | None:
    text = text or ""
    if STARS.match(text):
        return text.count("⭐")
    match = DIGIT.match(text)
    return int(match.group(1)) if match else None


def take_rating(message: Message) -> bool:
    """A 1-5 (or ⭐⭐⭐) answer to the rating question: stored on the ticket and
    thanked for, without bothering the assistant. Returns whether it was one."""
    score = parse_rating(message.body)
    if score is None:
        return False
    conversation = message.conversation
    ticket = db.session.scalar(
        db.select(Ticket).where(Ticket.customer_id == conversation.customer_id, Ticket.satisfaction.is_(None),
                                Ticket.rating_asked_at >= utcnow() - RATING_WINDOW)
        .order_by(Ticket.rating_asked_at.desc()).limit(1))
    if ticket is None:
        return False
    ticket.satisfaction = score
    message.ticket_id = ticket.id
    db.session.add(TicketEvent(ticket=ticket, kind="rating", actor_type="customer", public=True,
                               data={"score": score}))
    _say(ticket, "rating_thanks", score=score)
    live.ticket_changed(ticket, "updated")
    return True


def rate(ticket_number: int, customer, score) -> Ticket:
    """The API's way to record a rating (1-5)."""
    ticket = _owned(ticket_number, customer)
    if not isinstance(score, int) or isinstance(score, bool) or not 1 <= score <= 5:
        raise Invalid("the rating is a whole number from 1 to 5", field="score")
    if ticket.status != TicketStatus.CLOSED:
        raise Invalid("only a closed ticket can be rated", field="score")
    ticket.satisfaction = score
    db.session.add(TicketEvent(ticket=ticket, kind="rating", actor_type="customer", public=True,
                               data={"score": score}))
    db.session.commit()
    return ticket


def unanswered(now=None) -> list[int]:
    now = now or utcnow()
    limit = now - timedelta(days=current_app.config["CLOSE_AFTER_DAYS"])
    return list(db.session.scalars(
        db.select(Ticket.id).where(Ticket.status == TicketStatus.RESOLVED, Ticket.close_asked_at.is_not(None),
                                   Ticket.close_asked_at <= limit).limit(200)))


def close_unanswered(ticket_id: int, now=None) -> bool:
    """Close one ticket whose closing question went unanswered for too long."""
    from .tickets import _set_status
    now = now or utcnow()
    ticket = db.session.get(Ticket, ticket_id)
    limit = now - timedelta(days=current_app.config["CLOSE_AFTER_DAYS"])
    if ticket is None or ticket.status != TicketStatus.RESOLVED or ticket.close_asked_at is None \
            or ticket.close_asked_at > limit:
        return False  # answered or reopened meanwhile
    _set_status(ticket, TicketStatus.CLOSED, None, notify=False)
    ticket.close_asked_at = None
    db.session.add(TicketEvent(ticket=ticket, kind="closed_automatically", actor_type="system", public=True))
    _say(ticket, "closed_automatically")
    live.ticket_changed(ticket, "updated")
    db.session.commit()
    return True
