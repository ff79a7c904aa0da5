"""actions/registration.py: registration form, email code, continuing afterwards."""
from __future__ import annotations

import pytest
from conftest import (
    SENDER,
    SERVICE_TOKEN,
    action_event,
    bot_event,
    kinds,
    responses,
    run,
    slot_event,
)

from actions.registration import (
    ActionRegisterCustomer,
    ActionStartRegistration,
    ActionVerificationDone,
    ValidateRegistrationForm,
    ValidateVerificationForm,
)

NAME_AND_EMAIL = {"customer_name": "Maria Silva", "customer_email": "maria.silva@exemplo.com.br"}


# ---------------------------------------------------------------- action_start_registration
@pytest.mark.parametrize("intent", ["open_ticket", "check_status"])
def test_start_registration_remembers_what_the_customer_wanted(make_tracker, dispatcher, domain, intent):
    tracker = make_tracker("quero abrir um chamado", intent,
                           slots={"customer_name": "Maria", "customer_email": "old@exemplo.com",
                                  "verification_code": "123456"})
    events = run(ActionStartRegistration().run(dispatcher, tracker, domain))
    assert responses(dispatcher) == ["utter_need_registration"]
    assert kinds(events) == [("slot", "pending_flow", intent), ("slot", "customer_name", None),
                             ("slot", "customer_email", None), ("slot", "verification_code", None),
                             ("slot", "format_failures", 0)]


@pytest.mark.parametrize("intent", ["greet", "register"])
def test_start_registration_without_a_pending_flow(make_tracker, dispatcher, domain, intent):
    tracker = make_tracker("oi", intent, slots={"pending_flow": "open_ticket"})
    events = run(ActionStartRegistration().run(dispatcher, tracker, domain))
    assert dispatcher.messages == []
    assert kinds(events)[0] == ("slot", "pending_flow", None)


# ---------------------------------------------------------------- validate_registration_form
@pytest.mark.parametrize("value, expected", [
    ("  Maria   da  Silva ", "Maria da Silva"),
    ("Zé", "Zé"),
    ("José D'Ávila-Souza", "José D'Ávila-Souza"),
])
def test_valid_names_are_tidied(make_tracker, dispatcher, domain, value, expected):
    result = run(ValidateRegistrationForm().validate_customer_name(value, dispatcher, make_tracker(value, "inform"),
                                                                   domain))
    assert result == {"customer_name": expected}
    assert dispatcher.messages == []


@pytest.mark.parametrize("value", ["A", "12345", "🙂🙂🙂", "   ", "x" * 121])
def test_invalid_names_are_asked_again(make_tracker, dispatcher, domain, value):
    result = run(ValidateRegistrationForm().validate_customer_name(value, dispatcher, make_tracker(value, "inform"),
                                                                   domain))
    assert result == {"customer_name": None}
    assert responses(dispatcher) == ["utter_invalid_name"]


def test_reset_slots_are_not_judged(make_tracker, dispatcher, domain):
    form = ValidateRegistrationForm()
    tracker = make_tracker()
    assert run(form.validate_customer_name(None, dispatcher, tracker, domain)) == {"customer_name": None}
    assert run(form.validate_customer_email(None, dispatcher, tracker, domain)) == {"customer_email": None}
    assert dispatcher.messages == []


@pytest.mark.parametrize("value, expected", [
    ("maria@exemplo.com.br", "maria@exemplo.com.br"),
    ("meu email é Maria.Silva@Exemplo.COM.br, obrigada", "maria.silva@exemplo.com.br"),
    ("john+support@mail.example.org", "john+support@mail.example.org"),
    # the whole token, never its ASCII tail: the API refuses it and the form asks again
    ("joão@exemplo.com.br", "joão@exemplo.com.br"),
    ("<ana@exemplo.com>.", "ana@exemplo.com"),
])
def test_emails_are_found_in_the_text_and_lowercased(make_tracker, dispatcher, domain, value, expected):
    result = run(ValidateRegistrationForm().validate_customer_email(value, dispatcher,
                                                                    make_tracker(value, "inform"), domain))
    assert result == {"customer_email": expected, "format_failures": 0}
    assert dispatcher.messages == []


