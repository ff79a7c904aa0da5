"""Issue 4, notifications: WhatsApp and email per event, WhatsApp's 24-hour
window (free text inside, an approved template outside, email when there is
no template), Twilio failures and their fallback, status callbacks that come
late or early, and what agents see.

The customer writes through signed webhooks; the outbox sends through the
real twilio client to the fake Twilio API (which enforces the window like
Twilio: free text to a number silent for 24 hours fails with 63016) and over
SMTP to a real server. Time is fixed, never slept: the window is moved by
setting ``last_inbound_at`` (what Twilio and we both go by) or by giving
``notifications.window`` an instant.
"""
from __future__ import annotations

import itertools
import json
import re
from datetime import datetime, timedelta, timezone

import pytest

from webapp.dev import fake_twilio
from webapp.extensions import db
from webapp.models import Conversation, Customer, Message, Outbox, SimulatedMessage, Ticket, TicketEvent, utcnow
from webapp.services import notifications, outbox, tickets, tokens

from ..conftest import ACCOUNT_SID, csrf_of, login, signed_post
from .traffic import deliver

PHONE = "+5511988887777"
ADDRESS = f"whatsapp:{PHONE}"
HX_STATUS = "HX" + "a1" * 16
HX_RESOLVED = "HX" + "b2" * 16
HX_REPLY = "HX" + "c3" * 16
HX_FOLLOW = "HX" + "d4" * 16
TEMPLATE_KEYS = ("TWILIO_TEMPLATE_STATUS_CHANGED", "TWILIO_TEMPLATE_RESOLVED", "TWILIO_TEMPLATE_AGENT_REPLY",
                 "TWILIO_TEMPLATE_FOLLOW_UP", "NOTIFY_EMAIL_EVENTS", "NOTIFY_WHATSAPP_EVENTS",
                 "FAKE_TWILIO_WINDOW_HOURS", "FAKE_TWILIO_CALLBACKS", "TWILIO_API_BASE_URL", "MAIL_PORT")


@pytest.fixture
def settings(app, live_server, inbox):
    """Change notification settings for one test; the fake Twilio API and SMTP are up."""
    saved = {k: app.config.get(k) for k in TEMPLATE_KEYS}
    yield lambda **values: app.config.update(values)
    app.config.update(saved)


@pytest.fixture
def ana(make_agent):
    return make_agent()


_sids = itertools.count(1)


def customer_writes(client, body="oi, tudo bem?") -> Conversation:
    assert deliver(client, body, sid=f"SM{next(_sids):032d}").status_code == 200
    db.session.expire_all()
    return db.session.scalar(db.select(Conversation).join(Customer).filter(Customer.phone == PHONE))


def set_last_inbound(hours_ago: float) -> None:
    conversation = db.session.scalar(db.select(Conversation))
    conversation.last_inbound_at = utcnow() - timedelta(hours=hours_ago)
    db.session.commit()


def open_ticket(client, *, verified=True, language="pt") -> Ticket:
    conversation = customer_writes(client)
    customer = conversation.customer
    customer.name, customer.language = "Maria Souza", language
    if verified:
        customer.email, customer.email_verified_at = "maria@example.com", utcnow()
    db.session.commit()
    ticket, _ = tickets.create(customer, "Pedido quebrado", "Chegou amassado", conversation=conversation)
    ticket.status = "open"  # being worked on (set up without the workflow)
    db.session.query(Outbox).delete()  # the "ticket opened" email: not what these tests look at
    db.session.commit()
    return ticket


def rows(channel=None):
    query = db.select(Outbox).order_by(Outbox.id)
    if channel:
        query = query.where(Outbox.channel == channel)
    return db.session.scalars(query).all()


def fallbacks(ticket) -> list[dict]:
    return [e.data for e in db.session.scalars(db.select(TicketEvent).filter_by(
        ticket_id=ticket.id, kind="notify_fallback").order_by(TicketEvent.id))]


def callback(client, sid, status, error_code=None):
    params = {"MessageSid": sid, "MessageStatus": status, "AccountSid": ACCOUNT_SID, "To": ADDRESS,
              "From": "whatsapp:+14155238886", "ApiVersion": "2010-04-01"}
    if error_code:
        params["ErrorCode"] = error_code
    response = signed_post(client, "/webhooks/twilio/status", params)
    assert response.status_code == 204
    db.session.expire_all()


