"""Opening tickets and telling their status."""
from __future__ import annotations

import re
import uuid
from typing import Any

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from . import api
from .common import intent_of, reset_ticket_form, ticket_number_entity

# The words and emoji that confirm. NLU alone is not trusted here: keyboard-mash
# such as "plok" can come out as a confident `affirm`, and a wrong yes opens a ticket.
# `(?!\w)`, not `\b`: after an emoji (not a word character) `\b` would need a letter.
YES = re.compile(
    r"^\s*(s|sim|ok|okay|yes|y|yeah|yep|yup|sure|claro|pode|isso|confirmo|confirma|confirm|correto|"
    r"certo|exato|positivo|beleza|blz|com certeza|go ahead|absolutely|of course|correct|"
    r"uhum|aham|👍|👌|✅)(?!\w)|^\s*(ok\s*)?👍", re.IGNORECASE)
NO = re.compile(r"^\s*(n|n[aã]o|no|nope|negativo|nem|never|👎|❌)(?!\w)|^\s*👎", re.IGNORECASE)


def _enough_text(value: Any, minimum: int) -> str | None:
    text = " ".join(str(value or "").split())
    letters = sum(ch.isalnum() for ch in text)
    return text if letters >= minimum else None


class ValidateTicketForm(FormValidationAction):
    def name(self) -> str:
        return "validate_ticket_form"

    async def validate_ticket_subject(self, slot_value, dispatcher: CollectingDispatcher,
                                      tracker: Tracker, domain: DomainDict) -> dict[str, Any]:
        if slot_value is None:
            return {"ticket_subject": None}
        text = _enough_text(slot_value, 3)
        if text is None:
            dispatcher.utter_message(response="utter_text_too_short")
            return {"ticket_subject": None}
        return {"ticket_subject": text[:200]}

    async def validate_ticket_description(self, slot_value, dispatcher, tracker, domain):
        if slot_value is None:
            return {"ticket_description": None}
        text = str(slot_value).strip()
        if _enough_text(text, 5) is None:
            dispatcher.utter_message(response="utter_text_too_short")
            return {"ticket_description": None}
        return {"ticket_description": text[:5000]}

    async def validate_ticket_confirm(self, slot_value, dispatcher, tracker, domain):
        if slot_value is None:
            return {"ticket_confirm": None}
        intent = intent_of(tracker)
        text = str(slot_value)
        if intent not in ("deny", "cancel") and YES.search(text):
            return {"ticket_confirm": True}
        if intent == "deny" or NO.search(text):
            return {"ticket_confirm": False}
        dispatcher.utter_message(response="utter_answer_yes_or_no")
        return {"ticket_confirm": None}


def mask_email(email: str | None) -> str | None:
    """m***a@exemplo.com.br: enough for the customer to recognise it."""
    if not email or "@" not in email:
        return None
    local, _, domain = email.partition("@")
    shown = local[0] + "***" + (local[-1] if len(local) > 2 else "")
    return f"{shown}@{domain}"


class ActionStartTicket(Action):
    """Every ticket starts from empty answers, whatever an earlier, abandoned
    form (cancelled, or left for a person) had collected, with a fresh
    idempotency key that every retry of this one ticket reuses."""

    def name(self) -> str:
        return "action_start_ticket"

    async def run(self, dispatcher, tracker, domain) -> list[EventType]:
        try:
            customer = await api.call("customer", tracker.sender_id)
        except (api.ApiError, api.ApiRefused):
            customer = None
        email = mask_email((customer or {}).get("email")) if (customer or {}).get("verified") else None
        return reset_ticket_form() + [SlotSet("ticket_key", f"rasa:{tracker.sender_id}:{uuid.uuid4().hex}"),
                                      SlotSet("ticket_email", email), SlotSet("pending_question", None)]


class ActionAskTicketConfirm(Action):
    """The summary, and where the status link will go: the customer confirms
    the email again before a link is sent to it (it may be months old)."""

    def name(self) -> str:
        return "action_ask_ticket_confirm"

    async def run(self, dispatcher, tracker, domain) -> list[EventType]:
        email = tracker.get_slot("ticket_email")
        if email:
            dispatcher.utter_message(response="utter_ticket_summary_with_email", ticket_email=email)
        else:
            dispatcher.utter_message(response="utter_ticket_summary")
        return []


class ActionCreateTicket(Action):
    def name(self) -> str:
        return "action_create_ticket"

    async def run(self, dispatcher, tracker, domain) -> list[EventType]:
        if tracker.get_slot("ticket_confirm") is not True:
            dispatcher.utter_message(response="utter_ticket_cancelled")
            return reset_ticket_form()
        return await create_ticket_events(dispatcher, tracker)


async def create_ticket_events(dispatcher: CollectingDispatcher, tracker: Tracker) -> list[EventType]:
    """Open the confirmed ticket. When the API fails the answers are kept and
    the customer may say "sim" to try again, with the same idempotency key: a
    request that timed out but went through is never a second ticket."""
    key = tracker.get_slot("ticket_key")
    if not key:  # a conversation from before keys were kept in a slot
        message_id = (tracker.latest_message or {}).get("message_id") or uuid.uuid4().hex
        key = f"rasa:{tracker.sender_id}:{message_id}"
    try:
        ticket = await api.call("create_ticket", tracker.sender_id, tracker.get_slot("ticket_subject"),
                                tracker.get_slot("ticket_description"), key)
    except api.ApiRefused:  # refused for a reason a retry cannot change
        dispatcher.utter_message(response="utter_service_error")
        return reset_ticket_form() + [SlotSet("pending_question", None)]
    except api.ApiError:  # down, overloaded or too slow: the same request may succeed later
        dispatcher.utter_message(response="utter_ticket_retry")
        return [SlotSet("ticket_key", key), SlotSet("pending_question", "retry_ticket")]
    dispatcher.utter_message(response="utter_ticket_created", created_ticket_number=ticket["number"])
    return reset_ticket_form() + [SlotSet("created_ticket_number", str(ticket["number"])),
                                  SlotSet("pending_question", None)]


def _number(tracker: Tracker) -> int | None:
    # Only a status request names a ticket. After verification this action runs as a
    # follow-up while the latest message is still the 6-digit code, which the
    # ticket_number regex also matches.
    if intent_of(tracker) != "check_status":
        return None
    return ticket_number_entity(tracker)


class ActionCheckStatus(Action):
    def name(self) -> str:
        return "action_check_status"

    async def run(self, dispatcher, tracker, domain) -> list[EventType]:
        number = _number(tracker)
        try:
            if number is not None:
                ticket = await api.call("ticket", tracker.sender_id, number)
                if ticket is None:
                    dispatcher.utter_message(response="utter_ticket_not_found", ticket_number=number)
                else:
                    dispatcher.utter_message(response="utter_ticket_status", ticket_number=ticket["number"],
                                             ticket_subject=ticket["subject"],
                                             ticket_status=ticket["status_label"])
                return [SlotSet("ticket_number", None)]
            tickets = await api.call("tickets", tracker.sender_id)
        except (api.ApiError, api.ApiRefused):
            dispatcher.utter_message(response="utter_service_error")
            return []
        if not tickets:
            dispatcher.utter_message(response="utter_no_open_tickets")
        else:
            lines = "\n".join(f"• #{t['number']} {t['subject']} — {t['status_label']}" for t in tickets[:10])
            dispatcher.utter_message(response="utter_ticket_list", ticket_lines=lines)
        return []
