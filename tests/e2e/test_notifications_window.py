"""Issue 4's notifications end to end (gunicorn, worker, Rasa, actions, SMTP):
an agent's status change reaches the customer on WhatsApp and by email while
WhatsApp's 24-hour window is open; once the customer has been silent for 24
hours (the time of their last message moved back in the database, not
slept), it reaches them by email only, and the agent sees the window closed
and cannot send free text."""
import re
from datetime import timedelta

import pytest

from .test_closing_loop import agent_session, new_ticket
from .test_real_traffic_dialogue import verified
from .test_whole_path import latest_mail

pytestmark = pytest.mark.e2e


def wait_for_mail(system, pattern: str, timeout: float = 30):
    import time
    deadline = time.time() + timeout
    while True:
        try:
            return latest_mail(system, pattern)
        except AssertionError:
            if time.time() > deadline:
                raise
            time.sleep(0.3)


def set_status(system, agent, number: str, status: str):
    response = agent.post(f"{system.base}/agent/tickets/{number}/status",
                          data={"status": status, "csrf_token": agent.cookies["csrf_access_token"]}, timeout=10)
    assert response.status_code < 400, response.text


def database(system):
    from webapp import create_app
    return create_app({"SQLALCHEMY_DATABASE_URI": system.env["DATABASE_URL"].replace(
        "postgresql://", "postgresql+psycopg://")})


def test_status_changes_inside_and_outside_the_window(system):
    from webapp.extensions import db
    from webapp.models import Conversation, Customer, Outbox, utcnow

    rui = verified(system, "+5551988880011", "Rui Prado", "rui@example.com")
    number = new_ticket(system, rui, "Entrega atrasada")
    agent = agent_session(system)

    # Inside the window: free text on WhatsApp, and an email with the status link.
    set_status(system, agent, number, "open")
    rui.expect(rf"chamado #{number} \(Entrega atrasada\) mudou de status: Novo → \*Em atendimento\*")
    mail = wait_for_mail(system, rf"Chamado #{number}: Em atendimento")
    assert "rui@example.com" in mail["To"]
    assert re.search(r"https?://\S+/t/\S+", mail.get_body(("plain",)).get_content())
    page = agent.get(f"{system.base}/agent/tickets/{number}", timeout=10).text
    assert "WhatsApp window open until" in page

    # The customer's last message was 25 hours ago.
    app = database(system)
    with app.app_context():
        conversation = db.session.scalar(db.select(Conversation).join(Customer)
                                         .filter(Customer.phone == "+5551988880011"))
        conversation.last_inbound_at = utcnow() - timedelta(hours=25)
        db.session.commit()
        db.engine.dispose()

    # Outside it, without an approved template: by email only.
    set_status(system, agent, number, "pending")
    wait_for_mail(system, rf"Chamado #{number}: Aguardando você")
    with app.app_context():
        whatsapp = db.session.scalars(db.select(Outbox.purpose).where(
            Outbox.channel == "whatsapp", Outbox.ticket_id == int(number), Outbox.purpose == "status_changed")).all()
        db.engine.dispose()
    assert whatsapp == ["status_changed"]  # the first change only: nothing was sent to fail with 63016
    page = agent.get(f"{system.base}/agent/tickets/{number}", timeout=10).text
    assert "WhatsApp&#39;s 24-hour window is closed." in page or "WhatsApp's 24-hour window is closed." in page
    assert "sent by email to rui@example.com instead" in page
    refused = agent.post(f"{system.base}/agent/tickets/{number}/reply", timeout=10, data={
        "body": "Oi Rui", "reply_key": "e2e-window", "csrf_token": agent.cookies["csrf_access_token"]})
    assert refused.status_code == 422 and "Oi Rui" in refused.text