def twilio_callbacks(client) -> None:
    """Post, signed, the status callbacks the fake Twilio would send for what it got."""
    for sim in db.session.scalars(db.select(SimulatedMessage).filter_by(direction="out", callback_sent=False)):
        for params in fake_twilio.callback_params(sim, ACCOUNT_SID):
            assert signed_post(client, "/webhooks/twilio/status", params).status_code == 204
        sim.callback_sent = True
    db.session.commit()
    db.session.expire_all()


def sent_to_phone() -> list[SimulatedMessage]:
    query = db.select(SimulatedMessage).filter_by(direction="out").order_by(SimulatedMessage.id)
    return db.session.scalars(query).all()


# -- the window ----------------------------------------------------------------------------

def test_the_window_is_24_hours_from_the_last_message_minus_the_margin(ctx, app):
    wrote = datetime(2026, 12, 3, 9, 30, tzinfo=timezone.utc)
    conversation = Conversation(address=ADDRESS, last_inbound_at=wrote)
    margin = timedelta(minutes=app.config["WHATSAPP_WINDOW_MARGIN_MINUTES"])
    closes = wrote + timedelta(hours=24) - margin
    assert notifications.window(conversation, now=wrote).is_open
    assert notifications.window(conversation, now=closes - timedelta(seconds=1)) == \
        notifications.Window(True, wrote, closes)
    assert not notifications.window(conversation, now=closes).is_open
    assert not notifications.window(conversation, now=wrote + timedelta(days=3)).is_open
    assert notifications.window(Conversation(address=ADDRESS), now=wrote) == notifications.Window(False, None, None)


def test_the_window_follows_the_clock_it_is_given(ctx, client, settings, monkeypatch):
    conversation = customer_writes(client)
    wrote = conversation.last_inbound_at
    monkeypatch.setattr(notifications, "utcnow", lambda: wrote + timedelta(hours=23))
    assert notifications.window(conversation).is_open
    monkeypatch.setattr(notifications, "utcnow", lambda: wrote + timedelta(hours=24, minutes=1))
    assert not notifications.window(conversation).is_open


# -- inside and outside the window ---------------------------------------------------------

def test_inside_the_window_a_status_change_goes_as_free_text_and_by_email(ctx, client, settings, ana, inbox):
    ticket = open_ticket(client)
    tickets.change_status(ticket, "pending", ana)
    [whatsapp] = rows("whatsapp")
    assert whatsapp.content_sid is None and whatsapp.purpose == "status_changed"
    assert "Aguardando você" in whatsapp.body
    [email] = rows("email")
    assert email.purpose == "status_changed" and email.notify_key == whatsapp.notify_key
    assert outbox.dispatch_due() == 2
    [sim] = sent_to_phone()
    assert sim.content_sid is None and sim.body == whatsapp.body and sim.status == "sent"
    [mail] = inbox.messages()
    assert mail["To"].addresses[0].addr_spec == "maria@example.com"
    assert mail["Subject"] == f"Chamado #{ticket.number}: Aguardando você"
    text = mail.get_body(("plain",)).get_content()
    link = re.search(r"https://desk\.example\.com/t/(\S+)", text).group(1)
    assert tokens.check_status_token(link).ticket_id == ticket.id  # the status link works
    assert 'href="https://desk.example.com/t/' in mail.get_body(("html",)).get_content()
    twilio_callbacks(client)
    assert db.session.get(Message, whatsapp.message_id).status == "delivered"
    assert fallbacks(ticket) == []


def test_english_customers_get_english_email(ctx, client, settings, ana, inbox):
    ticket = open_ticket(client, language="en")
    tickets.change_status(ticket, "pending", ana)
    outbox.dispatch_due()
    [mail] = inbox.messages()
    assert mail["Subject"] == f"Ticket #{ticket.number}: Waiting for you"


def test_outside_the_window_a_notification_goes_as_the_approved_template(ctx, client, settings, ana, inbox):
    settings(TWILIO_TEMPLATE_STATUS_CHANGED=HX_STATUS)
    ticket = open_ticket(client)
    set_last_inbound(hours_ago=25)
    tickets.change_status(ticket, "pending", ana)
    [whatsapp] = rows("whatsapp")
    variables = {"1": str(ticket.number), "2": "Pedido quebrado", "3": "Aguardando você"}
    assert whatsapp.content_sid == HX_STATUS and whatsapp.content_variables == variables
    message = db.session.get(Message, whatsapp.message_id)
    assert message.body == f"Atualização do seu chamado #{ticket.number} (Pedido quebrado): o status agora é " \
                           "*Aguardando você*. Responda esta mensagem se quiser falar com a gente."
    outbox.dispatch_due()
    [sim] = sent_to_phone()
    # What Twilio got: the Content SID and its variables, no free text.
    assert sim.content_sid == HX_STATUS and json.loads(sim.content_variables) == variables and sim.body == ""
    assert sim.status == "sent"
    assert len(inbox.messages()) == 1  # the email goes as configured, too
    twilio_callbacks(client)
    assert db.session.get(Message, whatsapp.message_id).status == "delivered"