@pytest.mark.parametrize("value", ["maria", "maria@", "maria@exemplo", "@exemplo.com", "maria arroba gmail"])
def test_invalid_emails_are_asked_again(make_tracker, dispatcher, domain, value):
    result = run(ValidateRegistrationForm().validate_customer_email(value, dispatcher,
                                                                    make_tracker(value, "inform"), domain))
    assert result == {"customer_email": None, "format_failures": 1}
    assert responses(dispatcher) == ["utter_invalid_email"]


def test_registration_form_validation_through_rasa_sdk(make_tracker, dispatcher, domain):
    """The form posts the slot candidates last; rasa-sdk validates only this form's slots."""
    text = "é MARIA.Silva@Exemplo.com.br"
    tracker = make_tracker(text, "inform", active_loop="registration_form", requested_slot="customer_email",
                           slots={"customer_name": "Maria Silva"},
                           entities=[{"entity": "email", "value": "MARIA.Silva@Exemplo.com.br", "start": 2,
                                      "end": 28, "extractor": "RegexEntityExtractor"}],
                           after=[slot_event("customer_email", "MARIA.Silva@Exemplo.com.br")])
    events = run(ValidateRegistrationForm().run(dispatcher, tracker, domain))
    assert kinds(events) == [("slot", "customer_email", "maria.silva@exemplo.com.br"),
                             ("slot", "format_failures", 0)]
    assert dispatcher.messages == []


def test_registration_form_rejects_a_bad_name_through_rasa_sdk(make_tracker, dispatcher, domain):
    tracker = make_tracker("??", "nlu_fallback", active_loop="registration_form",
                           requested_slot="customer_name",
                           after=[slot_event("customer_name", "??"),
                                  slot_event("ticket_subject", "not this form's slot")])
    events = run(ValidateRegistrationForm().run(dispatcher, tracker, domain))
    assert kinds(events) == [("slot", "customer_name", None)]
    assert responses(dispatcher) == ["utter_invalid_name"]


# ---------------------------------------------------------------- action_register_customer
def test_register_customer_sends_name_email_and_language(webapp, make_tracker, dispatcher, domain):
    tracker = make_tracker("maria.silva@exemplo.com.br", "inform", slots={**NAME_AND_EMAIL, "language": "en"})
    events = run(ActionRegisterCustomer().run(dispatcher, tracker, domain))

    assert responses(dispatcher) == ["utter_code_sent"]
    assert kinds(events) == [("slot", "verification_code", None)]
    [req] = webapp.requests
    assert (req.method, req.path) == ("POST", "/api/v1/customers")
    assert req.body == {"phone": SENDER, "name": "Maria Silva", "email": "maria.silva@exemplo.com.br",
                        "language": "en"}
    assert req.authorization == f"Bearer {SERVICE_TOKEN}"
    assert webapp.customers[SENDER]["language"] == "en"
    assert SENDER in webapp.codes  # the webapp issued a code


def test_an_already_verified_customer_is_not_asked_for_a_code(webapp, make_tracker, dispatcher, domain):
    webapp.add_customer(SENDER, name="Maria Silva", profile_name=None, email="maria.silva@exemplo.com.br",
                        verified=True)
    tracker = make_tracker("maria.silva@exemplo.com.br", "inform", slots=NAME_AND_EMAIL)
    events = run(ActionRegisterCustomer().run(dispatcher, tracker, domain))
    assert responses(dispatcher) == []
    assert kinds(events) == [("slot", "customer_verified", True), ("followup", "action_verification_done")]
    assert SENDER not in webapp.codes


