"""Agent pages through the test client: login cookie, CSRF, escaping, actions."""
import re

import pytest

from webapp.extensions import db
from webapp.models import Agent, Message, Outbox, Ticket, TicketEvent
from webapp.services import customers, tickets

from ..conftest import csrf_of, inbound_params, signed_post


@pytest.fixture
def ticket(ctx, client):
    signed_post(client, "/webhooks/twilio/whatsapp",
                inbound_params("<script>alert(1)</script> meu pedido", name="<b>Maria</b>"))
    customer = customers.get_by_phone("5511988887777")
    customer.name = "<img src=x onerror=alert(1)>"
    db.session.commit()
    ticket, _ = tickets.create(customer, "<i>Pedido</i> quebrado", "Descrição <script>x</script>")
    return ticket


def test_pages_need_login(client):
    response = client.get("/agent/")
    assert response.status_code == 302 and "/agent/login" in response.location
    assert client.get("/agent/tickets/1").status_code == 302


def test_login_sets_httponly_cookie_and_wrong_password_is_generic(client, make_agent):
    make_agent()
    bad = client.post("/agent/login", data={"email": "ana@example.com", "password": "wrong"})
    assert bad.status_code == 401 and b"Invalid email or password" in bad.data
    good = client.post("/agent/login", data={"email": "ana@example.com", "password": "correct horse battery",
                                             "next": "//evil.example.com/"})
    assert good.status_code == 302 and good.location == "/agent/"
    cookies = good.headers.getlist("Set-Cookie")
    access = next(c for c in cookies if c.startswith("access_token_cookie="))
    assert "HttpOnly" in access and "SameSite=Lax" in access
    assert any(c.startswith("csrf_access_token=") for c in cookies)


def test_ticket_list_and_detail_escape_customer_text(agent_client, ticket):
    page = agent_client.get("/agent/").get_data(as_text=True)
    assert "&lt;i&gt;Pedido&lt;/i&gt; quebrado" in page and "<i>Pedido</i>" not in page
    detail = agent_client.get(f"/agent/tickets/{ticket.id}")
    html = detail.get_data(as_text=True)
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<img src=x" not in html
    assert "default-src 'self'" in detail.headers["Content-Security-Policy"]


def test_posts_without_csrf_token_are_refused(agent_client, ticket):
    response = agent_client.post(f"/agent/tickets/{ticket.id}/status", data={"status": "open"})
    assert response.status_code in (302, 401)
    db.session.refresh(ticket)
    assert ticket.status == "new"


def test_status_change_is_recorded_and_notified(agent_client, ticket):
    csrf = csrf_of(agent_client)
    response = agent_client.post(f"/agent/tickets/{ticket.id}/status", data={"status": "open", "csrf_token": csrf})
    assert response.status_code == 302
    db.session.refresh(ticket)
    assert ticket.status == "open"
    event = db.session.scalar(db.select(TicketEvent).filter_by(kind="status"))
    assert event.data == {"from": "new", "to": "open"} and event.agent_id == agent_client.agent.id
    notice = db.session.scalar(db.select(Outbox).where(Outbox.channel == "whatsapp").order_by(Outbox.id.desc()))
    assert "Em atendimento" in notice.body and f"#{ticket.id}" in notice.body


def test_invalid_transition_shows_a_message(agent_client, ticket):
    csrf = csrf_of(agent_client)
    agent_client.post(f"/agent/tickets/{ticket.id}/status", data={"status": "closed", "csrf_token": csrf})
    response = agent_client.post(f"/agent/tickets/{ticket.id}/status", data={"status": "pending", "csrf_token": csrf},
                                 follow_redirects=True)
    assert "cannot go from" in response.get_data(as_text=True)
    db.session.refresh(ticket)
    assert ticket.status == "closed"


