"""Handing conversations to people: context for the agent, business hours,
and a clean assistant when the conversation is handed back."""
import json
from datetime import datetime, timezone

import pytest

from webapp import create_app
from webapp.auth import service_token
from webapp.extensions import db
from webapp.models import Agent, Conversation, Outbox, Ticket, TicketEvent
from webapp.services import business_hours, inbound, tickets
from webapp.services.business_hours import BadSchedule

from ..conftest import inbound_params, signed_post
from ..stub_server import JSONHandler, serve
from .test_worker import FakeRasa, rasa  # noqa: F401  (fixture)

PHONE = "+5511988887777"
# Tuesday 2024-05-07 at 22:30 in São Paulo (01:30 UTC on Wednesday).
TUESDAY_NIGHT = datetime(2024, 5, 8, 1, 30, tzinfo=timezone.utc)
# Friday 2024-05-10 at 19:00 in São Paulo.
FRIDAY_EVENING = datetime(2024, 5, 10, 22, 0, tzinfo=timezone.utc)
# Wednesday 2024-05-08 at 10:00 in São Paulo.
WEDNESDAY_MORNING = datetime(2024, 5, 8, 13, 0, tzinfo=timezone.utc)
WEEKDAYS = "mon-fri 08:00-18:00; sat 09:00-13:00"


# ---------------------------------------------------------------- the schedule
def test_an_empty_schedule_is_always_open():
    schedule = business_hours.parse("")
    assert schedule.is_open(TUESDAY_NIGHT) and schedule.next_opening(TUESDAY_NIGHT) is None


@pytest.mark.parametrize("when, is_open, opens", [
    (WEDNESDAY_MORNING, True, "2024-05-08 10:00 Wed"),
    (TUESDAY_NIGHT, False, "2024-05-08 08:00 Wed"),
    (FRIDAY_EVENING, False, "2024-05-11 09:00 Sat"),
    (datetime(2024, 5, 11, 17, 0, tzinfo=timezone.utc), False, "2024-05-13 08:00 Mon"),  # Saturday 14:00
])
def test_opening_hours_in_the_local_time_zone(when, is_open, opens):
    schedule = business_hours.parse(WEEKDAYS, "America/Sao_Paulo")
    assert schedule.is_open(when) is is_open
    assert schedule.next_opening(when).strftime("%Y-%m-%d %H:%M %a") == opens


def test_day_ranges_wrap_around_the_week():
    schedule = business_hours.parse("fri-mon 10:00-12:00", "UTC")
    open_days = {d for d in range(7) if schedule.hours.get(d)}
    assert open_days == {4, 5, 6, 0}


@pytest.mark.parametrize("spec", ["mon-fri 8-18", "segunda 08:00-18:00", "mon 18:00-08:00", "mon 25:00-26:00",
                                  "mon-fri"])
def test_a_schedule_that_cannot_be_read_is_refused(spec):
    with pytest.raises(BadSchedule):
        business_hours.parse(spec)


def test_the_app_does_not_start_with_a_bad_schedule():
    with pytest.raises(BadSchedule):
        create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": "sqlite://", "BUSINESS_HOURS": "always"})
    with pytest.raises(BadSchedule):
        create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": "sqlite://", "BUSINESS_TIMEZONE": "Mars/Base"})


# ---------------------------------------------------------------- the handoff API
@pytest.fixture
def service(app):
    with app.app_context():
        return {"Authorization": f"Bearer {service_token()}"}


@pytest.fixture
def hours(app, monkeypatch):
    """Set the schedule and freeze the handoff's clock."""
    def setter(spec: str, now: datetime):
        monkeypatch.setitem(app.config, "BUSINESS_HOURS", spec)
        monkeypatch.setattr(inbound, "utcnow", lambda: now)
    yield setter


def conversation_of_maria(client):
    signed_post(client, "/webhooks/twilio/whatsapp", inbound_params("meu pedido não chegou", sid="SM" + "1" * 32))
    return db.session.scalar(db.select(Conversation))


