"""Issue 6, cases 5 and 6, through the signed webhook, the real worker loop,
a scripted Rasa and the fake Twilio API with a latency knob.

5. A long answer arrives in parts, in order; three replies of one turn arrive
   in order whatever the API's latency; twenty conversations at once with a
   slow API: one slow recipient delays nobody else.
6. The same delivery twice 50 ms apart and again 10 minutes later is one turn,
   one reply, one ticket; a slow custom action does not hold the webhook, and
   a turn that outlives the worker's patience is never run twice.
"""
import re
import threading
import time
import uuid
from datetime import timedelta

import pytest
import requests

from bot.rasa_client import RasaClient
from bot.text import wa_length
from bot.twilio_whatsapp import sign
from webapp.auth import service_token
from webapp.extensions import db
from webapp.models import Conversation, Customer, Message, Outbox, SimulatedMessage, Ticket, utcnow
from webapp.services import inbound

from ..conftest import AUTH_TOKEN, inbound_params
from .traffic import ScriptedRasa, count, deliver, wait_for


def delivered_to(phone: str) -> list[str]:
    return list(db.session.scalars(db.select(SimulatedMessage.body)
                                   .where(SimulatedMessage.to == f"whatsapp:{phone}").order_by(SimulatedMessage.id)))


# -- 5. order and independence --------------------------------------------------------

LONG_LINE = "Atenção: seu pedido nº {n} saiu às 14h — já está a caminho 🚚👍🏽🇧🇷 e chega até sexta-feira, viu?"
LONG_ANSWER = "\n".join(LONG_LINE.format(n=n) for n in range(26))


def test_a_long_answer_arrives_in_parts_under_the_limit_and_in_order(client, ctx, latency, traffic_worker):
    assert 2300 < len(LONG_ANSWER) < 2600 and "\n\n" not in LONG_ANSWER
    latency("0-0.3")
    ScriptedRasa.script = staticmethod(lambda payload: [{"text": LONG_ANSWER}])
    deliver(client, "quero saber do meu pedido", sid="SM" + "1" * 32)
    assert wait_for(lambda: db.session.scalar(db.select(Message.status).where(Message.author == "bot")) == "sent")
    parts = delivered_to("+5511988887777")
    assert len(parts) == 2 and all(wa_length(p) <= 1600 for p in parts)
    assert "\n".join(parts) == LONG_ANSWER  # every character, in order
    assert "".join(parts).count("👍🏽") == LONG_ANSWER.count("👍🏽")  # no emoji cut in two


def test_three_replies_of_one_turn_arrive_in_order_with_random_latency(client, ctx, latency, traffic_worker):
    latency("0-0.4")
    ScriptedRasa.script = staticmethod(lambda payload: [{"text": f"{payload['message']} → resposta {i}"}
                                                        for i in (1, 2, 3)])
    for n, text in enumerate(("primeira", "segunda")):
        deliver(client, text, sid=f"SM{n:032d}")
    expected = [f"{text} → resposta {i}" for text in ("primeira", "segunda") for i in (1, 2, 3)]
    assert wait_for(lambda: len(delivered_to("+5511988887777")) == 6)
    assert delivered_to("+5511988887777") == expected


def test_twenty_conversations_and_one_slow_recipient(client, ctx, latency, traffic_worker):
    """A slow Twilio answer for one customer holds back nobody else."""
    phones = [f"+55119777{n:05d}" for n in range(20)]
    slow = phones[7]
    latency(f"0-0.05;whatsapp:{slow}=3")
    ScriptedRasa.script = staticmethod(lambda payload: [{"text": f"{payload['message']} #{i}"} for i in (1, 2, 3)])
    for n, phone in enumerate(phones):
        deliver(client, f"oi {n}", sid=f"SM{n:032d}", phone=phone)
    others = [p for p in phones if p != slow]

    def others_done():
        return all(len(delivered_to(p)) == 3 for p in others)

    assert wait_for(others_done, timeout=20)
    # Everybody else has all three replies while the slow recipient is still on its first ones.
    assert len(delivered_to(slow)) < 3
    for n, phone in enumerate(phones):
        if phone != slow:
            assert delivered_to(phone) == [f"oi {n} #{i}" for i in (1, 2, 3)]
    assert wait_for(lambda: len(delivered_to(slow)) == 3, timeout=20)
    assert delivered_to(slow) == ["oi 7 #1", "oi 7 #2", "oi 7 #3"]


# -- 6. duplicates and slow turns ------------------------------------------------------------

@pytest.fixture
def service_headers(app):
    with app.app_context():
        return {"Authorization": f"Bearer {service_token()}"}


