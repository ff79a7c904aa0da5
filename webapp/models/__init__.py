"""Database models. Models hold state and invariants; services commit."""
from .base import utcnow
from .people import Agent, Customer, VerificationCode
from .messaging import Conversation, MediaFile, Message, Outbox, SimulatedMessage
from .tickets import Ticket, TicketEvent, TicketStatus, InvalidTransition

__all__ = [
    "utcnow", "Agent", "Customer", "VerificationCode", "Conversation", "MediaFile", "Message", "Outbox",
    "SimulatedMessage", "Ticket", "TicketEvent", "TicketStatus", "InvalidTransition",
]
