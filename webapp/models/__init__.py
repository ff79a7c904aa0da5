"""Database models. Models hold state and invariants; services commit."""
from .base import utcnow
from .people import Agent, Customer, VerificationCode
from .messaging import Conversation, MediaFile, Message, Outbox, SimulatedMessage
from .tickets import Ticket, TicketEvent, TicketPriority, TicketStatus, InvalidTransition
from .workspace import CannedResponse, TicketSearch
from .live import LiveEvent
from .kb import Article

__all__ = [
    "utcnow", "Agent", "Customer", "VerificationCode", "Conversation", "MediaFile", "Message", "Outbox",
    "SimulatedMessage", "Ticket", "TicketEvent", "TicketStatus", "InvalidTransition",
    "TicketPriority", "CannedResponse", "TicketSearch", "LiveEvent", "Article",
]
