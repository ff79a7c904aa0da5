"""Handing the conversation to a person, with what the assistant knew."""
from __future__ import annotations

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from . import api
from .common import intent_of

CONTEXT_SLOTS = ("customer_name", "ticket_subject", "ticket_description", "pending_flow", "requested_slot")
LAST_MESSAGES = 5


def handoff_context(tracker: Tracker) -> dict:
    """What the agent needs so the customer never repeats themselves: the
    detected intent, filled slots, knowledge-base articles offered and the
    last customer messages."""
    slots = {name: tracker.get_slot(name) for name in CONTEXT_SLOTS if tracker.get_slot(name)}
    last = [e.get("text") for e in tracker.events if e.get("event") == "user" and (e.get("text") or "").strip()]
    # Texts starting with "/" are intents the webapp injected (media, empty message).
    last = [text for text in last if not text.startswith("/")][-LAST_MESSAGES:]
    return {"intent": intent_of(tracker) or None, "slots": slots,
            "kb_articles": list(tracker.get_slot("kb_offered") or []), "last_messages": last}


async def hand_off(dispatcher: CollectingDispatcher, tracker: Tracker, reason: str) -> list[EventType]:
    try:
        result = await api.call("handoff", tracker.sender_id, reason, handoff_context(tracker))
    except (api.ApiError, api.ApiRefused):
        dispatcher.utter_message(response="utter_service_error")
        return []
    ticket = result["ticket"]
    hours = result.get("business_hours") or {}
    if hours.get("open") is False and hours.get("opens_at_text"):
        dispatcher.utter_message(response="utter_handoff_closed", created_ticket_number=ticket["number"],
                                 opens_at=hours["opens_at_text"])
    else:
        dispatcher.utter_message(response="utter_handoff", created_ticket_number=ticket["number"])
    # A person owns the conversation now; whatever the assistant was doing is over.
    return [SlotSet("created_ticket_number", str(ticket["number"])), SlotSet("pending_question", None),
            SlotSet("misunderstood", 0)]


class ActionHandoff(Action):
    def name(self) -> str:
        return "action_handoff"

    async def run(self, dispatcher, tracker, domain) -> list[EventType]:
        return await hand_off(dispatcher, tracker, "customer_request")