def test_register_customer_defaults_to_portuguese(webapp, make_tracker, dispatcher, domain):
    tracker = make_tracker("maria.silva@exemplo.com.br", "inform", slots={**NAME_AND_EMAIL, "language": None})
    run(ActionRegisterCustomer().run(dispatcher, tracker, domain))
    assert webapp.requests[0].body["language"] == "pt"


def test_email_refused_by_the_webapp_asks_for_it_again(webapp, make_tracker, dispatcher, domain):
    tracker = make_tracker("maria..silva@example.com", "inform",
                           slots={"customer_name": "Maria Silva", "customer_email": "maria..silva@example.com"})
    events = run(ActionRegisterCustomer().run(dispatcher, tracker, domain))
    assert responses(dispatcher) == ["utter_invalid_email"]
    assert kinds(events) == [("slot", "customer_email", None), ("followup", "registration_form")]
    assert webapp.requests[0].body["email"] == "maria..silva@example.com"


def test_other_refusals_are_a_service_error(webapp, make_tracker, dispatcher, domain):
    tracker = make_tracker("x", "inform", slots={"customer_name": "", "customer_email": "maria@exemplo.com"})
    events = run(ActionRegisterCustomer().run(dispatcher, tracker, domain))
    assert webapp.requests[0].body["name"] == ""  # the webapp refused it (field=name)
    assert responses(dispatcher) == ["utter_service_error"]
    assert kinds(events) == [("followup", "action_listen")]


def test_register_customer_when_the_api_is_down(api_down, make_tracker, dispatcher, domain):
    tracker = make_tracker("maria@exemplo.com", "inform", slots=NAME_AND_EMAIL)
    events = run(ActionRegisterCustomer().run(dispatcher, tracker, domain))
    assert responses(dispatcher) == ["utter_service_error"]
    assert kinds(events) == [("followup", "action_listen")]


# ---------------------------------------------------------------- validate_verification_form
def verify(tracker, dispatcher, domain, value):
    return run(ValidateVerificationForm().validate_verification_code(value, dispatcher, tracker, domain))


def code_tracker(make_tracker, text, intent="inform"):
    return make_tracker(text, intent, slots=NAME_AND_EMAIL, active_loop="verification_form",
                        requested_slot="verification_code")


def test_the_right_code_verifies(webapp, make_tracker, dispatcher, domain):
    webapp.add_customer(verified=False)
    webapp.set_code(code="483920")
    text = "o código é 483920"
    result = verify(code_tracker(make_tracker, text), dispatcher, domain, text)
    assert result == {"verification_code": "verified", "customer_verified": True}
    assert dispatcher.messages == []
    [req] = webapp.requests
    assert (req.method, req.path, req.body) == ("POST", f"/api/v1/customers/by-phone/{SENDER}/verify",
                                                {"code": "483920"})
    assert req.authorization == f"Bearer {SERVICE_TOKEN}"
    assert webapp.customers[SENDER]["verified"] is True


def test_wrong_codes_count_down_then_the_code_dies(webapp, make_tracker, dispatcher, domain):
    webapp.add_customer(verified=False)
    webapp.set_code(code="483920")
    for _ in range(5):
        assert verify(code_tracker(make_tracker, "111111"), dispatcher, domain, "111111") == \
            {"verification_code": None}
    assert [(m["response"], m.get("attempts_left")) for m in dispatcher.messages] == [
        ("utter_wrong_code", 4), ("utter_wrong_code", 3), ("utter_wrong_code", 2), ("utter_wrong_code_last_try", None),
        ("utter_code_dead", None)]
    # even the right code is dead now
    assert verify(code_tracker(make_tracker, "483920"), dispatcher, domain, "483920") == \
        {"verification_code": None}
    assert responses(dispatcher)[-1] == "utter_code_dead"
    assert webapp.customers[SENDER]["verified"] is False


def test_no_live_code_is_a_dead_code(webapp, make_tracker, dispatcher, domain):
    webapp.add_customer(verified=False)
    assert verify(code_tracker(make_tracker, "483920"), dispatcher, domain, "483920") == \
        {"verification_code": None}
    assert responses(dispatcher) == ["utter_code_dead"]