def test_outside_the_window_without_a_template_the_email_stands_in(ctx, client, settings, ana, inbox):
    settings(NOTIFY_EMAIL_EVENTS=())  # by email only as a fallback
    ticket = open_ticket(client)
    set_last_inbound(hours_ago=30)
    tickets.change_status(ticket, "pending", ana)
    assert rows("whatsapp") == []  # free text would only fail with 63016
    [email] = rows("email")
    assert email.purpose == "status_changed"
    assert fallbacks(ticket) == [{"event": "status_changed", "channel": "email", "reason": "window_closed",
                                  "email": "maria@example.com"}]
    outbox.dispatch_due()
    assert [m["Subject"] for m in inbox.messages()] == [f"Chamado #{ticket.number}: Aguardando você"]
    assert sent_to_phone() == []


def test_without_template_nor_verified_email_agents_see_the_customer_was_not_told(ctx, client, settings, ana):
    ticket = open_ticket(client, verified=False)
    set_last_inbound(hours_ago=30)
    tickets.change_status(ticket, "pending", ana)
    assert rows() == []
    assert fallbacks(ticket) == [{"event": "status_changed", "channel": "none", "reason": "window_closed"}]


def test_resolved_outside_the_window_asks_with_the_resolved_template(ctx, client, settings, ana):
    settings(TWILIO_TEMPLATE_RESOLVED=HX_RESOLVED)
    ticket = open_ticket(client)
    set_last_inbound(hours_ago=48)
    tickets.change_status(ticket, "resolved", ana)
    [whatsapp] = rows("whatsapp")
    assert whatsapp.content_sid == HX_RESOLVED and whatsapp.purpose == "resolved"
    assert whatsapp.content_variables == {"1": str(ticket.number), "2": "Pedido quebrado"}
    assert "Responda *sim* ou *não*" in whatsapp.body
    db.session.refresh(ticket)
    assert ticket.close_asked_at is not None  # the closing loop waits for the answer as usual
    [email] = rows("email")
    assert email.purpose == "resolved" and "encerrado em 3 dias" in email.body


def test_per_event_settings_choose_the_channels(ctx, client, settings, ana):
    settings(NOTIFY_WHATSAPP_EVENTS=("resolved",), NOTIFY_EMAIL_EVENTS=("resolved",))
    ticket = open_ticket(client)
    tickets.change_status(ticket, "pending", ana)
    assert rows() == []
    tickets.change_status(ticket, "resolved", ana)
    assert [(r.channel, r.purpose) for r in rows()] == [("whatsapp", "resolved"), ("email", "resolved")]


def test_a_customer_who_wrote_parar_gets_email_but_no_whatsapp(ctx, client, settings, ana):
    ticket = open_ticket(client)
    ticket.customer.notify_whatsapp = False
    db.session.commit()
    tickets.change_status(ticket, "pending", ana)
    assert [(r.channel, r.purpose) for r in rows()] == [("email", "status_changed")]
    assert fallbacks(ticket) == []


# -- Twilio says no ------------------------------------------------------------------------

def test_free_text_refused_with_63016_falls_back_to_the_template(ctx, client, settings, ana):
    settings(TWILIO_TEMPLATE_STATUS_CHANGED=HX_STATUS, NOTIFY_EMAIL_EVENTS=())
    ticket = open_ticket(client)
    set_last_inbound(hours_ago=23.5)  # open for us when queued...
    tickets.change_status(ticket, "pending", ana)
    [free] = rows("whatsapp")
    assert free.content_sid is None
    set_last_inbound(hours_ago=24.5)  # ...closed by the time it is sent (a backlog)
    outbox.dispatch_due()
    [sim] = sent_to_phone()
    assert (sim.status, sim.error_code) == ("failed", "63016")  # accepted, then failed, as Twilio does
    twilio_callbacks(client)
    free = db.session.get(Outbox, free.id)
    assert free.status == "undelivered" and free.error_code == "63016"
    message = db.session.get(Message, free.message_id)
    assert message.status == "failed" and "63016" in message.error and "24-hour window" in message.error
    template = db.session.scalar(db.select(Outbox).filter_by(fallback_for_id=free.id))
    assert template.content_sid == HX_STATUS and template.notify_key == free.notify_key
    assert fallbacks(ticket) == [{"event": "status_changed", "channel": "template", "reason": "63016"}]
    outbox.dispatch_due()
    assert [s.content_sid for s in sent_to_phone()] == [None, HX_STATUS]
    assert rows("email") == []


