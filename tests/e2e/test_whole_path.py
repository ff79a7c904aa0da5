"""Steps 2-7 of the first working version, through signed webhooks and the real processes."""
import re
import time

import pytest
import requests

from webapp.dev.mailcatcher import keys_oldest_first, open_maildir

from ..conftest import login_http
from .conftest import Phone

pytestmark = pytest.mark.e2e


def latest_mail(system, pattern: str):
    import time
    from email import policy
    from email.parser import BytesParser
    deadline = time.time() + 30
    while time.time() < deadline:
        box = open_maildir(system.maildir)
        for key in reversed(keys_oldest_first(box)):
            mail = BytesParser(policy=policy.default).parsebytes(box[key].as_bytes())
            if re.search(pattern, mail["Subject"]):
                return mail
        time.sleep(0.3)
    raise AssertionError(f"no email with subject {pattern!r}")


def test_customer_opens_a_ticket_and_an_agent_answers(system):
    maria = Phone(system, "+5511988887777", "Maria Teste")
    # 2. A new customer says "oi" and gets Portuguese.
    maria.say("oi", r"assistente virtual.*nome completo")
    # 3. Registration and verification by email code.
    maria.say("Maria da Silva", r"email")
    maria.say("maria@example.com", r"enviando um código de 6 dígitos")
    mail = latest_mail(system, r"código de verificação")
    code = re.search(r"\b(\d{6})\b", mail["Subject"]).group(1)
    wrong = "000000" if code != "000000" else "111111"
    maria.say(wrong, r"não está certo.*4 tentativas")
    maria.say(code, r"cadastro está confirmado")
    # 4. Opening a ticket.
    maria.say("quero abrir um chamado", r"assunto")
    maria.say("Celular chegou com a tela quebrada", r"descreva")
    # A photo without text while the form waits for the description: kept, not taken as the answer.
    maria.send("", media=[("https://api.twilio.com/2010-04-01/Accounts/AC0/Messages/MM1/Media/ME1", "image/jpeg")])
    maria.expect(r"não consigo ver imagens.*descreva")
    maria.say("Comprei o pedido 4521 e o celular chegou com a tela rachada.", r"Posso abrir este chamado")
    created = maria.say("sim", r"chamado \*#(\d+)\* foi aberto")
    number = re.search(r"#(\d+)\* foi aberto", created).group(1)
    # 5. The confirmation email links to the status page of that one ticket.
    mail = latest_mail(system, rf"Chamado #{number} aberto")
    link = re.search(r"(https?://\S+/t/\S+)", mail.get_body(("plain",)).get_content()).group(1)
    page = requests.get(link, timeout=10)
    assert page.status_code == 200 and "Celular chegou com a tela quebrada" in page.text and "Novo" in page.text
    # 6. Status by listing and by number; another number is not hers.
    maria.say("qual o status do meu chamado?", rf"#{number} Celular chegou com a tela quebrada — Novo")
    maria.say(f"status do chamado {number}", rf"Chamado #{number} .*Novo")
    maria.say("status do chamado 999", r"Não encontrei o chamado #999")
    # 7. The agent logs in, sees the ticket and the conversation, changes status and replies.
    agent = requests.Session()
    login = login_http(agent, system.base)
    assert login.status_code == 200 and "Celular chegou com a tela quebrada" in login.text
    ticket_page = agent.get(f"{system.base}/agent/tickets/{number}", timeout=10).text
    assert "quero abrir um chamado" in ticket_page and "Comprei o pedido 4521" in ticket_page
    assert "image/jpeg" in ticket_page  # the photo is on the conversation the agent sees
    csrf = agent.cookies["csrf_access_token"]
    agent.post(f"{system.base}/agent/tickets/{number}/status", data={"status": "open", "csrf_token": csrf}, timeout=10)
    maria.expect(rf"chamado #{number} .*Em atendimento")
    key = re.search(r'name="reply_key" value="([^"]+)"', ticket_page).group(1)
    agent.post(f"{system.base}/agent/tickets/{number}/reply",
               data={"body": "Olá Maria, vamos trocar seu celular.", "reply_key": key, "csrf_token": csrf}, timeout=10)
    maria.expect(r"vamos trocar seu celular")
    page = requests.get(link, timeout=10)
    assert "Em atendimento" in page.text and "vamos trocar seu celular" in page.text
    # Her answer goes to the agent, and the assistant stays silent.
    maria.send("Obrigada! Posso levar na loja amanhã?")
    deadline = time.time() + 20
    while "Posso levar na loja amanhã?" not in agent.get(f"{system.base}/agent/tickets/{number}", timeout=10).text:
        assert time.time() < deadline, "the customer's answer never reached the ticket"
        time.sleep(0.5)
    assert maria.replies()[0] == []
    # Resolving the ticket gives her back to the assistant, which asks whether it may be closed.
    agent.post(f"{system.base}/agent/tickets/{number}/status", data={"status": "resolved", "csrf_token": csrf},
               timeout=10)
    maria.expect(rf"chamado #{number} .*resolvido.*Posso encerrar o chamado")
    maria.say("qual o status do meu chamado?", r"Resolvido")
    maria.say("sim", rf"chamado #{number} está encerrado.*De \*1\* a \*5\*")
    maria.say("4", r"Obrigada pela nota 4")


def test_the_same_flow_in_english(system):
    john = Phone(system, "+447700900123", "John Doe")
    john.say("Hi there", r"virtual support assistant.*full name")
    john.say("John Doe", r"What is your email")
    john.say("john@example.com", r"sending a 6-digit code")
    code = re.search(r"\b(\d{6})\b", latest_mail(system, r"Your verification code")["Subject"]).group(1)
    john.say(code, r"registration is confirmed")
    john.say("I want to open a ticket", r"what is the problem about")
    john.say("Wrong item delivered", r"describe the problem")
    john.say("I ordered a blue kettle and got a red toaster.", r"Shall I open this ticket")
    created = john.say("yes", r"ticket \*#(\d+)\* is open")
    number = re.search(r"#(\d+)\* is open", created).group(1)
    john.say("what is the status of my ticket?", rf"#{number} Wrong item delivered — New")
    mail = latest_mail(system, rf"Ticket #{number} opened")
    assert "Follow its progress" in mail.get_body(("plain",)).get_content()


def test_a_brazilian_customer_can_ask_for_english(system):
    ana = Phone(system, "+5521977776666", "Ana")
    ana.say("oi", r"assistente virtual")
    # Asked in the middle of registration: the form goes on, in English.
    ana.say("speak english", r"From now on I'll speak English.*What is your full name")
    ana.say("Ana Souza", r"Ana Souza, what is your email")
