"""The emailed status link: one ticket, read only, exchanged for a cookie, expiring."""
import re
from datetime import timedelta
from http.cookies import SimpleCookie

import jwt
import pytest

from webapp.extensions import db
from webapp.models import Customer, Message, Outbox, utcnow
from webapp.services import customers, inbound, outbox, tickets
from webapp.services.tokens import (
    check_status_token,
    make_status_session,
    make_status_token,
    read_status_session,
    read_status_token,
)

from ..conftest import inbound_params, signed_post

EMAIL = "maria@example.com"


@pytest.fixture
def ticket(ctx):
    customer = customers.register("whatsapp:+5511988887777", "Maria", EMAIL)
    customer.email_verified_at = customer.created_at
    db.session.commit()
    ticket, _ = tickets.create(customer, "Pedido quebrado", "Chegou quebrado")
    return ticket


@pytest.fixture
def whatsapp_ticket(ctx, client):
    """A ticket of a WhatsApp customer without a verified email, with a conversation."""
    signed_post(client, "/webhooks/twilio/whatsapp", inbound_params("oi", phone="+5511977776666"))
    customer = customers.get_by_phone("5511977776666")
    ticket, _ = tickets.create(customer, "Troca de produto", "Quero trocar")
    return ticket


def set_cookies(response) -> dict[str, dict]:
    """The Set-Cookie headers of a response: name -> {value, attributes...}."""
    cookies = {}
    for header in response.headers.getlist("Set-Cookie"):
        parsed = SimpleCookie()
        parsed.load(header)
        for name, morsel in parsed.items():
            cookies[name] = {"value": morsel.value, "header": header,
                             **{k: v for k, v in morsel.items() if v}}
    return cookies


def get_with_cookie(app, path, value):
    """A request from a fresh browser that sends ``value`` as the status cookie (path /: sent everywhere)."""
    browser = app.test_client()
    browser.set_cookie("zd_status", value, path="/")
    return browser.get(path)


def open_link(client, ticket_id, **kwargs):
    """Open the emailed link as a browser does: the exchange, then the page."""
    exchange = client.get(f"/t/{make_status_token(ticket_id, **kwargs)}")
    assert exchange.status_code == 303
    return client.get(exchange.headers["Location"])


def snapshot() -> dict:
    """Every row of every table, to prove that nothing changed."""
    db.session.expire_all()
    return {table.name: sorted(map(repr, db.session.execute(table.select()).all()))
            for table in db.metadata.sorted_tables}


# --- the exchange ----------------------------------------------------------------------------------

def test_the_emailed_link_is_exchanged_for_a_cookie_and_a_url_without_the_token(client, ticket, inbox):
    outbox.dispatch_due()
    mail = inbox.messages()[-1]
    assert f"#{ticket.number}" in mail["Subject"]
    url = re.search(r"https://desk\.example\.com(/t/\S+)", mail.get_body(("plain",)).get_content()).group(1)
    token = url.rsplit("/", 1)[1]

    exchange = client.get(url)
    assert exchange.status_code == 303
    assert exchange.headers["Location"] == f"/t/{ticket.id}"
    assert token not in exchange.headers["Location"]
    assert exchange.headers["Referrer-Policy"] == "no-referrer"
    cookie = set_cookies(exchange)["zd_status"]
    assert cookie["path"] == f"/t/{ticket.id}"
    assert cookie["httponly"] and cookie["samesite"] == "Lax"
    assert "Secure" not in cookie["header"]  # local http in tests; production forces it (below)
    assert 3500 <= int(cookie["max-age"]) <= 3600  # short-lived: STATUS_SESSION_MINUTES
    assert cookie["value"] != token

    page = client.get(f"/t/{ticket.id}")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "Pedido quebrado" in html and "Novo" in html and 'lang="pt"' in html
    assert token not in html
    assert page.headers["Referrer-Policy"] == "no-referrer"
    assert page.headers["Cache-Control"] == "no-store"
    assert '<script src="/static/status_page.js"' in html and "<script>" not in html  # CSP: no inline script


