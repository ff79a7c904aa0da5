"""actions/closing.py: closing with the customer's consent, notifications on/off."""
from __future__ import annotations

import pytest
from conftest import OTHER_SENDER, SENDER, responses, run, slot_sets

from actions.closing import ActionRequestClose, ActionSetNotifications
from actions.kb import ActionAnswerPending, ActionAnswerQuestion, ActionTrackTurn


def meta(**extra):
    return {"language": "pt", "profile_name": "Maria", "media": [], "location": None, **extra}


def entity(value: str, text: str) -> dict:
    start = text.index(value)
    return {"entity": "ticket_number", "value": value, "start": start, "end": start + len(value)}


# ---------------------------------------------------------------- answering "may I close it?"
def test_the_webapps_closing_question_becomes_the_pending_question(make_tracker, dispatcher, domain):
    tracker = make_tracker("sim", "affirm", metadata=meta(awaiting_close=[12, 7]))
    assert slot_sets(run(ActionTrackTurn().run(dispatcher, tracker, domain))) == {"pending_question": "close:12"}
    # Another request is not an answer.
    other = make_tracker("status do chamado", "check_status", metadata=meta(awaiting_close=[12]))
    assert run(ActionTrackTurn().run(dispatcher, other, domain)) == []


@pytest.mark.parametrize("text, intent, status", [("sim", "affirm", "closed"), ("👍", "affirm", "closed"),
                                                  ("não", "deny", "open"), ("nao resolveu", "deny", "open")])
def test_yes_closes_and_no_reopens(webapp, make_tracker, dispatcher, domain, text, intent, status):
    webapp.add_customer()
    webapp.add_ticket(number=12, status="resolved")
    tracker = make_tracker(text, intent, slots={"pending_question": "close:12"},
                           metadata=meta(awaiting_close=[12]))
    events = run(ActionAnswerPending().run(dispatcher, tracker, domain))
    assert webapp.tickets[12]["status"] == status
    # The webapp tells the customer (closed + rating, or reopened): nothing said twice.
    assert dispatcher.messages == []
    assert slot_sets(events) == {"pending_question": None}
    [req] = webapp.requests
    assert req.path == f"/api/v1/tickets/12/{'close' if status == 'closed' else 'reopen'}"
    assert req.body == {"phone": SENDER}


def test_an_unclear_answer_closes_nothing(webapp, make_tracker, dispatcher, domain):
    webapp.add_customer()
    webapp.add_ticket(number=12, status="resolved")
    tracker = make_tracker("❤️", "chitchat", slots={"pending_question": "close:12"})
    assert run(ActionAnswerPending().run(dispatcher, tracker, domain)) == []
    assert responses(dispatcher) == ["utter_answer_yes_or_no"]
    assert webapp.tickets[12]["status"] == "resolved" and webapp.requests == []


def test_a_yes_in_a_low_confidence_turn_still_closes(webapp, make_tracker, dispatcher, domain):
    webapp.add_customer()
    webapp.add_ticket(number=12, status="resolved")
    tracker = make_tracker("sim 👍", "nlu_fallback", slots={"pending_question": "close:12"})
    run(ActionAnswerQuestion().run(dispatcher, tracker, domain))
    assert webapp.tickets[12]["status"] == "closed"


def test_the_api_down_keeps_the_question_pending(api_down, make_tracker, dispatcher, domain):
    tracker = make_tracker("sim", "affirm", slots={"pending_question": "close:12"})
    assert run(ActionAnswerPending().run(dispatcher, tracker, domain)) == []
    assert responses(dispatcher) == ["utter_service_error"]


# ---------------------------------------------------------------- "pode fechar o chamado 123"
def test_the_customer_asks_to_close_one_of_their_tickets(webapp, make_tracker, dispatcher, domain):
    webapp.add_customer()
    webapp.add_ticket(number=123, subject="Entrega atrasada", status="open")
    text = "pode fechar o chamado 123"
    events = run(ActionRequestClose().run(dispatcher, make_tracker(text, "close_ticket",
                                                                    entities=[entity("123", text)]), domain))
    assert responses(dispatcher) == ["utter_confirm_close"]
    assert (dispatcher.messages[0]["ticket_number"], dispatcher.messages[0]["ticket_subject"]) == \
        (123, "Entrega atrasada")
    assert slot_sets(events) == {"pending_question": "close:123", "ticket_number": None}
    assert webapp.tickets[123]["status"] == "open"  # nothing closed before the yes