@pytest.mark.parametrize("text, intent", [
    ("novo código", "resend_code"),
    ("não recebi o código", "resend_code"),
    ("nao chegou nada", "nlu_fallback"),
    ("send it again please", "inform"),
    ("hmm", "resend_code"),  # the intent alone is enough
])
def test_asking_for_a_new_code_resends_it(webapp, make_tracker, dispatcher, domain, text, intent):
    webapp.add_customer(verified=False)
    result = verify(code_tracker(make_tracker, text, intent), dispatcher, domain, text)
    assert result == {"verification_code": None, "format_failures": 0}
    assert responses(dispatcher) == ["utter_code_resent"]
    [req] = webapp.requests
    assert (req.method, req.path, req.body) == (
        "POST", f"/api/v1/customers/by-phone/{SENDER}/verification", None)


@pytest.mark.parametrize("text", ["12345", "1234567", "ok", "👍"])
def test_anything_else_is_asked_again_silently(webapp, make_tracker, dispatcher, domain, text):
    result = verify(code_tracker(make_tracker, text), dispatcher, domain, text)
    assert result == {"verification_code": None, "format_failures": 1}
    assert dispatcher.messages == []  # the form asks for the code again
    assert webapp.requests == []


def test_verification_when_the_api_is_down(api_down, make_tracker, dispatcher, domain):
    assert verify(code_tracker(make_tracker, "483920"), dispatcher, domain, "483920") == \
        {"verification_code": None}
    assert verify(code_tracker(make_tracker, "novo código", "resend_code"), dispatcher, domain,
                  "novo código") == {"verification_code": None}
    assert responses(dispatcher) == ["utter_service_error", "utter_service_error"]


def test_verification_of_an_unknown_customer_is_a_service_error(webapp, make_tracker, dispatcher, domain):
    assert verify(code_tracker(make_tracker, "483920"), dispatcher, domain, "483920") == \
        {"verification_code": None}
    assert responses(dispatcher) == ["utter_service_error"]
    assert webapp.requests[0].path.endswith("/verify")


def test_verification_form_through_rasa_sdk_sets_customer_verified(webapp, make_tracker, dispatcher, domain):
    webapp.add_customer(verified=False)
    webapp.set_code(code="483920")
    tracker = make_tracker("483920", "inform", slots=NAME_AND_EMAIL, active_loop="verification_form",
                           requested_slot="verification_code",
                           entities=[{"entity": "ticket_number", "value": "483920", "start": 0, "end": 6,
                                      "extractor": "RegexEntityExtractor"}],
                           history=[action_event("action_register_customer"),
                                    bot_event("Enviei um código de 6 dígitos para maria.silva@exemplo.com.br."),
                                    action_event("verification_form"),
                                    {"event": "active_loop", "timestamp": 1714657502.0,
                                     "name": "verification_form"},
                                    slot_event("requested_slot", "verification_code"),
                                    action_event("action_listen")],
                           after=[slot_event("verification_code", "483920")])
    events = run(ValidateVerificationForm().run(dispatcher, tracker, domain))
    assert kinds(events) == [("slot", "verification_code", "verified"), ("slot", "customer_verified", True)]
    assert dispatcher.messages == []


def test_verification_form_through_rasa_sdk_wrong_code(webapp, make_tracker, dispatcher, domain):
    webapp.add_customer(verified=False)
    webapp.set_code(code="483920", attempts=2)
    tracker = make_tracker("483921", "inform", active_loop="verification_form",
                           requested_slot="verification_code", after=[slot_event("verification_code", "483921")])
    events = run(ValidateVerificationForm().run(dispatcher, tracker, domain))
    assert kinds(events) == [("slot", "verification_code", None)]
    assert dispatcher.messages[0]["response"] == "utter_wrong_code"
    assert dispatcher.messages[0]["attempts_left"] == 2


