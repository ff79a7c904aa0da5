"""actions/tickets.py: the ticket form, opening tickets, telling their status."""
from __future__ import annotations

import pytest
from conftest import (
    OTHER_SENDER,
    SENDER,
    SERVICE_TOKEN,
    action_event,
    bot_event,
    kinds,
    responses,
    run,
    slot_event,
    slot_sets,
)

from actions.tickets import (
    ActionAskTicketConfirm,
    ActionCheckStatus,
    ActionCreateTicket,
    ActionStartTicket,
    ValidateTicketForm,
    mask_email,
)

RESET = [("slot", "ticket_subject", None), ("slot", "ticket_description", None),
         ("slot", "ticket_confirm", None), ("slot", "ticket_key", None)]
FILLED = {"customer_verified": True, "customer_name": "Maria Silva", "ticket_subject": "Entrega atrasada",
          "ticket_description": "Comprei no dia 10, pedido 4411, e até hoje não chegou.",
          "ticket_confirm": True}
MESSAGE_ID = "9f1c2e7d4b8a4c0e8d6f3a2b1c0d9e8f"


def ticket_entity(value: str, text: str) -> dict:
    start = text.index(value)
    return {"entity": "ticket_number", "value": value, "start": start, "end": start + len(value),
            "extractor": "RegexEntityExtractor", "processors": []}


# ---------------------------------------------------------------- validate_ticket_form: subject
def validate(method, value, tracker, dispatcher, domain):
    return run(getattr(ValidateTicketForm(), method)(value, dispatcher, tracker, domain))


@pytest.mark.parametrize("value, expected", [
    ("  Entrega   atrasada ", "Entrega atrasada"),
    ("Pix", "Pix"),
    ("x" * 300, "x" * 200),
])
def test_subject_is_tidied_and_cut(make_tracker, dispatcher, domain, value, expected):
    assert validate("validate_ticket_subject", value, make_tracker(value, "inform"), dispatcher, domain) == \
        {"ticket_subject": expected}
    assert dispatcher.messages == []


@pytest.mark.parametrize("value", ["ab", "?!?!", "  a b  ", "😡😡😡"])
def test_too_short_subject_is_asked_again(make_tracker, dispatcher, domain, value):
    assert validate("validate_ticket_subject", value, make_tracker(value, "inform"), dispatcher, domain) == \
        {"ticket_subject": None}
    assert responses(dispatcher) == ["utter_text_too_short"]


def test_description_keeps_its_lines_and_is_cut(make_tracker, dispatcher, domain):
    text = "  Pedido 4411\nChegou quebrado.\n\nQuero a troca.  "
    assert validate("validate_ticket_description", text, make_tracker(text, "inform"), dispatcher, domain) == \
        {"ticket_description": "Pedido 4411\nChegou quebrado.\n\nQuero a troca."}
    long = "a" * 6000
    assert validate("validate_ticket_description", long, make_tracker(long, "inform"), dispatcher, domain) == \
        {"ticket_description": "a" * 5000}
    assert dispatcher.messages == []


@pytest.mark.parametrize("value", ["ruim", "!!!!!!!!", "a b c d"])
def test_too_short_description_is_asked_again(make_tracker, dispatcher, domain, value):
    assert validate("validate_ticket_description", value, make_tracker(value, "inform"), dispatcher,
                    domain) == {"ticket_description": None}
    assert responses(dispatcher) == ["utter_text_too_short"]


def test_reset_ticket_slots_are_not_judged(make_tracker, dispatcher, domain):
    tracker = make_tracker()
    for slot in ("ticket_subject", "ticket_description", "ticket_confirm"):
        assert validate(f"validate_{slot}", None, tracker, dispatcher, domain) == {slot: None}
    assert dispatcher.messages == []


# ---------------------------------------------------------------- validate_ticket_form: confirm
@pytest.mark.parametrize("text", ["👍", "👍🏽", "ok 👍", "ok👍", "👌", "✅", "sim", "Sim!", "S", "pode abrir",
                                  "claro", "yes please", "ok"])
def test_yes_answers_confirm_even_when_nlu_is_unsure(make_tracker, dispatcher, domain, text):
    tracker = make_tracker(text, "nlu_fallback", active_loop="ticket_form", requested_slot="ticket_confirm")
    assert validate("validate_ticket_confirm", text, tracker, dispatcher, domain) == {"ticket_confirm": True}
    assert dispatcher.messages == []


