"""Agent pages through the test client: login cookie, CSRF, escaping, the
ticket list and its filters, the ticket page's actions, canned responses and
the customer's history."""
import re

import pytest

from webapp.extensions import db
from webapp.models import Agent, Conversation, Message, Outbox, Ticket, TicketEvent
from webapp.services import canned, customers, inbound, tickets

from ..conftest import csrf_of, inbound_params, login, signed_post


@pytest.fixture
def ticket(ctx, client):
    signed_post(client, "/webhooks/twilio/whatsapp",
                inbound_params("<script>alert(1)</script> meu pedido", name="<b>Maria</b>"))
    customer = customers.get_by_phone("5511988887777")
    customer.name = '"><img src=x onerror=alert(1)>'
    db.session.commit()
    ticket, _ = tickets.create(customer, "<i>Pedido</i> quebrado", "Descrição <script>x</script>")
    return ticket


def post(client, path, **data):
    return client.post(path, data={"csrf_token": csrf_of(client), **data})


def test_pages_need_login(client):
    response = client.get("/agent/")
    assert response.status_code == 302 and "/agent/login" in response.location
    assert client.get("/agent/tickets/1").status_code == 302
    assert client.get("/agent/customers/1").status_code == 302


def test_login_sets_httponly_cookie_and_wrong_password_is_generic(client, make_agent):
    make_agent()
    bad = login(client, "ana@example.com", "wrong")
    assert bad.status_code == 401 and b"Invalid email or password" in bad.data
    good = login(client, "ana@example.com", "correct horse battery", next="//evil.example.com/")
    assert good.status_code == 302 and good.location == "/agent/"
    cookies = good.headers.getlist("Set-Cookie")
    access = next(c for c in cookies if c.startswith("access_token_cookie="))
    assert "HttpOnly" in access and "SameSite=Lax" in access
    assert any(c.startswith("csrf_access_token=") for c in cookies)


def test_ticket_list_and_detail_escape_customer_text(agent_client, ticket):
    page = agent_client.get("/agent/").get_data(as_text=True)
    assert "&lt;i&gt;Pedido&lt;/i&gt; quebrado" in page and "<i>Pedido</i>" not in page
    canned.create(_admin(), "Oi", "Olá {customer_name}!")
    detail = agent_client.get(f"/agent/tickets/{ticket.id}")
    html = detail.get_data(as_text=True)
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<img src=x" not in html and 'data-text="Olá &#34;&gt;&lt;img' in html
    assert "default-src 'self'" in detail.headers["Content-Security-Policy"]
    history = agent_client.get(f"/agent/customers/{ticket.customer_id}").get_data(as_text=True)
    assert "<img src=x" not in history and "<script>alert(1)" not in history


def _admin():
    from webapp.services import agents
    return agents.create(email="root@example.com", name="Root", password="correct horse battery", role="admin")


def test_posts_without_csrf_token_are_refused(agent_client, ticket):
    response = agent_client.post(f"/agent/tickets/{ticket.id}/status", data={"status": "open"})
    assert response.status_code in (302, 401, 403)
    db.session.refresh(ticket)
    assert ticket.status == "new"


def test_status_change_is_recorded_and_notified(agent_client, ticket):
    response = post(agent_client, f"/agent/tickets/{ticket.id}/status", status="open")
    assert response.status_code == 302
    db.session.refresh(ticket)
    assert ticket.status == "open"
    event = db.session.scalar(db.select(TicketEvent).filter_by(kind="status"))
    assert event.data == {"from": "new", "to": "open"} and event.agent_id == agent_client.agent.id
    notice = db.session.scalar(db.select(Outbox).where(Outbox.channel == "whatsapp").order_by(Outbox.id.desc()))
    assert "Em atendimento" in notice.body and f"#{ticket.id}" in notice.body
    page = agent_client.get(f"/agent/tickets/{ticket.id}").get_data(as_text=True)
    timeline = page[page.index('id="timeline"'):]
    assert "New → <strong>Open</strong>" in timeline and "Ana Agent" in timeline


def test_only_allowed_transitions_are_offered_and_others_refused(agent_client, ticket):
    page = agent_client.get(f"/agent/tickets/{ticket.id}").get_data(as_text=True)
    offered = set(re.findall(r'name="status" value="([a-z_]+)"', page))
    assert offered == {"open", "in_progress", "closed"}
    post(agent_client, f"/agent/tickets/{ticket.id}/status", status="closed")
    response = agent_client.post(f"/agent/tickets/{ticket.id}/status",
                                 data={"status": "pending", "csrf_token": csrf_of(agent_client)},
                                 follow_redirects=True)
    assert "A ticket cannot go from Closed to Waiting on customer." in response.get_data(as_text=True)
    db.session.refresh(ticket)
    assert ticket.status == "closed"
    page = agent_client.get(f"/agent/tickets/{ticket.id}").get_data(as_text=True)
    assert re.findall(r'name="status" value="([a-z_]+)"', page) == ["open"] and "Reopen" in page


