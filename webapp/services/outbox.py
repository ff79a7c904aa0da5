"""The persistent outbox: every WhatsApp message and email leaves through it.

Queuing functions add rows to the caller's transaction (they never commit),
so a message is recorded together with whatever caused it. ``dispatch_due``
sends what is due, strictly in order per recipient, with retries.

Sending each row at most once
-----------------------------
A sender claims a row with a conditional UPDATE (only one claim can win) that
marks it 'sending' with a lease (``OUTBOX_LEASE_SECONDS``) and commits before
talking to Twilio or SMTP. A row whose claim ran out (the sender crashed
between the send and recording it) is picked up again:

- WhatsApp: when an attempt's outcome is unknown (a lost claim, a timeout, a
  5xx) the row is marked ``needs_check`` and, before it is sent again,
  Twilio's Messages list is asked whether it went out after all; if it did,
  its SID is adopted instead of sending a second copy. If Twilio cannot be
  asked, the row waits (and retries the question) rather than risk a double.
- Email: SMTP cannot be asked. The email is sent again with the same
  Message-ID (at least once, never lost; receivers collapse duplicates by
  Message-ID). A server that dropped the connection after DATA gets the same
  treatment.

The trade-off: a crash can delay a recipient's queue by up to the lease (later
rows wait behind the claimed one, to keep the order), and a WhatsApp row whose
check cannot be answered waits instead of being sent twice.

Delivery status callbacks only move a row forward; Twilio's "failed" or
"undelivered" makes it 'undelivered' (never retried by itself) and hands it
to ``notifications.whatsapp_failed`` for the fallback. A callback that comes
before its SID is recorded waits in ``outbox_early_statuses``.
"""
from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import timedelta

from flask import current_app
from sqlalchemy.exc import IntegrityError

from bot.text import split_message
from bot.twilio_whatsapp import SendError, SentRecord, TwilioSender

from ..extensions import db
from ..models import Conversation, Customer, Message, Outbox, Ticket, utcnow
from ..models.messaging import EarlyDeliveryStatus
from . import live, mailer
from .errors import Invalid, NotFound
from .texts import render_text

log = logging.getLogger(__name__)

# Rows a sender works on, oldest first per recipient: due, waiting for a retry, or claimed.
UNSENT = ("pending", "failed", "sending")
# Rows that will not go out unless an admin retries them.
DEAD = ("dead", "undelivered")
# Twilio's clock and ours may differ: how far back a lost send is looked for.
CLOCK_SKEW = timedelta(minutes=2)
TWILIO_ERRORS = {
    "63016": "outside WhatsApp's 24-hour window: only an approved template can be sent",
    "63003": "the WhatsApp number could not be reached",
    "63024": "not a valid WhatsApp recipient",
    "63027": "the template does not exist for this language",
    "63049": "Meta chose not to deliver this message",
    "63051": "the WhatsApp account is locked",
    "21656": "the template (Content SID) or its variables are invalid",
}

# While a notification is being sent, system messages queued by the code it
# calls (the closing question) go through its router (the 24-hour window).
_router: ContextVar[Callable[..., Message | None] | None] = ContextVar("outbox_router", default=None)


@contextmanager
def routed(router: Callable[..., Message | None]) -> Iterator[None]:
    token = _router.set(router)
    try:
        yield
    finally:
        _router.reset(token)


def queue_whatsapp(conversation: Conversation, body: str, *, author: str, agent_id: int | None = None,
                   ticket_id: int | None = None, client_key: str | None = None, purpose: str | None = None,
                   notify_key: str | None = None, content_sid: str | None = None,
                   content_variables: dict | None = None, fallback_for: Outbox | None = None) -> Message | None:
    """Record an outbound WhatsApp message: free text in parts (under 1600
    chars each), or one approved template (``content_sid`` and its variables;
    ``body`` is the text the customer reads, kept for the timeline).

    Returns None only when a notification's router decided it cannot go on
    WhatsApp (outside the 24-hour window without a template)."""
    router = _router.get()
    if router is not None and author == "system" and purpose is None:
        return router(conversation, body, ticket_id=ticket_id)
    message = Message(conversation=conversation, direction="out", author=author, agent_id=agent_id,
                      ticket_id=ticket_id, body=body, status="queued", client_key=client_key)
    db.session.add(message)
    common = {"channel": "whatsapp", "recipient": conversation.address, "message": message, "purpose": purpose,
              "notify_key": notify_key, "ticket_id": ticket_id}
    if content_sid:
        db.session.add(Outbox(body=body, content_sid=content_sid, content_variables=content_variables or {},
                              fallback_for=fallback_for, **common))
    else:
        for index, part in enumerate(split_message(body)):
            db.session.add(Outbox(body=part, fallback_for=fallback_for if index == 0 else None, **common))
    live.message_changed(message, "message")
    return message


