"""Training-data export: personal data replaced, valid Rasa YAML (NLU examples
and test stories), session splitting, and the admin page /agent/export."""
from __future__ import annotations

import json
import os
import subprocess
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest
import yaml

from webapp.extensions import db
from webapp.models import Conversation, Customer, Message, Ticket
from webapp.services import export
from webapp.services.errors import Invalid

from ..conftest import csrf_of, login

ROOT = Path(__file__).resolve().parents[2]
RASA_PYTHON = ROOT / ".venv-rasa" / "bin" / "python"
T0 = datetime(2024, 5, 10, 12, 0, tzinfo=timezone.utc)

# Personal data a customer might write; none of it may appear in an export.
SECRETS = ["maria.jose+loja@example.com", "(11) 98765-4321", "+55 11 98765 4321", "11987654321",
           "+1 415-555-0100", "+44 20 7946 0958", "123.456.789-09", "12345678909", "12.345.678/0001-95",
           "987654321", "Conceição", "Conceicao", "conceição", "Zé Maria"]


def make_customer(name="Maria José da Conceição", profile="Zezinha 🌸", language="pt", phone="+5511912345678"):
    customer = Customer(phone_key=phone[1:], phone=phone, name=name, profile_name=profile, language=language)
    db.session.add(customer)
    db.session.flush()
    conversation = Conversation(customer_id=customer.id, address=f"whatsapp:{phone}")
    db.session.add(conversation)
    db.session.flush()
    return customer, conversation


def say(conversation, author, body, at, language="pt", ticket=None):
    direction = "in" if author == "customer" else "out"
    message = Message(conversation_id=conversation.id, direction=direction, author=author, body=body,
                      status="processed" if direction == "in" else "sent", language=language, created_at=at,
                      ticket_id=ticket.id if ticket else None)
    db.session.add(message)
    db.session.flush()
    return message


def minutes(n):
    return T0 + timedelta(minutes=n)


# -- personal data -----------------------------------------------------------------------

@pytest.mark.parametrize("text, expected", [
    ("meu email é maria.jose+loja@example.com!", "meu email é [email]!"),
    ("liga (11) 98765-4321 ou +55 11 98765 4321", "liga [phone] ou [phone]"),
    ("call me at +1 415-555-0100 or +44 20 7946 0958", "call me at [phone] or [phone]"),
    ("whatsapp 11987654321 fixo 3333-4444", "whatsapp [phone] fixo [phone]"),
    ("cpf 123.456.789-09, sem pontos 12345678909", "cpf [document], sem pontos [document]"),
    ("cnpj 12.345.678/0001-95", "cnpj [document]"),
    ("pedido 987654321 e código 445566", "pedido [number] e código [number]"),
    ("o chamado #12 tem 2 itens de R$ 35,90", "o chamado #12 tem 2 itens de R$ 35,90"),
    ("sou a MARIA jose da conceicao", "sou a [name] [name] da [name]"),
    ("aqui é a Zezinha, não a Mariana", "aqui é a [name], não a Mariana"),
])
def test_personal_data_is_replaced(text, expected):
    redact = export.Redactor(names=["Maria José da Conceição", "Zezinha 🌸"])
    assert redact(text) == expected


def test_document_check_digits_decide_between_cpf_and_a_bare_number():
    assert export.valid_cpf("123.456.789-09") and not export.valid_cpf("123.456.789-00")
    assert export.valid_cnpj("12345678000195") and not export.valid_cnpj("11111111111111")
    # 11 bare digits with a wrong check digit: not a CPF, still never left as is.
    assert export.Redactor()("codigo 12345678900") == "codigo [number]"


# -- NLU -----------------------------------------------------------------------------------

def test_nlu_groups_by_language_deduplicates_and_drops_noise(ctx):
    _, conv = make_customer()
    _, other = make_customer(name="John Smith", profile="Johnny", language="en", phone="+14155550100")
    texts = ["Oi, sou a Maria", "oi sou a maria!!", "OI,  SOU A  MARIA", "quero falar com um atendente",
             "/greet", "", "  ", "👍", "ok", "12", "meu cpf é 123.456.789-09", "pedido 987654321 não chegou"]
    for n, text in enumerate(texts):
        say(conv, "customer", text, minutes(n))
    say(conv, "bot", "Olá! Como posso ajudar?", minutes(30))
    say(conv, "agent", "Oi, aqui é a Ana", minutes(31))
    say(other, "customer", "Hi, I'm John, my email is john@example.com", minutes(1), language="en")
    say(other, "customer", "hi, i'm john, my email is john@example.com", minutes(2), language="en")
    db.session.commit()

    examples = export.nlu_examples(export.Filters())
    assert examples["pt"] == ["Oi, sou a [name]", "quero falar com um atendente", "ok", "meu cpf é [document]",
                              "pedido [number] não chegou"]
    assert examples["en"] == ["Hi, I'm [name], my email is [email]"]

    data = yaml.safe_load(export.nlu_yaml(export.Filters(language="en")))
    assert data["version"] == "3.1"
    assert [block["intent"] for block in data["nlu"]] == ["to_label_en"]
    assert data["nlu"][0]["examples"] == "- Hi, I'm [name], my email is [email]\n"


