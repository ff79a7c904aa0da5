"""Small helpers shared by the action modules."""
from __future__ import annotations

import re

from rasa_sdk import Tracker
from rasa_sdk.events import EventType, SlotSet

TICKET_FORM_SLOTS = ("ticket_subject", "ticket_description", "ticket_confirm", "ticket_key")


def intent_of(tracker: Tracker) -> str:
    return ((tracker.latest_message or {}).get("intent") or {}).get("name") or ""


def reset_ticket_form() -> list[EventType]:
    """Empty answers for a new ticket, whatever an abandoned form collected."""
    return [SlotSet(slot, None) for slot in TICKET_FORM_SLOTS]


def text_of(tracker: Tracker) -> str:
    return str((tracker.latest_message or {}).get("text") or "")


def ticket_number_entity(tracker: Tracker) -> int | None:
    """The first ticket number (digits only) in the latest message, if any."""
    for entity in (tracker.latest_message or {}).get("entities") or []:
        if entity.get("entity") == "ticket_number":
            digits = re.sub(r"\D", "", str(entity.get("value", "")))
            if digits:
                return int(digits)
    return None