@pytest.mark.parametrize("text", ["não", "nao", "Não, obrigada", "n", "no", "nope", "👎", "👎🏾", "❌"])
def test_no_answers_cancel_even_when_nlu_is_unsure(make_tracker, dispatcher, domain, text):
    tracker = make_tracker(text, "nlu_fallback", active_loop="ticket_form", requested_slot="ticket_confirm")
    assert validate("validate_ticket_confirm", text, tracker, dispatcher, domain) == {"ticket_confirm": False}
    assert dispatcher.messages == []


@pytest.mark.parametrize("text", ["🇧🇷", "❤️", "talvez", "sei lá", "nossa", "simples assim", "hmm"])
def test_unclear_answers_ask_for_yes_or_no(make_tracker, dispatcher, domain, text):
    tracker = make_tracker(text, "nlu_fallback", active_loop="ticket_form", requested_slot="ticket_confirm")
    assert validate("validate_ticket_confirm", text, tracker, dispatcher, domain) == {"ticket_confirm": None}
    assert responses(dispatcher) == ["utter_answer_yes_or_no"]


def test_a_confident_affirm_alone_does_not_open_a_ticket(make_tracker, dispatcher, domain):
    # Keyboard-mash can come out of NLU as a confident `affirm`.
    assert validate("validate_ticket_confirm", "plok", make_tracker("plok", "affirm"), dispatcher,
                    domain) == {"ticket_confirm": None}
    assert responses(dispatcher) == ["utter_answer_yes_or_no"]


def test_a_deny_intent_wins_over_a_leading_yes_word(make_tracker, dispatcher, domain):
    # "ok" alone would be a yes, but the customer said no
    assert validate("validate_ticket_confirm", "ok, melhor não", make_tracker("ok, melhor não", "deny"),
                    dispatcher, domain) == {"ticket_confirm": False}
    assert dispatcher.messages == []


def form_tracker(make_tracker, text, *, intent="nlu_fallback", candidate=None):
    return make_tracker(
        text, intent, active_loop="ticket_form", requested_slot="ticket_confirm",
        slots={"customer_verified": True, "ticket_subject": "Entrega atrasada",
               "ticket_description": "Pedido 4411 não chegou"},
        history=[action_event("ticket_form"), bot_event("Posso abrir este chamado?"),
                 slot_event("requested_slot", "ticket_confirm"), action_event("action_listen")],
        after=[slot_event("ticket_confirm", text if candidate is None else candidate)])


@pytest.mark.parametrize("text, expected", [("👍", True), ("👍🏽", True), ("ok 👍", True), ("não", False)])
def test_confirm_through_rasa_sdk(make_tracker, dispatcher, domain, text, expected):
    events = run(ValidateTicketForm().run(dispatcher, form_tracker(make_tracker, text), domain))
    assert kinds(events) == [("slot", "ticket_confirm", expected)]
    assert dispatcher.messages == []


@pytest.mark.parametrize("text", ["🇧🇷", "❤️", "talvez"])
def test_unclear_confirm_through_rasa_sdk_leaves_the_slot_empty(make_tracker, dispatcher, domain, text):
    events = run(ValidateTicketForm().run(dispatcher, form_tracker(make_tracker, text), domain))
    assert kinds(events) == [("slot", "ticket_confirm", None)]
    assert responses(dispatcher) == ["utter_answer_yes_or_no"]


def test_subject_and_description_through_rasa_sdk(make_tracker, dispatcher, domain):
    tracker = make_tracker("Pix", "inform", active_loop="ticket_form", requested_slot="ticket_subject",
                           after=[slot_event("ticket_subject", "  Pix   não caiu "),
                                  slot_event("ticket_description", "ok")])
    events = run(ValidateTicketForm().run(dispatcher, tracker, domain))
    assert kinds(events) == [("slot", "ticket_subject", "Pix não caiu"), ("slot", "ticket_description", None)]
    assert responses(dispatcher) == ["utter_text_too_short"]


