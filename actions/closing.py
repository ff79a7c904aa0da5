"""Closing tickets with the customer's consent, and WhatsApp notifications on/off.

When an agent resolves a ticket the webapp asks the customer whether it may be
closed; every message then carries the ticket numbers awaiting that answer in
its metadata (``awaiting_close``), which ``action_track_turn`` turns into a
pending ``close:<number>`` question. The customer can also ask to close one of
their own tickets; the assistant confirms first. The webapp tells the customer
the outcome (closed and a rating question, or reopened), so these actions say
nothing after a successful call.
"""
from __future__ import annotations

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from . import api
from .common import intent_of, ticket_number_entity

CLOSE_PREFIX = "close:"


def awaiting_close(tracker: Tracker) -> list[int]:
    metadata = (tracker.latest_message or {}).get("metadata") or {}
    numbers = metadata.get("awaiting_close") or []
    return [int(n) for n in numbers if isinstance(n, int) or str(n).isdigit()]


def close_pending(number: int) -> str:
    return f"{CLOSE_PREFIX}{number}"


def pending_close_number(pending: str | None) -> int | None:
    if pending and pending.startswith(CLOSE_PREFIX) and pending[len(CLOSE_PREFIX):].isdigit():
        return int(pending[len(CLOSE_PREFIX):])
    return None


async def answer_close(dispatcher: CollectingDispatcher, tracker: Tracker, number: int,
                       yes: bool) -> list[EventType]:
    """The customer's yes or no to closing ticket ``number``."""
    try:
        await api.call("close_ticket" if yes else "reopen_ticket", tracker.sender_id, number)
    except api.ApiRefused as exc:
        if exc.status == 404:
            dispatcher.utter_message(response="utter_ticket_not_found", ticket_number=number)
        else:
            dispatcher.utter_message(response="utter_service_error")
        return [SlotSet("pending_question", None)]
    except api.ApiError:
        dispatcher.utter_message(response="utter_service_error")
        return []  # still pending: a later "sim" tries again
    return [SlotSet("pending_question", None)]


class ActionRequestClose(Action):
    """'pode fechar o chamado 123': confirm before closing; only the
    customer's own tickets (the API answers 404 for anyone else's)."""

    def name(self) -> str:
        return "action_request_close"

    async def run(self, dispatcher, tracker, domain) -> list[EventType]:
        number = ticket_number_entity(tracker)
        waiting = awaiting_close(tracker)
        if waiting and (number is None or number in waiting):
            # An answer to our own "may I close it?": that is a yes.
            return await answer_close(dispatcher, tracker, number or waiting[0], True)
        try:
            if number is None:
                tickets = await api.call("tickets", tracker.sender_id)
                if not tickets:
                    dispatcher.utter_message(response="utter_no_open_tickets")
                    return []
                if len(tickets) > 1:
                    lines = "\n".join(f"• #{t['number']} {t['subject']}" for t in tickets[:10])
                    dispatcher.utter_message(response="utter_which_ticket_to_close", ticket_lines=lines)
                    return []
                ticket = tickets[0]
            else:
                ticket = await api.call("ticket", tracker.sender_id, number)
        except api.ApiRefused as exc:
            if exc.status == 404:  # not a customer yet, or not theirs
                dispatcher.utter_message(response="utter_ticket_not_found", ticket_number=number or "")
            else:
                dispatcher.utter_message(response="utter_service_error")
            return []
        except api.ApiError:
            dispatcher.utter_message(response="utter_service_error")
            return []
        if ticket is None:
            dispatcher.utter_message(response="utter_ticket_not_found", ticket_number=number)
            return [SlotSet("ticket_number", None)]
        if ticket["status"] == "closed":
            dispatcher.utter_message(response="utter_ticket_already_closed", ticket_number=ticket["number"])
            return [SlotSet("ticket_number", None)]
        dispatcher.utter_message(response="utter_confirm_close", ticket_number=ticket["number"],
                                 ticket_subject=ticket["subject"])
        return [SlotSet("pending_question", close_pending(ticket["number"])), SlotSet("ticket_number", None)]


class ActionSetNotifications(Action):
    """'parar' / 'stop' and 'voltar a receber': WhatsApp notifications off and on."""

    def name(self) -> str:
        return "action_set_notifications"

    async def run(self, dispatcher, tracker, domain) -> list[EventType]:
        enabled = intent_of(tracker) == "resume_notifications"
        try:
            await api.call("set_notifications", tracker.sender_id, enabled)
        except api.ApiRefused as exc:
            if exc.status == 404:  # not a customer yet: nothing was ever sent
                dispatcher.utter_message(response="utter_notifications_on" if enabled else "utter_notifications_off")
                return []
            dispatcher.utter_message(response="utter_service_error")
            return []
        except api.ApiError:
            dispatcher.utter_message(response="utter_service_error")
            return []
        dispatcher.utter_message(response="utter_notifications_on" if enabled else "utter_notifications_off")
        return []
