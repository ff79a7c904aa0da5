"""actions/kb.py: answers from the knowledge base, pending yes/no questions,
turns not understood, and retrying a ticket the API did not open."""
from __future__ import annotations

import pytest
from conftest import SENDER, responses, run, slot_sets

from actions.kb import (
    KB_FEEDBACK,
    RETRY_TICKET,
    ActionAnswerPending,
    ActionAnswerQuestion,
    ActionTrackTurn,
    is_noise,
    yes_or_no,
)
from actions.tickets import ActionCreateTicket

DELIVERY = ("Prazo de entrega", "Entregamos em até 5 dias úteis nas capitais e até 10 no interior.")
FILLED = {"customer_verified": True, "ticket_subject": "Entrega atrasada",
          "ticket_description": "Pedido 4411 não chegou", "ticket_confirm": True}


def ask(make_tracker, dispatcher, domain, text, intent="ask_question", **slots):
    return run(ActionAnswerQuestion().run(dispatcher, make_tracker(text, intent, slots=slots), domain))


# ---------------------------------------------------------------- answering from the knowledge base
def test_a_confident_match_is_answered_and_the_customer_is_asked_if_it_helped(webapp, make_tracker,
                                                                             dispatcher, domain):
    webapp.add_article(*DELIVERY)
    events = ask(make_tracker, dispatcher, domain, "qual o prazo de entrega para o interior?")
    assert dispatcher.messages[0]["text"] == f"*{DELIVERY[0]}*\n{DELIVERY[1]}"
    assert responses(dispatcher)[1:] == ["utter_kb_did_it_help"]
    assert slot_sets(events) == {"pending_question": KB_FEEDBACK, "misunderstood": 0,
                                 "kb_offered": ["Prazo de entrega"]}
    [req] = webapp.requests
    assert req.query["language"] == ["pt"]


def test_the_customers_language_picks_the_articles(webapp, make_tracker, dispatcher, domain):
    webapp.add_article(*DELIVERY)
    webapp.add_article("Delivery times", "We deliver in up to 5 working days to state capitals.", "en")
    ask(make_tracker, dispatcher, domain, "what are the delivery times to capitals?", language="en")
    assert dispatcher.messages[0]["text"].startswith("*Delivery times*")


def test_a_weak_match_offers_a_ticket_or_a_person(webapp, make_tracker, dispatcher, domain):
    webapp.add_article(*DELIVERY)
    events = ask(make_tracker, dispatcher, domain, "vocês vendem geladeira?")
    assert responses(dispatcher) == ["utter_question_offer"]
    assert "pending_question" in slot_sets(events) and slot_sets(events)["pending_question"] is None


def test_the_knowledge_base_down_is_a_weak_match_not_an_error(webapp, make_tracker, dispatcher, domain):
    webapp.override("GET", "/kb/search", 500, {"error": {"code": "internal_server_error", "message": "x"}})
    ask(make_tracker, dispatcher, domain, "qual o prazo de entrega?")
    assert responses(dispatcher) == ["utter_question_offer"]


def test_out_of_scope_without_an_article_says_so(webapp, make_tracker, dispatcher, domain):
    ask(make_tracker, dispatcher, domain, "qual a capital da França?", "out_of_scope")
    assert responses(dispatcher) == ["utter_out_of_scope"]


def test_articles_offered_accumulate_without_repeats(webapp, make_tracker, dispatcher, domain):
    webapp.add_article(*DELIVERY)
    events = ask(make_tracker, dispatcher, domain, "qual o prazo de entrega?", kb_offered=["Trocas", DELIVERY[0]])
    assert slot_sets(events)["kb_offered"] == ["Trocas", DELIVERY[0]]


# ---------------------------------------------------------------- not understood
def test_the_second_turn_not_understood_hands_off(webapp, make_tracker, dispatcher, domain):
    webapp.add_customer()
    first = ask(make_tracker, dispatcher, domain, "blablabla xpto", "nlu_fallback")
    assert responses(dispatcher) == ["utter_please_rephrase"]
    assert slot_sets(first)["misunderstood"] == 1
    assert not webapp.tickets

    second = ask(make_tracker, dispatcher, domain, "asdf qwer zxcv", "nlu_fallback", misunderstood=1)
    assert responses(dispatcher)[1:] == ["utter_handoff"]
    [ticket] = webapp.tickets.values()
    [handoff] = ticket["_handoffs"]
    assert handoff["reason"] == "not_understood"
    assert handoff["context"]["intent"] == "nlu_fallback"
    assert slot_sets(second)["misunderstood"] == 0