def test_63016_without_a_template_falls_back_to_email_once(ctx, client, settings, ana, inbox):
    settings(NOTIFY_EMAIL_EVENTS=(), FAKE_TWILIO_WINDOW_HOURS=0)  # Twilio sees the window closed
    ticket = open_ticket(client)
    tickets.change_status(ticket, "pending", ana)
    outbox.dispatch_due()
    [sim] = sent_to_phone()
    twilio_callbacks(client)
    callback(client, sim.sid, "failed", "63016")  # Twilio tells us twice
    callback(client, sim.sid, "sent")  # and a late "sent" arrives after
    [free] = rows("whatsapp")
    assert free.status == "undelivered"
    [email] = rows("email")
    assert email.fallback_for_id == free.id
    outbox.dispatch_due()
    assert len(inbox.messages()) == 1
    assert fallbacks(ticket) == [{"event": "status_changed", "channel": "email", "reason": "63016",
                                  "email": "maria@example.com"}]


def test_the_fake_posts_the_failure_callback_itself(ctx, client, settings, ana, app):
    """The whole loop, no hand-made callback: the fake Twilio API calls our
    status webhook (signed) from its own thread, like Twilio."""
    settings(NOTIFY_EMAIL_EVENTS=(), FAKE_TWILIO_WINDOW_HOURS=0, FAKE_TWILIO_CALLBACKS=True)
    ticket = open_ticket(client)
    tickets.change_status(ticket, "pending", ana)
    outbox.dispatch_due()
    import time
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        db.session.expire_all()
        if rows("email"):
            break
        time.sleep(0.05)
    [free] = rows("whatsapp")
    assert free.status == "undelivered" and free.error_code == "63016"
    assert [e.fallback_for_id for e in rows("email")] == [free.id]


def test_a_template_twilio_refuses_falls_back_to_email(ctx, client, settings, ana, inbox):
    settings(TWILIO_TEMPLATE_STATUS_CHANGED="HX-not-a-content-sid", NOTIFY_EMAIL_EVENTS=())
    ticket = open_ticket(client)
    set_last_inbound(hours_ago=26)
    tickets.change_status(ticket, "pending", ana)
    [template] = rows("whatsapp")
    outbox.dispatch_due()
    template = db.session.get(Outbox, template.id)
    assert template.status == "dead" and template.error_code == "21656"  # permanent: not retried
    assert sent_to_phone() == []
    outbox.dispatch_due()  # the fallback, queued meanwhile
    [email] = rows("email")
    assert email.fallback_for_id == template.id and email.status == "sent"
    assert len(inbox.messages()) == 1
    assert fallbacks(ticket)[-1]["channel"] == "email" and fallbacks(ticket)[-1]["reason"] == "21656"


def test_a_template_failed_in_its_callback_falls_back_to_email(ctx, client, settings, ana, inbox):
    settings(TWILIO_TEMPLATE_STATUS_CHANGED=HX_STATUS, NOTIFY_EMAIL_EVENTS=())
    ticket = open_ticket(client)
    set_last_inbound(hours_ago=26)
    tickets.change_status(ticket, "pending", ana)
    outbox.dispatch_due()
    [sim] = sent_to_phone()
    callback(client, sim.sid, "failed", "63049")  # Meta chose not to deliver it
    [template] = rows("whatsapp")
    assert template.status == "undelivered"
    [email] = rows("email")
    assert email.fallback_for_id == template.id
    outbox.dispatch_due()
    assert len(inbox.messages()) == 1


# -- status callbacks ----------------------------------------------------------------------

