"""actions/session.py: session start, the language slot, changing language."""
from __future__ import annotations

import pytest
from conftest import SENDER, SERVICE_TOKEN, kinds, responses, run

from actions.session import ActionChangeLanguage, ActionExtractLanguage, ActionSessionStart


def session_start(tracker, dispatcher, domain):
    return run(ActionSessionStart().run(dispatcher, tracker, domain))


# ---------------------------------------------------------------- action_session_start
def test_session_start_for_a_verified_customer(webapp, make_tracker, dispatcher, domain):
    webapp.add_customer(name="Maria Silva", verified=True, language="en")
    tracker = make_tracker("/session_start", "session_start",
                           slots={"session_started_metadata": {"language": "en", "profile_name": "Maria"},
                                  "customer_verified": False, "customer_name": "Old Name"})

    events = session_start(tracker, dispatcher, domain)

    assert kinds(events) == [
        ("session_started",),
        ("slot", "language", "en"),
        ("slot", "customer_verified", True),
        ("slot", "customer_name", "Maria Silva"),
        ("action", "action_listen"),
    ]
    assert dispatcher.messages == []
    [req] = webapp.requests
    assert (req.method, req.path) == ("GET", f"/api/v1/customers/by-phone/{SENDER}")
    assert req.authorization == f"Bearer {SERVICE_TOKEN}"


def test_session_start_uses_the_whatsapp_profile_name_when_there_is_no_name(
        webapp, make_tracker, dispatcher, domain):
    webapp.add_customer(name=None, profile_name="Zé", verified=False)
    events = session_start(make_tracker(slots={"session_started_metadata": {"language": "pt"}}),
                           dispatcher, domain)
    assert kinds(events) == [("session_started",), ("slot", "language", "pt"),
                             ("slot", "customer_verified", False), ("slot", "customer_name", "Zé"),
                             ("action", "action_listen")]


@pytest.mark.parametrize("profile, greeting", [("🌻 Dona Maria 🌻", "Dona Maria"), ("<b>" + "x" * 300, None),
                                               ("", None)])
def test_session_start_greets_with_the_usable_name_or_none(webapp, make_tracker, dispatcher, domain, profile,
                                                           greeting):
    webapp.add_customer(name=None, profile_name=profile, greeting_name=greeting, verified=False)
    events = session_start(make_tracker(slots={"session_started_metadata": {"language": "pt"}}),
                           dispatcher, domain)
    assert ("slot", "customer_name", greeting) in kinds(events)


def test_session_start_for_an_unknown_customer(webapp, make_tracker, dispatcher, domain):
    events = session_start(make_tracker(slots={"session_started_metadata": {"language": "fr"}}),
                           dispatcher, domain)
    # no language slot for an unsupported language, no name for an unknown phone
    assert kinds(events) == [("session_started",), ("slot", "customer_verified", False),
                             ("action", "action_listen")]
    assert len(webapp.requests) == 1


def test_session_start_without_metadata(webapp, make_tracker, dispatcher, domain):
    webapp.add_customer(name="Maria Silva", verified=True)
    events = session_start(make_tracker(), dispatcher, domain)  # session_started_metadata is None
    assert ("slot", "customer_verified", True) in kinds(events)
    assert not any(e["event"] == "slot" and e["name"] == "language" for e in events)


def test_session_start_when_the_api_is_down_still_starts_the_session(api_down, make_tracker, dispatcher,
                                                                      domain):
    events = session_start(make_tracker(slots={"session_started_metadata": {"language": "en"}}),
                           dispatcher, domain)
    assert kinds(events) == [("session_started",), ("slot", "language", "en"),
                             ("slot", "customer_verified", False), ("action", "action_listen")]
    assert dispatcher.messages == []


def test_session_start_when_the_api_refuses(webapp, make_tracker, dispatcher, domain):
    webapp.override("GET", f"/customers/by-phone/{SENDER}", 422,
                    {"error": {"code": "invalid", "message": "invalid phone number", "field": "phone"}})
    events = session_start(make_tracker(), dispatcher, domain)
    assert kinds(events) == [("session_started",), ("slot", "customer_verified", False),
                             ("action", "action_listen")]


# ---------------------------------------------------------------- action_extract_language
@pytest.mark.parametrize("metadata, slot, expected", [
    ({"language": "en"}, "pt", [("slot", "language", "en")]),
    ({"language": "pt"}, "en", [("slot", "language", "pt")]),
    ({"language": "en"}, "en", []),  # unchanged: no event
    ({"language": "es"}, "pt", []),  # unsupported
    ({}, "pt", []),
])
def test_extract_language_from_the_webapp_metadata(make_tracker, dispatcher, domain, metadata, slot,
                                                    expected):
    tracker = make_tracker("hello", "greet", metadata=metadata, slots={"language": slot})
    events = run(ActionExtractLanguage().run(dispatcher, tracker, domain))
    assert kinds(events) == expected
    assert dispatcher.messages == []


# ---------------------------------------------------------------- action_change_language
@pytest.mark.parametrize("text, current, target", [
    ("quero falar em inglês", "pt", "en"),
    ("can we speak English?", "pt", "en"),
    ("fala português por favor", "en", "pt"),
    ("Portuguese please", "en", "pt"),
    ("mudar idioma", "pt", "en"),  # no language named: switch
    ("change language", "en", "pt"),
])
def test_change_language(webapp, make_tracker, dispatcher, domain, text, current, target):
    webapp.add_customer(language=current)
    tracker = make_tracker(text, "change_language", slots={"language": current})

    events = run(ActionChangeLanguage().run(dispatcher, tracker, domain))

    assert kinds(events) == [("slot", "language", target)]
    assert responses(dispatcher) == [f"utter_language_changed_{target}"]
    [req] = webapp.requests
    assert (req.method, req.path, req.body) == ("PATCH", f"/api/v1/customers/by-phone/{SENDER}",
                                                {"language": target})
    assert req.authorization == f"Bearer {SERVICE_TOKEN}"
    assert webapp.customers[SENDER]["language"] == target


def test_change_language_with_an_empty_slot_switches_from_portuguese(webapp, make_tracker, dispatcher,
                                                                     domain):
    webapp.add_customer()
    tracker = make_tracker("outra língua", "change_language", slots={"language": None})
    events = run(ActionChangeLanguage().run(dispatcher, tracker, domain))
    assert kinds(events) == [("slot", "language", "en")]


def test_change_language_for_an_unknown_customer_still_switches(webapp, make_tracker, dispatcher, domain):
    tracker = make_tracker("in english please", "change_language")
    events = run(ActionChangeLanguage().run(dispatcher, tracker, domain))
    assert kinds(events) == [("slot", "language", "en")]
    assert responses(dispatcher) == ["utter_language_changed_en"]
    assert webapp.requests[0].method == "PATCH"


def test_change_language_when_the_api_is_down(api_down, make_tracker, dispatcher, domain):
    tracker = make_tracker("in english please", "change_language")
    events = run(ActionChangeLanguage().run(dispatcher, tracker, domain))
    assert events == []
    assert responses(dispatcher) == ["utter_service_error"]


def test_change_language_when_the_api_fails(webapp, make_tracker, dispatcher, domain):
    webapp.add_customer()
    webapp.override("PATCH", f"/customers/by-phone/{SENDER}", 500, {"error": {"code": "internal",
                                                                              "message": "boom"}})
    events = run(ActionChangeLanguage().run(dispatcher, tracker=make_tracker("english", "change_language"),
                                            domain=domain))
    assert events == []
    assert responses(dispatcher) == ["utter_service_error"]
