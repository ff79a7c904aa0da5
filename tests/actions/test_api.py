"""actions/api.py: the one HTTP client of the webapp API, against the fake server."""
from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time

import pytest
from conftest import CLOSED_PORT_URL, ROOT, SENDER, SERVICE_TOKEN, run

from actions import api

BEARER = f"Bearer {SERVICE_TOKEN}"


# ---------------------------------------------------------------- configuration
def test_client_is_configured_from_the_environment_on_first_use(webapp, monkeypatch):
    monkeypatch.setenv("WEBAPP_API_URL", webapp.base_url + "/")  # a trailing slash is tolerated
    api.reset_client()
    client = api.client()
    assert client is api.client()  # one client, reused
    assert client.base_url == webapp.base_url
    assert client.session.headers["Authorization"] == BEARER
    assert client.timeout == 3.0

    monkeypatch.setenv("WEBAPP_API_URL", CLOSED_PORT_URL)
    assert api.client() is client  # still the old one until reset
    api.reset_client()
    assert api.client().base_url == CLOSED_PORT_URL


def test_importing_the_actions_does_not_create_a_client(webapp):
    """rasa-sdk imports every action module at start, before the env may be complete."""
    code = ("import actions.session, actions.registration, actions.tickets, actions.handoff\n"
            "from actions import api\n"
            "assert api._client is None, 'client created at import'\n")
    env = {k: v for k, v in os.environ.items() if k != "WEBAPP_API_URL"}
    done = subprocess.run([sys.executable, "-c", code], check=False, cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert webapp.requests == []


# ---------------------------------------------------------------- customers
def test_customer_found_sends_the_service_token(webapp):
    webapp.add_customer(name="Maria Silva", verified=True)
    customer = api.client().customer(SENDER)
    assert customer["phone"] == "+551188887777"
    assert customer["verified"] is True and customer["name"] == "Maria Silva"
    [req] = webapp.requests
    assert (req.method, req.path, req.body) == ("GET", f"/api/v1/customers/by-phone/{SENDER}", None)
    assert req.authorization == BEARER


def test_unknown_customer_is_none_not_an_error(webapp):
    assert api.client().customer(SENDER) is None
    assert [r.path for r in webapp.requests] == [f"/api/v1/customers/by-phone/{SENDER}"]


def test_phone_is_quoted_in_the_path(webapp):
    webapp.add_customer("+5511988887777")  # the ninth digit is dropped by the key, as in the webapp
    assert api.client().customer("+5511988887777")["phone"] == "+551188887777"
    assert webapp.requests[0].path == "/api/v1/customers/by-phone/%2B5511988887777"


def test_register_posts_the_form_values(webapp):
    result = api.client().register(SENDER, "Maria Silva", "maria@exemplo.com.br", "en")
    assert result["verification"] == "sent"
    assert result["customer"]["email"] == "maria@exemplo.com.br"
    [req] = webapp.requests
    assert (req.method, req.path) == ("POST", "/api/v1/customers")
    assert req.body == {"phone": SENDER, "name": "Maria Silva", "email": "maria@exemplo.com.br",
                        "language": "en"}
    assert req.authorization == BEARER


def test_a_422_is_refused_with_its_code_and_field(webapp):
    with pytest.raises(api.ApiRefused) as caught:
        api.client().register(SENDER, "Maria", "maria..silva@example.com", "pt")
    assert caught.value.status == 422
    assert caught.value.code == "invalid"
    assert caught.value.field == "email"
    assert caught.value.payload["error"]["message"] == "invalid email address"


def test_refused_without_field_or_error_object(webapp):
    webapp.override("GET", "/tickets", 409, {"error": {"code": "conflict", "message": "nope"}})
    with pytest.raises(api.ApiRefused) as caught:
        api.client().tickets(SENDER)
    assert (caught.value.code, caught.value.field) == ("conflict", "")
    webapp.override("GET", "/tickets", 400, b"<html>bad request</html>")
    with pytest.raises(api.ApiRefused) as caught:
        api.client().tickets(SENDER)
    assert (caught.value.status, caught.value.payload, caught.value.code) == (400, {}, "")


def test_resend_verify_and_language(webapp):
    webapp.add_customer(verified=False)
    webapp.set_code(code="123456")
    assert api.client().resend_code(SENDER) == {"verification": "sent"}
    assert api.client().verify(SENDER, "111222")["result"] == "verified"
    assert api.client().set_language(SENDER, "en")["customer"]["language"] == "en"
    assert [(r.method, r.path, r.body) for r in webapp.requests] == [
        ("POST", f"/api/v1/customers/by-phone/{SENDER}/verification", None),
        ("POST", f"/api/v1/customers/by-phone/{SENDER}/verify", {"code": "111222"}),
        ("PATCH", f"/api/v1/customers/by-phone/{SENDER}", {"language": "en"}),
    ]


@pytest.mark.parametrize("status", [401, 403, 429, 500, 503])
def test_auth_rate_limit_and_server_errors_are_api_errors(webapp, status):
    webapp.override("GET", f"/customers/by-phone/{SENDER}", status,
                    {"error": {"code": "x", "message": "y"}})
    with pytest.raises(api.ApiError, match=f"HTTP {status}"):
        api.client().customer(SENDER)


def test_a_wrong_token_is_an_api_error(webapp, monkeypatch):
    monkeypatch.setenv("WEBAPP_SERVICE_TOKEN", "not-the-token")
    api.reset_client()
    with pytest.raises(api.ApiError, match="HTTP 401"):
        api.client().customer(SENDER)
    assert webapp.requests[0].authorization == "Bearer not-the-token"


def test_closed_port_is_an_api_error(api_down):
    with pytest.raises(api.ApiError, match="GET /customers/by-phone/551188887777: ConnectionError"):
        api.client().customer(SENDER)


def test_empty_success_body_is_an_empty_dict(webapp):
    webapp.override("POST", f"/customers/by-phone/{SENDER}/verification", 204, None)
    assert api.client().resend_code(SENDER) == {}


# ---------------------------------------------------------------- tickets
def test_create_ticket_sends_the_idempotency_key_and_returns_the_ticket(webapp):
    webapp.add_customer()
    ticket = api.client().create_ticket(SENDER, "Entrega atrasada", "O pedido 4411 não chegou",
                                        "rasa:551188887777:abc")
    assert ticket["number"] == 1 and ticket["status_label"] == "Novo"
    [req] = webapp.requests
    assert (req.method, req.path) == ("POST", "/api/v1/tickets")
    assert req.body == {"phone": SENDER, "subject": "Entrega atrasada",
                        "description": "O pedido 4411 não chegou",
                        "idempotency_key": "rasa:551188887777:abc"}


def test_tickets_are_listed_by_phone(webapp):
    webapp.add_customer()
    webapp.add_ticket(subject="Entrega atrasada")
    webapp.add_ticket(subject="Cobrança em dobro", status="resolved")
    tickets = api.client().tickets(SENDER)
    assert [t["subject"] for t in tickets] == ["Entrega atrasada"]  # active only by default
    [req] = webapp.requests
    assert (req.method, req.path, req.query) == ("GET", "/api/v1/tickets", {"phone": [SENDER]})


def test_ticket_of_someone_else_is_none(webapp):
    webapp.add_customer()
    webapp.add_customer("5521977776666", name="João")
    theirs = webapp.add_ticket("5521977776666", subject="Outro")
    assert api.client().ticket(SENDER, theirs["number"]) is None
    req = webapp.requests[0]
    assert (req.path, req.query) == (f"/api/v1/tickets/{theirs['number']}", {"phone": [SENDER]})


def test_ticket_other_refusals_are_raised(webapp):
    webapp.override("GET", "/tickets/7", 422, {"error": {"code": "invalid", "message": "bad phone",
                                                         "field": "phone"}})
    with pytest.raises(api.ApiRefused):
        api.client().ticket(SENDER, 7)


def test_handoff_posts_reason_and_context(webapp):
    webapp.add_customer()
    context = {"intent": "request_human", "slots": {}, "kb_articles": [], "last_messages": ["atendente"]}
    result = api.client().handoff(SENDER, "customer_request", context)
    assert result["ticket"]["number"] == 1
    assert "status_label" not in result["ticket"]  # the handoff answers with the plain ticket
    assert result["business_hours"] == {"open": True, "opens_at": None}
    [req] = webapp.requests
    assert (req.method, req.path) == ("POST", f"/api/v1/conversations/by-phone/{SENDER}/handoff")
    assert req.body == {"reason": "customer_request", "context": context}


def test_kb_search_sends_the_question_and_language(webapp):
    webapp.add_article("Prazo de entrega", "Entregamos em até 5 dias úteis nas capitais.")
    result = api.client().kb_search("qual o prazo de entrega?", "pt")
    assert result["confident"] is True and result["results"][0]["title"] == "Prazo de entrega"
    [req] = webapp.requests
    assert (req.method, req.path) == ("GET", "/api/v1/kb/search")
    assert req.query == {"q": ["qual o prazo de entrega?"], "language": ["pt"], "limit": ["3"]}


def test_kb_search_truncates_very_long_questions(webapp):
    api.client().kb_search("entrega " * 200, "pt")
    [req] = webapp.requests
    assert len(req.query["q"][0]) == 500


# ---------------------------------------------------------------- call()
def test_call_runs_the_method_by_name(webapp):
    webapp.add_customer(name="Maria Silva")
    assert run(api.call("customer", SENDER))["name"] == "Maria Silva"


def test_call_does_not_block_the_event_loop(webapp):
    webapp.add_customer()
    webapp.delay = 0.4

    async def three_at_once():
        return await asyncio.gather(*(api.call("customer", SENDER) for _ in range(3)))

    started = time.monotonic()
    results = run(three_at_once())
    elapsed = time.monotonic() - started
    assert [r["phone"] for r in results] == ["+551188887777"] * 3
    assert elapsed < 1.0, f"calls ran one after another ({elapsed:.2f}s)"


def test_call_propagates_errors(api_down):
    with pytest.raises(api.ApiError):
        run(api.call("tickets", SENDER))
