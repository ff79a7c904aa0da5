"""Closing the loop: resolved means asking the customer; yes closes and asks
for a rating, no reopens, silence closes after CLOSE_AFTER_DAYS."""
from datetime import timedelta

import pytest

from webapp.auth import service_token
from webapp.extensions import db
from webapp.models import Message, Outbox, Ticket, utcnow
from webapp.services import closing, inbound, tickets

from ..conftest import inbound_params, signed_post
from .test_worker import FakeRasa, rasa  # noqa: F401  (fixture)

PHONE = "+5511988887777"


@pytest.fixture
def service(app):
    with app.app_context():
        return {"Authorization": f"Bearer {service_token()}"}


@pytest.fixture
def resolved(client, ctx, make_agent, rasa):  # noqa: F811
    """Maria's ticket, worked by Ana and just marked resolved."""
    signed_post(client, "/webhooks/twilio/whatsapp", inbound_params("oi", sid="SM" + "1" * 32))
    inbound.process_due(rasa)
    message = db.session.scalar(db.select(Message))
    customer = message.conversation.customer
    ticket, _ = tickets.create(customer, "Entrega atrasada", "Pedido 4411 não chegou",
                               conversation=message.conversation)
    agent = make_agent()
    tickets.change_status(ticket, "open", agent)
    tickets.assign(ticket, agent, agent)
    tickets.change_status(ticket, "resolved", agent)
    return ticket


def bodies() -> list[str]:
    return db.session.scalars(db.select(Outbox.body).where(Outbox.channel == "whatsapp").order_by(Outbox.id)).all()


def test_resolving_asks_the_customer_instead_of_announcing(resolved):
    assert resolved.close_asked_at is not None
    last = bodies()[-1]
    assert "resolvido" in last and "Posso encerrar o chamado?" in last and f"#{resolved.number}" in last
    assert not any("mudou de status" in b and "Resolvido" in b for b in bodies())
    assert "close_asked" in [e.kind for e in resolved.events]


def test_the_assistant_knows_which_tickets_await_the_answer(client, resolved, rasa):  # noqa: F811
    signed_post(client, "/webhooks/twilio/whatsapp", inbound_params("sim", sid="SM" + "2" * 32))
    FakeRasa.received.clear()
    inbound.process_due(rasa)
    assert FakeRasa.received[0]["metadata"]["awaiting_close"] == [resolved.number]


def test_yes_closes_and_asks_for_a_rating_then_the_rating_is_stored(client, resolved, service, rasa):  # noqa: F811
    response = client.post(f"/api/v1/tickets/{resolved.number}/close", headers=service, json={"phone": PHONE})
    assert response.status_code == 200 and response.json["ticket"]["status"] == "closed"
    db.session.refresh(resolved)
    assert resolved.status == "closed" and resolved.close_asked_at is None
    assert "De *1* a *5*" in bodies()[-1]
    # "⭐⭐⭐⭐" goes to the ticket, not to the assistant.
    signed_post(client, "/webhooks/twilio/whatsapp", inbound_params("⭐⭐⭐⭐", sid="SM" + "3" * 32))
    FakeRasa.received.clear()
    inbound.process_due(rasa)
    assert FakeRasa.received == []
    db.session.refresh(resolved)
    assert resolved.satisfaction == 4
    assert "Obrigada pela nota 4" in bodies()[-1]
    kinds = [e.kind for e in resolved.events]
    assert kinds[-3:] == ["status", "closed_by_customer", "rating"] or "rating" in kinds
    # A second number is not a second rating: it goes to the assistant.
    signed_post(client, "/webhooks/twilio/whatsapp", inbound_params("5", sid="SM" + "4" * 32))
    inbound.process_due(rasa)
    assert [r["message"] for r in FakeRasa.received] == ["5"]
    db.session.refresh(resolved)
    assert resolved.satisfaction == 4


@pytest.mark.parametrize("text, score", [("5", 5), (" 3 ", 3), ("nota 4", 4), ("2/5", 2), ("⭐", 1),
                                         ("1 estrela", 1), ("0", None), ("6", None), ("55", None),
                                         ("5 dias", None), ("", None), ("ótimo", None)])
def test_parse_rating(text, score):
    assert closing.parse_rating(text) == score


def test_no_reopens_back_to_its_agent_with_a_note(client, resolved, service):
    agent_id = resolved.assignee_id
    response = client.post(f"/api/v1/tickets/{resolved.number}/reopen", headers=service, json={"phone": PHONE})
    assert response.status_code == 200
    db.session.refresh(resolved)
    assert resolved.status == "open" and resolved.assignee_id == agent_id and resolved.close_asked_at is None
    notes = [e for e in resolved.events if e.kind == "note"]
    assert notes and "not solved" in notes[-1].body and notes[-1].public is False
    assert "reaberto" in bodies()[-1] and "pessoa" in bodies()[-1]



def test_after_no_the_customer_talks_to_the_person_not_the_assistant(client, resolved, service, rasa):  # noqa: F811
    client.post(f"/api/v1/tickets/{resolved.number}/reopen", headers=service, json={"phone": PHONE})
    db.session.refresh(resolved)
    conversation = db.session.scalar(db.select(Message)).conversation
    db.session.refresh(conversation)
    assert conversation.handoff_ticket_id == resolved.id
    assert [e for e in resolved.events if e.kind == "handoff"][-1].data["reason"] == "customer_disagreed"
    signed_post(client, "/webhooks/twilio/whatsapp", inbound_params("ainda não chegou", sid="SM" + "5" * 32))
    FakeRasa.received.clear()
    inbound.process_due(rasa)
    assert FakeRasa.received == []  # the person has it
    message = db.session.scalar(db.select(Message).where(Message.body == "ainda não chegou"))
    assert message.ticket_id == resolved.id


