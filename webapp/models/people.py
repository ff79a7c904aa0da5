from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Boolean, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from bot.text import greeting_name

from ..extensions import db
from .base import UTCDateTime, utcnow

_hasher = PasswordHasher()


class Agent(db.Model):
    """A person who works tickets in the agent UI."""

    __tablename__ = "agents"
    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    name: Mapped[str] = mapped_column(String(120))
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16), default="agent")  # admin | agent
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # Bumped to end every session of this agent (logout everywhere, deactivation).
    token_version: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    def set_password(self, password: str) -> None:
        self.password_hash = _hasher.hash(password)

    def check_password(self, password: str) -> bool:
        try:
            return _hasher.verify(self.password_hash, password)
        except (VerificationError, InvalidHashError):
            return False

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


class Customer(db.Model):
    """A WhatsApp customer, identified by a normalised phone key."""

    __tablename__ = "customers"
    id: Mapped[int] = mapped_column(primary_key=True)
    phone_key: Mapped[str] = mapped_column(String(20), unique=True)
    phone: Mapped[str] = mapped_column(String(20))  # E.164, as last seen from WhatsApp
    wa_id: Mapped[str | None] = mapped_column(String(20))
    profile_name: Mapped[str | None] = mapped_column(Text)  # as WhatsApp sends it, any length
    name: Mapped[str | None] = mapped_column(String(255))
    email: Mapped[str | None] = mapped_column(String(254))
    email_verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    language: Mapped[str] = mapped_column(String(5), default="pt")
    language_chosen: Mapped[bool] = mapped_column(Boolean, default=False)
    # "parar" / "stop" turns off WhatsApp notifications about ticket changes
    # (answers to the customer's own messages still go out).
    notify_whatsapp: Mapped[bool] = mapped_column(Boolean, default=True, server_default=sa.true())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    tickets = relationship("Ticket", back_populates="customer", lazy="dynamic")

    @property
    def verified(self) -> bool:
        return self.email_verified_at is not None and bool(self.email)

    @property
    def greeting_name(self) -> str | None:
        """A name to greet with: the registered one, else the usable part of the
        WhatsApp profile name, else None (greet neutrally)."""
        return self.name or greeting_name(self.profile_name)

    @property
    def display_name(self) -> str:
        return self.name or self.profile_name or self.phone

    def to_dict(self) -> dict:
        return {
            "id": self.id,
            "phone": self.phone,
            "name": self.name,
            "profile_name": self.profile_name,  # as WhatsApp sent it: never greet with it as is
            "greeting_name": self.greeting_name,
            "email": self.email,
            "verified": self.verified,
            "language": self.language,
            "notify_whatsapp": self.notify_whatsapp,
        }


class VerificationCode(db.Model):
    """A 6-digit email code, stored hashed; dead after 5 wrong tries or 10 minutes."""

    __tablename__ = "verification_codes"
    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    email: Mapped[str] = mapped_column(String(254))
    code_hash: Mapped[str] = mapped_column(String(255))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    def is_alive(self, now: datetime, max_attempts: int) -> bool:
        return (not self.revoked and self.used_at is None and now < self.expires_at
                and self.attempts < max_attempts)