# ---------------------------------------------------------------- action_create_ticket
def confirmed_tracker(make_tracker, message_id=MESSAGE_ID, **slots):
    return make_tracker("👍", "affirm", message_id=message_id, slots={**FILLED, **slots},
                        history=[action_event("ticket_form"), bot_event("Posso abrir este chamado?"),
                                 action_event("action_listen")],
                        after=[action_event("ticket_form"), slot_event("ticket_confirm", True),
                               {"event": "active_loop", "timestamp": 1714657503.0, "name": None},
                               slot_event("requested_slot", None)])


def test_create_ticket(webapp, make_tracker, dispatcher, domain):
    webapp.add_customer()
    events = run(ActionCreateTicket().run(dispatcher, confirmed_tracker(make_tracker), domain))

    [req] = webapp.requests
    assert (req.method, req.path) == ("POST", "/api/v1/tickets")
    assert req.authorization == f"Bearer {SERVICE_TOKEN}"
    assert req.body == {"phone": SENDER, "subject": "Entrega atrasada",
                        "description": "Comprei no dia 10, pedido 4411, e até hoje não chegou.",
                        "idempotency_key": f"rasa:{SENDER}:{MESSAGE_ID}"}
    [ticket] = webapp.tickets.values()
    assert ticket["subject"] == "Entrega atrasada"
    assert responses(dispatcher) == ["utter_ticket_created"]
    assert dispatcher.messages[0]["created_ticket_number"] == ticket["number"]
    assert kinds(events) == RESET + [("slot", "created_ticket_number", str(ticket["number"])),
                                     ("slot", "pending_question", None)]


def test_a_retried_action_does_not_open_a_second_ticket(webapp, make_tracker, dispatcher, domain):
    webapp.add_customer()
    webapp.add_ticket(subject="Um chamado antigo")
    first = run(ActionCreateTicket().run(dispatcher, confirmed_tracker(make_tracker), domain))
    again = run(ActionCreateTicket().run(dispatcher, confirmed_tracker(make_tracker), domain))
    assert first == again
    assert len(webapp.tickets) == 2
    keys = [r.body["idempotency_key"] for r in webapp.requests]
    assert keys == [f"rasa:{SENDER}:{MESSAGE_ID}"] * 2
    assert [m["created_ticket_number"] for m in dispatcher.messages] == [2, 2]

    other = run(ActionCreateTicket().run(dispatcher, confirmed_tracker(make_tracker, message_id="0" * 32),
                                         domain))
    assert ("slot", "created_ticket_number", "3") in kinds(other)
    assert webapp.requests[-1].body["idempotency_key"] == f"rasa:{SENDER}:{'0' * 32}"
    assert len(webapp.tickets) == 3


@pytest.mark.parametrize("confirm", [False, None, "sim"])
def test_without_a_yes_nothing_is_opened(webapp, make_tracker, dispatcher, domain, confirm):
    webapp.add_customer()
    events = run(ActionCreateTicket().run(dispatcher, confirmed_tracker(make_tracker, ticket_confirm=confirm),
                                          domain))
    assert responses(dispatcher) == ["utter_ticket_cancelled"]
    assert kinds(events) == RESET
    assert webapp.requests == []


def test_create_ticket_when_the_api_is_down_keeps_the_answers(api_down, make_tracker, dispatcher, domain):
    events = run(ActionCreateTicket().run(dispatcher, confirmed_tracker(make_tracker), domain))
    assert responses(dispatcher) == ["utter_ticket_retry"]
    # nothing is reset: a "sim" tries again with the same key
    assert kinds(events) == [("slot", "ticket_key", f"rasa:{SENDER}:{MESSAGE_ID}"),
                             ("slot", "pending_question", "retry_ticket")]


def test_create_ticket_refused_for_an_unverified_customer(webapp, make_tracker, dispatcher, domain):
    webapp.add_customer(verified=False)
    events = run(ActionCreateTicket().run(dispatcher, confirmed_tracker(make_tracker), domain))
    assert responses(dispatcher) == ["utter_service_error"]
    assert kinds(events) == RESET + [("slot", "pending_question", None)]
    assert webapp.tickets == {}


# ---------------------------------------------------------------- action_check_status
def status_tracker(make_tracker, text="status do chamado 42", number="42", intent="check_status", **kw):
    entities = [ticket_entity(number, text)] if number else []
    return make_tracker(text, intent, entities=entities, slots={"customer_verified": True,
                                                                "ticket_number": number}, **kw)