def test_a_customer_message_brings_a_waiting_ticket_back_to_the_agents(client, resolved, rasa):  # noqa: F811
    agent = resolved.assignee
    tickets.change_status(resolved, "open", agent)
    tickets.reply(resolved, agent, "Pode me mandar o comprovante?")  # the agent takes the conversation
    tickets.change_status(resolved, "pending", agent)
    signed_post(client, "/webhooks/twilio/whatsapp", inbound_params("segue o comprovante", sid="SM" + "6" * 32))
    inbound.process_due(rasa)
    db.session.refresh(resolved)
    assert resolved.status == "open"
    last = [e for e in resolved.events if e.kind == "status"][-1]
    assert last.data == {"from": "pending", "to": "open"} and last.actor_type == "system"

def test_only_the_owner_can_close_and_only_through_the_assistant(client, resolved, service):
    other = client.post(f"/api/v1/tickets/{resolved.number}/close", headers=service,
                        json={"phone": "+5521977776666"})
    assert other.status_code == 404
    assert client.post(f"/api/v1/tickets/{resolved.number}/close", headers=service, json={}).status_code in (404,
                                                                                                         422)
    db.session.refresh(resolved)
    assert resolved.status == "resolved"


def test_an_agent_token_cannot_speak_for_the_customer(client, resolved, make_agent):
    make_agent(email="bia@example.com")
    login = client.post("/api/v1/auth/login", json={"email": "bia@example.com",
                                                    "password": "correct horse battery"})
    token = login.json["access_token"]
    response = client.post(f"/api/v1/tickets/{resolved.number}/close", json={"phone": PHONE},
                           headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 403


def test_no_answer_closes_after_the_configured_days(app, resolved):
    days = app.config["CLOSE_AFTER_DAYS"]
    assert closing.unanswered() == []
    resolved.close_asked_at = utcnow() - timedelta(days=days) + timedelta(hours=1)
    db.session.commit()
    assert closing.unanswered() == []
    resolved.close_asked_at = utcnow() - timedelta(days=days, minutes=1)
    db.session.commit()
    assert closing.unanswered() == [resolved.id]
    assert closing.close_unanswered(resolved.id) is True
    db.session.refresh(resolved)
    assert resolved.status == "closed" and "closed_automatically" in [e.kind for e in resolved.events]
    assert "não tivemos resposta em 3 dias" in bodies()[-1]
    assert closing.close_unanswered(resolved.id) is False  # once


def test_a_ticket_reopened_by_the_agent_is_not_closed_automatically(resolved, make_agent):
    agent = db.session.get(type(resolved.assignee), resolved.assignee_id)
    tickets.change_status(resolved, "open", agent)
    assert resolved.close_asked_at is None
    assert closing.close_unanswered(resolved.id, now=utcnow() + timedelta(days=30)) is False


def test_stopped_notifications(client, ctx, service, make_agent, rasa):  # noqa: F811
    signed_post(client, "/webhooks/twilio/whatsapp", inbound_params("oi", sid="SM" + "5" * 32))
    inbound.process_due(rasa)
    off = client.patch(f"/api/v1/customers/by-phone/{PHONE}", headers=service, json={"notify_whatsapp": False})
    assert off.status_code == 200 and off.json["customer"]["notify_whatsapp"] is False
    assert client.patch(f"/api/v1/customers/by-phone/{PHONE}", headers=service,
                        json={"notify_whatsapp": "no"}).status_code == 422
    message = db.session.scalar(db.select(Message))
    ticket, _ = tickets.create(message.conversation.customer, "Troca", "Quero trocar o tamanho",
                               conversation=message.conversation)
    agent = make_agent()
    before = len(bodies())
    tickets.change_status(ticket, "open", agent)
    tickets.change_status(ticket, "pending", agent)
    assert len(bodies()) == before  # no status notifications
    # An agent's reply is an answer, not a notification: it still goes out.
    tickets.reply(ticket, agent, "Qual tamanho você prefere?")
    assert bodies()[-1] == "Qual tamanho você prefere?"
    on = client.patch(f"/api/v1/customers/by-phone/{PHONE}", headers=service, json={"notify_whatsapp": True})
    assert on.json["customer"]["notify_whatsapp"] is True
    tickets.change_status(ticket, "open", agent)
    assert "mudou de status" in bodies()[-1]
    assert db.session.scalar(db.select(db.func.count()).select_from(Ticket)) == 1


def test_the_status_page_tells_each_closing_step(client, resolved, service, rasa):  # noqa: F811
    from webapp.services.tokens import status_url
    client.post(f"/api/v1/tickets/{resolved.number}/close", headers=service, json={"phone": PHONE})
    signed_post(client, "/webhooks/twilio/whatsapp", inbound_params("5", sid="SM" + "6" * 32))
    inbound.process_due(rasa)
    from urllib.parse import urlsplit
    page = client.get(urlsplit(status_url(resolved.id)).path, follow_redirects=True).get_data(as_text=True)
    assert "Perguntamos no WhatsApp se o chamado pode ser encerrado" in page
    assert "Você confirmou o encerramento" in page
    assert "Sua avaliação: 5 de 5" in page
