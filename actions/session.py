"""Session start, language and who the customer is."""
from __future__ import annotations

from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import ActionExecuted, EventType, SessionStarted, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from . import api

LANGUAGES = ("pt", "en")


def language_of(tracker: Tracker) -> str | None:
    metadata = (tracker.latest_message or {}).get("metadata") or {}
    lang = metadata.get("language")
    return lang if lang in LANGUAGES else None


def customer_slots(customer: dict | None) -> list[EventType]:
    if not customer:
        return [SlotSet("customer_verified", False)]
    return [SlotSet("customer_verified", bool(customer.get("verified"))),
            # The registered name, else the usable part of the WhatsApp profile
            # name ("🌻 Dona Maria 🌻" -> "Dona Maria"), else none: greet neutrally.
            SlotSet("customer_name", customer.get("name") or customer.get("greeting_name"))]


class ActionSessionStart(Action):
    """Start every session from what the webapp knows, not from old slots."""

    def name(self) -> str:
        return "action_session_start"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: dict[str, Any]) -> list[EventType]:
        events: list[EventType] = [SessionStarted()]
        metadata = tracker.get_slot("session_started_metadata") or {}
        if metadata.get("language") in LANGUAGES:
            events.append(SlotSet("language", metadata["language"]))
        try:
            customer = await api.call("customer", tracker.sender_id)
        except (api.ApiError, api.ApiRefused):
            customer = None  # unknown for now; the next lookup tries again
        events.extend(customer_slots(customer))
        events.append(ActionExecuted("action_listen"))
        return events


class ActionExtractLanguage(Action):
    """Fills the `language` slot on every turn from the webapp's metadata."""

    def name(self) -> str:
        return "action_extract_language"

    async def run(self, dispatcher, tracker, domain):
        lang = language_of(tracker)
        if lang and lang != tracker.get_slot("language"):
            return [SlotSet("language", lang)]
        return []


class ActionChangeLanguage(Action):
    def name(self) -> str:
        return "action_change_language"

    async def run(self, dispatcher, tracker, domain):
        text = ((tracker.latest_message or {}).get("text") or "").lower()
        current = tracker.get_slot("language") or "pt"
        if "ingl" in text or "english" in text:
            target = "en"
        elif "portug" in text:
            target = "pt"
        else:
            target = "en" if current == "pt" else "pt"
        try:
            await api.call("set_language", tracker.sender_id, target)
        except api.ApiRefused:
            pass  # unknown customer: the slot still switches for this session
        except api.ApiError:
            dispatcher.utter_message(response="utter_service_error")
            return []
        dispatcher.utter_message(response=f"utter_language_changed_{target}")
        return [SlotSet("language", target)]