def test_status_of_one_of_my_tickets(webapp, make_tracker, dispatcher, domain):
    webapp.add_customer(language="pt")
    webapp.add_ticket(number=42, subject="Entrega atrasada", status="open")
    events = run(ActionCheckStatus().run(dispatcher, status_tracker(make_tracker), domain))

    [req] = webapp.requests
    assert (req.method, req.path, req.query) == ("GET", "/api/v1/tickets/42", {"phone": [SENDER]})
    assert req.authorization == f"Bearer {SERVICE_TOKEN}"
    [message] = dispatcher.messages
    assert message["response"] == "utter_ticket_status"
    assert (message["ticket_number"], message["ticket_subject"], message["ticket_status"]) == \
        (42, "Entrega atrasada", "Em atendimento")
    assert kinds(events) == [("slot", "ticket_number", None)]


def test_status_label_is_in_the_customers_language(webapp, make_tracker, dispatcher, domain):
    webapp.add_customer(language="en")
    webapp.add_ticket(number=7, status="pending")
    text = "how is ticket #7 going"
    run(ActionCheckStatus().run(dispatcher, status_tracker(make_tracker, text, "#7"), domain))
    assert dispatcher.messages[0]["ticket_status"] == "Waiting for you"
    assert webapp.requests[0].path == "/api/v1/tickets/7"


def test_status_of_someone_elses_ticket_is_not_found(webapp, make_tracker, dispatcher, domain):
    """The webapp answers 404 for a ticket of another phone: never show it."""
    webapp.add_customer()
    webapp.add_customer(OTHER_SENDER, name="João")
    webapp.add_ticket(OTHER_SENDER, number=42, subject="Segredo do João")
    events = run(ActionCheckStatus().run(dispatcher, status_tracker(make_tracker), domain))
    assert [(m["response"], m.get("ticket_number")) for m in dispatcher.messages] == \
        [("utter_ticket_not_found", 42)]
    assert "Segredo do João" not in str(dispatcher.messages)
    assert kinds(events) == [("slot", "ticket_number", None)]
    assert webapp.requests[0].query == {"phone": [SENDER]}


def test_status_of_a_missing_ticket_is_not_found(webapp, make_tracker, dispatcher, domain):
    webapp.add_customer()
    run(ActionCheckStatus().run(dispatcher, status_tracker(make_tracker, "chamado 999", "999"), domain))
    assert [(m["response"], m["ticket_number"]) for m in dispatcher.messages] == \
        [("utter_ticket_not_found", 999)]


def test_list_of_open_tickets(webapp, make_tracker, dispatcher, domain):
    webapp.add_customer()
    webapp.add_ticket(subject="Entrega atrasada", status="new")
    webapp.add_ticket(subject="Cobrança em dobro", status="resolved")
    webapp.add_ticket(subject="Troca de tamanho", status="pending")
    events = run(ActionCheckStatus().run(dispatcher, status_tracker(make_tracker, "meus chamados", None),
                                         domain))
    [req] = webapp.requests
    assert (req.method, req.path, req.query) == ("GET", "/api/v1/tickets", {"phone": [SENDER]})
    [message] = dispatcher.messages
    assert message["response"] == "utter_ticket_list"
    assert message["ticket_lines"] == "• #3 Troca de tamanho — Aguardando você\n• #1 Entrega atrasada — Novo"
    assert events == []


def test_list_shows_at_most_ten_tickets(webapp, make_tracker, dispatcher, domain):
    webapp.add_customer()
    for i in range(12):
        webapp.add_ticket(subject=f"Problema {i + 1}")
    run(ActionCheckStatus().run(dispatcher, status_tracker(make_tracker, "meus chamados", None), domain))
    lines = dispatcher.messages[0]["ticket_lines"].split("\n")
    assert len(lines) == 10
    assert lines[0] == "• #12 Problema 12 — Novo"


def test_no_open_tickets(webapp, make_tracker, dispatcher, domain):
    webapp.add_customer()
    webapp.add_ticket(status="closed")
    events = run(ActionCheckStatus().run(dispatcher, status_tracker(make_tracker, "meus chamados", None),
                                         domain))
    assert responses(dispatcher) == ["utter_no_open_tickets"]
    assert events == []


@pytest.mark.parametrize("text, number", [("status do chamado 42", "42"), ("meus chamados", None)])
def test_status_when_the_api_is_down(api_down, make_tracker, dispatcher, domain, text, number):
    events = run(ActionCheckStatus().run(dispatcher, status_tracker(make_tracker, text, number), domain))
    assert responses(dispatcher) == ["utter_service_error"]
    assert events == []