def test_reply_is_sent_once_even_when_submitted_twice(agent_client, ticket):
    page = agent_client.get(f"/agent/tickets/{ticket.id}").get_data(as_text=True)
    key = re.search(r'name="reply_key" value="([^"]+)"', page).group(1)
    data = {"body": "Olá! Vamos trocar seu produto.", "reply_key": key, "csrf_token": csrf_of(agent_client)}
    agent_client.post(f"/agent/tickets/{ticket.id}/reply", data=data)
    agent_client.post(f"/agent/tickets/{ticket.id}/reply", data=data)
    replies = db.session.scalars(db.select(Message).filter_by(author="agent")).all()
    assert len(replies) == 1 and replies[0].ticket_id == ticket.id
    assert db.session.scalar(db.select(db.func.count()).select_from(Outbox)
                             .filter_by(message_id=replies[0].id)) == 1
    db.session.refresh(ticket)
    assert ticket.status == "open" and ticket.assignee_id == agent_client.agent.id
    # The customer's answer must reach the agent, not the assistant.
    assert db.session.scalar(db.select(Conversation)).handoff_ticket_id == ticket.id
    page = agent_client.get(f"/agent/tickets/{ticket.id}").get_data(as_text=True)
    assert "Vamos trocar seu produto." in page
    assert re.search(r'class="delivery delivery-queued"[^>]*>Queued<', page)


def test_delivery_status_and_failure_reason_are_shown(agent_client, ticket):
    message = tickets.reply(ticket, agent_client.agent, "Primeira", client_key="a")
    failed = tickets.reply(ticket, agent_client.agent, "Segunda", client_key="b")
    message.status = "read"
    failed.status, failed.error = "failed", "Twilio error 63016"
    db.session.commit()
    page = agent_client.get(f"/agent/tickets/{ticket.id}").get_data(as_text=True)
    assert re.search(r'delivery-read"[^>]*>Read<', page)
    assert re.search(r'delivery-failed"[^>]*>Failed<', page) and "Not delivered: Twilio error 63016" in page


def test_internal_note_is_never_sent_and_stands_out_on_the_timeline(agent_client, ticket):
    post(agent_client, f"/agent/tickets/{ticket.id}/note", body="cliente VIP")
    note = db.session.scalar(db.select(TicketEvent).filter_by(kind="note"))
    assert note.body == "cliente VIP" and note.public is False
    assert not any("VIP" in o.body for o in db.session.scalars(db.select(Outbox)))
    page = agent_client.get(f"/agent/tickets/{ticket.id}").get_data(as_text=True)
    timeline = page[page.index('id="timeline"'):page.index('id="reply-form"')]
    assert re.search(r'class="event event-note".*Internal note.*cliente VIP', timeline, re.S)


def test_assignment_from_the_ticket_page(agent_client, ticket, make_agent):
    bia = make_agent(email="bia@example.com", name="Bia")
    me = agent_client.agent
    post(agent_client, f"/agent/tickets/{ticket.id}/assign", assignee="me")
    assert db.session.get(Ticket, ticket.id).assignee_id == me.id
    post(agent_client, f"/agent/tickets/{ticket.id}/assign", assignee=str(bia.id))
    db.session.expire_all()
    assert db.session.get(Ticket, ticket.id).assignee_id == bia.id
    # Now it is Bia's: Ana may not take it back.
    response = agent_client.post(f"/agent/tickets/{ticket.id}/assign",
                                 data={"assignee": "me", "csrf_token": csrf_of(agent_client)}, follow_redirects=True)
    assert "Only the assignee or an admin can reassign this ticket." in response.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(Ticket, ticket.id).assignee_id == bia.id
    assert post(agent_client, f"/agent/tickets/{ticket.id}/assign", assignee="bogus").status_code == 400
    page = agent_client.get(f"/agent/tickets/{ticket.id}").get_data(as_text=True)
    assert "Assigned to Bia" in page and "was Ana Agent" in page


