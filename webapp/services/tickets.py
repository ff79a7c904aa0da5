"""Tickets: creation (idempotent), status workflow, assignment, priority,
category, replies and notes. Every change is a TicketEvent (who and when)."""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy.exc import IntegrityError

from ..extensions import db
from ..models import (
    Agent,
    Conversation,
    Customer,
    InvalidTransition,
    Message,
    Ticket,
    TicketEvent,
    TicketPriority,
    TicketStatus,
    utcnow,
)
from . import closing, live, notifications, outbox, ticket_search  # noqa: F401  (ticket_search keeps the search documents current)
from .errors import Conflict, Forbidden, Invalid, NotFound
from .texts import render_email, render_text, status_label
from .tokens import status_url

CATEGORIES = ("order", "delivery", "payment", "product", "account", "other")
SUBJECT_MAX = 200
DESCRIPTION_MAX = 5000
# Conversation messages this far back before a ticket belong to its story.
CONTEXT_WINDOW = timedelta(hours=24)


def get(ticket_id: int) -> Ticket:
    ticket = db.session.get(Ticket, ticket_id)
    if ticket is None:
        raise NotFound("ticket not found")
    return ticket


def create(customer: Customer, subject: str, description: str, *, category: str | None = None,
           idempotency_key: str | None = None, conversation: Conversation | None = None) -> tuple[Ticket, bool]:
    """Open a ticket; returns (ticket, created). A repeated idempotency key
    returns the first ticket instead of opening a second one."""
    subject = " ".join((subject or "").split())
    description = (description or "").strip()
    if not subject:
        raise Invalid("a subject is required", field="subject")
    if len(subject) > SUBJECT_MAX:
        subject = subject[: SUBJECT_MAX - 1] + "…"
    if len(description) > DESCRIPTION_MAX:
        raise Invalid(f"the description is limited to {DESCRIPTION_MAX} characters", field="description")
    if category is not None and category not in CATEGORIES:
        raise Invalid("unknown category", field="category")
    if idempotency_key:
        existing = db.session.scalar(db.select(Ticket).filter_by(idempotency_key=idempotency_key))
        if existing is not None:
            if existing.customer_id != customer.id:
                raise Conflict("idempotency key already used")
            return existing, False
    if conversation is None:
        conversation = db.session.scalar(db.select(Conversation).filter_by(customer_id=customer.id))
    context_from = None
    if conversation is not None:
        context_from = db.session.scalar(
            db.select(db.func.min(Message.id)).where(
                Message.conversation_id == conversation.id,
                Message.created_at >= utcnow() - CONTEXT_WINDOW))
    ticket = Ticket(customer=customer, subject=subject, description=description, category=category,
                    idempotency_key=idempotency_key,
                    conversation_id=conversation.id if conversation else None,
                    context_from_message_id=context_from)
    db.session.add(ticket)
    try:
        db.session.flush()
    except IntegrityError:  # the same key, committed by a concurrent request
        db.session.rollback()
        existing = db.session.scalar(db.select(Ticket).filter_by(idempotency_key=idempotency_key))
        if existing is None:
            raise
        return existing, False
    db.session.add(TicketEvent(ticket=ticket, kind="created", actor_type="customer", public=True,
                               data={"subject": subject}))
    if customer.verified:
        subject_line, text, html = render_email(
            "ticket_created", customer.language, ticket=ticket, customer=customer,
            url=status_url(ticket.id))
        outbox.queue_email(customer.email, subject_line, text, html, customer=customer, ticket=ticket,
                           purpose="ticket_created")
    live.ticket_changed(ticket, "created")
    db.session.commit()
    return ticket, True


def for_customer(customer: Customer, active_only: bool = True) -> list[Ticket]:
    query = db.select(Ticket).filter_by(customer_id=customer.id).order_by(Ticket.id.desc())
    if active_only:
        query = query.where(Ticket.status.in_(TicketStatus.ACTIVE + (TicketStatus.RESOLVED,)))
    return list(db.session.scalars(query))


class InvalidTransitionError(Invalid):
    """A status change the workflow refuses (422, code invalid_transition)."""

    code = "invalid_transition"

    def __init__(self, message: str, old: str, new: str):
        allowed = sorted(TicketStatus.TRANSITIONS.get(old, ()))
        super().__init__(message, field="status", allowed=allowed)
        self.old, self.new = old, new


_UNSET = object()


def change_status(ticket: Ticket, new_status: str, agent: Agent | None, *, notify: bool = True) -> Ticket:
    """Move the ticket along the workflow; the customer is told on WhatsApp."""
    return update(ticket, agent, status=new_status, notify=notify)


def set_priority(ticket: Ticket, priority: str, agent: Agent) -> Ticket:
    return update(ticket, agent, priority=priority)


def set_category(ticket: Ticket, category: str | None, agent: Agent) -> Ticket:
    return update(ticket, agent, category=category)


def assign(ticket: Ticket, assignee: Agent | int | None, actor: Agent) -> Ticket:
    """Give the ticket to an active agent, or to nobody (None)."""
    assignee_id = assignee.id if isinstance(assignee, Agent) else assignee
    return update(ticket, actor, assignee_id=assignee_id)