def test_filters_by_date_customer_and_ticket(ctx):
    customer, conv = make_customer()
    ticket = Ticket(customer_id=customer.id, conversation_id=conv.id, subject="Pedido atrasado")
    db.session.add(ticket)
    db.session.flush()
    say(conv, "customer", "mensagem de ontem", T0 - timedelta(days=1))
    say(conv, "customer", "mensagem de hoje", T0)
    say(conv, "customer", "mensagem do chamado", T0 + timedelta(minutes=5), ticket=ticket)
    _, other = make_customer(name="Pedro", profile=None, phone="+5511922223333")
    say(other, "customer", "outro cliente", T0)
    db.session.commit()

    def texts(**kw):
        return export.nlu_examples(export.Filters(**kw))["pt"]

    assert texts(start=T0.date(), end=T0.date()) == ["mensagem de hoje", "mensagem do chamado", "outro cliente"]
    assert texts(end=T0.date() - timedelta(days=1)) == ["mensagem de ontem"]
    assert texts(customer_id=customer.id) == ["mensagem de ontem", "mensagem de hoje", "mensagem do chamado"]
    assert texts(ticket_id=ticket.id) == ["mensagem do chamado"]
    with pytest.raises(Invalid):
        export.Filters(start=date(2024, 5, 2), end=date(2024, 5, 1)).validate()
    with pytest.raises(Invalid):
        export.Filters(language="de").validate()


NASTY = ['diz: "olá": sim', "- item: valor", "# not a comment", "linha 1\nlinha 2\n\n", "tab\there",
         "'aspas' \\ barra", "emoji 🙂🚚 ✅", "key: [a, b] {c: d}", "[texto](entidade) anotado", "  espaço na frente",
         "&anchor *alias !tag", "%YAML 1.2", "---", "...", "null", "yes", "0x1F", "ação @ 100%", "\u200bzero width"]


def test_yaml_is_valid_for_nasty_texts(ctx):
    _, conv = make_customer()
    for n, text in enumerate(NASTY):
        say(conv, "customer", text, minutes(2 * n))
        say(conv, "bot", f"resposta: {text}", minutes(2 * n + 1))
    db.session.commit()

    nlu = yaml.safe_load(export.nlu_yaml(export.Filters()))
    lines = nlu["nlu"][0]["examples"].splitlines()
    assert all(line.startswith("- ") for line in lines)
    assert "- diz: \"olá\": sim" in lines and "- linha 1 linha 2" in lines and "- emoji 🙂🚚 ✅" in lines
    assert "- [texto] (entidade) anotado" in lines  # customer text cannot annotate entities
    assert "- null" in lines and "- ---" not in lines  # no letters: noise

    stories = yaml.safe_load(export.stories_yaml(export.Filters()))
    steps = stories["stories"][0]["steps"]
    users = [step["user"] for step in steps if "user" in step]
    bots = [step["bot"] for step in steps if "bot" in step]
    assert 'diz: "olá": sim' in users and "linha 1\nlinha 2" in users and "null" in users
    assert "resposta: key: [a, b] {c: d}" in bots


# -- stories -------------------------------------------------------------------------------

def test_stories_split_at_session_gap_and_alternate(ctx):
    _, conv = make_customer()
    say(conv, "system", "Seu chamado #3 foi resolvido", minutes(-10))  # proactive: not a story start
    say(conv, "customer", "oi, sou a Maria", minutes(0))
    say(conv, "bot", "Olá, Maria! Como posso ajudar?", minutes(1))
    say(conv, "customer", "meu pedido", minutes(2))
    say(conv, "customer", "987654321 não chegou", minutes(3))  # two WhatsApp messages, one turn
    say(conv, "bot", "Vou abrir um chamado.", minutes(4))
    say(conv, "bot", "Chamado #7 aberto.", minutes(4))
    # 2h01 later: a new session, so a new story
    say(conv, "customer", "e aí, alguma novidade?", minutes(4 + 121))
    say(conv, "bot", "Ainda não.", minutes(4 + 122))
    # under 2 hours after: the same session
    say(conv, "customer", "obrigada", minutes(4 + 122 + 119))
    say(conv, "bot", "De nada!", minutes(4 + 122 + 120))
    db.session.commit()

    result = export.stories(export.Filters())
    assert len(result) == 2
    first, second = (story["steps"] for story in result)
    assert first == [{"user": "oi, sou a [name]"}, {"bot": "Olá, [name]! Como posso ajudar?"},
                     {"user": "meu pedido\n[number] não chegou"}, {"bot": "Vou abrir um chamado."},
                     {"bot": "Chamado #7 aberto."}]
    assert second == [{"user": "e aí, alguma novidade?"}, {"bot": "Ainda não."}, {"user": "obrigada"},
                      {"bot": "De nada!"}]
    for steps in (first, second):
        kinds = [next(iter(step)) for step in steps]
        assert kinds[0] == "user"
        assert all(not (a == b == "user") for a, b in zip(kinds, kinds[1:], strict=False))
    assert len({story["story"] for story in result}) == 2