def test_the_cookie_is_secure_when_configured(app, client, ticket, monkeypatch):
    monkeypatch.setitem(app.config, "STATUS_COOKIE_SECURE", True)
    exchange = client.get(f"/t/{make_status_token(ticket.id)}")
    assert "Secure" in set_cookies(exchange)["zd_status"]["header"]


def test_production_refuses_status_cookies_without_secure():
    from webapp.config import ProductionConfig, check_production
    assert ProductionConfig.STATUS_COOKIE_SECURE is True
    good = {"SECRET_KEY": "x" * 40, "JWT_SECRET_KEY": "y" * 40, "TWILIO_AUTH_TOKEN": "real",
            "PUBLIC_BASE_URL": "https://desk.example.com", "DEV_TOOLS": False, "JWT_COOKIE_SECURE": True}
    check_production({**good, "STATUS_COOKIE_SECURE": True})
    with pytest.raises(RuntimeError, match="STATUS_COOKIE_SECURE"):
        check_production({**good, "STATUS_COOKIE_SECURE": False})


def test_a_cookie_for_one_ticket_cannot_read_another(app, client, ticket):
    other, _ = tickets.create(ticket.customer, "Outro pedido", "segredo do outro chamado")
    exchange = client.get(f"/t/{make_status_token(ticket.id)}")
    value = set_cookies(exchange)["zd_status"]["value"]
    assert client.get(f"/t/{ticket.id}").status_code == 200
    assert client.get(f"/t/{other.id}").status_code == 403
    # The browser would not send it (path /t/<id>); sent by hand, the ticket claim refuses it.
    for path in (f"/t/{other.id}", f"/t/{other.id}/updates"):
        response = get_with_cookie(app, path, value)
        assert response.status_code in (401, 403)
        assert "Outro pedido" not in response.get_data(as_text=True)
    assert read_status_session(value, ticket.id) is not None
    assert read_status_session(value, other.id) is None
    # Nor does a link token pass for the cookie, or the cookie for a link.
    link = make_status_token(other.id)
    assert get_with_cookie(app, f"/t/{other.id}", link).status_code == 403
    assert get_with_cookie(app, f"/t/{ticket.id}", value).status_code == 200  # the same cookie, its own ticket
    assert check_status_token(value).state == "invalid"


def test_without_the_cookie_the_page_asks_to_open_the_link_again(client, ticket):
    response = client.get(f"/t/{ticket.id}")
    html = response.get_data(as_text=True)
    assert response.status_code == 403
    assert "Abra de novo o link do seu e-mail" in html and "Pedido quebrado" not in html
    english = client.get(f"/t/{ticket.id}", headers={"Accept-Language": "en-GB,en;q=0.9"})
    assert "Open the link in your email again" in english.get_data(as_text=True)
    assert client.get(f"/t/{ticket.id}/updates").status_code == 401


def test_the_cookie_expires_and_is_renewed_only_up_to_the_link_expiry(app, client, ticket, monkeypatch):
    long_session, _ = make_status_session(ticket.id, utcnow() + timedelta(days=1))
    monkeypatch.setitem(app.config, "STATUS_SESSION_MINUTES", -1)
    stale, _ = make_status_session(ticket.id, utcnow() + timedelta(days=1))
    monkeypatch.setitem(app.config, "STATUS_SESSION_MINUTES", 60)
    assert get_with_cookie(app, f"/t/{ticket.id}", stale).status_code == 403

    # Less than half its life left: the page renews it, never past the link's own expiry.
    link_end = utcnow() + timedelta(minutes=10)
    short, session = make_status_session(ticket.id, link_end)
    assert session.expires_at <= link_end
    response = get_with_cookie(app, f"/t/{ticket.id}/updates", short)
    assert response.status_code == 200
    renewed = read_status_session(set_cookies(response)["zd_status"]["value"], ticket.id)
    assert renewed.expires_at <= link_end + timedelta(seconds=1)
    assert renewed.link_expires_at == session.link_expires_at
    # Plenty of life left: no new cookie on every poll.
    fresh = get_with_cookie(app, f"/t/{ticket.id}/updates", long_session)
    assert fresh.status_code == 200
    assert "zd_status" not in set_cookies(fresh)


