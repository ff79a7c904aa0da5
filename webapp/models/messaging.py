from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from .base import UTCDateTime, utcnow


class Conversation(db.Model):
    """The WhatsApp thread with one customer (one per customer and channel)."""

    __tablename__ = "conversations"
    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), unique=True)
    address: Mapped[str] = mapped_column(String(40))  # whatsapp:+E164
    # When set, a person owns the conversation and the bot stays silent.
    handoff_ticket_id: Mapped[int | None] = mapped_column(
        ForeignKey("tickets.id", use_alter=True, name="fk_conversations_handoff_ticket"))
    last_inbound_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Set when an agent gives the conversation back: the assistant starts from a
    # clean slate (no stale form or slots) before it sees the next message.
    assistant_reset_pending: Mapped[bool] = mapped_column(default=False, server_default=sa.false())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    customer = relationship("Customer")
    messages = relationship("Message", back_populates="conversation", lazy="dynamic",
                            order_by="Message.id")

    @property
    def rasa_sender_id(self) -> str:
        return self.customer.phone_key


class Message(db.Model):
    """Every WhatsApp message, in and out: the full history of a conversation."""

    __tablename__ = "messages"
    id: Mapped[int] = mapped_column(primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id"), index=True)
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"), index=True)
    direction: Mapped[str] = mapped_column(String(3))  # in | out
    author: Mapped[str] = mapped_column(String(10))  # customer | bot | agent | system
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id"))
    body: Mapped[str] = mapped_column(Text, default="")
    media: Mapped[list] = mapped_column(JSON, default=list)
    location: Mapped[dict | None] = mapped_column(JSON)
    # Inbound: Twilio's MessageSid, unique so a retried delivery is a no-op.
    provider_sid: Mapped[str | None] = mapped_column(String(64), unique=True)
    # Outbound from the UI: the form's idempotency key, so a double submit sends once.
    client_key: Mapped[str | None] = mapped_column(String(64), unique=True)
    # Inbound: received -> processed | failed. Outbound: queued -> sent -> delivered -> read | failed
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    error: Mapped[str | None] = mapped_column(Text)
    language: Mapped[str | None] = mapped_column(String(5))
    raw: Mapped[dict | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    processed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    conversation = relationship("Conversation", back_populates="messages")
    agent = relationship("Agent")
    parts = relationship("Outbox", back_populates="message", order_by="Outbox.id")
    # Inbound media, downloaded and kept by us (``media``, Twilio's URLs, stays as received).
    attachments = relationship("MediaFile", back_populates="message", order_by="MediaFile.position")

    __table_args__ = (Index("ix_messages_inbound_queue", "direction", "status", "id"),)

    def to_dict(self) -> dict:
        return {
            "id": self.id,
            "direction": self.direction,
            "author": self.author,
            "body": self.body,
            "media": self.media or [],
            "attachments": [a.to_dict() for a in self.attachments],
            "status": self.status,
            "created_at": self.created_at.isoformat(),
        }


class MediaFile(db.Model):
    """One inbound attachment (photo, voice note, document...). The worker
    downloads it from Twilio with the account's credentials and keeps the bytes
    under ``MEDIA_DIR``; agents see it through the agent UI, never through
    Twilio's URL."""

    __tablename__ = "media"
    id: Mapped[int] = mapped_column(primary_key=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id"), index=True)
    position: Mapped[int] = mapped_column(Integer)  # N of MediaUrlN
    url: Mapped[str] = mapped_column(Text)  # Twilio's URL, as received
    content_type: Mapped[str] = mapped_column(String(100), default="")
    # pending -> stored | failed (retry later) | dead
    status: Mapped[str] = mapped_column(String(12), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_error: Mapped[str | None] = mapped_column(Text)
    size: Mapped[int | None] = mapped_column(Integer)
    sha256: Mapped[str | None] = mapped_column(String(64))
    path: Mapped[str | None] = mapped_column(String(255))  # relative to MEDIA_DIR
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    fetched_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    message = relationship("Message", back_populates="attachments")

    __table_args__ = (UniqueConstraint("message_id", "position", name="uq_media_message_position"),
                      Index("ix_media_queue", "status", "next_attempt_at"))

    def to_dict(self) -> dict:
        return {"id": self.id, "content_type": self.content_type, "status": self.status, "size": self.size}


# Delivery statuses only move forward (a late 'sent' never overwrites 'delivered').
DELIVERY_RANK = {"pending": 0, "sending": 1, "queued": 2, "accepted": 2, "sent": 3,
                 "delivered": 4, "read": 5, "undelivered": 6, "failed": 6, "dead": 6}


class Outbox(db.Model):
    """One unit of outbound work: a WhatsApp message part or an email."""

    __tablename__ = "outbox"
    id: Mapped[int] = mapped_column(primary_key=True)
    channel: Mapped[str] = mapped_column(String(10))  # whatsapp | email
    # Messages to the same recipient are sent strictly in id order.
    recipient: Mapped[str] = mapped_column(String(254), index=True)
    message_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id"), index=True)
    subject: Mapped[str | None] = mapped_column(String(255))
    body: Mapped[str] = mapped_column(Text)
    html: Mapped[str | None] = mapped_column(Text)
    # pending -> sending -> sent (-> delivered -> read) | failed (retry later) | dead (gave up)
    # | undelivered (Twilio's "failed"/"undelivered" callback: it never reached the phone)
    status: Mapped[str] = mapped_column(String(12), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # When due; while 'sending', when the sender's claim (its lease) runs out.
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The last attempt's outcome is unknown (a timeout, a crash mid-send): ask
    # Twilio whether it went out before sending it again.
    needs_check: Mapped[bool] = mapped_column(Boolean, default=False, server_default=sa.false())
    last_error: Mapped[str | None] = mapped_column(Text)
    provider_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Emails: whom and what they are about, so the customer can be told on
    # WhatsApp when one finally went out or never will.
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id"))
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"))
    # verification_code | ticket_created | status_changed | resolved | agent_reply | follow_up
    purpose: Mapped[str | None] = mapped_column(String(30))
    # A WhatsApp template (outside the 24-hour window): the approved Content
    # SID and the variables sent with it; ``body`` keeps the text the customer reads.
    content_sid: Mapped[str | None] = mapped_column(String(64))
    content_variables: Mapped[dict | None] = mapped_column(JSON)
    # Twilio's error code of the failure (63016: outside the 24-hour window).
    error_code: Mapped[str | None] = mapped_column(String(16))
    # The deliveries of one notification share a key (WhatsApp, email, fallbacks).
    notify_key: Mapped[str | None] = mapped_column(String(40), index=True)
    # The failed row this one stands in for (a template, an email): one fallback per failure.
    fallback_for_id: Mapped[int | None] = mapped_column(ForeignKey("outbox.id"), unique=True)

    message = relationship("Message", back_populates="parts")
    customer = relationship("Customer")
    ticket = relationship("Ticket")
    fallback_for = relationship("Outbox", remote_side=[id], foreign_keys=[fallback_for_id])

    __table_args__ = (Index("ix_outbox_queue", "status", "next_attempt_at"),)

    def advance(self, status: str) -> bool:
        """Move the delivery status forward only; returns whether it changed."""
        if DELIVERY_RANK.get(status, -1) > DELIVERY_RANK.get(self.status, -1):
            self.status = status
            return True
        return False


class EarlyDeliveryStatus(db.Model):
    """A status callback for a SID no outbox row has yet: Twilio may call back
    before the sender has recorded the SID it got. Applied when it is recorded."""

    __tablename__ = "outbox_early_statuses"
    id: Mapped[int] = mapped_column(primary_key=True)
    provider_id: Mapped[str] = mapped_column(String(64), index=True)
    status: Mapped[str] = mapped_column(String(16))
    error_code: Mapped[str | None] = mapped_column(String(16))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class SimulatedMessage(db.Model):
    """The simulated phone: what it sent, and what the fake Twilio API delivered to it."""

    __tablename__ = "dev_simulated_messages"
    id: Mapped[int] = mapped_column(primary_key=True)
    sid: Mapped[str] = mapped_column(String(64), unique=True)
    direction: Mapped[str] = mapped_column(String(3), default="out")  # in: typed in the simulator
    to: Mapped[str] = mapped_column(String(40), index=True)
    from_: Mapped[str] = mapped_column("from_addr", String(40))
    body: Mapped[str] = mapped_column(Text, default="")
    content_sid: Mapped[str | None] = mapped_column(String(64))
    content_variables: Mapped[str | None] = mapped_column(Text)
    # What the fake reports: sent, or failed with an error code (63016 outside the window).
    status: Mapped[str] = mapped_column(String(16), default="sent", server_default="sent")
    error_code: Mapped[str | None] = mapped_column(String(16))
    status_callback: Mapped[str | None] = mapped_column(Text)
    callback_sent: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