def test_a_clear_intent_resets_the_count(make_tracker, dispatcher, domain):
    events = run(ActionTrackTurn().run(dispatcher, make_tracker("quero abrir um chamado", "open_ticket",
                                                                slots={"misunderstood": 1}), domain))
    assert slot_sets(events) == {"misunderstood": 0}
    kept = run(ActionTrackTurn().run(dispatcher, make_tracker("asdf", "nlu_fallback",
                                                              slots={"misunderstood": 1}), domain))
    assert kept == []


# ---------------------------------------------------------------- did it help?
@pytest.mark.parametrize("text, intent", [("sim", "affirm"), ("👍", "affirm"), ("👍🏽", "chitchat"),
                                          ("ok 👍", "nlu_fallback"), ("ajudou sim", "affirm")])
def test_yes_it_helped(webapp, make_tracker, dispatcher, domain, text, intent):
    tracker = make_tracker(text, intent, slots={"pending_question": KB_FEEDBACK})
    events = run(ActionAnswerPending().run(dispatcher, tracker, domain))
    assert responses(dispatcher) == ["utter_kb_glad"]
    assert slot_sets(events) == {"pending_question": None}
    assert webapp.requests == []


def test_no_it_did_not_help_hands_off_with_the_articles_offered(webapp, make_tracker, dispatcher, domain):
    webapp.add_customer()
    tracker = make_tracker("não", "deny", slots={"pending_question": KB_FEEDBACK,
                                                  "kb_offered": ["Prazo de entrega"]})
    events = run(ActionAnswerPending().run(dispatcher, tracker, domain))
    assert responses(dispatcher) == ["utter_kb_sorry", "utter_handoff"]
    [ticket] = webapp.tickets.values()
    [handoff] = ticket["_handoffs"]
    assert handoff["reason"] == "kb_not_helpful"
    assert handoff["context"]["kb_articles"] == ["Prazo de entrega"]
    assert slot_sets(events)["pending_question"] is None


@pytest.mark.parametrize("text", ["❤️", "🙏", "🇧🇷", "kkkkkk", "?", "hmm"])
def test_an_unclear_answer_gets_a_clarification_and_changes_nothing(webapp, make_tracker, dispatcher,
                                                                    domain, text):
    tracker = make_tracker(text, "chitchat", slots={"pending_question": KB_FEEDBACK})
    events = run(ActionAnswerPending().run(dispatcher, tracker, domain))
    assert responses(dispatcher) == ["utter_answer_yes_or_no"]
    assert events == []  # still waiting for the answer
    assert webapp.requests == []


def test_a_yes_in_a_fallback_turn_still_answers_the_question(webapp, make_tracker, dispatcher, domain):
    events = ask(make_tracker, dispatcher, domain, "sim 👍", "nlu_fallback", pending_question=KB_FEEDBACK)
    assert responses(dispatcher) == ["utter_kb_glad"]
    assert slot_sets(events) == {"pending_question": None}


def test_moving_on_forgets_the_pending_question(make_tracker, dispatcher, domain):
    events = run(ActionTrackTurn().run(dispatcher, make_tracker("status do chamado", "check_status",
                                                                slots={"pending_question": KB_FEEDBACK}), domain))
    assert slot_sets(events) == {"pending_question": None}
    for intent in ("affirm", "deny", "chitchat"):
        assert run(ActionTrackTurn().run(dispatcher, make_tracker("x", intent,
                                                                  slots={"pending_question": KB_FEEDBACK}),
                                         domain)) == []


@pytest.mark.parametrize("text, intent, expected", [
    ("sim", "affirm", True), ("👍🏽", "chitchat", True), ("ok 👍", "nlu_fallback", True),
    ("não", "deny", False), ("nao", "nlu_fallback", False), ("👎", "chitchat", False),
    ("❤️", "chitchat", None), ("🇧🇷", "chitchat", None), ("", "affirm", None),
    ("sim, mas não", "deny", False),
])
def test_yes_or_no(make_tracker, text, intent, expected):
    assert yes_or_no(make_tracker(text, intent)) is expected


