"""The workspace in a real browser: canned responses managed by an admin and
inserted without JavaScript, assignment, and the Portuguese interface."""
import pytest

from webapp.extensions import db
from webapp.models import CannedResponse, Ticket, utcnow
from webapp.services import customers, tickets

from .conftest import ARGS, CHROMIUM, shot  # noqa: F401
from .test_agent_ui import login

pytestmark = pytest.mark.browser


@pytest.fixture
def ticket(ctx):
    conversation = customers.get_or_create_for_whatsapp("whatsapp:+5511988887777", profile_name="Maria")
    conversation.last_inbound_at = utcnow()  # the customer wrote: WhatsApp's window is open
    db.session.commit()
    ticket, _ = tickets.create(conversation.customer, "Troca de tamanho", "Quero um M")
    return ticket


def test_admin_manages_canned_responses(page, live_server, make_agent, ticket):
    make_agent(email="root@example.com", name="Root", role="admin")
    login(page, live_server, email="root@example.com")
    page.get_by_role("link", name="Canned responses").click()
    page.get_by_label("Title").fill("Pedido de foto")
    page.get_by_role("combobox", name="Language").select_option("pt")
    page.get_by_label("Text").fill("Olá {customer_name}, pode mandar uma foto?")
    page.get_by_role("button", name="Save").click()
    page.get_by_text("Canned response saved.").wait_for()
    page.get_by_role("link", name="Edit Pedido de foto").click()
    page.get_by_label("Title").fill("Foto do produto")
    page.get_by_role("button", name="Save").click()
    page.locator("tr[data-canned]", has_text="Foto do produto").wait_for()
    shot(page, "agent-canned-responses")
    assert db.session.scalar(db.select(CannedResponse.title)) == "Foto do produto"
    page.get_by_role("button", name="Delete Foto do produto").click()
    page.get_by_text("No canned responses yet.").wait_for()


def test_canned_insert_and_reply_work_without_javascript(browser, live_server, make_agent, ticket):
    admin = make_agent(email="root@example.com", name="Root", role="admin")
    from webapp.services import canned
    canned.create(admin, "Medida", "Oi {customer_name}, qual a sua medida?")
    context = browser.new_context(java_script_enabled=False, locale="en-US")
    page = context.new_page()
    try:
        make_agent()
        login(page, live_server)
        page.goto(f"{live_server}/agent/tickets/{ticket.id}")
        page.get_by_label("Reply on WhatsApp").fill("Bom dia!")
        page.get_by_role("button", name="Insert").click()  # a round trip to the server
        reply = page.get_by_label("Reply on WhatsApp")
        reply.wait_for()
        assert reply.input_value() == "Bom dia!\n\nOi Maria, qual a sua medida?"
        page.get_by_role("button", name="Send reply").click()
        page.locator(".msg.author-agent").wait_for()
        # Sending the same form again (a retry) does not send twice.
        page.go_back()
        page.get_by_role("button", name="Send reply").click()
        page.locator(".msg.author-agent").first.wait_for()
        assert page.locator(".msg.author-agent").count() == 1
    finally:
        context.close()


def test_assignment_in_the_browser(page, live_server, make_agent, ticket):
    make_agent()
    make_agent(email="bia@example.com", name="Bia")
    login(page, live_server)
    page.goto(f"{live_server}/agent/tickets/{ticket.id}")
    page.get_by_role("button", name="Take it").click()
    page.locator("#ticket-assignee", has_text="Ana Agent").wait_for()
    page.get_by_label("Assign to").select_option(label="Bia")
    page.get_by_role("button", name="Assign", exact=True).click()
    page.locator("#ticket-assignee", has_text="Bia").wait_for()
    assert "Assigned to Bia (was Ana Agent)" in page.locator("#timeline").inner_text()
    page.goto(f"{live_server}/agent/?assignee=none")
    page.get_by_text("No tickets here.").wait_for()
    db.session.expire_all()
    assert db.session.get(Ticket, ticket.id).assignee.name == "Bia"


def test_the_interface_in_portuguese(browser, live_server, make_agent, ticket):
    make_agent()
    context = browser.new_context(locale="pt-BR", viewport={"width": 1280, "height": 800})
    page = context.new_page()
    try:
        page.goto(f"{live_server}/agent/login")
        page.get_by_label("E-mail").fill("ana@example.com")
        page.get_by_label("Senha").fill("correct horse battery")
        page.get_by_role("button", name="Entrar").click()
        page.get_by_role("heading", name="Chamados").wait_for()
        assert page.get_by_role("button", name="Aplicar filtros").is_visible()
        page.get_by_role("link", name="Troca de tamanho").click()
        page.get_by_label("Responder no WhatsApp").wait_for()
        page.get_by_role("button", name="Em andamento").click()
        page.locator("#ticket-status", has_text="Em andamento").wait_for()
        shot(page, "agent-ticket-detail-pt")
        page.get_by_role("link", name="English").click()
        page.get_by_label("Reply on WhatsApp").wait_for()
    finally:
        context.close()