def take(ticket: Ticket, agent: Agent) -> Ticket:
    return assign(ticket, agent, agent)


def update(ticket: Ticket, actor: Agent | None, *, status=_UNSET, priority=_UNSET, category=_UNSET,
           assignee_id=_UNSET, notify: bool = True) -> Ticket:
    """Apply several changes in one transaction: all of them or none."""
    try:
        if assignee_id is not _UNSET:
            _assign(ticket, assignee_id, actor)
        if priority is not _UNSET:
            _set_field(ticket, "priority", priority, TicketPriority.ALL, actor)
        if category is not _UNSET:
            _set_field(ticket, "category", category or None, CATEGORIES + (None,), actor)
        if status is not _UNSET:
            _set_status(ticket, str(status), actor, notify)
    except Exception:
        db.session.rollback()
        raise
    live.ticket_changed(ticket, "updated")
    db.session.commit()
    return ticket


def _event(ticket: Ticket, kind: str, actor: Agent | None, **kwargs) -> TicketEvent:
    event = TicketEvent(ticket=ticket, kind=kind, actor_type="agent" if actor else "system",
                        agent_id=actor.id if actor else None, **kwargs)
    db.session.add(event)
    return event


def _set_status(ticket: Ticket, new_status: str, actor: Agent | None, notify: bool) -> None:
    if new_status == ticket.status:
        return
    try:
        old = ticket.change_status(new_status)
    except InvalidTransition as exc:
        raise InvalidTransitionError(str(exc), exc.old, exc.new) from exc
    _event(ticket, "status", actor, public=True, data={"from": old, "to": new_status})
    lang = ticket.customer.language
    if old == TicketStatus.RESOLVED:
        closing.forget_question(ticket)
    if notify and new_status == TicketStatus.RESOLVED:
        # Resolved is a question, not news: may the ticket be closed? (On WhatsApp: closing.ask.)
        notifications.ticket_event(ticket, "resolved", agent=actor)
    # "open" and "in progress" read the same to a customer: no message for that.
    elif notify and status_label(old, lang) != status_label(new_status, lang):
        notifications.ticket_event(ticket, "status_changed", agent=actor, old=old)
    if new_status in (TicketStatus.RESOLVED, TicketStatus.CLOSED) and holds_conversation(ticket):
        # On resolve the closing question says the assistant is back.
        _release(ticket, actor, announce=new_status != TicketStatus.RESOLVED)


def customer_answered(ticket: Ticket) -> None:
    """The customer wrote on a ticket that waited for them: it needs people
    again (in the caller's transaction; the customer is not notified)."""
    if ticket.status == TicketStatus.PENDING:
        _set_status(ticket, TicketStatus.OPEN, None, notify=False)
        live.ticket_changed(ticket, "updated")


def _set_field(ticket: Ticket, name: str, value, allowed, actor: Agent | None) -> None:
    if value not in allowed:
        raise Invalid(f"unknown {name} '{value}'", field=name)
    old = getattr(ticket, name)
    if old == value:
        return
    setattr(ticket, name, value)
    _event(ticket, name, actor, data={"from": old, "to": value})


def _assign(ticket: Ticket, assignee_id: int | None, actor: Agent | None) -> None:
    if assignee_id is not None and (not isinstance(assignee_id, int) or isinstance(assignee_id, bool)):
        raise Invalid("assignee_id must be an agent id or null", field="assignee_id")
    if assignee_id == ticket.assignee_id:
        return
    # Nobody takes a ticket out of a colleague's hands but an admin.
    if (ticket.assignee_id is not None and actor is not None and ticket.assignee_id != actor.id
            and not actor.is_admin):
        raise Forbidden("only the assignee or an admin can reassign this ticket", field="assignee_id")
    assignee = None
    if assignee_id is not None:
        assignee = db.session.get(Agent, assignee_id)
        if assignee is None or not assignee.active:
            raise Invalid("tickets go to active agents only", field="assignee_id")
    previous = ticket.assignee
    ticket.assignee_id = assignee_id
    ticket.assignee = assignee
    _event(ticket, "assignee", actor, data={
        "from": previous.id if previous else None, "from_name": previous.name if previous else None,
        "to": assignee.id if assignee else None, "to_name": assignee.name if assignee else None})


def holds_conversation(ticket: Ticket) -> bool:
    """Whether a person owns this ticket's conversation (the bot is silent)."""
    return db.session.scalar(db.select(db.func.count()).select_from(Conversation)
                             .filter_by(handoff_ticket_id=ticket.id)) > 0


def hand_back(ticket: Ticket, agent: Agent) -> None:
    """Give the conversation back to the assistant."""
    if not holds_conversation(ticket):
        raise Invalid("the assistant already has this conversation")
    _release(ticket, agent)
    live.ticket_changed(ticket, "handback")
    db.session.commit()


