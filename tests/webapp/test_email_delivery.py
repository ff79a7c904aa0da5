"""Issue 6, cases 15 and 16: email through real SMTP servers (aiosmtpd).

15. Accented customer and sender names: correctly encoded headers, read back
    by a parser; an address we could not send to is refused when typed.
16. A server that refuses connections, one that never answers, one that
    answers 530 to AUTH, one that drops the connection after DATA: the ticket
    is created at once, the email is retried with backoff, it counts as sent
    once, and the customer hears about it on WhatsApp only when it went out
    (or when it never will).
"""
import socket
import threading
from contextlib import contextmanager
from datetime import timedelta
from email import policy
from email.parser import BytesParser

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP

from webapp.auth import service_token
from webapp.extensions import db
from webapp.models import Customer, Outbox, Ticket, VerificationCode, utcnow
from webapp.services import outbox

from ..conftest import free_port
from .traffic import count, deliver

SENDER = "Suporte ZapDesk – Atendimento <suporte@zapdesk.example>"
NAME = "João da Conceição Ñoño"


class Recorder:
    """An SMTP handler that keeps every message it accepts; ``drop_first``
    closes the connection right after receiving the first message's data,
    before answering (the client cannot know whether it was taken)."""

    def __init__(self, drop_first: bool = False):
        self.messages: list[bytes] = []
        self.drop_first = drop_first

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(envelope.original_content or envelope.content)
        if self.drop_first:
            self.drop_first = False
            server.transport.close()
        return "250 OK"

    def parsed(self):
        return [BytesParser(policy=policy.default).parsebytes(m) for m in self.messages]


class AuthRequired(SMTP):
    """Answers 530 to AUTH, as a server that wants STARTTLS first does."""

    async def smtp_AUTH(self, arg):
        await self.push("530 5.7.0 Must issue a STARTTLS command first")


class AuthRequiredController(Controller):
    def factory(self):
        return AuthRequired(self.handler, auth_require_tls=False, authenticator=lambda *a: None)


