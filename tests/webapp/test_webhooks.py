"""The WhatsApp edge: signatures, storage before anything else, deduplication."""
from webapp.extensions import db
from webapp.models import Customer, Message, Outbox

from ..conftest import PUBLIC, inbound_params, signed_post


def count(model):
    return db.session.scalar(db.select(db.func.count()).select_from(model))


def test_signed_message_is_stored_and_answered_at_once(client, ctx):
    response = signed_post(client, "/webhooks/twilio/whatsapp", inbound_params("oi"))
    assert response.status_code == 200
    assert response.mimetype == "text/xml"
    message = db.session.scalar(db.select(Message))
    assert (message.body, message.status, message.direction) == ("oi", "received", "in")
    customer = db.session.scalar(db.select(Customer))
    assert customer.phone == "+5511988887777"
    assert customer.profile_name == "Maria Teste"
    assert customer.language == "pt"


def test_english_default_outside_brazil(client, ctx):
    signed_post(client, "/webhooks/twilio/whatsapp", inbound_params("hi", phone="+447700900123"))
    assert db.session.scalar(db.select(Customer)).language == "en"


def test_missing_or_wrong_signature_is_403_and_changes_nothing(client, ctx):
    params = inbound_params("oi")
    assert client.post("/webhooks/twilio/whatsapp", data=params).status_code == 403
    response = client.post("/webhooks/twilio/whatsapp", data=params, headers={"X-Twilio-Signature": "AAAA"})
    assert response.status_code == 403
    # Signed, then one character of Body changed after signing.
    from bot.twilio_whatsapp import sign

    from ..conftest import AUTH_TOKEN
    signature = sign(AUTH_TOKEN, PUBLIC + "/webhooks/twilio/whatsapp", params)
    tampered = {**params, "Body": "oj"}
    response = client.post("/webhooks/twilio/whatsapp", data=tampered, headers={"X-Twilio-Signature": signature})
    assert response.status_code == 403
    assert count(Message) == 0 and count(Customer) == 0


def test_signature_of_another_account_token_is_refused(client, ctx):
    response = signed_post(client, "/webhooks/twilio/whatsapp", inbound_params("oi"), token="not-ours")
    assert response.status_code == 403
    assert count(Message) == 0


def test_repeated_delivery_is_200_and_stored_once(client, ctx):
    params = inbound_params("oi", sid="SM" + "b" * 32)
    assert signed_post(client, "/webhooks/twilio/whatsapp", params).status_code == 200
    assert signed_post(client, "/webhooks/twilio/whatsapp", params).status_code == 200
    assert count(Message) == 1


def test_accents_emoji_and_symbols_verify(client, ctx):
    body = "Olá! l'água & 50% 😀 não chegou"
    assert signed_post(client, "/webhooks/twilio/whatsapp", inbound_params(body)).status_code == 200
    assert db.session.scalar(db.select(Message.body)) == body


def test_message_without_body_or_sid(client, ctx):
    params = inbound_params("x")
    del params["Body"]
    params.update(NumMedia="1", MediaUrl0="https://api.twilio.com/x.jpg", MediaContentType0="image/jpeg")
    assert signed_post(client, "/webhooks/twilio/whatsapp", params).status_code == 200
    message = db.session.scalar(db.select(Message))
    assert message.body == "" and message.media == [{"url": "https://api.twilio.com/x.jpg",
                                                     "content_type": "image/jpeg"}]
    bad = inbound_params("x")
    del bad["MessageSid"], bad["SmsMessageSid"]
    assert signed_post(client, "/webhooks/twilio/whatsapp", bad).status_code == 400


def test_status_callback_moves_forward_only(client, ctx):
    from webapp.services import customers, outbox
    conversation = customers.get_or_create_for_whatsapp("whatsapp:+5511988887777")
    outbox.queue_whatsapp(conversation, "olá", author="bot")
    db.session.commit()
    row = db.session.scalar(db.select(Outbox))
    row.status, row.provider_id = "sent", "SM" + "c" * 32
    db.session.commit()

    def callback(status):
        params = {"MessageSid": row.provider_id, "MessageStatus": status, "AccountSid": "AC1"}
        return signed_post(client, "/webhooks/twilio/status", params)

    assert callback("delivered").status_code == 204
    assert callback("sent").status_code == 204  # late and out of order
    db.session.expire_all()
    assert db.session.get(Outbox, row.id).status == "delivered"
    assert db.session.get(Outbox, row.id).message.status == "delivered"
    assert callback("read").status_code == 204
    db.session.expire_all()
    assert db.session.get(Outbox, row.id).status == "read"
    unsigned = client.post("/webhooks/twilio/status", data={"MessageSid": row.provider_id, "MessageStatus": "failed"})
    assert unsigned.status_code == 403
    db.session.expire_all()
    assert db.session.get(Outbox, row.id).status == "read"