# --- read only -------------------------------------------------------------------------------------

def test_opening_the_link_again_and_again_changes_nothing(client, ticket):
    token = make_status_token(ticket.id)
    expired = make_status_token(ticket.id, days=-1)
    before = snapshot()
    for _ in range(3):
        # A mail scanner: no cookies kept, every request from scratch.
        assert client.get(f"/t/{token}").status_code == 303
        assert client.head(f"/t/{token}").status_code == 303
        assert client.get(f"/t/{expired}").status_code == 410
    client.get(f"/t/{token}")
    for _ in range(3):
        assert client.get(f"/t/{ticket.id}").status_code == 200
        assert client.get(f"/t/{ticket.id}/updates?v=old").status_code == 200
    assert snapshot() == before
    # The link is not used up: it still works afterwards.
    assert read_status_token(token) == ticket.id
    assert client.get(f"/t/{token}").status_code == 303


# --- what the page shows, and its updates -----------------------------------------------------------

def test_status_page_shows_changes_and_public_replies_only(client, whatsapp_ticket, make_agent):
    ticket = whatsapp_ticket
    agent = make_agent()
    tickets.change_status(ticket, "open", agent)
    tickets.reply(ticket, agent, "Vamos trocar o produto <b>já</b>")
    tickets.add_note(ticket, agent, "segredo interno")
    html = open_link(client, ticket.id).get_data(as_text=True)
    assert "Em atendimento" in html
    assert "Vamos trocar o produto &lt;b&gt;já&lt;/b&gt;" in html
    assert "segredo interno" not in html


def test_updates_answer_204_until_the_ticket_changes_then_send_the_new_html(client, whatsapp_ticket, make_agent):
    ticket = whatsapp_ticket
    page = open_link(client, ticket.id).get_data(as_text=True)
    version = re.search(r'id="status-page"[^>]*data-version="([0-9a-f]+)"', page).group(1)
    assert client.get(f"/t/{ticket.id}/updates?v={version}").status_code == 204

    agent = make_agent()
    tickets.add_note(ticket, agent, "nota interna")  # not public: nothing to show
    assert client.get(f"/t/{ticket.id}/updates?v={version}").status_code == 204

    tickets.reply(ticket, agent, "Olá <script>alert(1)</script>")
    changed = client.get(f"/t/{ticket.id}/updates?v={version}")
    assert changed.status_code == 200 and changed.headers["Referrer-Policy"] == "no-referrer"
    data = changed.get_json()
    assert data["version"] != version
    assert "Em atendimento" in data["html"]  # the reply opened the ticket
    assert "Olá &lt;script&gt;alert(1)&lt;/script&gt;" in data["html"] and "<script>" not in data["html"]
    assert "nota interna" not in data["html"]
    assert 'data-announce="Chamado #' in data["html"]
    assert client.get(f"/t/{ticket.id}/updates?v={data['version']}").status_code == 204

    # The customer's own messages while a person holds the conversation appear too.
    signed_post(client, "/webhooks/twilio/whatsapp",
                inbound_params("Obrigada <i>muito</i>!", sid="SM" + "b" * 32, phone="+5511977776666"))
    inbound.process_due(rasa=None)  # a person holds the conversation: Rasa is not asked
    tickets.change_status(ticket, "resolved", agent)
    last = client.get(f"/t/{ticket.id}/updates?v={data['version']}").get_json()
    assert "Sua mensagem: Obrigada &lt;i&gt;muito&lt;/i&gt;!" in last["html"]
    assert "Status alterado para Resolvido" in last["html"] and "Resolvido." in last["html"]