def test_priority_and_category(agent_client, ticket):
    post(agent_client, f"/agent/tickets/{ticket.id}/details", priority="urgent", category="delivery")
    db.session.expire_all()
    fresh = db.session.get(Ticket, ticket.id)
    assert (fresh.priority, fresh.category) == ("urgent", "delivery")
    kinds = [e.kind for e in fresh.events]
    assert "priority" in kinds and "category" in kinds
    response = agent_client.post(f"/agent/tickets/{ticket.id}/details",
                                 data={"priority": "whenever", "csrf_token": csrf_of(agent_client)},
                                 follow_redirects=True)
    assert "Unknown priority" in response.get_data(as_text=True)


def test_the_list_filters_searches_and_pages(agent_client, ticket, make_agent):
    me = agent_client.agent
    conversation = customers.get_or_create_for_whatsapp("whatsapp:+5521977776666", profile_name="João")
    db.session.commit()
    for i in range(30):
        other, _ = tickets.create(conversation.customer, f"Boleto {i:02d}", "segunda via")
        if i % 10 == 0:
            tickets.update(other, me, priority="urgent")
    tickets.take(ticket, me)
    page = agent_client.get("/agent/?assignee=mine").get_data(as_text=True)
    assert "quebrado" in page and "Boleto" not in page and 'id="ticket-list"' in page
    page = agent_client.get("/agent/?priority=urgent").get_data(as_text=True)
    assert set(re.findall(r"Boleto \d\d", page)) == {"Boleto 00", "Boleto 10", "Boleto 20"}
    page = agent_client.get("/agent/?q=joao+boleto+07").get_data(as_text=True)
    assert re.findall(r"Boleto \d\d", page) == ["Boleto 07"] and "1 ticket" in page
    first = agent_client.get("/agent/?q=boleto&sort=oldest").get_data(as_text=True)
    assert "30 tickets" in first and re.findall(r"Boleto \d\d", first)[0] == "Boleto 00"
    assert len(re.findall(r'data-ticket="\d+"', first)) == 25
    next_link = re.search(r'href="([^"]+)" rel="next"', first).group(1).replace("&amp;", "&")
    assert "q=boleto" in next_link and "sort=oldest" in next_link
    second = agent_client.get(next_link).get_data(as_text=True)
    assert re.findall(r"Boleto \d\d", second) == [f"Boleto {i}" for i in range(25, 30)]
    assert 'rel="prev"' in second and 'rel="next"' not in second


def test_a_bad_filter_is_explained_not_a_500(agent_client, ticket):
    response = agent_client.get("/agent/?status=sideways&cursor=zzz")
    assert response.status_code == 200
    assert "Unknown status" in response.get_data(as_text=True)


def test_canned_responses_admin_page_and_insert_without_javascript(agent_client, ticket, make_agent):
    assert agent_client.get("/agent/canned").status_code == 403
    assert post(agent_client, "/agent/canned", title="x", body="y").status_code == 403
    admin = make_agent(email="root@example.com", name="Root", role="admin")
    agent_client.post("/agent/logout", data={"csrf_token": csrf_of(agent_client)})
    assert login(agent_client, admin.email, "correct horse battery").status_code == 302
    post(agent_client, "/agent/canned", title="Troca", body="Olá {customer_name}, seu chamado #{ticket_number}.",
         language="pt")
    listing = agent_client.get("/agent/canned").get_data(as_text=True)
    assert "Troca" in listing
    saved = canned.all_responses()[0]
    duplicate = post(agent_client, "/agent/canned", title="Troca", body="de novo")
    assert duplicate.status_code == 409
    post(agent_client, "/agent/canned", id=str(saved.id), title="Troca de produto", body=saved.body, language="pt")
    db.session.expire_all()
    assert canned.all_responses()[0].title == "Troca de produto"

    page = agent_client.get(f"/agent/tickets/{ticket.id}").get_data(as_text=True)
    key = re.search(r'name="reply_key" value="([^"]+)"', page).group(1)
    composed = post(agent_client, f"/agent/tickets/{ticket.id}/compose", body="Oi!", canned_id=str(saved.id),
                    reply_key=key)
    html = composed.get_data(as_text=True)
    expected = f"Oi!\n\nOlá &#34;&gt;&lt;img src=x onerror=alert(1)&gt;, seu chamado #{ticket.id}."
    assert composed.status_code == 200 and f">{expected}</textarea>" in html
    assert f'name="reply_key" value="{key}"' in html  # the same reply, still sent once
    post(agent_client, f"/agent/canned/{saved.id}/delete")
    assert canned.all_responses() == []