def test_status_callbacks_out_of_order_only_move_forward(ctx, client, settings, ana):
    ticket = open_ticket(client)
    tickets.reply(ticket, ana, "Olá Maria, já estamos vendo.")
    tickets.reply(ticket, ana, "Pode mandar uma foto?")
    outbox.dispatch_due()
    first, second = sent_to_phone()
    callback(client, first.sid, "delivered")
    callback(client, first.sid, "sent")  # late
    callback(client, first.sid, "queued")  # later still
    callback(client, second.sid, "failed", "63003")
    callback(client, second.sid, "sent")  # a late "sent" never overwrites "failed"
    callback(client, second.sid, "delivered")
    one, two = rows("whatsapp")
    assert one.status == "delivered" and db.session.get(Message, one.message_id).status == "delivered"
    assert two.status == "undelivered" and db.session.get(Message, two.message_id).status == "failed"
    callback(client, first.sid, "read")
    assert db.session.get(Outbox, one.id).status == "read"
    assert outbox.dispatch_due() == 0  # an undelivered message is never sent again by itself
    assert len(sent_to_phone()) == 2


def test_a_callback_before_the_sid_is_recorded_is_applied_when_it_is(ctx, client, settings, app, ana):
    """Twilio can call back before the sender has committed the SID it got."""
    ticket = open_ticket(client)
    tickets.reply(ticket, ana, "Oi!")
    real = outbox.make_sender()

    class CallsBackAtOnce:
        def send(self, **kwargs):
            result = real.send(**kwargs)
            with app.test_client() as other:  # another request, another session
                params = {"MessageSid": result.sid, "MessageStatus": "delivered", "AccountSid": ACCOUNT_SID}
                assert signed_post(other, "/webhooks/twilio/status", params).status_code == 204
            return result

    assert outbox.dispatch_due(CallsBackAtOnce()) == 2  # the reply and its copy by email
    db.session.expire_all()
    [row] = rows("whatsapp")
    assert row.status == "delivered" and db.session.get(Message, row.message_id).status == "delivered"


# -- agents --------------------------------------------------------------------------------

def page(client, ticket) -> str:
    response = client.get(f"/agent/tickets/{ticket.id}")
    assert response.status_code == 200
    return response.get_data(as_text=True)


def test_agent_page_shows_an_open_window_and_the_free_text_form(ctx, agent_client, settings):
    ticket = open_ticket(agent_client)
    html = page(agent_client, ticket)
    assert 'id="wa-window"' in html and "WhatsApp window open until" in html
    assert 'id="reply-form"' in html and 'id="template-form"' not in html


def test_agent_page_outside_the_window_offers_templates_instead_of_free_text(ctx, agent_client, settings):
    settings(TWILIO_TEMPLATE_AGENT_REPLY=HX_REPLY, TWILIO_TEMPLATE_FOLLOW_UP=HX_FOLLOW)
    ticket = open_ticket(agent_client)
    set_last_inbound(hours_ago=25)
    html = page(agent_client, ticket)
    assert "WhatsApp's 24-hour window is closed." in html and "The customer last wrote" in html
    assert "Ana respondeu no seu chamado" in html  # the reply template's preview, with this agent's name
    assert 'id="reply-form"' not in html and 'id="template-form"' in html
    assert 'value="agent_reply"' in html and 'value="follow_up"' in html
    assert f"Temos novidades sobre o seu chamado #{ticket.number} (Pedido quebrado)." in html  # a preview
    response = agent_client.post(f"/agent/tickets/{ticket.id}/reply", data={
        "csrf_token": csrf_of(agent_client), "reply_key": "k-follow", "template": "follow_up", "body": ""})
    assert response.status_code == 302
    [row] = rows("whatsapp")
    assert row.content_sid == HX_FOLLOW and row.purpose == "follow_up"
    message = db.session.get(Message, row.message_id)
    assert message.author == "agent" and message.body.startswith("Temos novidades")
    outbox.dispatch_due()
    html = page(agent_client, ticket)
    assert "Approved WhatsApp template" in html and HX_FOLLOW in html  # what was sent, on the timeline


def test_agent_text_outside_the_window_goes_inside_the_reply_template(ctx, agent_client, settings):
    settings(TWILIO_TEMPLATE_AGENT_REPLY=HX_REPLY)
    ticket = open_ticket(agent_client)
    set_last_inbound(hours_ago=25)
    response = agent_client.post(f"/agent/tickets/{ticket.id}/reply", data={
        "csrf_token": csrf_of(agent_client), "reply_key": "k1", "body": "Seu reembolso\nfoi aprovado."})
    assert response.status_code == 302
    [row] = rows("whatsapp")
    assert row.content_sid == HX_REPLY
    assert row.content_variables == {"1": "Ana", "2": str(ticket.number), "3": "Seu reembolso foi aprovado."}
    assert row.body == f"Ana respondeu no seu chamado #{ticket.number}: Seu reembolso foi aprovado."
    reply_event = db.session.scalar(db.select(TicketEvent).filter_by(ticket_id=ticket.id, kind="reply"))
    assert reply_event.body == row.body  # the timeline says what the customer reads