def queue_email(to: str, subject: str, text: str, html: str | None = None, *,
                customer: Customer | None = None, ticket: Ticket | None = None,
                purpose: str | None = None, notify_key: str | None = None,
                fallback_for: Outbox | None = None) -> Outbox:
    """Record an email. With a customer and a purpose, the customer is told
    on WhatsApp when it went out (ticket links) or could not be sent at all."""
    row = Outbox(channel="email", recipient=to, subject=subject, body=text, html=html,
                 customer=customer, ticket=ticket, purpose=purpose, notify_key=notify_key,
                 fallback_for=fallback_for)
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
    """Recipients with rows to send (or a claim that ran out), the longest-waiting first."""
    first = db.func.min(Outbox.id)
    due = db.or_(Outbox.status.in_(("pending", "failed")),
                 db.and_(Outbox.status == "sending", Outbox.next_attempt_at <= utcnow()))
    rows = db.session.execute(
        db.select(Outbox.recipient, first).where(due).group_by(Outbox.recipient).order_by(first).limit(limit))
    return [recipient for recipient, _ in rows]


def dispatch_recipient(recipient: str, sender: TwilioSender | None = None) -> int:
    """Send one recipient's rows in order, until one must wait (for a retry,
    or for another sender's claim). The worker runs one of these per recipient."""
    sent = 0
    while True:
        row = db.session.scalar(
            db.select(Outbox).where(Outbox.recipient == recipient, Outbox.status.in_(UNSENT))
            .order_by(Outbox.id).limit(1))
        if row is None or row.next_attempt_at > utcnow() or not _send_one(row, sender):
            return sent
        sent += 1


def _claim(row: Outbox) -> bool:
    """Take the row for one attempt; False when another sender took it first."""
    now = utcnow()
    recovering = row.status == "sending"  # the previous claim ran out: its outcome is unknown
    lease = timedelta(seconds=float(current_app.config["OUTBOX_LEASE_SECONDS"]))
    result = db.session.execute(
        db.update(Outbox).where(Outbox.id == row.id, Outbox.status == row.status, Outbox.attempts == row.attempts)
        .values(status="sending", attempts=row.attempts + 1, claimed_at=now, next_attempt_at=now + lease,
                needs_check=row.needs_check or (recovering and row.channel == "whatsapp"))
        .execution_options(synchronize_session=False))
    db.session.commit()
    if result.rowcount != 1:
        db.session.expire(row)
        return False
    db.session.refresh(row)
    if recovering:
        log.warning("outbox %s: claim ran out; %s", row.id,
                    "checking with Twilio before sending again" if row.channel == "whatsapp"
                    else "sending the email again (same Message-ID)")
    return True


def _send_one(row: Outbox, sender: TwilioSender | None) -> bool:
    if not _claim(row):
        return False
    cfg = current_app.config
    try:
        if row.channel == "whatsapp":
            sender = sender or make_sender()
            if row.needs_check:
                found = _find_sent(row, sender)
                if found is not None:
                    log.info("outbox %s went out before (%s): not sent again", row.id, found.sid)
                    row.provider_id = found.sid
                    _sent(row, found)
                    return True
            variables = json.dumps(row.content_variables, ensure_ascii=False) if row.content_sid else None
            result = sender.send(from_=cfg["TWILIO_WHATSAPP_FROM"], to=row.recipient,
                                 body=None if row.content_sid else row.body,
                                 content_sid=row.content_sid, content_variables=variables,
                                 status_callback=cfg["PUBLIC_BASE_URL"].rstrip("/") + "/webhooks/twilio/status")
            row.provider_id = result.sid
        else:
            _send_email(row)
    except SendError as exc:
        return _failed(row, str(exc), exc.transient, exc.code)
    except Exception as exc:  # SMTP errors and timeouts are transient
        return _failed(row, f"{exc.__class__.__name__}: {exc}", True)
    _sent(row)
    return True


def _find_sent(row: Outbox, sender: TwilioSender) -> SentRecord | None:
    """The message Twilio has for this row from an attempt whose answer was
    lost, if any: to the same number, created after the row, not another
    row's, and with the same text (a template's text is Twilio's to render)."""
    records = [r for r in sender.recent(from_=current_app.config["TWILIO_WHATSAPP_FROM"], to=row.recipient)
               if r.created_at is None or r.created_at >= row.created_at - CLOCK_SKEW]
    if not records:
        return None
    known = set(db.session.scalars(db.select(Outbox.provider_id).where(
        Outbox.provider_id.in_([r.sid for r in records]))))
    for record in reversed(records):  # the oldest first: the first attempt that went out
        if record.sid not in known and (row.content_sid or record.body == row.body):
            return record
    return None


def _sent(row: Outbox, found: SentRecord | None = None) -> None:
    row.status = "sent"
    row.sent_at = utcnow()
    row.last_error = None
    row.error_code = None
    row.needs_check = False
    _refresh_message_status(row.message)
    if row.channel == "email" and row.purpose == "ticket_created":
        _tell_customer(row, "ticket_created_email_sent")
    db.session.commit()
    if found is not None and found.status:
        _apply_status(row, found.status, found.error_code)
        db.session.commit()
    if row.provider_id:
        _apply_early_statuses(row)


