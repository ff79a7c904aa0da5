"""Cases from real WhatsApp traffic (issue 6) that the first version already handles."""
import threading

import pytest
import requests

from bot.twilio_whatsapp import sign
from webapp.extensions import db
from webapp.models import Conversation, Customer, Message, Ticket
from webapp.services import customers, tickets

from ..conftest import AUTH_TOKEN, inbound_params, signed_post


@pytest.mark.parametrize("public", [
    "https://desk.example.com",
    "https://desk.example.com:443",
])
def test_signature_behind_a_tls_proxy(app, client, ctx, public):
    """Twilio signed the public https URL; the request reaches us as plain HTTP."""
    app.config["PUBLIC_BASE_URL"] = public
    try:
        params = inbound_params("l'été & 100% 😀 ação")
        signed_url = "https://desk.example.com/webhooks/twilio/whatsapp"
        response = client.post("/webhooks/twilio/whatsapp", data=params, base_url="http://10.0.0.7:8000",
                               headers={"X-Twilio-Signature": sign(AUTH_TOKEN, signed_url, params)})
        assert response.status_code == 200
        tampered = {**params, "Body": params["Body"] + "!"}
        response = client.post("/webhooks/twilio/whatsapp", data=tampered, base_url="http://10.0.0.7:8000",
                               headers={"X-Twilio-Signature": sign(AUTH_TOKEN, signed_url, params)})
        assert response.status_code == 403
    finally:
        app.config["PUBLIC_BASE_URL"] = "https://desk.example.com"
    assert db.session.scalar(db.select(db.func.count()).select_from(Message)) == 1


def test_signature_with_query_parameters_in_the_configured_url(client, ctx):
    params = inbound_params("oi")
    url = "https://desk.example.com/webhooks/twilio/whatsapp?tenant=loja1"
    response = client.post("/webhooks/twilio/whatsapp?tenant=loja1", data=params,
                           headers={"X-Twilio-Signature": sign(AUTH_TOKEN, url, params)})
    assert response.status_code == 200


def test_two_first_messages_at_once_make_one_customer(live_server, ctx):
    """A brand-new customer's image and text arrive together: one customer, one conversation."""
    url = f"{live_server}/webhooks/twilio/whatsapp"
    bodies = [inbound_params("", sid="SM" + "1" * 32, NumMedia="1", MediaUrl0="https://x/1.jpg",
                             MediaContentType0="image/jpeg"),
              inbound_params("essa é a foto do defeito", sid="SM" + "2" * 32)]
    results = []

    def post(params):
        signature = sign(AUTH_TOKEN, "https://desk.example.com/webhooks/twilio/whatsapp", params)
        results.append(requests.post(url, data=params, headers={"X-Twilio-Signature": signature}, timeout=10))

    threads = [threading.Thread(target=post, args=(p,)) for p in bodies]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [r.status_code for r in results] == [200, 200]
    assert db.session.scalar(db.select(db.func.count()).select_from(Customer)) == 1
    assert db.session.scalar(db.select(db.func.count()).select_from(Conversation)) == 1
    assert db.session.scalar(db.select(db.func.count()).select_from(Message)) == 2


@pytest.mark.parametrize("spelling", ["(11) 98888-7777", "11988887777", "+55 11 98888-7777", "5511988887777",
                                      "whatsapp:+5511988887777", "+55 11 8888-7777"])
def test_every_spelling_of_the_phone_is_the_same_customer(client, ctx, spelling):
    signed_post(client, "/webhooks/twilio/whatsapp", inbound_params("oi"))
    customer = customers.get_by_phone(spelling)
    ticket, _ = tickets.create(customer, "Assunto", "Descrição")
    assert db.session.scalar(db.select(db.func.count()).select_from(Customer)) == 1
    assert ticket.customer.phone == "+5511988887777"


@pytest.mark.parametrize("name", [None, "", "🌻 Dona Maria 🌻", "Zé", "<b>" + "x" * 293 + "</b>"])
def test_any_profile_name_is_stored_as_given(client, ctx, name):
    params = inbound_params("oi")
    if name is None:
        del params["ProfileName"]
    else:
        params["ProfileName"] = name
    assert signed_post(client, "/webhooks/twilio/whatsapp", params).status_code == 200
    customer = db.session.scalar(db.select(Customer))
    assert customer.profile_name == (name or None)
    assert customer.display_name  # falls back to the phone when there is no usable name


def test_outbound_always_uses_the_whatsapp_prefix(ctx, live_server):
    from webapp.models import SimulatedMessage
    from webapp.services import outbox
    conversation = customers.get_or_create_for_whatsapp("(11) 98888-7777")
    outbox.queue_whatsapp(conversation, "olá", author="bot")
    db.session.commit()
    outbox.dispatch_due()
    sent = db.session.scalar(db.select(SimulatedMessage))
    assert sent.to == "whatsapp:+5511988887777" and sent.from_.startswith("whatsapp:+")
    assert db.session.scalar(db.select(Ticket)) is None
