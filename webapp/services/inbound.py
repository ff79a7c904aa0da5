"""Inbound WhatsApp messages: stored by the webhook, processed by the worker."""
from __future__ import annotations

import logging
import unicodedata
from datetime import timedelta

from flask import current_app
from sqlalchemy.exc import IntegrityError

from bot.rasa_client import RasaClient, RasaTimeout, RasaUnavailable
from bot.text import guess_language
from bot.twilio_whatsapp import InboundMessage

from ..extensions import db
from ..models import Conversation, Message, Ticket, TicketEvent, TicketStatus, utcnow
from . import business_hours, closing, customers, live, media, outbox, tickets
from .texts import render_text

log = logging.getLogger(__name__)
RETRY_CAP = timedelta(seconds=10)
RESTART = "/restart"  # Rasa's built-in intent: a clean tracker


def store(inbound: InboundMessage) -> tuple[Message, bool]:
    """Store a webhook's message; returns (message, is_new). A MessageSid seen
    before is not stored again."""
    existing = db.session.scalar(db.select(Message).filter_by(provider_sid=inbound.sid))
    if existing is not None:
        return existing, False
    conversation = customers.get_or_create_for_whatsapp(inbound.from_, inbound.wa_id, inbound.profile_name)
    location = None
    if inbound.latitude is not None and inbound.longitude is not None:
        location = {"latitude": inbound.latitude, "longitude": inbound.longitude,
                    "address": inbound.address, "label": inbound.label}
    message = Message(
        conversation=conversation, direction="in", author="customer", body=inbound.body,
        media=[{"url": m.url, "content_type": m.content_type} for m in inbound.media],
        location=location, provider_sid=inbound.sid, status="received",
        ticket_id=conversation.handoff_ticket_id,
    )
    conversation.last_inbound_at = utcnow()
    db.session.add(message)
    media.record(message, inbound.media)
    live.message_changed(message, "message")
    try:
        db.session.commit()
    except IntegrityError:  # the same delivery, stored concurrently
        db.session.rollback()
        existing = db.session.scalar(db.select(Message).filter_by(provider_sid=inbound.sid))
        if existing is None:
            raise
        return existing, False
    return message, True


def process_due(rasa: RasaClient) -> int:
    """Process every conversation's received messages, in order, one
    conversation after another (the worker runs ``process_conversation`` per
    conversation on a thread pool)."""
    return sum(process_conversation(conversation_id, rasa) for conversation_id in waiting_conversations())


def waiting_conversations(limit: int = 500) -> list[int]:
    """Conversations with received messages, the longest-waiting first."""
    first = db.func.min(Message.id)
    rows = db.session.execute(
        db.select(Message.conversation_id, first)
        .where(Message.direction == "in", Message.status == "received")
        .group_by(Message.conversation_id).order_by(first).limit(limit))
    return [conversation_id for conversation_id, _ in rows]


def process_conversation(conversation_id: int, rasa: RasaClient) -> int:
    """Process one conversation's received messages in order, until one must
    wait for a retry. The worker runs one of these per conversation at a time."""
    done = 0
    while True:
        message = db.session.scalar(
            db.select(Message).where(Message.conversation_id == conversation_id, Message.direction == "in",
                                     Message.status == "received").order_by(Message.id).limit(1))
        if message is None or (message.next_attempt_at and message.next_attempt_at > utcnow()):
            return done
        if not process_one(message, rasa):
            return done
        done += 1


def rasa_text(message: Message) -> str:
    """The text Rasa sees. Customer text never starts with '/', which Rasa
    would read as an intent injected by the caller. A shared location is never
    text for NLU (its coordinates travel in the metadata); media without a
    caption, and text with nothing visible in it, are explicit intents."""
    if message.location:
        return "/share_location"
    text = (message.body or "").strip()
    if not _visible(text):
        return "/share_media" if message.media else "/empty_message"
    # Slashes, spaces and invisible characters in any mix ("/ /restart") go.
    start = 0
    while start < len(text) and (text[start] == "/" or text[start].isspace()
                                 or unicodedata.category(text[start]) == "Cf"):
        start += 1
    return text[start:].strip() or "/empty_message"


def _visible(text: str) -> bool:
    # Zero-width spaces, joiners and other format characters are not a message.
    return any(not ch.isspace() and unicodedata.category(ch) not in ("Cf", "Cc") for ch in text)


