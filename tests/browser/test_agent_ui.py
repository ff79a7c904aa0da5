"""The agent's day in a real browser: log in, open a ticket, reply, note, change status."""
import pytest

from webapp.extensions import db
from webapp.models import Message, Outbox, SimulatedMessage, TicketEvent
from webapp.services import customers, outbox, tickets

from ..conftest import inbound_params, signed_post
from .conftest import shot

pytestmark = pytest.mark.browser


@pytest.fixture
def ticket(ctx, client):
    signed_post(client, "/webhooks/twilio/whatsapp", inbound_params("oi, meu pedido veio errado <b>!</b>"))
    customer = customers.get_by_phone("5511988887777")
    customer.name = "Maria da Silva"
    db.session.commit()
    ticket, _ = tickets.create(customer, "Pedido veio errado", "Pedi azul e veio vermelho")
    return ticket


def login(page, base, email="ana@example.com", password="correct horse battery"):
    page.goto(f"{base}/agent/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def test_agent_works_a_ticket(page, live_server, make_agent, ticket):
    make_agent()
    page.goto(f"{live_server}/agent/")
    assert "/agent/login" in page.url
    login(page, live_server, password="wrong password")
    assert page.get_by_role("alert").inner_text() == "Invalid email or password."
    login(page, live_server)
    page.get_by_role("heading", name="Tickets").wait_for()
    shot(page, "agent-ticket-list")
    page.get_by_role("link", name="Pedido veio errado").click()
    page.get_by_role("heading", name=f"#{ticket.id} Pedido veio errado").wait_for()
    # Customer text is shown as text, never as markup.
    assert page.locator(".msg-in .body").first.inner_text() == "oi, meu pedido veio errado <b>!</b>"
    page.get_by_label("Reply on WhatsApp").fill("Olá Maria, vamos enviar o azul.")
    page.get_by_role("button", name="Send reply").click()
    page.locator(".msg.author-agent").wait_for()
    page.get_by_label("Internal note (never sent to the customer)").fill("Cliente pediu urgência")
    page.get_by_role("button", name="Add note").click()
    page.locator(".event-note").wait_for()
    page.get_by_label("Status").select_option("pending")
    page.get_by_role("button", name="Change status").click()
    assert page.locator("#ticket-status").inner_text() == "Waiting on customer"
    shot(page, "agent-ticket-detail")
    page.set_viewport_size({"width": 390, "height": 844})
    shot(page, "agent-ticket-detail-phone")

    db.session.expire_all()
    assert db.session.scalar(db.select(Message.body).filter_by(author="agent")) == "Olá Maria, vamos enviar o azul."
    assert db.session.scalar(db.select(TicketEvent.body).filter_by(kind="note")) == "Cliente pediu urgência"
    outbox.dispatch_due()  # through the fake Twilio API on the live server
    delivered = db.session.scalars(db.select(SimulatedMessage.body).order_by(SimulatedMessage.id)).all()
    assert delivered[0] == "Olá Maria, vamos enviar o azul."
    assert "Aguardando você" in delivered[1]
    assert db.session.scalar(db.select(db.func.count()).select_from(Outbox).where(Outbox.status == "sent")) == 2

    page.get_by_role("button", name="Log out").click()
    page.get_by_role("button", name="Sign in").wait_for()
    page.goto(f"{live_server}/agent/")
    assert "/agent/login" in page.url


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
