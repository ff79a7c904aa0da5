"""The agent's day in a real browser: log in, filter, open a ticket, reply,
add a note, change status, the customer's history; phone-sized screens and
Portuguese too."""
import pytest

from webapp.extensions import db
from webapp.models import Message, Outbox, SimulatedMessage, Ticket, TicketEvent
from webapp.services import canned, customers, outbox, tickets

from ..conftest import inbound_params, signed_post
from .conftest import shot

pytestmark = pytest.mark.browser


@pytest.fixture
def ticket(ctx, client):
    signed_post(client, "/webhooks/twilio/whatsapp", inbound_params("oi, meu pedido veio errado <b>!</b>"))
    customer = customers.get_by_phone("5511988887777")
    customer.name = "Maria da Silva"
    customer.email, customer.email_verified_at = "maria@example.com", customer.created_at
    db.session.commit()
    ticket, _ = tickets.create(customer, "Pedido veio errado", "Pedi azul e veio vermelho")
    other = customers.get_or_create_for_whatsapp("whatsapp:+5521977776666", profile_name="João").customer
    db.session.commit()
    for i in range(3):
        tickets.create(other, f"Boleto vencido {i}", "segunda via do boleto")
    return ticket


def login(page, base, email="ana@example.com", password="correct horse battery"):
    page.goto(f"{base}/agent/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def test_agent_works_a_ticket(page, live_server, make_agent, ticket):
    agent = make_agent()
    admin = make_agent(email="root@example.com", name="Root", role="admin")
    canned.create(admin, "Troca", "Olá {customer_name}, vamos trocar o pedido #{ticket_number}.", "pt")
    page.goto(f"{live_server}/agent/")
    assert "/agent/login" in page.url
    login(page, live_server, password="wrong password")
    assert page.get_by_role("alert").inner_text() == "Invalid email or password."
    login(page, live_server)
    page.get_by_role("heading", name="Tickets").wait_for()
    assert page.locator("#ticket-list tbody tr").count() == 4
    shot(page, "agent-ticket-list")

    # Filter: a search, then a status.
    page.get_by_label("Search").fill("boleto")
    page.get_by_role("button", name="Apply filters").click()
    page.wait_for_url("**q=boleto**")
    assert page.locator("#ticket-list tbody tr").count() == 3
    assert "3 tickets" in page.locator("#ticket-list .count").inner_text()
    page.get_by_label("Search").fill("")
    page.get_by_label("Status", exact=True).select_option("closed")
    page.get_by_role("button", name="Apply filters").click()
    page.get_by_text("No tickets here.").wait_for()
    page.get_by_role("link", name="Clear").click()
    page.get_by_role("link", name="Pedido veio errado").click()
    page.get_by_role("heading", name=f"#{ticket.id} Pedido veio errado").wait_for()
    # Customer text is shown as text, never as markup.
    assert page.locator(".msg-in .body").first.inner_text() == "oi, meu pedido veio errado <b>!</b>"

    # A canned response goes into the reply box where the cursor is; the keyboard is enough.
    reply = page.get_by_label("Reply on WhatsApp")
    reply.fill("Oi!")
    page.get_by_label("Canned response").focus()
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")
    assert reply.input_value() == f"Oi!\n\nOlá Maria da Silva, vamos trocar o pedido #{ticket.id}."
    assert page.url.endswith(f"/agent/tickets/{ticket.id}")  # no reload
    # A double click sends one reply.
    page.get_by_role("button", name="Send reply").dblclick()
    page.locator(".msg.author-agent").wait_for()
    assert page.locator(".msg.author-agent .delivery").inner_text() == "Queued"
    page.get_by_label("Internal note (never sent to the customer)").fill("Cliente pediu urgência")
    page.get_by_role("button", name="Add note").click()
    page.locator(".event-note").wait_for()
    assert "Internal note" in page.locator(".event-note").text_content()
    page.get_by_role("button", name="Waiting on customer").click()
    page.locator("#ticket-status", has_text="Waiting on customer").wait_for()
    page.get_by_label("Priority", exact=True).select_option("urgent")
    page.get_by_role("button", name="Save", exact=True).click()
    page.locator("#ticket-priority", has_text="Urgent").wait_for()
    assert page.locator("#timeline .event-status").last.inner_text().endswith("Open → Waiting on customer")
    shot(page, "agent-ticket-detail")
    page.set_viewport_size({"width": 390, "height": 844})
    shot(page, "agent-ticket-detail-phone")
    page.set_viewport_size({"width": 1280, "height": 800})

    db.session.expire_all()
    assert db.session.scalars(db.select(Message.body).filter_by(author="agent")).all() == [reply_text(ticket)]
    assert db.session.scalar(db.select(TicketEvent.body).filter_by(kind="note")) == "Cliente pediu urgência"
    saved = db.session.get(Ticket, ticket.id)
    assert (saved.status, saved.priority, saved.assignee_id) == ("pending", "urgent", agent.id)
    outbox.dispatch_due()  # through the fake Twilio API on the live server
    delivered = db.session.scalars(db.select(SimulatedMessage.body).order_by(SimulatedMessage.id)).all()
    assert delivered[0] == reply_text(ticket)
    assert "Aguardando você" in delivered[1]
    assert db.session.scalar(db.select(db.func.count()).select_from(Outbox)
                             .where(Outbox.channel == "whatsapp", Outbox.status == "sent")) == 2
    page.reload()
    assert page.locator(".msg.author-agent .delivery").inner_text() == "Sent"

    # One click to the customer's whole history.
    page.locator("#customer-link").click()
    page.get_by_role("heading", name="Maria da Silva").wait_for()
    history = page.locator("#customer-timeline").inner_text()
    for text in ("meu pedido veio errado <b>!</b>", reply_text(ticket), "Aguardando você", "Pedido veio errado"):
        assert text in history
    assert page.locator("#customer-timeline .email").count() >= 1  # the ticket-created email
    shot(page, "agent-customer-history")
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{live_server}/agent/")
    shot(page, "agent-ticket-list-phone")
    page.set_viewport_size({"width": 1280, "height": 800})

    page.get_by_role("button", name="Log out").click()
    page.get_by_role("button", name="Sign in").wait_for()
    page.goto(f"{live_server}/agent/")
    assert "/agent/login" in page.url


def reply_text(ticket):
    return f"Oi!\n\nOlá Maria da Silva, vamos trocar o pedido #{ticket.id}."


def test_simulator_sends_signed_webhooks_and_shows_replies(page, live_server, ctx):
    page.goto(f"{live_server}/dev/simulator")
    page.get_by_label("Message").fill("oi <script>alert(1)</script>")
    page.get_by_role("button", name="Enviar").click()
    page.locator(".bubble.me").wait_for()
    assert page.locator(".bubble.me div").inner_text() == "oi <script>alert(1)</script>"
    stored = db.session.scalar(db.select(Message).filter_by(direction="in"))
    assert stored.body == "oi <script>alert(1)</script>" and stored.status == "received"
    conversation = customers.get_or_create_for_whatsapp("whatsapp:+5511988887777")
    outbox.queue_whatsapp(conversation, "Olá! Como posso ajudar?", author="bot")
    db.session.commit()
    outbox.dispatch_due()
    page.locator(".bubble.them").wait_for()
    assert page.locator(".bubble.them div").inner_text() == "Olá! Como posso ajudar?"
    shot(page, "whatsapp-simulator")