def test_agent_text_outside_the_window_without_template_is_refused_and_kept(ctx, agent_client, settings):
    ticket = open_ticket(agent_client)
    set_last_inbound(hours_ago=25)
    html = page(agent_client, ticket)
    assert 'id="no-templates"' in html and 'id="reply-form"' not in html
    response = agent_client.post(f"/agent/tickets/{ticket.id}/reply", data={
        "csrf_token": csrf_of(agent_client), "reply_key": "k2", "body": "Texto que não pode se perder"})
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert "more than 24 hours ago" in html and "Texto que não pode se perder" in html
    assert rows() == [] and db.session.scalar(db.select(Message).filter_by(direction="out")) is None
    # The API says the same, with its own code.
    token = agent_client.post("/api/v1/auth/login", json={"email": "ana@example.com",
                                                          "password": "correct horse battery"}).json["access_token"]
    api = agent_client.post(f"/api/v1/tickets/{ticket.id}/messages", json={"body": "Oi"},
                            headers={"Authorization": f"Bearer {token}"})
    assert api.status_code == 422 and api.json["error"]["code"] == "window_closed"


def test_a_reply_is_copied_by_email_with_the_status_link(ctx, client, settings, ana, inbox):
    ticket = open_ticket(client)
    tickets.reply(ticket, ana, "Já trocamos o produto.\nChega amanhã.")
    assert [(r.channel, r.purpose) for r in rows()] == [("whatsapp", "agent_reply"), ("email", "agent_reply")]
    outbox.dispatch_due()
    [mail] = inbox.messages()
    assert mail["Subject"] == f"Nova resposta no chamado #{ticket.number}: Pedido quebrado"
    text = mail.get_body(("plain",)).get_content()
    assert "Ana Agent respondeu" in text and "Já trocamos o produto.\nChega amanhã." in text and "/t/" in text


def test_agents_see_a_63016_failure_with_its_reason(ctx, agent_client, settings):
    settings(FAKE_TWILIO_WINDOW_HOURS=0)
    ticket = open_ticket(agent_client)
    assert agent_client.post(f"/agent/tickets/{ticket.id}/reply", data={
        "csrf_token": csrf_of(agent_client), "reply_key": "k3", "body": "Oi"}).status_code == 302
    outbox.dispatch_due()
    twilio_callbacks(agent_client)
    html = page(agent_client, ticket)
    assert "Not delivered" in html and "outside WhatsApp's 24-hour window (Twilio error 63016)" in html
    assert rows("email")[0].purpose == "agent_reply"  # the configured copy; no extra fallback for replies
    assert len(rows("email")) == 1


# -- the outbox: at most once, leases, outages ---------------------------------------------

def test_a_lost_answer_is_checked_with_twilio_and_not_sent_twice(ctx, client, settings, app, ana):
    """The send reached Twilio but its answer was lost (a timeout): the retry
    finds it in Twilio's Messages list and adopts it instead of sending again."""
    settings(NOTIFY_EMAIL_EVENTS=())  # only the WhatsApp rows
    ticket = open_ticket(client)
    tickets.reply(ticket, ana, "Uma vez só")
    real = outbox.make_sender()

    class AnswerLost:
        def send(self, **kwargs):
            real.send(**kwargs)
            from bot.twilio_whatsapp import SendError
            raise SendError("Twilio unreachable: ReadTimeout", transient=True)

        def recent(self, **kwargs):
            return real.recent(**kwargs)

    outbox.dispatch_due(AnswerLost())
    [row] = rows("whatsapp")
    assert row.status == "failed" and row.needs_check and len(sent_to_phone()) == 1
    row.next_attempt_at = utcnow()
    db.session.commit()
    assert outbox.dispatch_due() == 1
    row = db.session.get(Outbox, row.id)
    [sim] = sent_to_phone()
    assert row.status == "sent" and row.provider_id == sim.sid and not row.needs_check


