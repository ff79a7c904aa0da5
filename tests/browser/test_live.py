"""Live updates in a real browser: what one agent (or a customer) changes
appears on another agent's open page without a reload, as inert text; after a
dropped connection the page catches up on what it missed."""
import re
import time

import pytest
from playwright.sync_api import expect

from webapp.extensions import db
from webapp.models import Conversation, LiveEvent
from webapp.services import customers, inbound, tickets

from ..conftest import inbound_params, signed_post
from .conftest import shot

pytestmark = pytest.mark.browser
XSS = '<img src=x onerror="window.__xss=1"><script>window.__xss=2</script>'


@pytest.fixture
def fast_live(app):
    keys = ("LIVE_POLL_SECONDS", "LIVE_RETRY_SECONDS", "LIVE_STREAM_SECONDS", "LIVE_HEARTBEAT_SECONDS")
    saved = {k: app.config[k] for k in keys}
    app.config.update(LIVE_POLL_SECONDS=0.1, LIVE_RETRY_SECONDS=0.5, LIVE_HEARTBEAT_SECONDS=1)
    yield app.config
    app.config.update(saved)


@pytest.fixture
def ticket(ctx, client):
    signed_post(client, "/webhooks/twilio/whatsapp", inbound_params("meu pedido veio errado", name=XSS))
    customer = customers.get_by_phone("5511988887777")
    ticket, _ = tickets.create(customer, "Pedido veio errado", "Pedi azul e veio vermelho")
    # A person holds the conversation: the customer's messages go to the ticket.
    inbound.handoff(db.session.scalar(db.select(Conversation)), reason="customer_request", announce=False)
    return ticket


@pytest.fixture
def agents(make_agent):
    return make_agent(), make_agent(email="bia@example.com", name="Bia Agent")


def open_as(browser, base, email, path):
    """A separate browser (own cookies) signed in as ``email``, on ``path``, following live updates."""
    context = browser.new_context(viewport={"width": 1280, "height": 800}, locale="en-US")
    page = context.new_page()
    # Script errors and CSP violations (reported on the console) fail the test.
    page.errors = []
    page.on("pageerror", lambda exc: page.errors.append(str(exc)))
    page.on("console", lambda msg: page.errors.append(f"{msg.text} {msg.location.get('url')}")
            if msg.type == "error" and not msg.location.get("url", "").endswith("/favicon.ico") else None)
    page.goto(f"{base}/agent/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill("correct horse battery")
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r"/agent/"))
    with page.expect_response(lambda r: "/agent/live?" in r.url and r.status == 200):
        page.goto(f"{base}{path}")
    page.evaluate("window.__sameDocument = true")
    return context, page


def post_as(context, base, path, form):
    """A form post from this browser's session (with its CSRF token)."""
    csrf = next(c["value"] for c in context.cookies() if c["name"] == "csrf_access_token")
    response = context.request.post(f"{base}{path}", form={**form, "csrf_token": csrf}, max_redirects=0)
    assert response.status == 302, response.text()


def test_an_agent_sees_another_agents_changes_and_new_tickets_without_reloading(
        browser, live_server, agents, ticket, fast_live):
    watcher, watching = open_as(browser, live_server, "ana@example.com", "/agent/")
    worker, _ = open_as(browser, live_server, "bia@example.com", f"/agent/tickets/{ticket.id}")
    try:
        row = watching.locator(f'#ticket-list tr[data-ticket="{ticket.id}"]')
        expect(row).to_contain_text("New")
        post_as(worker, live_server, f"/agent/tickets/{ticket.id}/status", {"status": "open"})
        expect(row).to_contain_text("Open", timeout=10_000)
        expect(watching.locator("#live-status")).to_have_text("Updated just now")

        # A new ticket from a customer (written by another process: the API or the worker).
        customer = customers.get_or_create_for_whatsapp("whatsapp:+5521977776666", profile_name=XSS).customer
        db.session.commit()
        new, _ = tickets.create(customer, f"Boleto {XSS}", "segunda via")
        new_row = watching.locator(f'#ticket-list tr[data-ticket="{new.id}"]')
        expect(new_row).to_contain_text(f"Boleto {XSS}", timeout=10_000)
        shot(watching, "live-ticket-list")
        # Customer text stays text: no element, no script ran.
        assert watching.locator("#ticket-list img").count() == 0
        assert watching.evaluate("window.__xss") is None
        assert watching.evaluate("window.__sameDocument") is True
        assert watching.errors == []
    finally:
        watcher.close()
        worker.close()


def test_a_customer_message_appears_on_the_open_ticket(browser, live_server, agents, ticket, fast_live, client):
    watcher, page = open_as(browser, live_server, "ana@example.com", f"/agent/tickets/{ticket.id}")
    try:
        signed_post(client, "/webhooks/twilio/whatsapp",
                    inbound_params(f"ainda espero {XSS}", sid="SM" + "e" * 32, name=XSS))
        message = page.locator("#timeline").get_by_text(f"ainda espero {XSS}")
        expect(message).to_be_visible(timeout=10_000)
        assert page.locator("#timeline img, #timeline script").count() == 0
        assert page.evaluate("window.__xss") is None
        assert page.evaluate("window.__sameDocument") is True
        assert page.errors == []
        shot(page, "live-ticket-timeline")
    finally:
        watcher.close()


def test_a_page_catches_up_after_its_connection_dropped(browser, live_server, agents, ticket, fast_live):
    fast_live["LIVE_STREAM_SECONDS"] = 2  # streams end often: the drop below comes soon
    watcher, page = open_as(browser, live_server, "ana@example.com", f"/agent/tickets/{ticket.id}")
    live_requests = []
    page.on("request", lambda r: live_requests.append(r) if "/agent/live?" in r.url else None)
    try:
        # The network drops: reconnections fail until it is back.
        page.route("**/agent/live?*", lambda route: route.abort())
        with page.expect_event("requestfailed", lambda r: "/agent/live?" in r.url, timeout=15_000):
            pass
        cursor = db.session.scalar(db.select(db.func.max(LiveEvent.id)))
        tickets.add_note(ticket, agents[1], "nota enquanto a conexão caiu")
        note = page.locator("#timeline").get_by_text("nota enquanto a conexão caiu")
        time.sleep(1.5)
        assert note.count() == 0  # nothing arrives while offline
        expect(page.locator("#live-status")).to_have_text("Live updates paused, reconnecting…", timeout=10_000)
        offline_requests = len(live_requests)
        page.unroute("**/agent/live?*")
        expect(note).to_be_visible(timeout=15_000)
        assert page.evaluate("window.__sameDocument") is True
        # The reconnection said where the page stood, and the server replayed what it missed.
        last = live_requests[offline_requests]
        sent = max(int(last.headers.get("last-event-id") or 0),
                   int((re.search(r"last_id=(\d+)", last.url) or [0, 0])[1]))
        assert 0 < sent <= cursor
    finally:
        watcher.close()