def process_one(message: Message, rasa: RasaClient) -> bool:
    conversation: Conversation = message.conversation
    customer = conversation.customer
    if conversation.handoff_ticket_id or message.ticket_id:
        # A person owns the conversation, or did when the message arrived (it
        # was written to them, even if they handed back since): the bot stays
        # silent and the message joins that ticket's thread.
        message.ticket_id = message.ticket_id or conversation.handoff_ticket_id
        message.status = "processed"
        message.processed_at = utcnow()
        db.session.add(TicketEvent(ticket_id=message.ticket_id, kind="customer_message",
                                   actor_type="customer", body=message.body, public=True,
                                   data={"message_id": message.id, "media": message.media or [],
                                         "location": message.location}))
        live.message_changed(message, "message")
        ticket = db.session.get(Ticket, message.ticket_id)
        if ticket is not None:
            tickets.customer_answered(ticket)
        db.session.commit()
        return True
    if closing.take_rating(message):
        # "5" or "⭐⭐⭐⭐" right after the rating question: recorded and thanked
        # for here; a bare number means nothing to the assistant.
        message.status = "processed"
        message.processed_at = utcnow()
        db.session.commit()
        return True
    guessed = guess_language(message.body or "")
    if guessed and not customer.language_chosen:
        customer.language = guessed
    message.language = customer.language
    metadata = {
        # Resolved tickets whose "may I close it?" question waits for an answer.
        "awaiting_close": closing.awaiting_close(customer.id),
        "language": customer.language,
        "profile_name": customer.profile_name,  # as WhatsApp sent it
        "greeting_name": customer.greeting_name,  # None: greet neutrally
        "media": message.media or [],
        "location": message.location,
        # Stable across deliveries of this message: an idempotency key for actions.
        "message_sid": message.provider_sid,
    }
    sender_id, text = conversation.rasa_sender_id, rasa_text(message)
    reset = conversation.assistant_reset_pending
    spoken_before = _last_outbound_id(conversation)
    # No transaction (and so no lock) stays open while Rasa thinks: a slow
    # turn must not hold back the webhook or other conversations.
    db.session.commit()
    try:
        if reset:
            # An agent gave the conversation back: forget the old form and
            # slots; the next turn starts a new session from what we know.
            rasa.send(sender_id, RESTART, metadata)
            conversation.assistant_reset_pending = False
            db.session.commit()
        replies = rasa.send(sender_id, text, metadata)
    except RasaTimeout as exc:
        if conversation.assistant_reset_pending:  # only the restart timed out: sending it again is harmless
            return _rasa_failed(message, str(exc))
        return _rasa_timed_out(message, str(exc))
    except RasaUnavailable as exc:
        return _rasa_failed(message, str(exc))
    said = 0
    for reply in replies:
        text = reply.text or ""
        if reply.image:
            text = f"{text}\n{reply.image}".strip()
        if text:
            outbox.queue_whatsapp(conversation, text, author="bot")
            said += 1
    if not said and _last_outbound_id(conversation) == spoken_before:
        # The assistant answers every message, itself or through the API (an
        # action that closes a ticket leaves the words to the webapp); silence
        # means a custom action failed (the action server is down or raised)
        # and Rasa carried on without it. People take over rather than leave
        # the customer waiting.
        log.warning("Rasa said nothing to message %s: handing the conversation to people", message.id)
        ticket = handoff(conversation, reason="assistant_error", commit=False)
        message.ticket_id = ticket.id
    message.status = "processed"
    message.processed_at = utcnow()
    db.session.commit()
    return True


def _last_outbound_id(conversation: Conversation) -> int:
    """The newest message sent to this conversation (by anyone), 0 if none."""
    return db.session.scalar(db.select(db.func.max(Message.id)).where(
        Message.conversation_id == conversation.id, Message.direction == "out")) or 0


def _rasa_failed(message: Message, error: str) -> bool:
    message.attempts += 1
    message.error = error[:2000]
    log.warning("Rasa failed for message %s (attempt %s): %s", message.id, message.attempts, error)
    waited = (utcnow() - message.created_at).total_seconds()
    if waited < current_app.config["INBOUND_GIVE_UP_SECONDS"]:
        # Short waits: Rasa may just be starting or reloading a model.
        message.next_attempt_at = utcnow() + min(outbox.backoff(message.attempts), RETRY_CAP)
        db.session.commit()
        return False
    # The assistant is down: hand the conversation to people rather than stay silent.
    ticket = handoff(message.conversation, reason="assistant_unavailable", commit=False)
    message.status = "failed"
    message.ticket_id = ticket.id
    message.processed_at = utcnow()
    db.session.commit()
    return True


def _rasa_timed_out(message: Message, error: str) -> bool:
    """Rasa got the message but did not answer in time. It may still finish the
    turn (open a ticket, say something we will never receive), so the message is
    not sent again, which could run the turn twice: people take over, and the
    customer gets exactly one answer, the handoff notice."""
    message.attempts += 1
    message.error = f"Rasa timeout: {error}"[:2000]
    log.warning("Rasa did not answer message %s in time; handing off: %s", message.id, error)
    note = ("The assistant did not answer this message in time. It was not sent to the assistant again, "
            "so the assistant may have done part of it (check the customer's tickets).")
    ticket = handoff(message.conversation, reason="assistant_unavailable", note=note, commit=False)
    message.status = "failed"
    message.ticket_id = ticket.id
    message.processed_at = utcnow()
    db.session.commit()
    return True