def _failed(row: Outbox, error: str, transient: bool, code: str | None = None) -> bool:
    def record() -> None:
        row.last_error = error[:2000]
        row.error_code = code
        if transient and row.channel == "whatsapp":
            row.needs_check = True  # it may have gone out: ask Twilio before sending it again
        if transient and row.attempts < current_app.config["OUTBOX_MAX_ATTEMPTS"]:
            row.status = "failed"
            row.next_attempt_at = utcnow() + backoff(row.attempts)
        else:
            row.status = "dead"
            if row.channel == "email" and row.purpose in ("ticket_created", "verification_code"):
                _tell_customer(row, f"{row.purpose}_email_failed")
            if row.channel == "whatsapp":
                from . import notifications
                notifications.whatsapp_failed(row)
        _refresh_message_status(row.message)

    _commit(record)
    log.warning("outbox %s %s attempt %s: %s", row.id, row.status, row.attempts, error)
    return False


def _commit(work: Callable[[], object]) -> None:
    """Do ``work`` and commit. If a concurrent writer queued the same fallback
    first (the unique ``fallback_for_id``), do it once more on fresh rows: the
    fallback is found and not repeated."""
    work()
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        work()
        db.session.commit()


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
    if any(s in DEAD for s in statuses):
        message.status = "failed"
        message.error = next((p.last_error for p in message.parts if p.status in DEAD and p.last_error), None)
    elif all(s in ("sent", "delivered", "read") for s in statuses):
        order = ["sent", "delivered", "read"]
        message.status = min(statuses, key=order.index)
        message.error = None
    else:
        message.status = "queued"
        message.error = None
    if message.status != before:
        live.message_changed(message, "delivery")


def describe_error(code: str | None) -> str:
    return TWILIO_ERRORS.get(code or "", "")


def _apply_status(row: Outbox, status: str, error_code: str | None) -> bool:
    """One status from Twilio, forward only. Twilio's failed/undelivered is
    final for the row ('undelivered': never retried by itself) and starts the
    notification's fallback."""
    target = "undelivered" if status in ("failed", "undelivered") else status
    if target not in ("sent", "delivered", "read", "undelivered") or not row.advance(target):
        return False
    if target == "undelivered":
        row.error_code = error_code
        described = describe_error(error_code)
        row.last_error = f"Twilio error {error_code}" + (f": {described}" if described else "") if error_code \
            else f"Twilio: {status}"
        from . import notifications
        notifications.whatsapp_failed(row)
    _refresh_message_status(row.message)
    return True


def record_delivery_status(provider_id: str, status: str, error_code: str | None = None) -> bool:
    """Apply a Twilio status callback; statuses only move forward."""
    row = db.session.scalar(db.select(Outbox).filter_by(provider_id=provider_id))
    if row is None:
        # Twilio may call back before the sender has recorded this SID: keep it.
        db.session.add(EarlyDeliveryStatus(provider_id=provider_id[:64], status=status[:16],
                                           error_code=(error_code or None) and error_code[:16]))
        db.session.execute(db.delete(EarlyDeliveryStatus).where(
            EarlyDeliveryStatus.received_at < utcnow() - timedelta(days=2)))
        db.session.commit()
        # Recorded meanwhile? Then it is applied here (the sender looks after committing, too).
        row = db.session.scalar(db.select(Outbox).filter_by(provider_id=provider_id))
        return row is not None and _apply_early_statuses(row)
    changed: list[bool] = []
    _commit(lambda: changed.append(_apply_status(row, status, error_code)))
    return changed[-1]


def _apply_early_statuses(row: Outbox) -> bool:
    early = db.session.scalars(db.select(EarlyDeliveryStatus).filter_by(provider_id=row.provider_id)
                               .order_by(EarlyDeliveryStatus.id)).all()
    if not early:
        return False
    changed = False
    for item in early:
        changed = _apply_status(row, item.status, item.error_code) or changed
    # By id, without counting: the callback and the sender may both apply them.
    db.session.execute(db.delete(EarlyDeliveryStatus).where(EarlyDeliveryStatus.id.in_([e.id for e in early]))
                       .execution_options(synchronize_session=False))
    try:
        db.session.commit()
    except IntegrityError:  # applied concurrently by the callback (or the sender): theirs stands
        db.session.rollback()
    return changed


# -- admins: messages that will not go out by themselves ---------------------------------

def dead_rows(limit: int = 200) -> list[Outbox]:
    """Rows that gave up (dead) or that Twilio could not deliver, newest first."""
    return list(db.session.scalars(db.select(Outbox).where(Outbox.status.in_(DEAD))
                                   .order_by(Outbox.id.desc()).limit(limit)))


def retry(row_id: int) -> Outbox:
    """An admin sends a dead row again: a fresh set of attempts, now."""
    row = db.session.get(Outbox, row_id)
    if row is None:
        raise NotFound("outbox message not found")
    if row.status not in DEAD:
        raise Invalid("only a message that was given up on can be retried")
    row.status = "pending"
    row.attempts = 0
    row.next_attempt_at = utcnow()
    row.claimed_at = None
    row.needs_check = False
    row.provider_id = None  # a new send gets a new SID
    row.last_error = None
    row.error_code = None
    _refresh_message_status(row.message)
    db.session.commit()
    return row