def test_agent_messages_are_not_the_assistants_words(ctx):
    _, conv = make_customer()
    say(conv, "customer", "quero falar com uma pessoa", minutes(0))
    say(conv, "bot", "Vou chamar alguém da equipe.", minutes(1))
    say(conv, "customer", "alô?", minutes(2))  # said while waiting for the person
    say(conv, "agent", "Oi Maria, aqui é a Ana. Seu CPF?", minutes(3))
    say(conv, "customer", "123.456.789-09", minutes(4))  # said to the person
    say(conv, "agent", "Pronto, resolvido. Devolvo ao assistente.", minutes(5))
    say(conv, "bot", "Posso ajudar em mais alguma coisa?", minutes(6))
    say(conv, "customer", "não, obrigada", minutes(7))
    say(conv, "bot", "Até logo!", minutes(8))
    db.session.commit()

    text = export.stories_yaml(export.Filters())
    assert "Ana" not in text and "Devolvo" not in text and "alô" not in text and "[document]" not in text
    result = export.stories(export.Filters())
    assert [story["steps"] for story in result] == [
        [{"user": "quero falar com uma pessoa"}, {"bot": "Vou chamar alguém da equipe."}],
        [{"user": "não, obrigada"}, {"bot": "Até logo!"}],
    ]


def test_stories_filter_by_language(ctx):
    _, pt = make_customer()
    _, en = make_customer(name="John Smith", profile=None, language="en", phone="+14155550100")
    say(pt, "customer", "oi", minutes(0))
    say(pt, "bot", "Olá!", minutes(1))
    say(en, "customer", "hello", minutes(0), language="en")
    say(en, "bot", "Hi!", minutes(1), language="en")
    db.session.commit()
    assert [s["steps"][0]["user"] for s in export.stories(export.Filters(language="en"))] == ["hello"]
    assert [s["steps"][0]["user"] for s in export.stories(export.Filters(language="pt"))] == ["oi"]
    assert len(export.stories(export.Filters())) == 2


def seed_conversation_with_secrets():
    _, conv = make_customer()
    for n, secret in enumerate(SECRETS):
        say(conv, "customer", f"anota aí: {secret} ok?", minutes(2 * n))
        say(conv, "bot", f"Anotei {secret}, Maria.", minutes(2 * n + 1))
    db.session.commit()


def test_no_personal_value_survives_either_format(ctx):
    seed_conversation_with_secrets()
    for fmt in export.FORMATS:
        text = export.export(fmt, export.Filters())
        for secret in SECRETS:
            assert secret not in text, (fmt, secret)
            assert secret.lower() not in text.lower(), (fmt, secret)
        assert "Maria" not in text and "4321" not in text and "0100" not in text