def test_reply_is_sent_once_even_when_submitted_twice(agent_client, ticket):
    page = agent_client.get(f"/agent/tickets/{ticket.id}").get_data(as_text=True)
    key = re.search(r'name="reply_key" value="([^"]+)"', page).group(1)
    data = {"body": "Olá! Vamos trocar seu produto.", "reply_key": key, "csrf_token": csrf_of(agent_client)}
    agent_client.post(f"/agent/tickets/{ticket.id}/reply", data=data)
    agent_client.post(f"/agent/tickets/{ticket.id}/reply", data=data)
    replies = db.session.scalars(db.select(Message).filter_by(author="agent")).all()
    assert len(replies) == 1 and replies[0].ticket_id == ticket.id
    db.session.refresh(ticket)
    assert ticket.status == "open" and ticket.assignee_id == agent_client.agent.id
    # The customer's answer must reach the agent, not the assistant.
    from webapp.models import Conversation
    assert db.session.scalar(db.select(Conversation)).handoff_ticket_id == ticket.id
    page = agent_client.get(f"/agent/tickets/{ticket.id}").get_data(as_text=True)
    assert "Vamos trocar seu produto." in page


def test_internal_note_is_never_sent(agent_client, ticket):
    data = {"body": "cliente VIP", "csrf_token": csrf_of(agent_client)}
    agent_client.post(f"/agent/tickets/{ticket.id}/note", data=data)
    note = db.session.scalar(db.select(TicketEvent).filter_by(kind="note"))
    assert note.body == "cliente VIP" and note.public is False
    assert not any("VIP" in o.body for o in db.session.scalars(db.select(Outbox)))


def test_customer_history_page(agent_client, ticket):
    html = agent_client.get(f"/agent/customers/{ticket.customer_id}").get_data(as_text=True)
    assert f"#{ticket.id}" in html and "meu pedido" in html


def test_logout_ends_every_session(agent_client, ticket):
    agent_client.post("/agent/logout", data={"csrf_token": csrf_of(agent_client)})
    agent = db.session.get(Agent, agent_client.agent.id)
    db.session.refresh(agent)
    assert agent.token_version == 1
    assert agent_client.get("/agent/").status_code == 302


def test_ticket_list_shows_only_active_by_default(agent_client, ticket):
    ticket.status = "closed"
    db.session.commit()
    assert "quebrado" not in agent_client.get("/agent/").get_data(as_text=True)
    assert "quebrado" in agent_client.get("/agent/?status=all").get_data(as_text=True)
    assert db.session.scalar(db.select(Ticket.status)) == "closed"


def test_agent_returns_a_handed_off_conversation_to_the_assistant(agent_client, ticket):
    from webapp.models import Conversation
    from webapp.services import inbound
    conversation = db.session.scalar(db.select(Conversation))
    inbound.handoff(conversation, reason="customer_request", announce=False)
    page = agent_client.get(f"/agent/tickets/{conversation.handoff_ticket_id}").get_data(as_text=True)
    assert "Return the conversation to the assistant" in page
    held = conversation.handoff_ticket_id
    agent_client.post(f"/agent/tickets/{held}/handback", data={"csrf_token": csrf_of(agent_client)})
    db.session.expire_all()
    assert db.session.scalar(db.select(Conversation)).handoff_ticket_id is None
    notice = db.session.scalar(db.select(Outbox).order_by(Outbox.id.desc()))
    assert "assistente virtual" in notice.body
    assert "Return the conversation" not in agent_client.get(f"/agent/tickets/{held}").get_data(as_text=True)


def test_resolving_the_ticket_gives_the_conversation_back(agent_client, ticket):
    from webapp.models import Conversation
    from webapp.services import inbound
    conversation = db.session.scalar(db.select(Conversation))
    held = inbound.handoff(conversation, reason="customer_request", announce=False)
    agent_client.post(f"/agent/tickets/{held.id}/status",
                      data={"status": "resolved", "csrf_token": csrf_of(agent_client)})
    db.session.expire_all()
    assert db.session.scalar(db.select(Conversation)).handoff_ticket_id is None
    kinds = [e.kind for e in db.session.get(Ticket, held.id).events]
    assert kinds[-2:] == ["status", "handback"]