def hold(conversation: Conversation, ticket: Ticket, reason: str, agent: Agent | None = None) -> None:
    """A person takes the conversation on this ticket (in the caller's
    transaction): the customer's messages go to them, the assistant is silent."""
    conversation.handoff_ticket_id = ticket.id
    db.session.add(TicketEvent(ticket=ticket, kind="handoff", actor_type="agent" if agent else "system",
                               agent_id=agent.id if agent else None, data={"reason": reason}))


def _release(ticket: Ticket, agent: Agent | None, announce: bool = True) -> None:
    conversation = db.session.scalar(db.select(Conversation).filter_by(handoff_ticket_id=ticket.id))
    conversation.handoff_ticket_id = None
    conversation.assistant_reset_pending = True  # no stale form or slots when the bot resumes
    db.session.add(TicketEvent(ticket=ticket, kind="handback", actor_type="agent" if agent else "system",
                               agent_id=agent.id if agent else None))
    if announce:
        _notify_customer(ticket, "handback", always=True)


def reply(ticket: Ticket, agent: Agent, body: str, client_key: str | None = None, *,
          template: str | None = None) -> Message:
    """An agent's public reply: recorded on the ticket and sent on WhatsApp
    (outside the 24-hour window as a template, see services.notifications),
    with a copy by email when configured."""
    body = _text(body)
    if not body and template is None:
        raise Invalid("the reply is empty", field="body")
    if client_key and len(client_key) > 64:
        raise Invalid("the idempotency key is limited to 64 characters", field="client_key")
    if client_key:
        existing = db.session.scalar(db.select(Message).filter_by(client_key=client_key))
        if existing is not None:
            return existing
    try:
        return _send_reply(ticket, agent, body, client_key, template)
    except IntegrityError:
        # A concurrent double submit with the same key got there first (the
        # insert may fail at any flush, not only at the commit): that one is the reply.
        db.session.rollback()
        existing = db.session.scalar(db.select(Message).filter_by(client_key=client_key)) if client_key else None
        if existing is None:
            raise
        return existing


def _send_reply(ticket: Ticket, agent: Agent, body: str, client_key: str | None, template: str | None) -> Message:
    conversation = _conversation_of(ticket)
    message = notifications.agent_message(conversation, ticket, agent, body, template=template,
                                          client_key=client_key)
    notifications.ticket_event(ticket, "agent_reply", agent=agent, text=body or message.body)
    body = message.body  # what the customer reads (a template's text)
    if conversation.handoff_ticket_id is None:
        # The customer will answer the person, not the assistant: the agent
        # holds the conversation until they give it back or resolve the ticket.
        hold(conversation, ticket, "agent_reply", agent)
    db.session.add(TicketEvent(ticket=ticket, kind="reply", actor_type="agent", agent_id=agent.id,
                               body=body, public=True))
    if ticket.status == TicketStatus.NEW:
        _set_status(ticket, TicketStatus.OPEN, agent, notify=False)
    if ticket.assignee_id is None:
        _assign(ticket, agent.id, agent)
    live.ticket_changed(ticket, "reply")
    db.session.commit()
    return message


def _text(body: str | None) -> str:
    # Browsers send a textarea's line breaks as CRLF; WhatsApp wants \n.
    return (body or "").replace("\r\n", "\n").replace("\r", "\n").strip()


def add_note(ticket: Ticket, agent: Agent, body: str) -> TicketEvent:
    body = _text(body)
    if not body:
        raise Invalid("the note is empty", field="body")
    event = TicketEvent(ticket=ticket, kind="note", actor_type="agent", agent_id=agent.id, body=body,
                        public=False)
    db.session.add(event)
    live.ticket_changed(ticket, "note")
    db.session.commit()
    return event


def _conversation_of(ticket: Ticket) -> Conversation:
    conversation = None
    if ticket.conversation_id:
        conversation = db.session.get(Conversation, ticket.conversation_id)
    if conversation is None:
        conversation = db.session.scalar(db.select(Conversation).filter_by(customer_id=ticket.customer_id))
    if conversation is None:
        raise Invalid("this customer has no WhatsApp conversation")
    return conversation


def _conversation_or_none(ticket: Ticket) -> Conversation | None:
    try:
        return _conversation_of(ticket)
    except Invalid:
        return None


def _notify_customer(ticket: Ticket, template: str, *, always: bool = False, **context) -> None:
    """A WhatsApp notification about the ticket; none for a customer who wrote
    "parar" (unless ``always``: what they need to know to keep talking)."""
    customer = ticket.customer
    if not always and not customer.notify_whatsapp:
        return
    text = render_text(template, customer.language, ticket=ticket, customer=customer, **context)
    outbox.queue_whatsapp(_conversation_of(ticket), text, author="system", ticket_id=ticket.id)


def conversation_messages(ticket: Ticket) -> list[Message]:
    """The WhatsApp messages that belong to this ticket's story."""
    if not ticket.conversation_id:
        return []
    query = db.select(Message).filter_by(conversation_id=ticket.conversation_id).order_by(Message.id)
    if ticket.context_from_message_id:
        query = query.where(Message.id >= ticket.context_from_message_id)
    return list(db.session.scalars(query))


def public_timeline(ticket: Ticket) -> list[TicketEvent]:
    return list(ticket.events.filter_by(public=True))
