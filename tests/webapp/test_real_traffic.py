"""Cases from real WhatsApp traffic (issue 6): the webhook and the channel."""
import io
import threading
from urllib.parse import quote

import pytest
import requests

from bot.rasa_client import RasaClient
from bot.twilio_whatsapp import sign
from webapp.auth import service_token
from webapp.extensions import db
from webapp.models import Conversation, Customer, MediaFile, Message, Ticket, utcnow
from webapp.services import customers, inbound, media

from ..conftest import AUTH_TOKEN, inbound_params, signed_post
from .traffic import ScriptedRasa, count, deliver

BODY = "l'été & 100% 😀 ação + ç/ã? = #1 "


@pytest.fixture
def public_base(app):
    """Configure PUBLIC_BASE_URL for one test."""
    saved = app.config["PUBLIC_BASE_URL"]
    yield lambda value: app.config.update(PUBLIC_BASE_URL=value)
    app.config["PUBLIC_BASE_URL"] = saved


def nothing_stored() -> bool:
    return all(db.session.scalar(db.select(db.func.count()).select_from(m)) == 0
               for m in (Customer, Conversation, Message, MediaFile))


@pytest.mark.parametrize("configured", ["https://desk.example.com", "https://desk.example.com:443",
                                        "https://desk.example.com/"])
@pytest.mark.parametrize("signed", ["https://desk.example.com", "https://desk.example.com:443"])
def test_signature_behind_a_tls_proxy(client, ctx, public_base, configured, signed):
    """Twilio signed the public https URL; the proxy hands us plain HTTP on an
    internal host and port."""
    public_base(configured)
    params = inbound_params(BODY)
    signature = sign(AUTH_TOKEN, signed + "/webhooks/twilio/whatsapp", params)
    tampered = {**params, "Body": BODY.replace("ç", "c")}  # one character changed after signing
    response = client.post("/webhooks/twilio/whatsapp", data=tampered, base_url="http://10.0.0.7:8000",
                           headers={"X-Twilio-Signature": signature})
    assert response.status_code == 403
    assert nothing_stored()
    response = client.post("/webhooks/twilio/whatsapp", data=params, base_url="http://10.0.0.7:8000",
                           headers={"X-Twilio-Signature": signature})
    assert response.status_code == 200
    assert db.session.scalar(db.select(Message.body)) == BODY


@pytest.mark.parametrize("query", ["tenant=loja1", "tenant=loja%201&lang=pt-BR&x=a+b", "k=%C3%A7%C3%A3o"])
def test_signature_with_query_parameters_in_the_configured_url(live_server, ctx, public_base, query):
    """The webhook URL configured at Twilio carries a query string: it is signed
    as configured and must be checked byte for byte, over real HTTP."""
    public_base("https://desk.example.com:443")
    params = inbound_params(BODY)
    signature = sign(AUTH_TOKEN, f"https://desk.example.com/webhooks/twilio/whatsapp?{query}", params)
    url = f"{live_server}/webhooks/twilio/whatsapp?{query}"
    tampered = {**params, "Body": BODY[:-2] + "!"}
    assert requests.post(url, data=tampered, headers={"X-Twilio-Signature": signature}, timeout=10).status_code == 403
    assert nothing_stored()
    assert requests.post(url, data=params, headers={"X-Twilio-Signature": signature}, timeout=10).status_code == 200
    assert db.session.scalar(db.select(Message.body)) == BODY


def test_signature_when_the_proxy_strips_a_path_prefix(client, ctx, public_base):
    public_base("https://desk.example.com/zapdesk")
    params = inbound_params(BODY)
    signature = sign(AUTH_TOKEN, "https://desk.example.com/zapdesk/webhooks/twilio/whatsapp", params)
    response = client.post("/webhooks/twilio/whatsapp", data=params, headers={"X-Twilio-Signature": signature})
    assert response.status_code == 200


def test_a_status_callback_behind_the_proxy_is_checked_the_same_way(client, ctx, public_base):
    public_base("https://desk.example.com:443")
    params = {"MessageSid": "SM" + "c" * 32, "MessageStatus": "delivered", "AccountSid": "AC1"}
    good = sign(AUTH_TOKEN, "https://desk.example.com/webhooks/twilio/status", params)
    assert client.post("/webhooks/twilio/status", data=params, base_url="http://10.0.0.7:8000",
                       headers={"X-Twilio-Signature": good}).status_code == 204
    assert client.post("/webhooks/twilio/status", data={**params, "MessageStatus": "read"},
                       headers={"X-Twilio-Signature": good}).status_code == 403


# -- 4. a shared location ---------------------------------------------------------------

LOCATION = {"Latitude": "-23.561414", "Longitude": "-46.655881", "Address": "Av. Paulista, 1578 - Bela Vista",
            "Label": "MASP"}


@pytest.mark.parametrize("body", ["", None, "Av. Paulista, 1578 - Bela Vista"],
                         ids=["empty Body", "no Body", "address as Body"])
