"""The customer's status page in a real browser: it follows the agents' changes without a reload."""
import re

import pytest
from playwright.sync_api import expect

from webapp.extensions import db
from webapp.models import Outbox
from webapp.services import customers, tickets
from webapp.services.tokens import make_status_token

from ..conftest import inbound_params, signed_post
from .conftest import shot

pytestmark = pytest.mark.browser
WAIT = 15_000  # ms: generous for 2 shared CPU cores; the page polls every 0.3 s here


@pytest.fixture
def ticket(ctx, client):
    signed_post(client, "/webhooks/twilio/whatsapp", inbound_params("oi, meu pedido veio errado"))
    customer = customers.get_by_phone("5511988887777")
    customer.name = "Maria da Silva"
    customer.email = "maria@example.com"
    customer.email_verified_at = customer.created_at
    db.session.commit()
    ticket, _ = tickets.create(customer, "Pedido veio errado", "Pedi azul e veio vermelho")
    return ticket


@pytest.fixture
def fast_polling(app, monkeypatch):
    monkeypatch.setitem(app.config, "STATUS_POLL_SECONDS", 0.3)


@pytest.fixture
def console_errors(page):
    """Script errors and Content-Security-Policy violations (not the status codes of the friendly
    4xx pages, the missing favicon or the requests of an offline page, which Chromium logs too)."""
    errors = []

    def console(message):
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            errors.append(message.text)
    page.on("console", console)
    page.on("pageerror", lambda error: errors.append(str(error)))
    return errors


def test_the_status_page_follows_agent_changes_without_reload(page, live_server, ticket, make_agent, fast_polling,
                                                              console_errors):
    token = make_status_token(ticket.id, lang="pt")
    page.goto(f"{live_server}/t/{token}")
    assert page.url == f"{live_server}/t/{ticket.id}"  # the token left the address bar
    expect(page.locator("#ticket-status")).to_have_text("Novo")
    page.evaluate("window.notReloaded = true")  # gone if the page reloads

    agent = make_agent()
    tickets.reply(ticket, agent, "Olá Maria, <b>vamos trocar</b> o produto")
    tickets.add_note(ticket, agent, "nota interna: cliente antiga")
    expect(page.locator("#ticket-status")).to_have_text("Em atendimento", timeout=WAIT)
    reply = page.locator("#ticket-timeline .event-reply .event-text")
    # Text is shown as text, never as markup.
    expect(reply).to_have_text("Resposta da equipe: Olá Maria, <b>vamos trocar</b> o produto")
    assert page.locator("#ticket-timeline b").count() == 0
    expect(page.locator("#ticket-live")).not_to_contain_text("nota interna")
    # Screen readers hear about it.
    expect(page.locator("#status-announce")).to_contain_text(f"Chamado #{ticket.id} atualizado", timeout=WAIT)
    shot(page, "status-page-live")

    # The connection drops; a change happens meanwhile; the page says so, then catches up.
    page.context.set_offline(True)
    tickets.change_status(ticket, "resolved", agent)
    expect(page.locator("#status-connection")).to_be_visible(timeout=WAIT)
    expect(page.locator("#status-connection")).to_contain_text("Sem conexão")
    page.context.set_offline(False)
    expect(page.locator("#ticket-status")).to_have_text("Resolvido", timeout=WAIT)
    expect(page.locator("#status-connection")).to_be_hidden()
    expect(page.locator("#ticket-timeline")).to_contain_text("Status alterado para Resolvido")

    assert page.evaluate("window.notReloaded") is True
    assert console_errors == []


def test_the_page_stops_and_explains_when_its_cookie_is_gone(page, live_server, ticket, fast_polling):
    page.goto(f"{live_server}/t/{make_status_token(ticket.id, lang='pt')}")
    expect(page.locator("#ticket-status")).to_have_text("Novo")
    page.context.clear_cookies()
    expect(page.locator("#status-connection")).to_contain_text("abra de novo o link do seu e-mail", timeout=WAIT)


def test_an_expired_link_gets_a_fresh_one_by_email(page, live_server, ticket, console_errors):
    page.goto(f"{live_server}/t/{make_status_token(ticket.id, days=-1, lang='en')}")
    expect(page.get_by_role("heading", name="This link has expired")).to_be_visible()
    shot(page, "status-page-expired")
    page.get_by_role("button", name="Send me a new link").click()
    expect(page.get_by_role("heading", name="We sent you a new link")).to_be_visible()
    assert re.search(r"/t/resent\?", page.url)
    expect(page.locator("main")).not_to_contain_text("maria@example.com")
    db.session.expire_all()
    rows = db.session.scalars(db.select(Outbox).filter_by(purpose="status_link")).all()
    assert [(r.channel, r.recipient) for r in rows] == [("email", "maria@example.com")]
    assert console_errors == []