def test_customer_history_has_every_ticket_message_and_email(agent_client, ticket):
    customer = ticket.customer
    customer.email, customer.email_verified_at = "maria@example.com", customer.created_at
    from webapp.services import outbox
    outbox.queue_email("maria@example.com", "Seu código", "123456")
    outbox.queue_email("other@example.com", "Not hers", "x")
    conversation = db.session.scalar(db.select(Conversation))
    outbox.queue_whatsapp(conversation, "Resposta do assistente", author="bot")
    db.session.commit()
    tickets.reply(ticket, agent_client.agent, "Resposta da Ana", client_key="k")
    tickets.change_status(ticket, "pending", agent_client.agent)
    second, _ = tickets.create(customer, "Segundo pedido", "")
    html = agent_client.get(f"/agent/customers/{customer.id}").get_data(as_text=True)
    timeline = html[html.index('id="customer-timeline"'):]
    for text in ("meu pedido", "Resposta do assistente", "Resposta da Ana", "Aguardando você", "Seu código",
                 f"#{ticket.id}", "Segundo pedido"):
        assert text in timeline, text
    assert "Not hers" not in html and "123456" not in html  # subjects only: codes never shown
    assert "maria@example.com" in html and "verified" in html
    positions = [timeline.index(t) for t in ("meu pedido", "Resposta da Ana", "Segundo pedido")]
    assert positions == sorted(positions)
    detail = agent_client.get(f"/agent/tickets/{ticket.id}").get_data(as_text=True)
    assert f'href="/agent/customers/{customer.id}" id="customer-link"' in detail


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


def test_agent_returns_a_handed_off_conversation_to_the_assistant(agent_client, ticket):
    conversation = db.session.scalar(db.select(Conversation))
    inbound.handoff(conversation, reason="customer_request", announce=False)
    page = agent_client.get(f"/agent/tickets/{conversation.handoff_ticket_id}").get_data(as_text=True)
    assert "Return the conversation to the assistant" in page
    held = conversation.handoff_ticket_id
    post(agent_client, f"/agent/tickets/{held}/handback")
    db.session.expire_all()
    assert db.session.scalar(db.select(Conversation)).handoff_ticket_id is None
    notice = db.session.scalar(db.select(Outbox).order_by(Outbox.id.desc()))
    assert "assistente virtual" in notice.body
    assert "Return the conversation" not in agent_client.get(f"/agent/tickets/{held}").get_data(as_text=True)


def test_resolving_the_ticket_gives_the_conversation_back(agent_client, ticket):
    conversation = db.session.scalar(db.select(Conversation))
    held = inbound.handoff(conversation, reason="customer_request", announce=False)
    post(agent_client, f"/agent/tickets/{held.id}/status", status="in_progress")
    post(agent_client, f"/agent/tickets/{held.id}/status", status="resolved")
    db.session.expire_all()
    assert db.session.scalar(db.select(Conversation)).handoff_ticket_id is None
    kinds = [e.kind for e in db.session.get(Ticket, held.id).events]
    assert "handback" in kinds[kinds.index("status"):]


def test_the_interface_speaks_portuguese_when_asked(agent_client, ticket):
    english = agent_client.get(f"/agent/tickets/{ticket.id}").get_data(as_text=True)
    assert "Reply on WhatsApp" in english and '<html lang="en">' in english
    portuguese = agent_client.get(f"/agent/tickets/{ticket.id}", headers={"Accept-Language": "pt-BR,pt;q=0.9"})
    html = portuguese.get_data(as_text=True)
    assert "Responder no WhatsApp" in html and "Nota interna (nunca enviada ao cliente)" in html
    assert '<html lang="pt-BR">' in html
    # The switch wins over the browser's language, and is remembered.
    switched = agent_client.get(f"/agent/language?lang=en&next=/agent/tickets/{ticket.id}",
                                headers={"Accept-Language": "pt-BR"})
    assert switched.status_code == 302 and switched.location == f"/agent/tickets/{ticket.id}"
    again = agent_client.get("/agent/", headers={"Accept-Language": "pt-BR"}).get_data(as_text=True)
    assert "Apply filters" in again
    agent_client.get("/agent/language?lang=pt_BR&next=https://evil.example.com/")
    listing = agent_client.get("/agent/").get_data(as_text=True)
    assert "Aplicar filtros" in listing and "Chamados" in listing
    refused = agent_client.post(f"/agent/tickets/{ticket.id}/status",
                                data={"status": "resolved", "csrf_token": csrf_of(agent_client)},
                                follow_redirects=True)
    assert "Um chamado não pode passar de Novo para Resolvido." in refused.get_data(as_text=True)