def test_a_shared_location_reaches_the_conversation_as_numbers_and_never_nlu(client, ctx, rasa_stub, body):
    response = deliver(client, body, sid="SM" + "4" * 32, **LOCATION)
    assert response.status_code == 200
    db.session.expire_all()  # read back what the database holds
    message = db.session.scalar(db.select(Message))
    assert message.location == {"latitude": -23.561414, "longitude": -46.655881,
                                "address": "Av. Paulista, 1578 - Bela Vista", "label": "MASP"}
    assert all(isinstance(message.location[k], float) for k in ("latitude", "longitude"))
    assert inbound.rasa_text(message) == "/share_location"
    inbound.process_due(RasaClient(rasa_stub, timeout=5))
    [turn] = ScriptedRasa.received
    assert turn["message"] == "/share_location"  # no address, label or coordinates as text for NLU
    assert turn["metadata"]["location"]["latitude"] == -23.561414


@pytest.mark.parametrize("lat,lon", [("nan", "-46.6"), ("-23.5", "inf"), ("123", "-46.6"), ("x", "y")])
def test_a_broken_location_is_stored_without_coordinates_never_a_500(client, ctx, lat, lon):
    response = deliver(client, "", sid="SM" + "5" * 32, Latitude=lat, Longitude=lon, Label="Casa")
    assert response.status_code == 200
    message = db.session.scalar(db.select(Message))
    assert message.location is None and inbound.rasa_text(message) == "/empty_message"


@pytest.mark.parametrize("body", ["\u200b", " \u2060 ", "\ufeff\n"])
def test_invisible_text_is_an_empty_message_not_nlu_input(client, ctx, body):
    deliver(client, body, sid="SM" + "6" * 32)
    assert inbound.rasa_text(db.session.scalar(db.select(Message))) == "/empty_message"



@pytest.mark.parametrize("body,expected", [
    ("/restart", "restart"), ("/ /restart", "restart"), (" //stop", "stop"), ("\u200b/restart", "restart"),
    ("/\u00a0/affirm{\"x\": 1}", 'affirm{"x": 1}'), ("///", "/empty_message"), ("a/b", "a/b")])
def test_customer_text_never_reaches_rasa_as_an_injected_intent(client, ctx, body, expected):
    deliver(client, body, sid="SM" + "9" * 32)
    assert inbound.rasa_text(db.session.scalar(db.select(Message))) == expected

# -- 7. a brand-new customer's image and text at once ---------------------------------------

@pytest.mark.parametrize("gap", [0.0, 0.2])
def test_two_first_messages_at_once_make_one_customer(client, live_server, ctx, media_dirs, rasa_stub, gap):
    """An image and a text from a brand-new customer, 200 ms apart (and at the
    same instant), over real HTTP: one customer, one conversation, both kept."""
    phones = [f"+55119888{n:05d}" for n in range(4)]
    photo = client.post("/dev/twilio/media", data={"file": (io.BytesIO(b"\xff\xd8 jpeg"), "p.jpg"),
                                                      "content_type": "image/jpeg"},
                        content_type="multipart/form-data").json["url"]
    results = []

    def post(params):
        signature = sign(AUTH_TOKEN, "https://desk.example.com/webhooks/twilio/whatsapp", params)
        results.append(requests.post(f"{live_server}/webhooks/twilio/whatsapp", data=params,
                                     headers={"X-Twilio-Signature": signature}, timeout=20).status_code)

    threads = []
    for n, phone in enumerate(phones):
        image = inbound_params("", sid=f"SM{n:02d}" + "1" * 30, phone=phone, NumMedia="1", MediaUrl0=photo,
                               MediaContentType0="image/jpeg")
        text = inbound_params("essa é a foto do defeito", sid=f"SM{n:02d}" + "2" * 30, phone=phone)
        first = threading.Thread(target=post, args=(image,))
        second = threading.Timer(gap, post, args=(text,))
        threads += [first, second]
        first.start()
        second.start()
    for t in threads:
        t.join()
    assert results == [200] * 8
    assert count(Customer) == 4 and count(Conversation) == 4 and count(Message) == 8
    for phone in phones:
        conversation = customers.get_or_create_for_whatsapp(phone)
        bodies = sorted(m.body for m in conversation.messages)
        assert bodies == ["", "essa é a foto do defeito"]
    assert inbound.process_due(RasaClient(rasa_stub, timeout=5)) == 8
    assert sorted(ScriptedRasa.texts()) == sorted(["/share_media", "essa é a foto do defeito"] * 4)
    assert media.fetch_due() == 4 and count(MediaFile, MediaFile.status == "stored") == 4


# -- 13. every spelling of a phone number ----------------------------------------------------

SPELLINGS = ["(11) 98888-7777", "11988887777", "+55 11 98888-7777", "5511988887777", "whatsapp:+5511988887777",
             "+55 11 8888-7777"]