def test_english_customer_gets_an_english_page(client, ctx):
    customer = customers.register("whatsapp:+447700900123", "John", "john@example.com", "en")
    customer.email_verified_at = customer.created_at
    db.session.commit()
    ticket, _ = tickets.create(customer, "Broken", "It broke")
    html = open_link(client, ticket.id).get_data(as_text=True)
    assert "Ticket #" in html and "New" in html and 'lang="en"' in html and "This page updates by itself" in html


def test_the_link_carries_the_customer_language(ctx, ticket):
    from webapp.services.tokens import status_url
    assert check_status_token(status_url(ticket.id).rsplit("/", 1)[1]).lang == "pt"
    ticket.customer.language = "en"
    assert check_status_token(status_url(ticket.id).rsplit("/", 1)[1]).lang == "en"


def test_status_token_cannot_call_the_api(client, ticket):
    token = make_status_token(ticket.id)
    response = client.get(f"/api/v1/tickets/{ticket.id}", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401


# --- expired and damaged links ------------------------------------------------------------------------

def test_an_expired_link_offers_a_fresh_one_in_the_link_language(client, ticket):
    for lang, accept, text in (("pt", "en", "Este link expirou"), ("en", "pt-BR", "This link has expired"),
                               (None, "en-US,en;q=0.8", "This link has expired"),
                               (None, "de-DE", "Este link expirou"), (None, None, "Este link expirou")):
        headers = {"Accept-Language": accept} if accept else {}
        response = client.get(f"/t/{make_status_token(ticket.id, days=-1, lang=lang)}", headers=headers)
        html = response.get_data(as_text=True)
        assert response.status_code == 410, lang
        assert text in html, (lang, accept)
        assert 'action="/t/resend"' in html and 'name="csrf_token"' in html
        assert EMAIL not in html and "Pedido quebrado" not in html
        cookie = set_cookies(response)["zd_resend"]
        assert cookie["path"] == "/t/resend" and cookie["httponly"] and cookie["samesite"] == "Strict"
        assert "zd_status" not in set_cookies(response)


MALFORMED = {
    "garbage": "garbage",
    "dots": "a.b.c",
    "empty parts": "..",
    "unicode": "ééé.ñ.✓",
    "huge": "eyJ" + "A" * 100_000,
    "slashes": "eyJhbGciOiJIUzI1NiJ9/x/y",
    "percent": "%00%ff%2e",
}


@pytest.mark.parametrize("name", sorted(MALFORMED))
def test_malformed_links_get_the_friendly_page(client, ticket, name):
    response = client.get(f"/t/{MALFORMED[name]}")
    assert response.status_code == 403
    html = response.get_data(as_text=True)
    assert "Este link não é válido" in html and "wa.me/" in html and "<form" not in html


def test_damaged_forged_and_foreign_tokens_identify_nothing(app, client, ticket):
    good = make_status_token(ticket.id, lang="en")
    key = app.config["SECRET_KEY"]
    claims = {"aud": "zapdesk:ticket-status", "sub": str(ticket.id), "scope": "ticket:read", "exp": 4102444800,
              "lang": "en"}
    tokens = {
        "truncated": good[: len(good) // 2],
        "bad signature": good[:-3] + ("abc" if not good.endswith("abc") else "xyz"),
        "signed with the raw secret": jwt.encode(claims, key, algorithm="HS256"),
        "alg none": jwt.encode(claims, None, algorithm="none"),
        "wrong audience": jwt.encode({**claims, "aud": "zapdesk:agent"}, key, algorithm="HS256"),
        "agent token": _agent_token(app),
        "wrong scope": _signed({**claims, "scope": "ticket:write"}),
        "no expiry": _signed({k: v for k, v in claims.items() if k != "exp"}),
        "sub not a number": _signed({**claims, "sub": "1 OR 1=1"}),
        "absurd expiry": _signed({**claims, "exp": 10 ** 20}),
        "absurd ticket": _signed({**claims, "sub": "9" * 12}),
        "expired and forged": jwt.encode({**claims, "exp": 1}, key, algorithm="HS256"),
    }
    unreadable = {"truncated", "agent token"}  # no language claim to read: the browser's language
    for name, token in tokens.items():
        response = client.get(f"/t/{token}", headers={"Accept-Language": "pt-BR,pt;q=0.9"})
        assert response.status_code == 403, name
        html = response.get_data(as_text=True)
        # The language claim of a token we cannot trust still picks the page's language.
        expected = "Este link não é válido" if name in unreadable else "This link is not valid"
        assert expected in html, name
        assert "<form" not in html and "zd_status" not in response.headers.get("Set-Cookie", ""), name
    # A valid link to a ticket that does not exist: the same friendly page.
    missing = client.get(f"/t/{make_status_token(ticket.id + 1000)}")
    assert missing.status_code == 404 and "Este link não é válido" in missing.get_data(as_text=True)


def _signed(claims):
    from webapp.services.tokens import _key
    return jwt.encode(claims, _key(), algorithm="HS256")


def _agent_token(app):
    from flask_jwt_extended import create_access_token
    with app.test_request_context():
        return create_access_token(identity="1")


def test_an_unexpected_failure_is_a_friendly_page_and_the_log_has_no_token(client, ticket, monkeypatch, caplog):
    import logging

    import webapp.status_page as status_page
    # Alembic's fileConfig (a migration test earlier in the run) disables the loggers that existed then.
    monkeypatch.setattr(logging.getLogger(status_page.__name__), "disabled", False)

    def broken(_token):
        raise RuntimeError("database away")
    monkeypatch.setattr(status_page, "check_status_token", broken)
    token = make_status_token(ticket.id)
    response = client.get(f"/t/{token}")
    assert response.status_code == 503
    assert "Página indisponível no momento" in response.get_data(as_text=True)
    assert "database away" in caplog.text and "/t/[redacted]" in caplog.text
    assert token not in caplog.text


# --- a fresh link ----------------------------------------------------------------------------------------

def resend_form(client, ticket_id, **kwargs):
    page = client.get(f"/t/{make_status_token(ticket_id, days=-1, **kwargs)}").get_data(as_text=True)
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


def status_link_rows():
    db.session.expire_all()
    return db.session.scalars(db.select(Outbox).filter_by(purpose="status_link")).all()


def test_a_fresh_link_goes_to_the_verified_email_and_works(client, ticket, inbox):
    form = resend_form(client, ticket.id, lang="pt")
    response = client.post("/t/resend", data={"csrf_token": form})
    assert response.status_code == 303
    done = client.get(response.headers["Location"])
    html = done.get_data(as_text=True)
    assert "Enviamos um novo link" in html and "e-mail que você confirmou" in html
    assert EMAIL not in html and EMAIL not in response.headers["Location"]
    rows = status_link_rows()
    assert [(r.channel, r.recipient) for r in rows] == [("email", EMAIL)]
    # The form is good for one request: its cookie is cleared.
    assert set_cookies(response)["zd_resend"]["max-age"] == "0"
    assert client.post("/t/resend", data={"csrf_token": form}).status_code == 403

    outbox.dispatch_due()
    mail = inbox.messages()[-1]
    assert mail["To"].endswith(f"<{EMAIL}>") or mail["To"] == EMAIL
    assert mail["Subject"].startswith(f"Novo link do chamado #{ticket.number}")
    url = re.search(r"https://desk\.example\.com(/t/\S+)", mail.get_body(("plain",)).get_content()).group(1)
    assert check_status_token(url.rsplit("/", 1)[1]).state == "valid"
    assert client.get(url).headers["Location"] == f"/t/{ticket.id}"


def test_without_a_verified_email_the_fresh_link_goes_on_whatsapp(client, whatsapp_ticket):
    form = resend_form(client, whatsapp_ticket.id, lang="en")
    done = client.get(client.post("/t/resend", data={"csrf_token": form}).headers["Location"])
    assert "on its way on WhatsApp" in done.get_data(as_text=True)
    assert status_link_rows() == []  # no email
    message = db.session.scalars(db.select(Message).filter_by(direction="out").order_by(Message.id.desc())).first()
    assert message.ticket_id == whatsapp_ticket.id and message.author == "system"
    assert [part.recipient for part in message.parts] == ["whatsapp:+5511977776666"]
    token = re.search(r"https://desk\.example\.com/t/(\S+)", message.body).group(1)
    assert check_status_token(token).state == "valid"
    assert check_status_token(token).ticket_id == whatsapp_ticket.id


def test_a_customer_we_cannot_reach_is_told_to_write_on_whatsapp(client, ctx):
    # No verified email and no WhatsApp conversation (a customer recorded by hand, say).
    customer = Customer(phone_key="5511955554444", phone="+5511955554444", email="ana@example.com")
    db.session.add(customer)
    db.session.commit()
    ticket, _ = tickets.create(customer, "Sem contato", "x")
    assert ticket.conversation_id is None
    before = db.session.scalar(db.select(db.func.count()).select_from(Outbox))
    done = client.get(client.post("/t/resend", data={"csrf_token": resend_form(client, ticket.id)})
                      .headers["Location"])
    assert "Não foi possível enviar um novo link" in done.get_data(as_text=True)
    assert db.session.scalar(db.select(db.func.count()).select_from(Outbox)) == before


def test_the_resend_form_needs_its_csrf_pair(client, ticket):
    form = resend_form(client, ticket.id)
    other_form = resend_form(client, ticket.id)  # a new nonce replaces the cookie
    attempts = {
        "no field": {},
        "tampered field": {"csrf_token": form[:-2] + "xx"},
        "field of another browser": {"csrf_token": form},  # the cookie now holds another nonce
    }
    for name, data in attempts.items():
        response = client.post("/t/resend", data=data)
        assert response.status_code == 403, name
        assert "Este pedido expirou" in response.get_data(as_text=True)
    client.delete_cookie("zd_resend", path="/t/resend")
    assert client.post("/t/resend", data={"csrf_token": other_form}).status_code == 403  # no cookie: cross-site
    assert status_link_rows() == []
    # The same browser with its own pair gets through.
    assert client.post("/t/resend", data={"csrf_token": resend_form(client, ticket.id)}).status_code == 303
    assert len(status_link_rows()) == 1


def test_the_resend_is_rate_limited_per_ticket_and_per_address(app, client, ticket, monkeypatch):
    def post(address):
        form = resend_form(client, ticket.id, lang="en")
        return client.post("/t/resend", data={"csrf_token": form}, environ_base={"REMOTE_ADDR": address})

    for i in range(3):  # STATUS_RESEND_TICKET_RATE_LIMIT: 3 per hour, whatever the address
        assert post(f"10.0.0.{i}").status_code == 303
    limited = post("10.0.0.99")
    assert limited.status_code == 429
    assert "Too many requests for a new link" in limited.get_data(as_text=True)
    assert len(status_link_rows()) == 3

    monkeypatch.setitem(app.config, "STATUS_RESEND_RATE_LIMIT", "2 per hour")
    other, _ = tickets.create(ticket.customer, "Outro", "x")
    answers = []
    for target in (other.id, other.id, ticket.id):
        form = resend_form(client, target)
        answers.append(client.post("/t/resend", data={"csrf_token": form},
                                   environ_base={"REMOTE_ADDR": "10.0.1.1"}).status_code)
    assert answers == [303, 303, 429]
