"""Issue 4's closing paths end to end: an agent resolves, the customer says
yes (closed, rated), no (reopened, back to the agent), or nothing (closed by
the worker once the question is older than CLOSE_AFTER_DAYS: the question's
time is moved back in the database instead of sleeping)."""
import re
import time
from datetime import timedelta

import pytest
import requests

from ..conftest import login_http
from .conftest import Phone
from .test_real_traffic_dialogue import open_ticket_until_summary, tickets_of, verified

pytestmark = pytest.mark.e2e


def agent_session(system) -> requests.Session:
    agent = requests.Session()
    login_http(agent, system.base)
    return agent


def resolve(system, agent: requests.Session, number: str) -> None:
    csrf = agent.cookies["csrf_access_token"]
    for status in ("open", "resolved"):
        response = agent.post(f"{system.base}/agent/tickets/{number}/status",
                              data={"status": status, "csrf_token": csrf}, timeout=10)
        assert response.status_code < 400, response.text


def new_ticket(system, phone: Phone, subject: str) -> str:
    open_ticket_until_summary(phone, subject, f"{subject}: detalhes do problema com o pedido 9090.")
    created = phone.say("sim", r"chamado \*#(\d+)\* foi aberto")
    return re.search(r"#(\d+)\*", created).group(1)


def test_yes_closes_and_the_rating_is_stored(system):
    leo = verified(system, "+5551988880001", "Leo Dias", "leo@example.com")
    number = new_ticket(system, leo, "Cupom não aplicado")
    agent = agent_session(system)
    resolve(system, agent, number)
    leo.expect(rf"#{number}.*resolvido.*Posso encerrar o chamado")
    leo.say("sim", rf"chamado #{number} está encerrado.*De \*1\* a \*5\*")
    leo.say("5", r"Obrigada pela nota 5")
    [ticket] = tickets_of(system, "+5551988880001")
    assert ticket["status"] == "closed"
    page = agent.get(f"{system.base}/agent/tickets/{number}", timeout=10).text
    assert "5" in page


def test_no_reopens_and_a_person_follows_up(system):
    mel = verified(system, "+5551988880002", "Mel Souza", "mel@example.com")
    number = new_ticket(system, mel, "Pix não reconhecido")
    resolve(system, agent_session(system), number)
    mel.expect(r"Posso encerrar o chamado")
    mel.say("não, ainda não resolveu", rf"chamado #{number} foi reaberto.*pessoa")
    [ticket] = tickets_of(system, "+5551988880002")
    assert ticket["status"] == "open"
    # "A person will follow up": what she writes next reaches that person, not the assistant.
    mel.send("o pix saiu da minha conta dia 3")
    agent = agent_session(system)
    deadline = time.time() + 30
    while "saiu da minha conta dia 3" not in agent.get(f"{system.base}/agent/tickets/{number}", timeout=10).text:
        assert time.time() < deadline, "the message never reached the ticket"
        time.sleep(0.5)
    time.sleep(2)
    assert mel.replies()[0] == []


def test_no_answer_closes_the_ticket_with_a_message(system):
    from webapp import create_app
    from webapp.extensions import db
    from webapp.models import Ticket, utcnow

    noa = verified(system, "+5551988880003", "Noa Reis", "noa@example.com")
    number = new_ticket(system, noa, "Boleto vencido")
    resolve(system, agent_session(system), number)
    noa.expect(r"Posso encerrar o chamado")
    app = create_app({"SQLALCHEMY_DATABASE_URI": system.env["DATABASE_URL"].replace(
        "postgresql://", "postgresql+psycopg://")})
    with app.app_context():
        ticket = db.session.get(Ticket, int(number))
        ticket.close_asked_at = utcnow() - timedelta(days=3, minutes=1)
        db.session.commit()
        db.engine.dispose()
    noa.expect(rf"não tivemos resposta em 3 dias, o chamado #{number}", timeout=30)
    assert tickets_of(system, "+5551988880003")[0]["status"] == "closed"


def test_a_customer_closes_their_own_ticket_after_confirming(system):
    ravi = verified(system, "+5551988880004", "Ravi Lopes", "ravi@example.com")
    number = new_ticket(system, ravi, "Troca de tamanho")
    ravi.say(f"pode fechar o chamado {number}", rf"Posso encerrar o chamado #{number}")
    assert tickets_of(system, "+5551988880004")[0]["status"] == "new"  # not before the yes
    ravi.say("sim", rf"chamado #{number} está encerrado")
    assert tickets_of(system, "+5551988880004")[0]["status"] == "closed"