CONTEXT = {"intent": "request_human", "slots": {"ticket_subject": "Pedido atrasado", "customer_name": "Maria"},
           "kb_articles": ["Prazo de entrega"], "last_messages": ["qual o prazo?", "não ajudou", "<b>atendente</b>"]}


def test_the_handoff_context_becomes_an_internal_note(client, ctx, service):
    conversation_of_maria(client)
    response = client.post(f"/api/v1/conversations/by-phone/{PHONE}/handoff", headers=service,
                           json={"reason": "kb_not_helpful", "context": CONTEXT})
    assert response.status_code == 201
    ticket = db.session.get(Ticket, response.json["ticket"]["id"])
    assert response.json["business_hours"] == {"open": True, "opens_at": None}
    [event] = [e for e in ticket.events if e.kind == "handoff"]
    assert event.public is False  # internal: never on the status page
    assert event.data["reason"] == "kb_not_helpful"
    assert event.data["context"]["kb_articles"] == ["Prazo de entrega"]
    lines = event.body.splitlines()
    assert lines[0] == "Detected intent: request_human"
    assert set(lines[1:3]) == {"Ticket subject: Pedido atrasado", "Customer name: Maria"}
    assert lines[3:] == ["Articles offered: Prazo de entrega", "Last messages from the customer:",
                         "> qual o prazo?", "> não ajudou", "> <b>atendente</b>"]
    assert db.session.get(Conversation, ticket.conversation_id).handoff_ticket_id == ticket.id
    # The assistant announces the handoff itself: the webapp queues nothing.
    assert db.session.scalar(db.select(db.func.count()).select_from(Outbox)) == 0


def test_without_context_the_note_has_the_last_messages_we_stored(client, ctx, service):
    conversation_of_maria(client)
    response = client.post(f"/api/v1/conversations/by-phone/{PHONE}/handoff", headers=service, json={})
    ticket = db.session.get(Ticket, response.json["ticket"]["id"])
    [event] = [e for e in ticket.events if e.kind == "handoff"]
    assert event.data["context"]["last_messages"] == ["meu pedido não chegou"]


def test_oversized_context_is_bounded_and_bad_context_refused(client, ctx, service):
    conversation_of_maria(client)
    huge = {"intent": "x" * 500, "slots": {f"s{i}": "v" * 5000 for i in range(50)},
            "kb_articles": ["a" * 900] * 40, "last_messages": ["m" * 9000] * 40}
    response = client.post(f"/api/v1/conversations/by-phone/{PHONE}/handoff", headers=service,
                           json={"context": huge})
    assert response.status_code == 201
    event = db.session.scalar(db.select(TicketEvent).filter_by(kind="handoff"))
    context = event.data["context"]
    assert len(context["intent"]) == 80 and len(context["slots"]) == 12 and len(context["kb_articles"]) == 10
    assert len(context["last_messages"]) == 5 and all(len(m) == 1000 for m in context["last_messages"])
    bad = client.post(f"/api/v1/conversations/by-phone/{PHONE}/handoff", headers=service,
                      json={"context": ["not", "an", "object"]})
    assert bad.status_code == 422 and bad.json["error"]["field"] == "context"


def test_outside_business_hours_the_assistant_learns_when_people_are_back(client, ctx, service, hours):
    hours(WEEKDAYS, TUESDAY_NIGHT)
    conversation = conversation_of_maria(client)
    conversation.customer.language = "pt"
    db.session.commit()
    response = client.post(f"/api/v1/conversations/by-phone/{PHONE}/handoff", headers=service, json={})
    info = response.json["business_hours"]
    assert info["open"] is False
    assert info["opens_at"] == "2024-05-08T08:00:00-03:00"
    assert info["opens_at_text"] == "amanhã (quarta-feira) às 08:00"
    # The ticket waits in the queue like any other.
    ticket = db.session.get(Ticket, response.json["ticket"]["id"])
    assert ticket.status == "new"