# ---------------------------------------------------------------- action_verification_done
@pytest.mark.parametrize("flow, followup", [("open_ticket", "ticket_form"),
                                            ("check_status", "action_check_status")])
def test_verification_done_continues_the_pending_flow(make_tracker, dispatcher, domain, flow, followup):
    tracker = make_tracker("483920", "inform", slots={**NAME_AND_EMAIL, "pending_flow": flow,
                                                      "verification_code": "verified",
                                                      "customer_verified": True})
    events = run(ActionVerificationDone().run(dispatcher, tracker, domain))
    assert responses(dispatcher) == ["utter_verified"]
    resets = [("slot", s, None) for s in ("ticket_subject", "ticket_description", "ticket_confirm", "ticket_key")]
    got = kinds(events)
    if flow == "open_ticket":
        # a fresh idempotency key for the ticket, and the email its link goes to, masked
        key, email = got[-3], got[-2]
        assert key[:2] == ("slot", "ticket_key") and key[2].startswith(f"rasa:{SENDER}:")
        assert email == ("slot", "ticket_email", "m***a@exemplo.com.br")
        got = got[:-3] + got[-1:]
    assert got == [("slot", "customer_verified", True), ("slot", "verification_code", None),
                   ("slot", "pending_flow", None),
                   *(resets if flow == "open_ticket" else []), ("followup", followup)]


def test_verification_done_without_a_pending_flow_offers_help(make_tracker, dispatcher, domain):
    tracker = make_tracker("483920", "inform", slots={**NAME_AND_EMAIL, "verification_code": "verified"})
    events = run(ActionVerificationDone().run(dispatcher, tracker, domain))
    assert responses(dispatcher) == ["utter_verified", "utter_how_can_help"]
    assert not any(e["event"] == "followup" for e in events)
    assert ("slot", "customer_verified", True) in kinds(events)


# ---------------------------------------------------------------- answers in the wrong format
def test_third_bad_email_in_a_row_explains_the_format_and_offers_a_way_out(make_tracker, dispatcher, domain):
    """"não sei", "123", "😅": the third failure explains the format and offers
    a person or an exit instead of the same question again."""
    form = ValidateRegistrationForm()
    failures = 0
    said = []
    for text in ("não sei", "123", "😅"):
        tracker = make_tracker(text, "inform", slots={"format_failures": failures})
        result = run(form.validate_customer_email(text, dispatcher, tracker, domain))
        assert result["customer_email"] is None
        failures = result["format_failures"]
        said.append(responses(dispatcher)[-1])
    assert failures == 3
    assert said == ["utter_invalid_email", "utter_invalid_email", "utter_format_help_email"]


def test_a_good_email_after_failures_resets_the_count(make_tracker, dispatcher, domain):
    tracker = make_tracker("maria@exemplo.com", "inform", slots={"format_failures": 2})
    result = run(ValidateRegistrationForm().validate_customer_email("maria@exemplo.com", dispatcher, tracker,
                                                                     domain))
    assert result == {"customer_email": "maria@exemplo.com", "format_failures": 0}


def test_third_answer_without_a_code_explains_the_code(webapp, make_tracker, dispatcher, domain):
    webapp.add_customer(verified=False)
    tracker = code_tracker(make_tracker, "sei lá", "nlu_fallback")
    first = verify(tracker, dispatcher, domain, "sei lá")
    assert first == {"verification_code": None, "format_failures": 1} and dispatcher.messages == []
    tracker = make_tracker("😅", "chitchat", slots={**NAME_AND_EMAIL, "format_failures": 2},
                           active_loop="verification_form", requested_slot="verification_code")
    third = verify(tracker, dispatcher, domain, "😅")
    assert third == {"verification_code": None, "format_failures": 3}
    assert responses(dispatcher) == ["utter_format_help_code"]
    assert webapp.requests == []  # nothing was checked against the API
