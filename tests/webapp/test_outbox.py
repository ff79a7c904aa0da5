"""The outbox against the fake Twilio API (real twilio client over HTTP) and a real SMTP server."""
from datetime import timedelta

from webapp.extensions import db
from webapp.models import Message, Outbox, SimulatedMessage, utcnow
from webapp.services import customers, outbox


def conversation():
    conv = customers.get_or_create_for_whatsapp("whatsapp:+5511988887777")
    db.session.commit()
    return conv


def test_long_text_is_split_and_arrives_in_order(ctx, live_server):
    text = " ".join(f"palavra{i} ação 😀" for i in range(250))  # ~ 3,500 characters
    outbox.queue_whatsapp(conversation(), text, author="bot")
    db.session.commit()
    assert outbox.dispatch_due() >= 3
    delivered = db.session.scalars(db.select(SimulatedMessage.body).order_by(SimulatedMessage.id)).all()
    assert len(delivered) >= 3 and all(len(part) <= 1600 for part in delivered)
    assert " ".join(delivered).split() == text.split()
    message = db.session.scalar(db.select(Message))
    assert message.status == "sent"
    sims = db.session.scalars(db.select(SimulatedMessage)).all()
    assert {s.to for s in sims} == {"whatsapp:+5511988887777"}
    assert {s.from_ for s in sims} == {"whatsapp:+14155238886"}


def test_transient_failure_retries_and_holds_later_messages(app, ctx, live_server):
    conv = conversation()
    outbox.queue_whatsapp(conv, "primeira", author="bot")
    outbox.queue_whatsapp(conv, "segunda", author="bot")
    db.session.commit()
    app.config["TWILIO_API_BASE_URL"] = "http://127.0.0.1:9"  # nothing listens there
    try:
        outbox.dispatch_due()
    finally:
        app.config["TWILIO_API_BASE_URL"] = f"{live_server}/dev/twilio"
    rows = db.session.scalars(db.select(Outbox).order_by(Outbox.id)).all()
    assert [r.status for r in rows] == ["failed", "pending"]  # the second waits for the first
    assert rows[0].next_attempt_at > utcnow() and "unreachable" in rows[0].last_error
    rows[0].next_attempt_at = utcnow() - timedelta(seconds=1)
    db.session.commit()
    outbox.dispatch_due()
    delivered = db.session.scalars(db.select(SimulatedMessage.body).order_by(SimulatedMessage.id)).all()
    assert delivered == ["primeira", "segunda"]


def test_permanent_failure_is_dead_and_visible(ctx, live_server):
    conv = customers.get_or_create_for_whatsapp("whatsapp:+5511988887777")
    conv.address = "whatsapp:not-a-number"
    db.session.commit()
    message = outbox.queue_whatsapp(conv, "oi", author="agent")
    db.session.commit()
    outbox.dispatch_due()
    row = db.session.scalar(db.select(Outbox))
    assert row.status == "dead" and "21211" in row.last_error
    db.session.refresh(message)
    assert message.status == "failed" and "21211" in message.error


def test_email_goes_over_smtp_and_is_retried_when_the_server_is_down(app, ctx, inbox):
    outbox.queue_email("maria@example.com", "Assunto çã", "corpo", "<p>corpo</p>")
    db.session.commit()
    port = app.config["MAIL_PORT"]
    app.config["MAIL_PORT"] = 9  # refused
    app.extensions["mail"].port = 9
    try:
        outbox.dispatch_due()
    finally:
        app.config["MAIL_PORT"] = port
        app.extensions["mail"].port = port
    row = db.session.scalar(db.select(Outbox))
    assert row.status == "failed" and row.attempts == 1
    assert inbox.messages() == []
    row.next_attempt_at = utcnow()
    db.session.commit()
    outbox.dispatch_due()
    assert row.status == "sent"
    [mail] = inbox.messages()
    assert mail["Subject"] == "Assunto çã"
