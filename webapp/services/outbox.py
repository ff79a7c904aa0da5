"""The persistent outbox: every WhatsApp message and email leaves through it.

Queuing functions add rows to the caller's transaction (they never commit),
so a message is recorded together with whatever caused it. ``dispatch_due``
sends what is due, strictly in order per recipient, with retries.
"""
from __future__ import annotations

import logging
from datetime import timedelta

from flask import current_app

from bot.text import split_message
from bot.twilio_whatsapp import SendError, TwilioSender

from ..extensions import db
from ..models import Conversation, Customer, Message, Outbox, Ticket, utcnow
from . import live, mailer
from .texts import render_text

log = logging.getLogger(__name__)


def queue_whatsapp(conversation: Conversation, body: str, *, author: str, agent_id: int | None = None,
                   ticket_id: int | None = None, client_key: str | None = None) -> Message:
    """Record an outbound WhatsApp message and its parts (under 1600 chars each)."""
    message = Message(conversation=conversation, direction="out", author=author, agent_id=agent_id,
                      ticket_id=ticket_id, body=body, status="queued", client_key=client_key)
    db.session.add(message)
    for part in split_message(body):
        db.session.add(Outbox(channel="whatsapp", recipient=conversation.address, message=message,
                              body=part))
    live.message_changed(message, "message")
    return message


def queue_email(to: str, subject: str, text: str, html: str | None = None, *,
                customer: Customer | None = None, ticket: Ticket | None = None,
                purpose: str | None = None) -> Outbox:
    """Record an email. With a customer and a purpose, the customer is told
    on WhatsApp when it went out (ticket links) or could not be sent at all."""
    row = Outbox(channel="email", recipient=to, subject=subject, body=text, html=html,
                 customer=customer, ticket=ticket, purpose=purpose)
    db.session.add(row)
    return row


def email_status(ticket: Ticket, purpose: str = "ticket_created") -> str | None:
    """Where the ticket's email is: queued (not sent yet), sent, failed (will
    not be sent), or None when there is none. The assistant never says an
    email was sent before it was."""
    row = db.session.scalar(db.select(Outbox).filter_by(ticket_id=ticket.id, purpose=purpose, channel="email")
                            .order_by(Outbox.id.desc()).limit(1))
    if row is None:
        return None
    return {"sent": "sent", "dead": "failed"}.get(row.status, "queued")


def backoff(attempts: int) -> timedelta:
    """Exponential backoff: 2, 4, 8 ... seconds, capped at 10 minutes."""
    return timedelta(seconds=min(2 ** attempts, 600))


def make_sender() -> TwilioSender:
    cfg = current_app.config
    return TwilioSender(cfg["TWILIO_ACCOUNT_SID"], cfg["TWILIO_AUTH_TOKEN"],
                        api_base_url=cfg["TWILIO_API_BASE_URL"] or None)


def dispatch_due(sender: TwilioSender | None = None) -> int:
    """Send every recipient's due rows, in order, one recipient after another
    (the worker runs ``dispatch_recipient`` per recipient on a thread pool)."""
    return sum(dispatch_recipient(recipient, sender) for recipient in waiting_recipients())


def waiting_recipients(limit: int = 500) -> list[str]:
    """Recipients with rows to send, the longest-waiting first."""
    first = db.func.min(Outbox.id)
    rows = db.session.execute(
        db.select(Outbox.recipient, first).where(Outbox.status.in_(("pending", "failed")))
        .group_by(Outbox.recipient).order_by(first).limit(limit))
    return [recipient for recipient, _ in rows]


def dispatch_recipient(recipient: str, sender: TwilioSender | None = None) -> int:
    """Send one recipient's rows in order, until one must wait for a retry.
    The worker runs one of these per recipient at a time."""
    sent = 0
    while True:
        row = db.session.scalar(
            db.select(Outbox).where(Outbox.recipient == recipient, Outbox.status.in_(("pending", "failed")))
            .order_by(Outbox.id).limit(1))
        if row is None or row.next_attempt_at > utcnow() or not _send_one(row, sender):
            return sent
        sent += 1