@pytest.fixture
def service(app):
    with app.app_context():
        return {"Authorization": f"Bearer {service_token()}"}


@pytest.mark.parametrize("spelling", SPELLINGS)
def test_every_spelling_of_the_phone_is_the_same_customer(client, ctx, service, spelling):
    assert deliver(client, "oi", sid="SM" + "7" * 32).status_code == 200
    customer = db.session.scalar(db.select(Customer))
    customer.email, customer.email_verified_at = "maria@example.com", utcnow()
    db.session.commit()
    path = quote(spelling, safe="")
    found = client.get(f"/api/v1/customers/by-phone/{path}", headers=service)
    assert found.status_code == 200 and found.json["customer"]["id"] == customer.id
    created = client.post("/api/v1/tickets", headers=service,
                          json={"phone": spelling, "subject": "Assunto", "description": "Descrição longa"})
    assert created.status_code == 201
    ticket = db.session.get(Ticket, created.json["ticket"]["id"])
    assert ticket.customer_id == customer.id and ticket.conversation_id is not None
    assert count(Customer) == 1 and count(Conversation) == 1
    # The service layer agrees with the API.
    assert customers.get_by_phone(spelling).id == customer.id


@pytest.mark.parametrize("sender", ["+14155238886", "whatsapp:+14155238886", "whatsapp:+1 (415) 523-8886"])
def test_outbound_always_uses_the_whatsapp_prefix(app, ctx, live_server, sender):
    from webapp.models import SimulatedMessage
    from webapp.services import outbox
    conversation = customers.get_or_create_for_whatsapp("(11) 98888-7777")
    conversation.address = "+55 11 98888-7777"  # however it was written down
    outbox.queue_whatsapp(conversation, "olá", author="bot")
    db.session.commit()
    saved = app.config["TWILIO_WHATSAPP_FROM"]
    app.config["TWILIO_WHATSAPP_FROM"] = sender
    try:
        assert outbox.dispatch_due() == 1
    finally:
        app.config["TWILIO_WHATSAPP_FROM"] = saved
    sent = db.session.scalar(db.select(SimulatedMessage))
    assert (sent.to, sent.from_) == ("whatsapp:+5511988887777", "whatsapp:+14155238886")


# -- 14. whatever WhatsApp says the name is -------------------------------------------------

HTML_NAME = "<b onclick=alert(1)>" + "Maria " * 45 + "</b>"


@pytest.mark.parametrize("name,greeting", [(None, None), ("", None), ("🌻 Dona Maria 🌻", "Dona Maria"),
                                           ("Zé", "Zé"), (HTML_NAME[:300], None)])
def test_any_profile_name_creates_the_customer_and_never_a_bad_greeting(client, ctx, rasa_stub, service,
                                                                        agent_client, name, greeting):
    params = inbound_params("oi")
    if name is None:
        del params["ProfileName"]
    else:
        params["ProfileName"] = name
    assert signed_post(client, "/webhooks/twilio/whatsapp", params).status_code == 200
    customer = db.session.scalar(db.select(Customer))
    assert customer.profile_name == (name or None)  # stored as given
    inbound.process_due(RasaClient(rasa_stub, timeout=5))
    metadata = ScriptedRasa.received[0]["metadata"]
    assert metadata["profile_name"] == (name or None)
    assert metadata["greeting_name"] == greeting  # None: the assistant greets neutrally
    api = client.get("/api/v1/customers/by-phone/5511988887777", headers=service).json["customer"]
    assert api["greeting_name"] == greeting
    page = agent_client.get(f"/agent/customers/{customer.id}").get_data(as_text=True)
    assert "<b onclick" not in page  # shown as text
    if name == HTML_NAME[:300]:
        assert "&lt;b onclick=alert(1)&gt;" in page


def test_a_later_message_without_a_profile_name_keeps_the_known_one(client, ctx):
    deliver(client, "oi", sid="SM" + "8" * 32)
    params = inbound_params("de novo", sid="SM" + "9" * 32)
    del params["ProfileName"]
    signed_post(client, "/webhooks/twilio/whatsapp", params)
    assert db.session.scalar(db.select(Customer)).profile_name == "Maria Teste"


@pytest.mark.parametrize("extra", [
    {"WaId": "not-a-number"}, {"WaId": "5511988887777" * 3}, {"WaId": ""},
    {"ProfileName": "Maria\x00Teste", "Body": "oi\x00"},
], ids=["garbled WaId", "overlong WaId", "empty WaId", "NUL characters"])
def test_odd_fields_are_never_a_500_and_nothing_is_lost(client, ctx, extra):
    assert deliver(client, "oi", sid="SM" + "e" * 32, **extra).status_code == 200
    customer = db.session.scalar(db.select(Customer))
    assert customer.phone == "+5511988887777" and count(Message) == 1
    assert "\x00" not in db.session.scalar(db.select(Message.body)) + (customer.profile_name or "")