def test_a_claim_left_by_a_crash_is_recovered_after_its_lease(ctx, client, settings, app, ana):
    settings(NOTIFY_EMAIL_EVENTS=())  # only the WhatsApp rows
    ticket = open_ticket(client)
    tickets.reply(ticket, ana, "Primeira")
    tickets.reply(ticket, ana, "Segunda")
    first, second = rows("whatsapp")
    # A sender claimed the first row, sent it, and died before recording it.
    assert outbox._claim(first)
    outbox.make_sender().send(from_=app.config["TWILIO_WHATSAPP_FROM"], to=first.recipient, body=first.body)
    assert outbox.dispatch_due() == 0  # the claim holds: the recipient's later rows wait behind it
    first.next_attempt_at = utcnow() - timedelta(seconds=1)  # the lease ran out
    db.session.commit()
    assert outbox.dispatch_due() == 2
    assert [s.body for s in sent_to_phone()] == ["Primeira", "Segunda"]  # each once, in order
    first = db.session.get(Outbox, first.id)
    assert first.status == "sent" and first.provider_id == sent_to_phone()[0].sid


def test_a_claim_that_never_sent_is_sent_after_its_lease(ctx, client, settings, ana):
    settings(NOTIFY_EMAIL_EVENTS=())  # only the WhatsApp rows
    ticket = open_ticket(client)
    tickets.reply(ticket, ana, "Nunca saiu")
    [row] = rows("whatsapp")
    assert outbox._claim(row)  # and the sender died before calling Twilio
    row.next_attempt_at = utcnow() - timedelta(seconds=1)
    db.session.commit()
    assert outbox.dispatch_due() == 1
    assert [s.body for s in sent_to_phone()] == ["Nunca saiu"]


def test_only_one_sender_wins_a_claim(ctx, client, settings, app, ana):
    ticket = open_ticket(client)
    tickets.reply(ticket, ana, "Oi")
    [row] = rows("whatsapp")
    with app.app_context():  # another worker, its own session, takes it first
        assert outbox._claim(db.session.get(Outbox, row.id))
    assert not outbox._claim(row)  # this one saw it pending, and loses
    assert db.session.get(Outbox, row.id).attempts == 1


def test_an_email_whose_claim_ran_out_is_sent_again_with_the_same_message_id(ctx, client, settings, ana, inbox):
    ticket = open_ticket(client)
    tickets.change_status(ticket, "pending", ana)
    email = rows("email")[0]
    outbox.dispatch_due()
    email = db.session.get(Outbox, email.id)
    email.status, email.next_attempt_at = "sending", utcnow() - timedelta(seconds=1)  # "crashed before recording"
    db.session.commit()
    outbox.dispatch_due()
    first, second = inbox.messages()
    assert first["Message-ID"] == second["Message-ID"]  # at least once, recognisably the same email
    assert db.session.get(Outbox, email.id).status == "sent"


def test_a_notification_email_dropped_after_data_counts_once(ctx, client, settings, ana):
    from .test_email_delivery import Recorder, smtp
    ticket = open_ticket(client)
    tickets.change_status(ticket, "pending", ana)
    recorder = Recorder(drop_first=True)
    with smtp(recorder) as port:
        settings(MAIL_PORT=port)
        outbox.dispatch_due()
        email = rows("email")[0]
        assert email.status == "failed" and email.attempts == 1
        email.next_attempt_at = utcnow()
        db.session.commit()
        outbox.dispatch_due()
    email = db.session.get(Outbox, email.id)
    assert email.status == "sent" and email.attempts == 2
    first, second = recorder.parsed()
    assert first["Message-ID"] == second["Message-ID"]


def test_an_outage_never_fails_ticket_creation_or_a_status_change(ctx, client, settings, ana, app):
    from webapp.auth import service_token

    from ..conftest import free_port
    settings(TWILIO_API_BASE_URL="http://127.0.0.1:9", MAIL_PORT=free_port())  # both down
    conversation = customer_writes(client)
    customer = conversation.customer
    customer.email, customer.email_verified_at = "maria@example.com", utcnow()
    db.session.commit()
    created = client.post("/api/v1/tickets", headers={"Authorization": f"Bearer {service_token()}"},
                          json={"phone": PHONE.lstrip("+"), "subject": "Sem sistema", "description": "d"})
    assert created.status_code == 201
    ticket = db.session.get(Ticket, created.json["ticket"]["id"])
    tickets.change_status(ticket, "open", ana)
    assert outbox.dispatch_due() == 0
    # Each recipient's first row failed and waits for its retry; the others wait behind it. Nothing is lost.
    assert {r.status for r in rows()} == {"failed", "pending"}
    assert db.session.get(Ticket, ticket.id).status == "open"
    assert {(r.channel, r.purpose) for r in rows()} == {("email", "ticket_created"), ("email", "status_changed"),
                                                         ("whatsapp", "status_changed")}