def test_status_after_verification_does_not_read_the_code_as_a_ticket_number(
        webapp, make_tracker, dispatcher, domain):
    """action_verification_done follows up with action_check_status in the same turn: the latest
    message is then the 6-digit code, which the ticket_number regex (\\d{1,7}) also matches."""
    webapp.add_customer()
    webapp.add_ticket(subject="Entrega atrasada")
    tracker = status_tracker(make_tracker, "483920", "483920", intent="inform",
                             active_loop=None,
                             after=[action_event("verification_form"), slot_event("verification_code", "verified"),
                                    slot_event("customer_verified", True),
                                    {"event": "active_loop", "timestamp": 1714657503.0, "name": None},
                                    slot_event("requested_slot", None), action_event("action_verification_done"),
                                    slot_event("pending_flow", None),
                                    {"event": "followup", "timestamp": 1714657503.0,
                                     "name": "action_check_status"}])
    run(ActionCheckStatus().run(dispatcher, tracker, domain))
    assert [(r.method, r.path) for r in webapp.requests] == [("GET", "/api/v1/tickets")]
    assert responses(dispatcher) == ["utter_ticket_list"]


def test_a_new_ticket_starts_from_empty_answers(webapp, make_tracker, dispatcher, domain):
    # A cancelled form left answers behind; they must not leak into the next ticket.
    webapp.add_customer(email="maria.silva@exemplo.com.br")
    tracker = make_tracker("quero abrir um chamado", "open_ticket",
                           slots={"ticket_subject": "Assunto antigo", "ticket_description": "velho",
                                  "ticket_confirm": True, "ticket_key": "rasa:old", "pending_question": "x"})
    events = run(ActionStartTicket().run(dispatcher, tracker, domain))
    got = kinds(events)
    assert got[:4] == [("slot", "ticket_subject", None), ("slot", "ticket_description", None),
                       ("slot", "ticket_confirm", None), ("slot", "ticket_key", None)]
    key = got[4]
    assert key[:2] == ("slot", "ticket_key") and key[2].startswith(f"rasa:{SENDER}:") and key[2] != "rasa:old"
    # the email the status link will go to, masked, fresh from the webapp (never an old slot)
    assert got[5:] == [("slot", "ticket_email", "m***a@exemplo.com.br"), ("slot", "pending_question", None)]
    assert dispatcher.messages == []


def test_each_new_ticket_gets_its_own_key(webapp, make_tracker, dispatcher, domain):
    webapp.add_customer()
    keys = {slot_sets(run(ActionStartTicket().run(dispatcher, make_tracker("abrir chamado", "open_ticket"),
                                                   domain)))["ticket_key"] for _ in range(3)}
    assert len(keys) == 3


def test_no_email_is_shown_for_an_unverified_or_unknown_customer(webapp, make_tracker, dispatcher, domain):
    webapp.add_customer(verified=False)
    assert slot_sets(run(ActionStartTicket().run(dispatcher, make_tracker("abrir", "open_ticket"),
                                                 domain)))["ticket_email"] is None
    webapp.reset()
    assert slot_sets(run(ActionStartTicket().run(dispatcher, make_tracker("abrir", "open_ticket"),
                                                 domain)))["ticket_email"] is None


@pytest.mark.parametrize("email, masked", [("maria.silva@exemplo.com.br", "m***a@exemplo.com.br"),
                                           ("zé@x.io", "z***@x.io"), ("ab@x.io", "a***@x.io"),
                                           ("", None), (None, None), ("sem-arroba", None)])
def test_mask_email(email, masked):
    assert mask_email(email) == masked


def test_the_summary_names_the_email_of_the_link(make_tracker, dispatcher, domain):
    run(ActionAskTicketConfirm().run(dispatcher, make_tracker(slots={"ticket_email": "m***a@exemplo.com.br"}),
                                     domain))
    run(ActionAskTicketConfirm().run(dispatcher, make_tracker(), domain))
    assert responses(dispatcher) == ["utter_ticket_summary_with_email", "utter_ticket_summary"]
    assert dispatcher.messages[0]["ticket_email"] == "m***a@exemplo.com.br"