def test_the_same_delivery_three_times_is_one_turn_one_reply_one_ticket(app, client, ctx, live_server, rasa_stub,
                                                                        service_headers):
    """Twilio retries: twice 50 ms apart, then again 10 minutes later."""
    customer_phone = "+5511988887777"
    deliver(client, "oi", sid="SM" + "0" * 32)
    customer = db.session.scalar(db.select(Customer))
    customer.name, customer.email, customer.email_verified_at = "Maria", "maria@example.com", utcnow()
    db.session.commit()

    def action_opens_a_ticket(payload):
        # What action_create_ticket does on "sim": one API call per turn.
        if payload["message"] == "sim":
            requests.post(f"{live_server}/api/v1/tickets", headers=service_headers, timeout=10, json={
                "phone": payload["sender"], "subject": "Tela quebrada", "description": "Chegou rachada",
                "idempotency_key": f"rasa:{payload['sender']}:{uuid.uuid4().hex}"})  # Rasa's own message id
            return [{"text": "Seu chamado foi aberto."}]
        return [{"text": "Olá!"}]

    ScriptedRasa.script = staticmethod(action_opens_a_ticket)
    params = inbound_params("sim", sid="SM" + "d" * 32, phone=customer_phone)
    signature = sign(AUTH_TOKEN, "https://desk.example.com/webhooks/twilio/whatsapp", params)
    statuses = []

    def post():
        statuses.append(requests.post(f"{live_server}/webhooks/twilio/whatsapp", data=params, timeout=10,
                                      headers={"X-Twilio-Signature": signature}).status_code)

    first, second = threading.Thread(target=post), threading.Timer(0.05, post)
    first.start(), second.start()
    first.join(), second.join()
    rasa = RasaClient(rasa_stub, timeout=5)
    inbound.process_due(rasa)
    # Ten minutes later, the same delivery again.
    db.session.execute(db.update(Message).values(created_at=utcnow() - timedelta(minutes=10)))
    db.session.commit()
    post()
    inbound.process_due(rasa)
    assert statuses == [200, 200, 200]
    assert ScriptedRasa.texts() == ["oi", "sim"]
    assert count(Message, Message.provider_sid == "SM" + "d" * 32) == 1
    assert count(Ticket) == 1
    replies = db.session.scalars(db.select(Outbox.body).where(Outbox.channel == "whatsapp").order_by(Outbox.id))
    assert list(replies) == ["Olá!", "Seu chamado foi aberto."]
    sid = ScriptedRasa.received[1]["metadata"]["message_sid"]
    assert sid == "SM" + "d" * 32  # the same on every delivery: an idempotency key for the actions


def test_a_slow_custom_action_does_not_hold_the_webhook_and_answers_once(app, client, ctx, traffic_worker):
    ScriptedRasa.gate = threading.Event()  # the turn waits, like an action whose API call takes 20 s
    ScriptedRasa.script = staticmethod(lambda payload: [{"text": "Pronto, chamado aberto."}])
    assert deliver(client, "sim", sid="SM" + "e" * 32).status_code == 200
    assert ScriptedRasa.in_turn.wait(10), "the worker never called Rasa"
    # Rasa is mid-turn: the webhook still answers at once, and the next message is stored.
    response = deliver(client, "alô?", sid="SM" + "f" * 32)
    assert response.status_code == 200 and count(Message, Message.direction == "in") == 2
    assert count(Outbox) == 0
    ScriptedRasa.gate.set()
    assert wait_for(lambda: count(Message, Message.direction == "in", Message.status == "processed") == 2)
    assert ScriptedRasa.texts() == ["sim", "alô?"]  # each sent once, in order
    assert list(db.session.scalars(db.select(Outbox.body))) == ["Pronto, chamado aberto."] * 2


def test_a_turn_longer_than_the_timeout_is_never_sent_twice(app, client, ctx, rasa_stub):
    """Rasa got the message and is still working: sending it again would run the
    turn twice (two answers, maybe two tickets). People take over instead, and
    the customer gets exactly one answer."""
    ScriptedRasa.gate = threading.Event()
    deliver(client, "sim", sid="SM" + "9" * 32)
    rasa = RasaClient(rasa_stub, timeout=0.5)
    assert inbound.process_due(rasa) == 1
    message = db.session.scalar(db.select(Message).where(Message.direction == "in"))
    assert message.status == "failed" and "timeout" in message.error.lower()
    # However often the worker passes by, Rasa never sees the message again.
    message.next_attempt_at = utcnow() - timedelta(seconds=1)
    db.session.commit()
    assert inbound.process_due(rasa) == 0
    ScriptedRasa.gate.set()
    time.sleep(0.2)
    assert ScriptedRasa.texts() == ["sim"]
    conversation = db.session.scalar(db.select(Conversation))
    ticket = db.session.get(Ticket, conversation.handoff_ticket_id)
    assert ticket is not None and message.ticket_id == ticket.id
    [notice] = db.session.scalars(db.select(Outbox)).all()
    assert re.search(rf"#{ticket.number}\b", notice.body)


def test_rasa_refusing_the_connection_is_retried(app, client, ctx):
    """Nothing reached Rasa: sending again later is safe (and needed)."""
    deliver(client, "oi", sid="SM" + "8" * 32)
    assert inbound.process_due(RasaClient("http://127.0.0.1:9", timeout=2)) == 0
    message = db.session.scalar(db.select(Message))
    assert message.status == "received" and message.attempts == 1 and message.next_attempt_at > utcnow()
    assert count(Ticket) == 0