def _send_one(row: Outbox, sender: TwilioSender | None) -> bool:
    cfg = current_app.config
    # Mark as sending first: a crash mid-send leaves a visible 'sending' row
    # rather than a silent resend.
    row.status = "sending"
    row.attempts += 1
    db.session.commit()
    try:
        if row.channel == "whatsapp":
            sender = sender or make_sender()
            result = sender.send(from_=cfg["TWILIO_WHATSAPP_FROM"], to=row.recipient, body=row.body,
                                 status_callback=cfg["PUBLIC_BASE_URL"].rstrip("/") + "/webhooks/twilio/status")
            row.provider_id = result.sid
        else:
            _send_email(row)
    except SendError as exc:
        return _failed(row, str(exc), exc.transient)
    except Exception as exc:  # SMTP errors and timeouts are transient
        return _failed(row, f"{exc.__class__.__name__}: {exc}", True)
    row.status = "sent"
    row.sent_at = utcnow()
    row.last_error = None
    _refresh_message_status(row.message)
    if row.channel == "email" and row.purpose == "ticket_created":
        _tell_customer(row, "ticket_created_email_sent")
    db.session.commit()
    return True


def _failed(row: Outbox, error: str, transient: bool) -> bool:
    row.last_error = error[:2000]
    if transient and row.attempts < current_app.config["OUTBOX_MAX_ATTEMPTS"]:
        row.status = "failed"
        row.next_attempt_at = utcnow() + backoff(row.attempts)
    else:
        row.status = "dead"
        if row.channel == "email" and row.purpose in ("ticket_created", "verification_code"):
            _tell_customer(row, f"{row.purpose}_email_failed")
    log.warning("outbox %s %s attempt %s: %s", row.id, row.status, row.attempts, error)
    _refresh_message_status(row.message)
    db.session.commit()
    return False


def _send_email(row: Outbox) -> None:
    cfg = current_app.config
    sender = cfg["MAIL_DEFAULT_SENDER"]
    domain = mailer.sender_address(sender).domain or "zapdesk.invalid"
    # Stable for this row (and unique across databases: the creation instant):
    # every attempt carries the same Message-ID.
    message_id = f"<outbox.{row.id}.{row.created_at:%Y%m%d%H%M%S%f}@{domain}>"
    msg = mailer.build(sender=sender, to=row.recipient, to_name=row.customer.name if row.customer else None,
                       subject=row.subject or "", text=row.body, html=row.html, message_id=message_id)
    mailer.send(msg, cfg)


def _tell_customer(row: Outbox, template: str) -> None:
    """A WhatsApp notice about an email, in the customer's language."""
    customer = row.customer
    if customer is None:
        return
    later = db.session.scalar(db.select(Outbox.id).where(
        Outbox.customer_id == customer.id, Outbox.purpose == row.purpose, Outbox.id > row.id).limit(1))
    if later is not None:  # a newer email of the same kind (a new code) makes this one moot
        return
    conversation = db.session.scalar(db.select(Conversation).filter_by(customer_id=customer.id))
    if conversation is None:
        return
    queue_whatsapp(conversation, render_text(template, customer.language, ticket=row.ticket, email=row.recipient),
                   author="system", ticket_id=row.ticket_id)


def _refresh_message_status(message: Message | None) -> None:
    """A message's status is that of its least advanced part; a dead part fails it."""
    if message is None:
        return
    before = message.status
    statuses = [p.status for p in message.parts]
    if any(s in ("dead", "undelivered") for s in statuses):
        message.status = "failed"
        message.error = next((p.last_error for p in message.parts if p.last_error), None)
    elif all(s in ("sent", "delivered", "read") for s in statuses):
        order = ["sent", "delivered", "read"]
        message.status = min(statuses, key=order.index)
    else:
        message.status = "queued"
    if message.status != before:
        live.message_changed(message, "delivery")


def record_delivery_status(provider_id: str, status: str, error_code: str | None = None) -> bool:
    """Apply a Twilio status callback; statuses only move forward."""
    row = db.session.scalar(db.select(Outbox).filter_by(provider_id=provider_id))
    if row is None:
        return False
    changed = row.advance(status)
    if changed and error_code:
        row.last_error = f"Twilio error {error_code}"
    if changed:
        _refresh_message_status(row.message)
    db.session.commit()
    return changed