def test_someone_elses_ticket_cannot_be_closed(webapp, make_tracker, dispatcher, domain):
    webapp.add_customer()
    webapp.add_customer(OTHER_SENDER, name="João")
    webapp.add_ticket(OTHER_SENDER, number=55, subject="Segredo do João")
    text = "fecha o chamado 55"
    run(ActionRequestClose().run(dispatcher, make_tracker(text, "close_ticket", entities=[entity("55", text)]),
                                 domain))
    assert responses(dispatcher) == ["utter_ticket_not_found"]
    assert "Segredo" not in str(dispatcher.messages)
    # And even a forged pending question cannot close it: the API checks the owner.
    events = run(ActionAnswerPending().run(dispatcher, make_tracker("sim", "affirm",
                                                                     slots={"pending_question": "close:55"}),
                                           domain))
    assert webapp.tickets[55]["status"] == "new"
    assert responses(dispatcher)[-1] == "utter_ticket_not_found"
    assert slot_sets(events) == {"pending_question": None}


def test_without_a_number_one_open_ticket_is_confirmed_several_are_listed(webapp, make_tracker, dispatcher,
                                                                         domain):
    webapp.add_customer()
    webapp.add_ticket(number=3, subject="Troca")
    run(ActionRequestClose().run(dispatcher, make_tracker("pode encerrar meu chamado", "close_ticket"), domain))
    assert responses(dispatcher) == ["utter_confirm_close"]
    webapp.add_ticket(number=4, subject="Nota fiscal")
    run(ActionRequestClose().run(dispatcher, make_tracker("pode encerrar meu chamado", "close_ticket"), domain))
    assert responses(dispatcher)[-1] == "utter_which_ticket_to_close"
    assert "#4 Nota fiscal" in dispatcher.messages[-1]["ticket_lines"]


def test_pode_fechar_after_our_question_is_a_yes(webapp, make_tracker, dispatcher, domain):
    webapp.add_customer()
    webapp.add_ticket(number=12, status="resolved")
    run(ActionRequestClose().run(dispatcher, make_tracker("pode fechar", "close_ticket",
                                                          metadata=meta(awaiting_close=[12])), domain))
    assert webapp.tickets[12]["status"] == "closed" and dispatcher.messages == []


def test_an_already_closed_ticket(webapp, make_tracker, dispatcher, domain):
    webapp.add_customer()
    webapp.add_ticket(number=9, status="closed")
    text = "fechar chamado 9"
    run(ActionRequestClose().run(dispatcher, make_tracker(text, "close_ticket", entities=[entity("9", text)]),
                                 domain))
    assert responses(dispatcher) == ["utter_ticket_already_closed"]


# ---------------------------------------------------------------- notifications
@pytest.mark.parametrize("intent, enabled, response", [("stop_notifications", False, "utter_notifications_off"),
                                                       ("resume_notifications", True, "utter_notifications_on")])
def test_notifications_off_and_on(webapp, make_tracker, dispatcher, domain, intent, enabled, response):
    webapp.add_customer()
    run(ActionSetNotifications().run(dispatcher, make_tracker("parar", intent), domain))
    assert responses(dispatcher) == [response]
    assert webapp.customers["551188887777"]["notify_whatsapp"] is enabled
    [req] = webapp.requests
    assert (req.method, req.body) == ("PATCH", {"notify_whatsapp": enabled})


def test_notifications_when_the_api_is_down(api_down, make_tracker, dispatcher, domain):
    run(ActionSetNotifications().run(dispatcher, make_tracker("parar", "stop_notifications"), domain))
    assert responses(dispatcher) == ["utter_service_error"]