@pytest.mark.parametrize("language, now, expected", [
    ("pt", FRIDAY_EVENING, "a equipe volta amanhã (sábado) às 09:00"),
    ("en", FRIDAY_EVENING, "the team is back tomorrow (Saturday) at 09:00"),
    ("en", datetime(2024, 5, 11, 17, 0, tzinfo=timezone.utc), "the team is back on Monday at 08:00"),
    ("pt", datetime(2024, 5, 8, 9, 0, tzinfo=timezone.utc), "a equipe volta hoje às 08:00"),  # 06:00 local
])
def test_the_webapps_own_handoff_message_outside_hours(client, ctx, hours, language, now, expected):
    hours(WEEKDAYS, now)
    conversation = conversation_of_maria(client)
    conversation.customer.language = language
    ticket = inbound.handoff(conversation, reason="assistant_unavailable")
    notice = db.session.scalar(db.select(Outbox).order_by(Outbox.id.desc()).limit(1))
    assert expected in notice.body and f"#{ticket.number}" in notice.body


def test_inside_business_hours_the_usual_message(client, ctx, hours):
    hours(WEEKDAYS, WEDNESDAY_MORNING)
    conversation = conversation_of_maria(client)
    inbound.handoff(conversation, reason="assistant_unavailable")
    notice = db.session.scalar(db.select(Outbox))
    assert "volta" not in notice.body and "equipe" in notice.body


# ---------------------------------------------------------------- handing back
class RestartCountingRasa(JSONHandler):
    received: list = []

    def do_POST(self):
        payload = json.loads(self.body())
        RestartCountingRasa.received.append(payload["message"])
        self.reply(200, [] if payload["message"] == "/restart" else
                   [{"recipient_id": payload["sender"], "text": "Olá de novo!"}])


def test_handing_back_restarts_the_assistant_before_the_next_message(client, ctx, rasa):  # noqa: F811
    from bot.rasa_client import RasaClient

    conversation = conversation_of_maria(client)
    inbound.process_due(rasa)
    ticket = inbound.handoff(conversation, reason="customer_request")
    agent = Agent(email="ana@zapdesk.example", name="Ana")
    agent.set_password("a-long-password-123")
    db.session.add(agent)
    db.session.commit()
    tickets.hand_back(ticket, agent)
    assert conversation.assistant_reset_pending is True
    signed_post(client, "/webhooks/twilio/whatsapp", inbound_params("oi de novo", sid="SM" + "2" * 32))
    RestartCountingRasa.received = []
    with serve(RestartCountingRasa) as url:
        inbound.process_due(RasaClient(url, timeout=5))
        # once only: the next message goes straight to the assistant
        signed_post(client, "/webhooks/twilio/whatsapp", inbound_params("e aí?", sid="SM" + "3" * 32))
        inbound.process_due(RasaClient(url, timeout=5))
    assert RestartCountingRasa.received == ["/restart", "oi de novo", "e aí?"]
    db.session.refresh(conversation)
    assert conversation.assistant_reset_pending is False
    bodies = db.session.scalars(db.select(Outbox.body).order_by(Outbox.id)).all()
    assert bodies[-2:] == ["Olá de novo!", "Olá de novo!"]


def test_a_failed_restart_is_retried_and_nothing_is_lost(client, ctx, rasa):  # noqa: F811
    conversation = conversation_of_maria(client)
    inbound.process_due(rasa)
    ticket = inbound.handoff(conversation, reason="customer_request")
    agent = Agent(email="bia@zapdesk.example", name="Bia")
    agent.set_password("a-long-password-123")
    db.session.add(agent)
    db.session.commit()
    tickets.hand_back(ticket, agent)
    signed_post(client, "/webhooks/twilio/whatsapp", inbound_params("voltei", sid="SM" + "4" * 32))
    FakeRasa.status, FakeRasa.received = 500, []
    inbound.process_due(rasa)
    db.session.refresh(conversation)
    assert conversation.assistant_reset_pending is True  # still to do
    FakeRasa.status = 200
    from webapp.models import Message
    message = db.session.scalar(db.select(Message).filter_by(body="voltei"))
    message.next_attempt_at = None
    db.session.commit()
    inbound.process_due(rasa)
    assert [r["message"] for r in FakeRasa.received] == ["/restart", "/restart", "voltei"]
    db.session.refresh(message)
    assert message.status == "processed"


