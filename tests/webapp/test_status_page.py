"""The emailed status link: one ticket, read only, expiring."""
import re

import jwt
import pytest

from webapp.extensions import db
from webapp.services import customers, outbox, tickets
from webapp.services.tokens import make_status_token


@pytest.fixture
def ticket(ctx):
    customer = customers.register("whatsapp:+5511988887777", "Maria", "maria@example.com")
    customer.email_verified_at = customer.created_at
    db.session.commit()
    ticket, _ = tickets.create(customer, "Pedido quebrado", "Chegou quebrado")
    return ticket


def test_confirmation_email_link_opens_the_status_page(client, ticket, inbox):
    outbox.dispatch_due()
    mail = inbox.messages()[-1]
    assert f"#{ticket.number}" in mail["Subject"]
    url = re.search(r"https://desk\.example\.com(/t/\S+)", mail.get_body(("plain",)).get_content()).group(1)
    page = client.get(url)
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "Pedido quebrado" in html and "Novo" in html
    assert page.headers["Referrer-Policy"] == "no-referrer"
    assert page.headers["Cache-Control"] == "no-store"


def test_status_page_shows_changes_and_public_replies_only(client, ticket, make_agent):
    agent = make_agent()
    tickets.change_status(ticket, "open", agent)
    tickets.reply(ticket, agent, "Vamos trocar o produto")
    tickets.add_note(ticket, agent, "segredo interno")
    html = client.get(f"/t/{make_status_token(ticket.id)}").get_data(as_text=True)
    assert "Em atendimento" in html and "Vamos trocar o produto" in html
    assert "segredo interno" not in html


def test_opening_the_link_changes_nothing(client, ticket):
    token = make_status_token(ticket.id)
    before = ticket.to_dict()
    for _ in range(3):
        assert client.get(f"/t/{token}").status_code == 200
    db.session.refresh(ticket)
    assert ticket.to_dict() == before


def test_expired_damaged_and_foreign_tokens_are_refused(app, client, ticket):
    expired = make_status_token(ticket.id, days=-1)
    damaged = make_status_token(ticket.id)[:-3] + "abc"
    forged = jwt.encode({"aud": "zapdesk:ticket-status", "sub": str(ticket.id), "scope": "ticket:read",
                         "exp": 4102444800}, app.config["SECRET_KEY"], algorithm="HS256")
    for token in (expired, damaged, forged, "garbage"):
        response = client.get(f"/t/{token}")
        assert response.status_code == 403
        assert "expirou" in response.get_data(as_text=True)
    other = make_status_token(ticket.id + 1000)
    assert client.get(f"/t/{other}").status_code == 404


def test_status_token_cannot_call_the_api(client, ticket):
    token = make_status_token(ticket.id)
    response = client.get(f"/api/v1/tickets/{ticket.id}", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401


def test_english_customer_gets_an_english_page(client, ctx):
    customer = customers.register("whatsapp:+447700900123", "John", "john@example.com", "en")
    customer.email_verified_at = customer.created_at
    db.session.commit()
    ticket, _ = tickets.create(customer, "Broken", "It broke")
    html = client.get(f"/t/{make_status_token(ticket.id)}").get_data(as_text=True)
    assert "Ticket #" in html and "New" in html and 'lang="en"' in html
