"""actions/handoff.py: handing the conversation to a person, with context."""
from __future__ import annotations

from conftest import (
    SENDER,
    SERVICE_TOKEN,
    action_event,
    bot_event,
    responses,
    run,
    slot_sets,
    user_event,
)

from actions.handoff import ActionHandoff, handoff_context

EARLIER = ["oi", "quero abrir um chamado", "Maria Silva", "Entrega atrasada",
           "Comprei no dia 10 e não chegou", "", "👎"]


def conversation():
    events = []
    for i, text in enumerate(EARLIER):
        events.append(user_event(text, "inform", ts=1714657100.0 + i))
        events.append(bot_event("…", ts=1714657100.5 + i))
    events.append(action_event("action_listen"))
    return events


def handoff_tracker(make_tracker, **slots):
    return make_tracker("quero falar com um atendente", "request_human", history=conversation(),
                        slots={"customer_verified": True, "customer_name": "Maria Silva",
                               "ticket_subject": "Entrega atrasada", "ticket_description": "",
                               "pending_flow": None, "language": "pt", **slots})


def test_handoff_context_has_what_the_agent_needs(make_tracker):
    context = handoff_context(handoff_tracker(make_tracker, kb_offered=["Prazo de entrega"]))
    assert context == {
        "intent": "request_human",
        # only the context slots that have a value
        "slots": {"ticket_subject": "Entrega atrasada", "customer_name": "Maria Silva"},
        "kb_articles": ["Prazo de entrega"],
        # the last five customer texts, oldest first; empty ones skipped
        "last_messages": ["Maria Silva", "Entrega atrasada", "Comprei no dia 10 e não chegou", "👎",
                          "quero falar com um atendente"],
    }


def test_handoff_context_of_a_fresh_conversation(make_tracker):
    context = handoff_context(make_tracker("atendente", "request_human"))
    assert context == {"intent": "request_human", "slots": {}, "kb_articles": [], "last_messages": ["atendente"]}


def test_handoff_context_skips_injected_intents(make_tracker):
    history = [user_event("/share_media", "share_media"), bot_event("…")]
    context = handoff_context(make_tracker("atendente", "request_human", history=history))
    assert context["last_messages"] == ["atendente"]


def test_handoff_opens_a_ticket_with_the_context(webapp, make_tracker, dispatcher, domain):
    webapp.add_customer()
    events = run(ActionHandoff().run(dispatcher, handoff_tracker(make_tracker), domain))

    [req] = webapp.requests
    assert (req.method, req.path) == ("POST", f"/api/v1/conversations/by-phone/{SENDER}/handoff")
    assert req.authorization == f"Bearer {SERVICE_TOKEN}"
    assert req.body["reason"] == "customer_request"
    assert req.body["context"]["last_messages"][-1] == "quero falar com um atendente"
    [ticket] = webapp.tickets.values()
    assert ticket["_handoffs"] == [{"reason": "customer_request", "context": req.body["context"]}]
    assert responses(dispatcher) == ["utter_handoff"]
    assert dispatcher.messages[0]["created_ticket_number"] == ticket["number"]
    assert slot_sets(events) == {"created_ticket_number": str(ticket["number"]), "pending_question": None,
                                 "misunderstood": 0}


def test_handoff_outside_business_hours_says_when_people_are_back(webapp, make_tracker, dispatcher, domain):
    webapp.add_customer()
    webapp.business_hours = {"open": False, "opens_at": "2024-05-06T08:00:00-03:00",
                             "opens_at_text": "segunda-feira às 08:00"}
    run(ActionHandoff().run(dispatcher, handoff_tracker(make_tracker), domain))
    assert responses(dispatcher) == ["utter_handoff_closed"]
    assert dispatcher.messages[0]["opens_at"] == "segunda-feira às 08:00"


def test_handoff_reuses_the_customers_active_ticket(webapp, make_tracker, dispatcher, domain):
    webapp.add_customer()
    webapp.add_ticket(number=17, status="open")
    events = run(ActionHandoff().run(dispatcher, handoff_tracker(make_tracker), domain))
    assert dispatcher.messages[0]["created_ticket_number"] == 17
    assert slot_sets(events)["created_ticket_number"] == "17"
    assert len(webapp.tickets) == 1


def test_handoff_when_the_api_is_down(api_down, make_tracker, dispatcher, domain):
    events = run(ActionHandoff().run(dispatcher, handoff_tracker(make_tracker), domain))
    assert events == []
    assert responses(dispatcher) == ["utter_service_error"]


def test_handoff_refused_is_a_service_error(webapp, make_tracker, dispatcher, domain):
    events = run(ActionHandoff().run(dispatcher, handoff_tracker(make_tracker), domain))  # unknown phone: 404
    assert events == []
    assert responses(dispatcher) == ["utter_service_error"]
    assert webapp.requests[0].path.endswith("/handoff")


def test_handoff_server_error_is_a_service_error(webapp, make_tracker, dispatcher, domain):
    webapp.add_customer()
    webapp.override("POST", f"/conversations/by-phone/{SENDER}/handoff", 500,
                    {"error": {"code": "internal_server_error", "message": "boom"}})
    events = run(ActionHandoff().run(dispatcher, handoff_tracker(make_tracker), domain))
    assert events == []
    assert responses(dispatcher) == ["utter_service_error"]
