"""Database models. Models hold state and invariants; services commit."""
from .base import utcnow
from .kb import Article
from .live import LiveEvent
from .messaging import Conversation, MediaFile, Message, Outbox, SimulatedMessage
from .people import Agent, Customer, VerificationCode
from .tickets import InvalidTransition, Ticket, TicketEvent, TicketPriority, TicketStatus
from .workspace import CannedResponse, TicketSearch

__all__ = [
    "utcnow", "Agent", "Customer", "VerificationCode", "Conversation", "MediaFile", "Message", "Outbox",
    "SimulatedMessage", "Ticket", "TicketEvent", "TicketStatus", "InvalidTransition",
    "TicketPriority", "CannedResponse", "TicketSearch", "LiveEvent", "Article",
]
