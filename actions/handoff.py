"""Handing the conversation to a person."""
from __future__ import annotations

import json

from rasa_sdk import Action
from rasa_sdk.events import EventType, SlotSet

from . import api

CONTEXT_SLOTS = ("ticket_subject", "ticket_description", "customer_name", "pending_flow")


def handoff_note(tracker) -> str:
    """What the agent needs so the customer never repeats themselves."""
    slots = {name: tracker.get_slot(name) for name in CONTEXT_SLOTS if tracker.get_slot(name)}
    last = [e.get("text") for e in tracker.events if e.get("event") == "user" and e.get("text")][-5:]
    intent = ((tracker.latest_message or {}).get("intent") or {}).get("name")
    return json.dumps({"intent": intent, "slots": slots, "last_messages": last}, ensure_ascii=False)


class ActionHandoff(Action):
    def name(self) -> str:
        return "action_handoff"

    async def run(self, dispatcher, tracker, domain) -> list[EventType]:
        try:
            ticket = await api.call("handoff", tracker.sender_id, "customer_request", handoff_note(tracker))
        except (api.ApiError, api.ApiRefused):
            dispatcher.utter_message(response="utter_service_error")
            return []
        dispatcher.utter_message(response="utter_handoff", created_ticket_number=ticket["number"])
        return [SlotSet("created_ticket_number", str(ticket["number"]))]
