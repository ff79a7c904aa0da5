"""The worker's inbound path against a stand-in for Rasa's REST channel."""
import json
from datetime import timedelta

import pytest

from bot.rasa_client import RasaClient
from webapp.extensions import db
from webapp.models import Conversation, Message, Outbox, Ticket, utcnow
from webapp.services import inbound

from ..conftest import inbound_params, signed_post
from ..stub_server import JSONHandler, serve


class FakeRasa(JSONHandler):
    received: list = []
    replies: list = [{"text": "Olá!"}]
    status = 200

    def do_POST(self):
        payload = json.loads(self.body())
        FakeRasa.received.append(payload)
        self.reply(FakeRasa.status, [{"recipient_id": payload["sender"], **r} for r in FakeRasa.replies])


@pytest.fixture
def rasa():
    FakeRasa.received, FakeRasa.replies, FakeRasa.status = [], [{"text": "Olá!"}], 200
    with serve(FakeRasa) as url:
        yield RasaClient(url, timeout=5)


def send(client, body, n):
    return signed_post(client, "/webhooks/twilio/whatsapp", inbound_params(body, sid=f"SM{n:032d}"))


def test_messages_reach_rasa_in_order_and_replies_go_to_the_outbox(client, ctx, rasa):
    for n, body in enumerate(["oi", "/open_ticket", "tudo bem?"]):
        send(client, body, n)
    assert inbound.process_due(rasa) == 3
    assert [r["message"] for r in FakeRasa.received] == ["oi", "open_ticket", "tudo bem?"]
    assert FakeRasa.received[0]["sender"] == "551188887777"
    assert FakeRasa.received[0]["metadata"]["language"] == "pt"
    assert FakeRasa.received[0]["metadata"]["profile_name"] == "Maria Teste"
    bodies = db.session.scalars(db.select(Outbox.body).order_by(Outbox.id)).all()
    assert bodies == ["Olá!"] * 3
    assert set(db.session.scalars(db.select(Message.status).where(Message.direction == "in"))) == {"processed"}


def test_media_only_message_becomes_an_explicit_intent(client, ctx, rasa):
    params = inbound_params("", sid="SM" + "9" * 32, NumMedia="1", MediaUrl0="https://x/y.jpg",
                            MediaContentType0="image/jpeg")
    signed_post(client, "/webhooks/twilio/whatsapp", params)
    inbound.process_due(rasa)
    assert FakeRasa.received[0]["message"] == "/share_media"
    assert FakeRasa.received[0]["metadata"]["media"] == [{"url": "https://x/y.jpg", "content_type": "image/jpeg"}]


def test_english_text_switches_the_language(client, ctx, rasa):
    send(client, "Hi, I want to open a ticket", 1)
    inbound.process_due(rasa)
    assert FakeRasa.received[0]["metadata"]["language"] == "en"


def test_rasa_down_retries_then_hands_off_without_losing_the_message(client, app, ctx, rasa):
    FakeRasa.status = 500
    send(client, "oi", 1)
    message = db.session.scalar(db.select(Message))
    inbound.process_due(rasa)
    db.session.refresh(message)
    assert message.status == "received" and message.attempts == 1  # waits and retries
    assert message.next_attempt_at > utcnow()
    assert db.session.scalar(db.select(Ticket)) is None
    # Past the give-up time, the next failure hands the conversation to people.
    message.created_at = utcnow() - timedelta(seconds=app.config["INBOUND_GIVE_UP_SECONDS"] + 1)
    message.next_attempt_at = None
    db.session.commit()
    inbound.process_due(rasa)
    db.session.refresh(message)
    assert message.status == "failed" and message.attempts == 2
    ticket = db.session.scalar(db.select(Ticket))
    assert ticket is not None and message.ticket_id == ticket.id
    conversation = db.session.scalar(db.select(Conversation))
    assert conversation.handoff_ticket_id == ticket.id
    notice = db.session.scalar(db.select(Outbox))
    assert "equipe" in notice.body


def test_a_failed_message_holds_back_later_ones_of_its_conversation(client, ctx, rasa):
    FakeRasa.status = 500
    send(client, "primeira", 1)
    send(client, "segunda", 2)
    inbound.process_due(rasa)
    assert [r["message"] for r in FakeRasa.received] == ["primeira"]


def test_while_a_person_owns_the_conversation_the_bot_is_silent(client, ctx, rasa):
    send(client, "oi", 1)
    inbound.process_due(rasa)
    conversation = db.session.scalar(db.select(Conversation))
    ticket = inbound.handoff(conversation, reason="test")
    send(client, "alguém aí?", 2)
    FakeRasa.received.clear()
    inbound.process_due(rasa)
    assert FakeRasa.received == []
    last = db.session.scalar(db.select(Message).where(Message.direction == "in").order_by(Message.id.desc()))
    assert last.ticket_id == ticket.id and last.status == "processed"
    assert [e.kind for e in ticket.events][-1] == "customer_message"
