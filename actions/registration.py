"""Registration and email verification."""
from __future__ import annotations

import re
import uuid
from typing import Any

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import EventType, FollowupAction, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from . import api
from .common import intent_of, reset_ticket_form
from .tickets import mask_email

# A whole whitespace-separated token: "joão@exemplo.com.br" must not become
# "o@exemplo.com.br". Non-ASCII local parts are then refused by the API.
EMAIL = re.compile(r"(?<![^\s<(\[\"',;:])[^\s@<>()\[\]\"',;:]+@[^\s@<>()\[\]\"',;:]+\.[^\s@<>()\[\]\"',;:.]{2,}")
CODE = re.compile(r"\b(\d{6})\b")
RESEND = re.compile(r"(novo|outro|reenvi|new|another|resend|again|de novo|n[aã]o (recebi|chegou))", re.IGNORECASE)
FLOWS_AFTER_VERIFICATION = ("open_ticket", "check_status")
FORMAT_FAILURES_BEFORE_HELP = 3


def format_failure(dispatcher: CollectingDispatcher, tracker: Tracker, slot: str, response: str | None,
                   help_response: str) -> dict[str, Any]:
    """An answer in the wrong format. From the third in a row the assistant
    explains the format and offers a person or a way out ("atendente",
    "cancelar") instead of asking the same question forever."""
    failures = int(tracker.get_slot("format_failures") or 0) + 1
    if failures >= FORMAT_FAILURES_BEFORE_HELP:
        dispatcher.utter_message(response=help_response)
    elif response:
        dispatcher.utter_message(response=response)
    return {slot: None, "format_failures": failures}


class ActionStartRegistration(Action):
    """Remember what the customer wanted, so it continues after verification."""

    def name(self) -> str:
        return "action_start_registration"

    async def run(self, dispatcher, tracker, domain):
        intent = intent_of(tracker)
        if intent in FLOWS_AFTER_VERIFICATION:
            dispatcher.utter_message(response="utter_need_registration")
        return [SlotSet("pending_flow", intent if intent in FLOWS_AFTER_VERIFICATION else None),
                SlotSet("customer_name", None), SlotSet("customer_email", None),
                SlotSet("verification_code", None), SlotSet("format_failures", 0)]


class ValidateRegistrationForm(FormValidationAction):
    def name(self) -> str:
        return "validate_registration_form"

    async def validate_customer_name(self, slot_value: Any, dispatcher: CollectingDispatcher,
                                     tracker: Tracker, domain: DomainDict) -> dict[str, Any]:
        if slot_value is None:  # reset at the start of the form: nothing to judge yet
            return {"customer_name": None}
        name = " ".join(str(slot_value or "").split())
        if len(name) < 2 or len(name) > 120 or not any(ch.isalpha() for ch in name):
            dispatcher.utter_message(response="utter_invalid_name")
            return {"customer_name": None}
        return {"customer_name": name}

    async def validate_customer_email(self, slot_value: Any, dispatcher: CollectingDispatcher,
                                      tracker: Tracker, domain: DomainDict) -> dict[str, Any]:
        if slot_value is None:
            return {"customer_email": None}
        match = EMAIL.search(str(slot_value or ""))
        if not match:
            return format_failure(dispatcher, tracker, "customer_email", "utter_invalid_email",
                                  "utter_format_help_email")
        return {"customer_email": match.group(0).lower(), "format_failures": 0}


class ActionRegisterCustomer(Action):
    """Send the name and email to the webapp, which emails a code."""

    def name(self) -> str:
        return "action_register_customer"

    async def run(self, dispatcher, tracker, domain):
        email = tracker.get_slot("customer_email")
        try:
            result = await api.call("register", tracker.sender_id, tracker.get_slot("customer_name"), email,
                                    tracker.get_slot("language") or "pt")
        except api.ApiRefused as exc:
            if exc.field == "email":
                dispatcher.utter_message(response="utter_invalid_email")
                # Ask for the email again.
                return [SlotSet("customer_email", None), FollowupAction("registration_form")]
            dispatcher.utter_message(response="utter_service_error")
            return [FollowupAction("action_listen")]
        except api.ApiError:
            dispatcher.utter_message(response="utter_service_error")
            return [FollowupAction("action_listen")]
        if result.get("verification") == "not_needed":
            # Already verified with this email (e.g. a lookup failed at session
            # start): no code was sent, so don't ask for one.
            return [SlotSet("customer_verified", True), FollowupAction("action_verification_done")]
        dispatcher.utter_message(response="utter_code_sent")
        return [SlotSet("verification_code", None)]


class ValidateVerificationForm(FormValidationAction):
    def name(self) -> str:
        return "validate_verification_form"

    async def validate_verification_code(self, slot_value: Any, dispatcher: CollectingDispatcher,
                                         tracker: Tracker, domain: DomainDict) -> dict[str, Any]:
        if slot_value is None:
            return {"verification_code": None}
        text = str(slot_value)
        match = CODE.search(text)
        try:
            if not match:
                if intent_of(tracker) == "resend_code" or RESEND.search(text):
                    await api.call("resend_code", tracker.sender_id)
                    dispatcher.utter_message(response="utter_code_resent")
                    return {"verification_code": None, "format_failures": 0}
                return format_failure(dispatcher, tracker, "verification_code", None, "utter_format_help_code")
            result = await api.call("verify", tracker.sender_id, match.group(1))
        except (api.ApiError, api.ApiRefused):
            dispatcher.utter_message(response="utter_service_error")
            return {"verification_code": None}
        if result.get("result") == "verified":
            return {"verification_code": "verified", "customer_verified": True}
        if result.get("result") == "wrong":
            left = result.get("attempts_left")
            if left == 1:
                dispatcher.utter_message(response="utter_wrong_code_last_try")
            else:
                dispatcher.utter_message(response="utter_wrong_code", attempts_left=left)
        else:
            dispatcher.utter_message(response="utter_code_dead")
        return {"verification_code": None}


class ActionVerificationDone(Action):
    """Confirm, then continue with what the customer first asked for."""

    def name(self) -> str:
        return "action_verification_done"

    async def run(self, dispatcher, tracker, domain):
        dispatcher.utter_message(response="utter_verified")
        events: list[EventType] = [SlotSet("customer_verified", True), SlotSet("verification_code", None),
                                   SlotSet("pending_flow", None)]
        flow = tracker.get_slot("pending_flow")
        if flow == "open_ticket":
            events.extend(reset_ticket_form())
            events += [SlotSet("ticket_key", f"rasa:{tracker.sender_id}:{uuid.uuid4().hex}"),
                       SlotSet("ticket_email", mask_email(tracker.get_slot("customer_email")))]
            events.append(FollowupAction("ticket_form"))
        elif flow == "check_status":
            events.append(FollowupAction("action_check_status"))
        else:
            dispatcher.utter_message(response="utter_how_can_help")
        return events