@pytest.mark.skipif(not RASA_PYTHON.exists(), reason="needs the Rasa environment (make setup)")
def test_rasa_reads_the_exported_files(ctx, tmp_path):
    """Rasa's own readers (in .venv-rasa) load both files: the test stories
    with their user/bot steps, the NLU examples under to_label_<lang>."""
    seed_conversation_with_secrets()
    _, conv = make_customer(name="John Smith", profile=None, language="en", phone="+14155550100")
    for n, text in enumerate(NASTY):
        say(conv, "customer", text, minutes(100 + 2 * n), language="en")
        say(conv, "bot", f"reply: {text}", minutes(101 + 2 * n), language="en")
    db.session.commit()
    stories_file, nlu_file = tmp_path / "stories.yml", tmp_path / "nlu.yml"
    stories_file.write_text(export.stories_yaml(export.Filters()), encoding="utf-8")
    nlu_file.write_text(export.nlu_yaml(export.Filters()), encoding="utf-8")
    script = """
import json, sys
from rasa.shared.core.domain import Domain
from rasa.shared.core.training_data.story_reader.yaml_story_reader import YAMLStoryReader
from rasa.shared.nlu.training_data.formats.rasa_yaml import RasaYAMLReader
domain = Domain.load(sys.argv[3])
steps = YAMLStoryReader(domain).read_from_file(sys.argv[1])
nlu = RasaYAMLReader().read(sys.argv[2])
print(json.dumps({
    "stories": len(steps),
    "user_texts": sum(1 for s in steps for e in s.events if type(e).__name__ == "UserUttered"),
    "bot_texts": sum(1 for s in steps for e in s.events if type(e).__name__ == "ActionExecuted" and e.action_text),
    "intents": sorted(nlu.intents),
    "examples": len(nlu.intent_examples),
    "entities": sorted(nlu.entities),
}))
"""
    env = {**os.environ, "RASA_TELEMETRY_ENABLED": "false", "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run([str(RASA_PYTHON), "-c", script, str(stories_file), str(nlu_file), str(ROOT / "domain.yml")],
                          capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    stories = yaml.safe_load(stories_file.read_text(encoding="utf-8"))["stories"]
    nlu = yaml.safe_load(nlu_file.read_text(encoding="utf-8"))["nlu"]
    assert report["stories"] == len(stories) == 2
    assert report["user_texts"] == sum(1 for s in stories for step in s["steps"] if "user" in step)
    assert report["bot_texts"] == sum(1 for s in stories for step in s["steps"] if "bot" in step)
    assert report["intents"] == ["to_label_en", "to_label_pt"]
    assert report["examples"] == sum(len(block["examples"].splitlines()) for block in nlu)
    assert report["entities"] == []  # no customer text turned into an entity annotation


# -- the page ------------------------------------------------------------------------------

@pytest.fixture
def admin_client(client, make_agent):
    make_agent(email="boss@example.com", role="admin", name="Bea Boss")
    login(client, "boss@example.com", "correct horse battery")
    return client


def test_page_needs_an_admin(client, make_agent):
    anonymous = client.get("/agent/export")
    assert anonymous.status_code == 302 and "/agent/login" in anonymous.location
    make_agent()
    login(client, "ana@example.com", "correct horse battery")
    assert client.get("/agent/export").status_code == 403
    refused = client.post("/agent/export", data={"csrf_token": csrf_of(client), "format": "nlu"})
    assert refused.status_code == 403 and b"to_label" not in refused.data
    assert b"/agent/export" not in client.get("/agent/").data  # no nav link for agents


def test_admin_downloads_a_yml(admin_client):
    seed_conversation_with_secrets()
    page = admin_client.get("/agent/export")
    assert page.status_code == 200 and b'name="csrf_token"' in page.data
    assert b'href="/agent/export"' in admin_client.get("/agent/").data

    response = admin_client.post("/agent/export", data={
        "csrf_token": csrf_of(admin_client), "format": "stories", "language": "pt",
        "start": T0.date().isoformat(), "end": T0.date().isoformat()})
    assert response.status_code == 200
    assert response.headers["Content-Disposition"] == \
        'attachment; filename="zapdesk-stories-pt-2024-05-10-2024-05-10.yml"'
    assert response.headers["Cache-Control"] == "no-store"
    assert response.mimetype == "application/x-yaml"
    body = response.get_data(as_text=True)
    data = yaml.safe_load(body)
    assert data["version"] == "3.1" and len(data["stories"]) == 1
    assert all(secret not in body for secret in SECRETS)

    nlu = admin_client.post("/agent/export", data={"csrf_token": csrf_of(admin_client), "format": "nlu",
                                                   "language": "all"})
    assert nlu.status_code == 200 and "zapdesk-nlu-all.yml" in nlu.headers["Content-Disposition"]
    assert yaml.safe_load(nlu.get_data(as_text=True))["nlu"][0]["intent"] == "to_label_pt"


def test_post_needs_csrf_and_valid_input(admin_client):
    assert admin_client.post("/agent/export", data={"format": "nlu"}).status_code == 403
    assert admin_client.post("/agent/export", data={"format": "nlu", "csrf_token": "forged"}).status_code == 403
    csrf = csrf_of(admin_client)
    for bad in ({"format": "csv"}, {"format": "nlu", "start": "10/05/2024"}, {"format": "nlu", "language": "de"},
                {"format": "nlu", "start": "2024-05-10", "end": "2024-05-01"}, {"format": "nlu", "ticket": "abc"}):
        response = admin_client.post("/agent/export", data={"csrf_token": csrf, **bad})
        assert response.status_code == 422, bad
        assert "Content-Disposition" not in response.headers
        assert b'id="export-error"' in response.data