def handoff(conversation: Conversation, *, reason: str, note: str | None = None,
            context: dict | None = None, commit: bool = True, announce: bool = True) -> Ticket:
    """Give the conversation to people: reuse the customer's active ticket or
    open one. ``context`` (what the assistant knew: intent, slots, articles
    offered, last messages) becomes an internal note so the customer never
    repeats themselves."""
    customer = conversation.customer
    ticket = db.session.scalar(
        db.select(Ticket).where(Ticket.customer_id == customer.id,
                                Ticket.status.in_(TicketStatus.ACTIVE)).order_by(Ticket.id.desc()).limit(1))
    if ticket is None:
        subject = render_text("handoff_subject", customer.language)
        ticket = Ticket(customer=customer, subject=subject, conversation_id=conversation.id,
                        source="handoff")
        db.session.add(ticket)
        db.session.flush()
        db.session.add(TicketEvent(ticket=ticket, kind="created", actor_type="bot", public=True,
                                   data={"subject": subject}))
    conversation.handoff_ticket_id = ticket.id
    context = handoff_context(conversation, context)
    db.session.add(TicketEvent(ticket=ticket, kind="handoff", actor_type="bot",
                               body=note or context_note(context), data={"reason": reason, "context": context}))
    if announce:  # when the assistant hands off, it says so itself
        outbox.queue_whatsapp(conversation, handoff_text(customer, ticket), author="system",
                              ticket_id=ticket.id)
    live.ticket_changed(ticket, "handoff")
    if commit:
        db.session.commit()
    return ticket


def handoff_text(customer, ticket: Ticket) -> str:
    """What the customer is told: a person answers now, or when the team is back."""
    schedule = business_hours.from_config(current_app.config)
    opens = schedule.next_opening(utcnow())
    if opens is not None and not schedule.is_open(utcnow()):
        return render_text("handoff_closed", customer.language, ticket=ticket, opens_at=opens, now=utcnow())
    return render_text("handoff", customer.language, ticket=ticket)


def opening_info(customer) -> dict:
    """Business hours as the assistant needs them for its own handoff message."""
    schedule = business_hours.from_config(current_app.config)
    if schedule.is_open(utcnow()):
        return {"open": True, "opens_at": None}
    opens = schedule.next_opening(utcnow())
    return {"open": False, "opens_at": opens.isoformat() if opens else None,
            "opens_at_text": render_text("opens_at", customer.language, opens_at=opens, now=utcnow())}


CONTEXT_LIMITS = {"intent": 80, "slot": 500, "article": 200, "message": 1000}


def handoff_context(conversation: Conversation, given: dict | None) -> dict:
    """A bounded, clean copy of what the assistant sent, with the last
    customer messages taken from our own records when it sent none."""
    given = given if isinstance(given, dict) else {}
    slots = given.get("slots") if isinstance(given.get("slots"), dict) else {}
    articles = given.get("kb_articles") if isinstance(given.get("kb_articles"), list) else []
    last = given.get("last_messages") if isinstance(given.get("last_messages"), list) else None
    if last is None:
        rows = db.session.scalars(
            db.select(Message.body).where(Message.conversation_id == conversation.id, Message.direction == "in",
                                          Message.body != "").order_by(Message.id.desc()).limit(5))
        last = list(reversed([body for body in rows if body]))
    return {
        "intent": str(given.get("intent") or "")[:CONTEXT_LIMITS["intent"]] or None,
        "slots": {str(k)[:40]: str(v)[:CONTEXT_LIMITS["slot"]] for k, v in list(slots.items())[:12]
                  if v not in (None, "")},
        "kb_articles": [str(a)[:CONTEXT_LIMITS["article"]] for a in articles[:10] if a],
        "last_messages": [str(m)[:CONTEXT_LIMITS["message"]] for m in last[-5:] if m],
    }


def context_note(context: dict) -> str:
    """The internal note agents read (in the agent UI's language: English labels)."""
    lines = []
    if context.get("intent"):
        lines.append(f"Detected intent: {context['intent']}")
    for name, value in (context.get("slots") or {}).items():
        lines.append(f"{name.replace('_', ' ').capitalize()}: {value}")
    if context.get("kb_articles"):
        lines.append("Articles offered: " + "; ".join(context["kb_articles"]))
    if context.get("last_messages"):
        lines.append("Last messages from the customer:")
        lines.extend(f"> {m}" for m in context["last_messages"])
    return "\n".join(lines)
