"""The worker process's scheduling: order within a conversation, no waiting across them."""
import json
import threading
import time
from urllib.parse import parse_qs

import pytest

from webapp import worker
from webapp.extensions import db
from webapp.models import Message, Outbox
from webapp.services import customers, outbox

from ..conftest import inbound_params, signed_post
from ..stub_server import JSONHandler, serve

SLOW = "551177776666"  # rasa sender id (phone key) of the slow conversation


class SlowRasa(JSONHandler):
    def do_POST(self):
        payload = json.loads(self.body())
        if payload["sender"] == SLOW:
            time.sleep(3)
        self.reply(200, [{"recipient_id": payload["sender"], "text": f"eco: {payload['message']}"}])


class SlowTwilio(JSONHandler):
    """Twilio's Messages API, slow for one recipient."""
    sent: list = []

    def do_POST(self):
        form = {k: v[0] for k, v in parse_qs(self.body().decode()).items()}
        if form["To"] == "whatsapp:+5511977776666":
            time.sleep(3)
        SlowTwilio.sent.append((form["To"], form["Body"]))
        self.reply(201, {"sid": f"SM{len(SlowTwilio.sent):032d}", "status": "queued"})


@pytest.fixture
def running_worker(app):
    stop = threading.Event()
    with serve(SlowRasa) as rasa_url, serve(SlowTwilio) as twilio_url:
        saved = app.config["RASA_URL"], app.config["TWILIO_API_BASE_URL"]
        app.config.update(RASA_URL=rasa_url, TWILIO_API_BASE_URL=twilio_url)
        SlowTwilio.sent = []
        thread = threading.Thread(target=worker.run, args=(app, stop), daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join(timeout=15)
            app.config["RASA_URL"], app.config["TWILIO_API_BASE_URL"] = saved


def wait_for(condition, timeout=10.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        db.session.expire_all()
        if condition():
            return True
        time.sleep(0.1)
    return False


def test_a_slow_rasa_turn_does_not_hold_back_other_conversations(client, ctx, running_worker):
    signed_post(client, "/webhooks/twilio/whatsapp", inbound_params("lento", sid="SM" + "1" * 32,
                                                                     phone="+5511977776666"))
    signed_post(client, "/webhooks/twilio/whatsapp", inbound_params("rápido", sid="SM" + "2" * 32))
    signed_post(client, "/webhooks/twilio/whatsapp", inbound_params("lento 2", sid="SM" + "3" * 32,
                                                                     phone="+5511977776666"))

    def bodies():
        return db.session.scalars(db.select(Message.body).where(Message.author == "bot").order_by(Message.id)).all()

    assert wait_for(lambda: "eco: rápido" in bodies(), timeout=2.5), "the fast conversation waited"
    assert "eco: lento" not in bodies()
    assert wait_for(lambda: len(bodies()) == 3, timeout=15)
    # Within the slow conversation, order is kept.
    assert bodies().index("eco: lento") < bodies().index("eco: lento 2")


def test_a_slow_send_does_not_hold_back_other_recipients(ctx, running_worker):
    slow = customers.get_or_create_for_whatsapp("whatsapp:+5511977776666")
    fast = customers.get_or_create_for_whatsapp("whatsapp:+5511988887777")
    outbox.queue_whatsapp(slow, "parte 1", author="bot")
    outbox.queue_whatsapp(slow, "parte 2", author="bot")
    outbox.queue_whatsapp(fast, "olá", author="bot")
    db.session.commit()
    assert wait_for(lambda: ("whatsapp:+5511988887777", "olá") in SlowTwilio.sent, timeout=2.5)
    assert wait_for(lambda: len(SlowTwilio.sent) == 3, timeout=15)
    slow_parts = [body for to, body in SlowTwilio.sent if to == "whatsapp:+5511977776666"]
    assert slow_parts == ["parte 1", "parte 2"]
    assert wait_for(lambda: db.session.scalar(
        db.select(db.func.count()).select_from(Outbox).where(Outbox.status == "sent")) == 3)
