"""Answers from the knowledge base, questions the assistant asked, and what
happens when it does not understand.

``pending_question`` remembers a yes/no question the assistant asked outside
a form ("did this help?", "shall I try again?"), so that the customer's next
"sim", "👍" or "não" answers it. ``misunderstood`` counts consecutive turns the
assistant did not understand; the second one hands the conversation to a
person. ``action_track_turn`` (a slot-mapping action, run on every customer
message before the next action is chosen) clears both when the customer moves
on to something else.
"""
from __future__ import annotations

from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from . import api
from .closing import answer_close, awaiting_close, close_pending, pending_close_number
from .common import intent_of, text_of
from .handoff import hand_off
from .tickets import NO, YES, create_ticket_events

KB_FEEDBACK = "kb_feedback"
RETRY_TICKET = "retry_ticket"
# Intents that may answer a pending question (or need a clarification).
ANSWERS = ("affirm", "deny", "chitchat", "nlu_fallback", "empty_message", "thank", "inform")
# Consecutive turns not understood before a person takes over.
MISUNDERSTOOD_LIMIT = 2
MIN_QUESTION_LETTERS = 4


def yes_or_no(tracker: Tracker) -> bool | None:
    """The customer's answer to a yes/no question, or None when unclear.
    The text decides before the intent: "👍🏽" or "ok 👍" are yes whatever NLU says."""
    text, intent = text_of(tracker), intent_of(tracker)
    if intent not in ("deny", "cancel") and YES.search(text):
        return True
    if intent == "deny" or NO.search(text):
        return False
    if intent == "affirm" and text.strip():
        return True
    return None


def is_noise(text: str) -> bool:
    """Laughter, fillers and punctuation: "kkkkkk", "rsrsrs", "aff", "hmm", "???"."""
    letters = [ch.lower() for ch in text if ch.isalpha()]
    return len(set(letters)) <= 3 and not any(ch.isdigit() for ch in text)


class ActionTrackTurn(Action):
    """Forget a pending yes/no question, and the count of turns not understood,
    as soon as the customer says something else."""

    def name(self) -> str:
        return "action_track_turn"

    async def run(self, dispatcher, tracker, domain) -> list[EventType]:
        intent = intent_of(tracker)
        events: list[EventType] = []
        pending = tracker.get_slot("pending_question")
        if pending and intent not in ANSWERS:
            events.append(SlotSet("pending_question", None))
        elif not pending and intent in ANSWERS and awaiting_close(tracker):
            # Our "may I close ticket N?" (sent by the webapp) waits for this answer.
            events.append(SlotSet("pending_question", close_pending(awaiting_close(tracker)[0])))
        if (tracker.get_slot("misunderstood") or 0) and intent not in ("nlu_fallback", "inform"):
            events.append(SlotSet("misunderstood", 0))
        return events


def _offered(tracker: Tracker, title: str) -> list[str]:
    offered = list(tracker.get_slot("kb_offered") or [])
    if title and title not in offered:
        offered.append(title)
    return offered[-10:]


class ActionAnswerQuestion(Action):
    """A question (or a message that maps to no flow): answer it from the
    knowledge base when the match is confident and ask whether it helped;
    otherwise offer a ticket or a person, and hand off when the assistant
    keeps not understanding."""

    def name(self) -> str:
        return "action_answer_question"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: dict[str, Any]) -> list[EventType]:
        intent = intent_of(tracker)
        if tracker.get_slot("pending_question") and yes_or_no(tracker) is not None:
            return await answer_pending(dispatcher, tracker)
        text = text_of(tracker)
        if intent != "ask_question" and is_noise(text):
            # "kkkk", "???", ".", "hmm": not a question, and not a failure
            # worth a handoff either.
            dispatcher.utter_message(response="utter_chitchat")
            return [SlotSet("pending_question", None)]
        hits: dict = {}
        if sum(ch.isalpha() for ch in text) >= MIN_QUESTION_LETTERS:
            try:
                hits = await api.call("kb_search", text, tracker.get_slot("language") or "pt")
            except (api.ApiError, api.ApiRefused):
                hits = {}  # no answer from the knowledge base: treated as a weak match
        results = hits.get("results") or []
        if hits.get("confident") and results:
            best = results[0]
            dispatcher.utter_message(text=f"*{best['title']}*\n{best['answer']}")
            dispatcher.utter_message(response="utter_kb_did_it_help")
            return [SlotSet("pending_question", KB_FEEDBACK), SlotSet("misunderstood", 0),
                    SlotSet("kb_offered", _offered(tracker, best["title"]))]
        if intent == "ask_question":
            dispatcher.utter_message(response="utter_question_offer")
            return [SlotSet("pending_question", None)]
        if intent == "out_of_scope":
            dispatcher.utter_message(response="utter_out_of_scope")
            return [SlotSet("pending_question", None)]
        misunderstood = int(tracker.get_slot("misunderstood") or 0) + 1
        if misunderstood >= MISUNDERSTOOD_LIMIT:
            return await hand_off(dispatcher, tracker, "not_understood") + [SlotSet("misunderstood", 0)]
        dispatcher.utter_message(response="utter_please_rephrase")
        return [SlotSet("misunderstood", misunderstood), SlotSet("pending_question", None)]


async def answer_pending(dispatcher: CollectingDispatcher, tracker: Tracker) -> list[EventType]:
    pending = tracker.get_slot("pending_question")
    answer = yes_or_no(tracker)
    if pending and answer is None:
        # "❤️", "kkkk", "?": ask again; nothing happens until a clear answer.
        dispatcher.utter_message(response="utter_answer_yes_or_no")
        return []
    if pending == KB_FEEDBACK:
        if answer:
            dispatcher.utter_message(response="utter_kb_glad")
            return [SlotSet("pending_question", None)]
        dispatcher.utter_message(response="utter_kb_sorry")
        return [SlotSet("pending_question", None)] + await hand_off(dispatcher, tracker, "kb_not_helpful")
    if pending_close_number(pending) is not None:
        return await answer_close(dispatcher, tracker, pending_close_number(pending), answer)
    if pending == RETRY_TICKET:
        if answer:
            return await create_ticket_events(dispatcher, tracker)
        dispatcher.utter_message(response="utter_ticket_cancelled")
        return [SlotSet("pending_question", None), SlotSet("ticket_subject", None),
                SlotSet("ticket_description", None), SlotSet("ticket_confirm", None),
                SlotSet("ticket_key", None)]
    # Nothing was asked.
    if intent_of(tracker) == "chitchat":
        dispatcher.utter_message(response="utter_chitchat")
    else:
        dispatcher.utter_message(response="utter_how_can_help")
    return [SlotSet("pending_question", None)] if pending else []


class ActionAnswerPending(Action):
    """Yes, no, an emoji or a laugh outside a form."""

    def name(self) -> str:
        return "action_answer_pending"

    async def run(self, dispatcher, tracker, domain) -> list[EventType]:
        return await answer_pending(dispatcher, tracker)
