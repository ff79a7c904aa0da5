"""actions/handoff.py: handing the conversation to a person, with context."""
from __future__ import annotations

import json

from conftest import (
    SENDER,
    SERVICE_TOKEN,
    action_event,
    bot_event,
    kinds,
    responses,
    run,
    user_event,
)

from actions.handoff import ActionHandoff, handoff_note

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


def test_handoff_note_has_what_the_agent_needs(make_tracker):
    note = json.loads(handoff_note(handoff_tracker(make_tracker)))
    assert note == {
        "intent": "request_human",
        # only the context slots that have a value
        "slots": {"ticket_subject": "Entrega atrasada", "customer_name": "Maria Silva"},
        # the last five customer texts, oldest first; empty ones skipped
        "last_messages": ["Maria Silva", "Entrega atrasada", "Comprei no dia 10 e não chegou", "👎",
                          "quero falar com um atendente"],
    }


def test_handoff_note_of_a_fresh_conversation(make_tracker):
    note = json.loads(handoff_note(make_tracker("atendente", "request_human")))
    assert note == {"intent": "request_human", "slots": {}, "last_messages": ["atendente"]}


def test_handoff_opens_a_ticket_with_the_note(webapp, make_tracker, dispatcher, domain):
    webapp.add_customer()
    events = run(ActionHandoff().run(dispatcher, handoff_tracker(make_tracker), domain))

    [req] = webapp.requests
    assert (req.method, req.path) == ("POST", f"/api/v1/conversations/by-phone/{SENDER}/handoff")
    assert req.authorization == f"Bearer {SERVICE_TOKEN}"
    assert req.body["reason"] == "customer_request"
    assert "não chegou" in req.body["note"] and "👎" in req.body["note"]  # readable, not \u escapes
    assert json.loads(req.body["note"])["intent"] == "request_human"
    [ticket] = webapp.tickets.values()
    assert ticket["_handoffs"] == [{"reason": "customer_request", "note": req.body["note"]}]
    assert responses(dispatcher) == ["utter_handoff"]
    assert dispatcher.messages[0]["created_ticket_number"] == ticket["number"]
    assert kinds(events) == [("slot", "created_ticket_number", str(ticket["number"]))]


def test_handoff_reuses_the_customers_active_ticket(webapp, make_tracker, dispatcher, domain):
    webapp.add_customer()
    webapp.add_ticket(number=17, status="open")
    events = run(ActionHandoff().run(dispatcher, handoff_tracker(make_tracker), domain))
    assert dispatcher.messages[0]["created_ticket_number"] == 17
    assert kinds(events) == [("slot", "created_ticket_number", "17")]
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