def test_transient_failures_back_off_exponentially_then_the_row_is_dead(ctx, client, settings, app, ana):
    settings(TWILIO_API_BASE_URL="http://127.0.0.1:9")
    ticket = open_ticket(client)
    tickets.reply(ticket, ana, "Oi")
    waits = []
    for _ in range(app.config["OUTBOX_MAX_ATTEMPTS"]):
        outbox.dispatch_due()
        row = rows("whatsapp")[0]
        if row.status == "dead":
            break
        waits.append(row.next_attempt_at - utcnow())
        row.next_attempt_at = utcnow()
        db.session.commit()
    assert row.status == "dead" and row.attempts == app.config["OUTBOX_MAX_ATTEMPTS"]
    assert all(b > a * 1.5 for a, b in zip(waits, waits[1:], strict=False))


# -- admins: dead messages -----------------------------------------------------------------

def test_admins_see_dead_messages_and_retry_them(ctx, client, settings, app, make_agent, live_server):
    make_agent(email="root@example.com", name="Root", role="admin", password="correct horse battery")
    make_agent(email="bia@example.com", name="Bia", password="correct horse battery")
    settings(TWILIO_API_BASE_URL="http://127.0.0.1:9")
    ticket = open_ticket(client)
    conversation = db.session.scalar(db.select(Conversation))
    outbox.queue_whatsapp(conversation, "Mensagem presa", author="bot", ticket_id=ticket.id)
    db.session.commit()
    [row] = rows("whatsapp")
    row.attempts = app.config["OUTBOX_MAX_ATTEMPTS"] - 1
    db.session.commit()
    outbox.dispatch_due()
    assert db.session.get(Outbox, row.id).status == "dead"
    settings(TWILIO_API_BASE_URL=f"{live_server}/dev/twilio")  # Twilio is back

    assert login(client, "bia@example.com", "correct horse battery").status_code == 302
    assert client.get("/agent/admin/outbox").status_code == 403
    assert client.post(f"/agent/admin/outbox/{row.id}/retry", data={"csrf_token": csrf_of(client)}).status_code == 403
    client.post("/agent/logout", data={"csrf_token": csrf_of(client)})

    assert login(client, "root@example.com", "correct horse battery").status_code == 302
    html = client.get("/agent/admin/outbox").get_data(as_text=True)
    assert f'data-outbox="{row.id}"' in html and "Mensagem presa" in html and "unreachable" in html
    assert client.post(f"/agent/admin/outbox/{row.id}/retry", data={}).status_code == 403  # no CSRF token
    assert db.session.get(Outbox, row.id).status == "dead"
    response = client.post(f"/agent/admin/outbox/{row.id}/retry", data={"csrf_token": csrf_of(client)})
    assert response.status_code == 302
    db.session.expire_all()
    row = db.session.get(Outbox, row.id)
    assert row.status == "pending" and row.attempts == 0
    assert db.session.get(Message, row.message_id).status == "queued"
    assert outbox.dispatch_due() == 1
    assert [s.body for s in sent_to_phone()] == ["Mensagem presa"]
    html = client.get("/agent/admin/outbox").get_data(as_text=True)
    assert 'id="outbox-empty"' in html
    again = client.post(f"/agent/admin/outbox/{row.id}/retry", data={"csrf_token": csrf_of(client)},
                        follow_redirects=True)
    assert "retried already" in again.get_data(as_text=True)


# -- the fake Twilio API -------------------------------------------------------------------

def test_the_fake_lists_what_it_sent_and_checks_templates(ctx, client, settings):
    customer_writes(client)
    sender = outbox.make_sender()
    from bot.twilio_whatsapp import SendError
    with pytest.raises(SendError) as refused:
        sender.send(from_="whatsapp:+14155238886", to=ADDRESS, content_sid="HX123", content_variables="{}")
    assert refused.value.code == "21656" and not refused.value.transient
    with pytest.raises(SendError):
        sender.send(from_="whatsapp:+14155238886", to=ADDRESS, content_sid=HX_STATUS, content_variables="[1]")
    first = sender.send(from_="whatsapp:+14155238886", to=ADDRESS, body="oi")
    second = sender.send(from_="whatsapp:+14155238886", to=ADDRESS, content_sid=HX_STATUS,
                         content_variables=json.dumps({"1": "7"}))
    listed = sender.recent(from_="whatsapp:+14155238886", to=ADDRESS)
    assert [m.sid for m in listed] == [second.sid, first.sid]
    assert listed[1].body == "oi" and listed[1].created_at is not None
    assert sender.recent(from_="whatsapp:+14155238886", to="whatsapp:+5521977776666") == []