@contextmanager
def smtp(handler, controller_class=Controller):
    port = free_port()
    controller = controller_class(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield port
    finally:
        controller.stop()


@contextmanager
def silent_server():
    """Accepts TCP connections and never says a word."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    try:
        yield sock.getsockname()[1]
    finally:
        sock.close()


@pytest.fixture
def mail_settings(app):
    keys = ("MAIL_PORT", "MAIL_TIMEOUT", "MAIL_USERNAME", "MAIL_PASSWORD", "MAIL_DEFAULT_SENDER")
    saved = {k: app.config.get(k) for k in keys}
    app.config["MAIL_DEFAULT_SENDER"] = SENDER
    yield lambda **values: app.config.update(values)
    app.config.update(saved)


@pytest.fixture
def service(app):
    with app.app_context():
        return {"Authorization": f"Bearer {service_token()}"}


def register(client, service, name=NAME, email="joao@example.com"):
    return client.post("/api/v1/customers", headers=service,
                        json={"phone": "whatsapp:+5511988887777", "name": name, "email": email, "language": "pt"})


def verified_customer(client, service, name=NAME) -> Customer:
    deliver(client, "oi", sid="SM" + "a" * 32)  # the WhatsApp conversation
    assert register(client, service, name).status_code == 201
    customer = db.session.scalar(db.select(Customer))
    customer.email_verified_at = utcnow()
    db.session.query(Outbox).delete()  # the code's email: not what these tests look at
    db.session.commit()
    return customer


def open_ticket(client, service, key="rasa:1"):
    return client.post("/api/v1/tickets", headers=service, json={
        "phone": "5511988887777", "subject": "Pedido não chegou", "description": "Comprei dia 2 e nada.",
        "idempotency_key": key})


def whatsapp_notices() -> list[str]:
    return list(db.session.scalars(db.select(Outbox.body).where(Outbox.channel == "whatsapp").order_by(Outbox.id)))


def email_row() -> Outbox:
    return db.session.scalar(db.select(Outbox).where(Outbox.channel == "email"))


def due_now(row: Outbox) -> None:
    row.next_attempt_at = utcnow() - timedelta(seconds=1)
    db.session.commit()


# -- 15. names and addresses -----------------------------------------------------------

def test_accented_names_go_out_in_correctly_encoded_headers(client, ctx, service, mail_settings):
    recorder = Recorder()
    with smtp(recorder) as port:
        mail_settings(MAIL_PORT=port)
        deliver(client, "oi", sid="SM" + "a" * 32)
        assert register(client, service).status_code == 201
        assert outbox.dispatch_due() == 1
    [raw] = recorder.messages
    head = raw.split(b"\r\n\r\n", 1)[0]
    head.decode("ascii")  # every header is 7-bit: encoded words, no raw UTF-8
    [mail] = recorder.parsed()
    assert mail["To"].addresses[0].display_name == NAME
    assert mail["To"].addresses[0].addr_spec == "joao@example.com"
    assert mail["From"].addresses[0].display_name == "Suporte ZapDesk – Atendimento"
    assert mail["From"].addresses[0].addr_spec == "suporte@zapdesk.example"
    code_row = db.session.scalar(db.select(Outbox))
    assert mail["Subject"] == code_row.subject and "ó" in mail["Subject"]  # "código"
    assert mail["Message-ID"].startswith("<outbox.") and mail["Date"]
    assert NAME in mail.get_body(("plain",)).get_content()


def test_a_name_cannot_inject_headers(client, ctx, service, mail_settings):
    recorder = Recorder()
    with smtp(recorder) as port:
        mail_settings(MAIL_PORT=port)
        deliver(client, "oi", sid="SM" + "a" * 32)
        assert register(client, service, name="João\r\nBcc: intruso@example.com").status_code == 201
        outbox.dispatch_due()
    [mail] = recorder.parsed()
    assert mail["Bcc"] is None and len(mail["To"].addresses) == 1
    assert mail["To"].addresses[0].display_name == "João Bcc: intruso@example.com"


@pytest.mark.parametrize("email", ["joão@exemplo.com.br", "maria@", "maria@exemplo", "maria @exemplo.com",
                                   "maria@exemplo..com", "Maria <maria@exemplo.com>", "maria@localhost", ""])
def test_an_address_we_cannot_send_to_is_refused_when_typed(client, ctx, service, email):
    deliver(client, "oi", sid="SM" + "a" * 32)
    response = register(client, service, email=email)
    assert response.status_code in (400, 422)
    assert response.json["error"]["field"] == "email"  # the registration action asks for it again
    assert count(Outbox) == 0 and count(VerificationCode) == 0
    assert db.session.scalar(db.select(Customer)).email is None


def test_an_accented_domain_is_accepted_and_sent_as_idna(client, ctx, service, mail_settings):
    recorder = Recorder()
    with smtp(recorder) as port:
        mail_settings(MAIL_PORT=port)
        deliver(client, "oi", sid="SM" + "a" * 32)
        assert register(client, service, email="Maria@Açaí.com.br").status_code == 201
        assert outbox.dispatch_due() == 1
    [mail] = recorder.parsed()
    assert mail["To"].addresses[0].addr_spec == "Maria@" + "açaí.com.br".encode("idna").decode()


# -- 16. SMTP that fails ------------------------------------------------------------------

def test_refused_connections_do_not_delay_the_ticket_and_the_email_is_retried(client, ctx, service, mail_settings):
    verified_customer(client, service)
    recorder = Recorder()
    port = free_port()  # nothing listens there yet
    mail_settings(MAIL_PORT=port)
    created = open_ticket(client, service)
    assert created.status_code == 201 and created.json["email"] == "queued"
    assert outbox.dispatch_due() == 0
    row = email_row()
    assert row.status == "failed" and row.attempts == 1
    assert row.next_attempt_at > utcnow() + timedelta(seconds=1)  # backoff
    assert "Refused" in row.last_error or "refused" in row.last_error
    assert whatsapp_notices() == []  # nothing claims the email was sent
    assert open_ticket(client, service).json["email"] == "queued"
    with smtp(recorder, Controller) as new_port:
        mail_settings(MAIL_PORT=new_port)
        due_now(row)
        outbox.dispatch_due()
    assert email_row().status == "sent" and len(recorder.messages) == 1
    ticket = db.session.scalar(db.select(Ticket))
    # Now that it went out, the customer is told so on WhatsApp, in their language.
    [notice] = whatsapp_notices()
    assert notice == f"📧 Enviei para joao@example.com o link para acompanhar o chamado #{ticket.number}."
    assert open_ticket(client, service).json["email"] == "sent"  # what the API says from now on


def test_a_server_that_never_answers_costs_one_bounded_wait(app, client, ctx, service, mail_settings):
    verified_customer(client, service)
    with silent_server() as port:
        mail_settings(MAIL_PORT=port, MAIL_TIMEOUT=1)
        assert open_ticket(client, service).status_code == 201
        done = threading.Event()
        results = []

        def dispatch():
            with app.app_context():
                results.append(outbox.dispatch_due())
            done.set()

        threading.Thread(target=dispatch, daemon=True).start()
        assert done.wait(20), "the SMTP wait is unbounded"
    db.session.expire_all()
    row = email_row()
    assert results == [0] and row.status == "failed" and "timed out" in row.last_error.lower()
    assert count(Ticket) == 1


def test_530_to_auth_is_retried_with_backoff_then_the_customer_is_told(app, client, ctx, service, mail_settings):
    verified_customer(client, service)
    with smtp(Recorder(), AuthRequiredController) as port:
        mail_settings(MAIL_PORT=port, MAIL_USERNAME="zapdesk", MAIL_PASSWORD="secret")
        assert open_ticket(client, service).status_code == 201
        waits = []
        for _ in range(app.config["OUTBOX_MAX_ATTEMPTS"]):
            outbox.dispatch_due()
            row = email_row()
            if row.status == "dead":
                break
            waits.append(row.next_attempt_at - utcnow())
            assert "530" in row.last_error and whatsapp_notices() == []
            due_now(row)
    assert row.status == "dead" and row.attempts == app.config["OUTBOX_MAX_ATTEMPTS"]
    assert waits == sorted(waits) and waits[-1] > waits[0]  # the backoff grows
    ticket = db.session.scalar(db.select(Ticket))
    assert ticket.status == "new"  # the ticket is fine; only the email failed
    [notice] = whatsapp_notices()
    assert f"#{ticket.number}" in notice and "Não consegui enviar" in notice
    assert open_ticket(client, service).json["email"] == "failed"


def test_a_connection_dropped_after_data_sends_the_same_email_once_more(client, ctx, service, mail_settings):
    """The server may or may not have kept the first copy: the email is sent
    again (nothing is lost) with the same Message-ID (a receiver shows it once),
    and it counts as one email sent, with one WhatsApp notice."""
    verified_customer(client, service)
    recorder = Recorder(drop_first=True)
    with smtp(recorder) as port:
        mail_settings(MAIL_PORT=port)
        assert open_ticket(client, service).status_code == 201
        assert outbox.dispatch_due() == 0
        row = email_row()
        assert row.status == "failed" and whatsapp_notices() == []
        due_now(row)
        outbox.dispatch_due()
    row = email_row()
    assert row.status == "sent" and row.attempts == 2
    first, second = recorder.parsed()
    assert first["Message-ID"] == second["Message-ID"]
    assert first.get_body(("plain",)).get_content() == second.get_body(("plain",)).get_content()
    assert len(whatsapp_notices()) == 1