@pytest.mark.parametrize("intent, response", [("affirm", "utter_how_can_help"), ("deny", "utter_how_can_help"),
                                              ("chitchat", "utter_chitchat")])
def test_nothing_pending(make_tracker, dispatcher, domain, intent, response):
    text = {"affirm": "sim", "deny": "não", "chitchat": "kkkk"}[intent]
    assert run(ActionAnswerPending().run(dispatcher, make_tracker(text, intent), domain)) == []
    assert responses(dispatcher) == [response]


# ---------------------------------------------------------------- retrying a ticket
def confirmed(make_tracker, **slots):
    return make_tracker("sim", "affirm", slots={**FILLED, "ticket_key": f"rasa:{SENDER}:k1", **slots})


def test_a_ticket_the_api_could_not_open_is_retried_with_the_same_key(webapp, make_tracker, dispatcher,
                                                                       domain):
    webapp.add_customer()
    webapp.override("POST", "/tickets", 500, {"error": {"code": "internal_server_error", "message": "boom"}})
    first = run(ActionCreateTicket().run(dispatcher, confirmed(make_tracker), domain))
    assert responses(dispatcher) == ["utter_ticket_retry"]
    assert slot_sets(first) == {"ticket_key": f"rasa:{SENDER}:k1", "pending_question": RETRY_TICKET}

    webapp.overrides.clear()
    again = run(ActionAnswerPending().run(dispatcher, confirmed(make_tracker, pending_question=RETRY_TICKET),
                                          domain))
    assert responses(dispatcher)[1:] == ["utter_ticket_created"]
    [ticket] = webapp.tickets.values()
    assert slot_sets(again)["created_ticket_number"] == str(ticket["number"])
    assert [r.body["idempotency_key"] for r in webapp.requests_to("POST", "/api/v1/tickets")] == \
        [f"rasa:{SENDER}:k1"] * 2


def test_a_slow_api_that_finally_succeeds_leaves_exactly_one_ticket(webapp, make_tracker, dispatcher, domain):
    """The first request times out on our side (3 s here) but the webapp
    finishes it; the customer's "sim" sends the same key and gets that ticket."""
    webapp.add_customer()
    webapp.delay = 4.0
    run(ActionCreateTicket().run(dispatcher, confirmed(make_tracker), domain))
    assert responses(dispatcher) == ["utter_ticket_retry"]
    webapp.delay = 0.0
    import time
    deadline = time.time() + 5
    while not webapp.tickets and time.time() < deadline:  # the slow request completes
        time.sleep(0.05)
    events = run(ActionAnswerPending().run(dispatcher, confirmed(make_tracker, pending_question=RETRY_TICKET),
                                           domain))
    assert len(webapp.tickets) == 1
    [ticket] = webapp.tickets.values()
    assert slot_sets(events)["created_ticket_number"] == str(ticket["number"])


def test_no_to_the_retry_drops_the_answers(webapp, make_tracker, dispatcher, domain):
    tracker = make_tracker("não", "deny", slots={**FILLED, "pending_question": RETRY_TICKET, "ticket_key": "k"})
    events = run(ActionAnswerPending().run(dispatcher, tracker, domain))
    assert responses(dispatcher) == ["utter_ticket_cancelled"]
    assert slot_sets(events) == {"pending_question": None, "ticket_subject": None, "ticket_description": None,
                                 "ticket_confirm": None, "ticket_key": None}
    assert webapp.requests == []


@pytest.mark.parametrize("text", ["kkkkkkkk", "rsrsrs", "???", "aff", ".", "hmm", "hahaha", "😅"])
def test_noise_is_never_a_failure_nor_a_handoff(webapp, make_tracker, dispatcher, domain, text):
    webapp.add_customer()
    events = ask(make_tracker, dispatcher, domain, text, "nlu_fallback", misunderstood=1)
    assert responses(dispatcher) == ["utter_chitchat"]
    assert "misunderstood" not in slot_sets(events)
    assert webapp.requests == []  # no search, no handoff


@pytest.mark.parametrize("text, noise", [("kkkkkkkk", True), ("rsrsrs", True), ("aff", True), ("", True),
                                         ("pedido 123", False), ("oi tudo bem", False), ("123", False)])
def test_is_noise(text, noise):
    assert is_noise(text) is noise