def test_a_message_written_to_a_person_stays_with_them_even_if_processed_after_the_hand_back(
        client, ctx, rasa):  # noqa: F811
    conversation = conversation_of_maria(client)
    inbound.process_due(rasa)
    ticket = inbound.handoff(conversation, reason="customer_request")
    # The customer writes to the person; the worker has not got to it yet...
    signed_post(client, "/webhooks/twilio/whatsapp", inbound_params("Posso levar na loja amanhã?",
                                                                    sid="SM" + "7" * 32))
    agent = Agent(email="caio@zapdesk.example", name="Caio")
    agent.set_password("a-long-password-123")
    db.session.add(agent)
    db.session.commit()
    tickets.hand_back(ticket, agent)  # ...when the agent gives the conversation back
    FakeRasa.received.clear()
    inbound.process_due(rasa)
    assert FakeRasa.received == []  # the assistant never answers what was written to a person
    event = db.session.scalar(db.select(TicketEvent).filter_by(kind="customer_message"))
    assert event.ticket_id == ticket.id and event.body == "Posso levar na loja amanhã?"
    # The next message is the assistant's again.
    signed_post(client, "/webhooks/twilio/whatsapp", inbound_params("oi", sid="SM" + "8" * 32))
    inbound.process_due(rasa)
    assert [r["message"] for r in FakeRasa.received][-1] == "oi"


class SilentRasa(JSONHandler):
    """Rasa when a custom action failed: it carries on and says nothing."""

    def do_POST(self):
        self.body()
        self.reply(200, [])


def test_an_assistant_that_says_nothing_hands_off(client, ctx):
    from bot.rasa_client import RasaClient

    conversation = conversation_of_maria(client)
    with serve(SilentRasa) as url:
        inbound.process_due(RasaClient(url, timeout=5))
    db.session.refresh(conversation)
    ticket = db.session.get(Ticket, conversation.handoff_ticket_id)
    assert ticket is not None
    [event] = [e for e in ticket.events if e.kind == "handoff"]
    assert event.data["reason"] == "assistant_error"
    assert "meu pedido não chegou" in event.body  # the context: what the customer wrote
    notice = db.session.scalar(db.select(Outbox).order_by(Outbox.id.desc()).limit(1))
    assert f"#{ticket.number}" in notice.body


class RasaWhoseActionLetTheWebappSpeak(JSONHandler):
    """An action that called the API (closing a ticket, say): the webapp wrote
    the answer to the customer, and Rasa itself returns no text."""

    app = None

    def do_POST(self):
        self.body()
        from webapp.services import outbox
        with self.app.app_context():
            conversation = db.session.scalar(db.select(Conversation))
            outbox.queue_whatsapp(conversation, "O chamado foi encerrado.", author="system", purpose="closing")
            db.session.commit()
        self.reply(200, [])


def test_an_answer_written_by_the_webapp_during_the_turn_is_not_silence(app, client, ctx):
    from bot.rasa_client import RasaClient

    conversation = conversation_of_maria(client)
    RasaWhoseActionLetTheWebappSpeak.app = app
    with serve(RasaWhoseActionLetTheWebappSpeak) as url:
        inbound.process_due(RasaClient(url, timeout=5))
    db.session.refresh(conversation)
    assert conversation.handoff_ticket_id is None
    assert db.session.scalar(db.select(db.func.count()).select_from(Ticket)) == 0
    [out] = db.session.scalars(db.select(Outbox)).all()
    assert out.body == "O chamado foi encerrado."
