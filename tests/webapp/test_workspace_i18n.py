"""The agent UI's translations: complete, the committed .mo matches the .po, the
knowledge-base pages in Portuguese, and no template writes its text past _()."""
import re
from html.parser import HTMLParser
from pathlib import Path

from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po

from webapp.extensions import db
from webapp.models import Article

from ..conftest import csrf_of, login

ROOT = Path(__file__).resolve().parents[2]
TRANSLATIONS = ROOT / "webapp" / "translations"
LOCALES = ["pt_BR"]


def _catalog(locale):
    with open(TRANSLATIONS / locale / "LC_MESSAGES" / "messages.po", "rb") as f:
        return read_po(f, locale=locale)


def test_every_string_of_the_agent_ui_is_translated():
    with open(TRANSLATIONS / "babel.cfg") as f:
        method_map, options_map = parse_mapping_cfg(f)
    keywords = {"_": None, "gettext": None, "ngettext": (1, 2), "lazy_gettext": None}
    strings = {msg[2] if isinstance(msg[2], str) else msg[2][0]
               for msg in extract_from_dir(str(ROOT), method_map, options_map, keywords=keywords)}
    assert len(strings) > 150
    for locale in LOCALES:
        catalog = _catalog(locale)
        missing = sorted(s for s in strings if not (catalog.get(s) and catalog.get(s).string))
        assert not missing, f"untranslated in {locale} (run `make translations` and translate): {missing}"


def _key(message):
    return message.id if isinstance(message.id, str) else message.id[0]


def _text(message):
    return message.string if isinstance(message.string, str) else tuple(message.string)


def test_compiled_catalogs_match_their_sources():
    for locale in LOCALES:
        source = {_key(m): _text(m) for m in _catalog(locale) if m.id}
        with open(TRANSLATIONS / locale / "LC_MESSAGES" / "messages.mo", "rb") as f:
            compiled = {_key(m): _text(m) for m in read_mo(f) if m.id}
        assert compiled == source, f"run `make translations` to recompile {locale}"


# -- the knowledge-base admin pages in Portuguese -------------------------------------

def test_the_knowledge_base_pages_speak_portuguese(client, make_agent):
    make_agent(email="boss@example.com", role="admin", name="Bea Boss")
    assert login(client, "boss@example.com", "correct horse battery").status_code == 302
    client.get("/agent/language?lang=pt_BR&next=/agent/kb")
    pix = Article(slug="payment-pix", language="pt", title="Pagamento com Pix", answer="Pague com Pix.",
                  tags=["pix"], published=True)
    draft = Article(slug="gift-cards", language="en", title="Gift cards", answer="We sell gift cards.")
    db.session.add_all([pix, draft])
    db.session.commit()

    listing = client.get("/agent/kb").get_data(as_text=True)
    for text in ("Base de conhecimento", "Novo artigo", "Filtrar artigos", "Título, slug ou resposta",
                 "Não publicado", "Testar uma pergunta", "Pergunta do cliente", "ex.: cadê meu pedido?",
                 "2 artigos", "Publicado", "Rascunho", ">Português</option>", ">Inglês</td>", "Despublicar",
                 "Publicar"):
        assert text in listing, text
    for text in ("Knowledge base", "New article", "Filter articles", "Title, slug or answer", "Not published",
                 "Try a question", "Customer's question", "2 articles", "Draft", "Portuguese", ">English</option>",
                 "Unpublish", ">Publish<", "Published"):
        assert text not in listing, text

    edit = client.get(f"/agent/kb/{pix.id}").get_data(as_text=True)
    for text in ("Editar “Pagamento com Pix”", "versão 1", "Adicionar a versão em Inglês", "Resposta (enviada",
                 "Tags (separadas por vírgula", "O assistente responde com este artigo.", "Excluir artigo",
                 "Salvar", "Parágrafos curtos; <code>*bold*</code> é o negrito do WhatsApp"):
        assert text in edit, text
    for text in ("Edit “", "version 1", "Add the version", "Answer (sent", "Tags (comma-separated",
                 "The assistant answers", "Delete article", ">Save<", "Short paragraphs"):
        assert text not in edit, text
    new = client.get("/agent/kb/new").get_data(as_text=True)
    assert "Novo artigo" in new and "Criar" in new and ">Create<" not in new

    # Flash messages and the service's errors too.
    csrf = csrf_of(client)
    refused = client.post(f"/agent/kb/{pix.id}/delete", data={"csrf_token": csrf}, follow_redirects=True)
    assert "Marque a caixa para confirmar a exclusão." in refused.get_data(as_text=True)
    bad = client.post("/agent/kb/new", data={"slug": "Bad Slug", "language": "pt", "title": "x", "answer": "x",
                                             "csrf_token": csrf})
    assert bad.status_code == 422
    assert "O slug deve ter de 1 a 80 letras minúsculas" in bad.get_data(as_text=True)
    taken = client.post(f"/agent/kb/{draft.id}", data={"slug": "payment-pix", "language": "pt", "title": "x",
                                                       "answer": "x", "csrf_token": csrf, "version": "1"})
    assert taken.status_code == 409 and "Já existe um artigo “payment-pix” em Português." in taken.get_data(
        as_text=True)


# -- every agent template goes through _() ---------------------------------------------
#
# A heuristic, not a parser of Jinja: drop the Jinja blocks ({{ }}, {% %}, {# #}),
# then read what is left as HTML and collect the text a person sees: the text
# between tags and the attributes that are shown or read out. Any word left there
# was written straight into the template instead of going through _().
# (A string literal inside {{ }}, such as {{ x or 'attachment' }}, is not seen.)

TEMPLATES = ROOT / "webapp" / "templates" / "agent"
JINJA = re.compile(r"\{#.*?#\}|\{%.*?%\}|\{\{.*?\}\}", re.S)
# Blocks that hold no text: the <body> class names.
NOT_TEXT = re.compile(r"\{%-?\s*block body_class\s*-?%\}.*?\{%-?\s*endblock", re.S)
# Attributes a person sees or hears; data-label is shown by app.css on small screens,
# data-msg-* by live.js.
VISIBLE_ATTRIBUTES = {"placeholder", "title", "aria-label", "alt", "data-label"}
# Elements whose content is not prose: code samples such as <code>order-cancel</code>.
NOT_PROSE = {"code", "script", "style"}
# Words that are the same in every language: names, not words to translate.
# (Symbols such as ·, →, —, # and 📍 hold no letters, so they need no entry.)
ALLOWED_WORDS = {"ZapDesk", "WhatsApp", "UTC"}
WORD = re.compile(r"[^\W\d_]+")  # a run of letters, in any alphabet


class _VisibleText(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.untranslated: list[str] = []
        self.not_prose = 0

    def _attributes(self, tag, attrs):
        for name, value in attrs:
            shown = name in VISIBLE_ATTRIBUTES or name.startswith("data-msg-") or (
                tag == "input" and name == "value" and dict(attrs).get("type") in ("submit", "button", "reset"))
            if shown and value:
                self._check(value, f"<{tag} {name}>")

    def handle_starttag(self, tag, attrs):
        self.not_prose += tag in NOT_PROSE
        self._attributes(tag, attrs)

    def handle_startendtag(self, tag, attrs):
        self._attributes(tag, attrs)

    def handle_endtag(self, tag):
        if tag in NOT_PROSE and self.not_prose:
            self.not_prose -= 1

    def handle_data(self, data):
        if not self.not_prose:
            self._check(data, "text")

    def _check(self, text, where):
        if any(word not in ALLOWED_WORDS for word in WORD.findall(text)):
            self.untranslated.append(f"{where}: {' '.join(text.split())}")


def untranslated(source: str) -> list[str]:
    """The visible text of a template that does not go through _()."""
    parser = _VisibleText()
    parser.feed(JINJA.sub(" ", NOT_TEXT.sub(" ", source)))
    parser.close()
    return parser.untranslated


def test_the_check_finds_text_written_straight_into_a_template():
    # What kb_list.html looked like before it was translated.
    assert untranslated("{% block title %}Knowledge base · ZapDesk{% endblock %}") == [
        "text: Knowledge base · ZapDesk"]
    assert untranslated("<h1>Knowledge base</h1>") == ["text: Knowledge base"]
    assert untranslated('<input placeholder="Title, slug or answer">') == [
        "<input placeholder>: Title, slug or answer"]
    assert untranslated('<form aria-label="Filter articles"></form>') == ["<form aria-label>: Filter articles"]
    assert untranslated('<td data-label="Title">{{ a.title }}</td>') == ["<td data-label>: Title"]
    assert untranslated("<p>{{ n }} article{{ '' if n == 1 else 's' }}</p>") == ["text: article"]
    assert untranslated("— score {{ '%.3f'|format(hit.score) }}") == ["text: — score"]
    assert untranslated("<span>não foi possível</span>") == ["text: não foi possível"]
    # ...and what it looks like now.
    assert untranslated("{% block title %}{{ _('Knowledge base') }} · ZapDesk{% endblock %}") == []
    assert untranslated('<input placeholder="{{ _(\'Title, slug or answer\') }}" value="{{ q }}">') == []
    assert untranslated("{# A comment for developers #}<td>{{ a.updated_at }} UTC</td>") == []
    assert untranslated("<small>{{ _('e.g.') }} <code>order-cancel</code>.</small> · → #1 📍") == []
    assert untranslated('{% block body_class %}login{% endblock %}<a class="brand" href="/">ZapDesk</a>') == []


def test_every_agent_template_sends_its_text_through_gettext():
    templates = sorted(TEMPLATES.rglob("*.html"))
    assert len(templates) > 15
    found = {str(path.relative_to(TEMPLATES)): untranslated(path.read_text(encoding="utf-8")) for path in templates}
    found = {name: texts for name, texts in found.items() if texts}
    assert not found, f"wrap these in _() (or add a name to ALLOWED_WORDS): {found}"


def test_times_are_shown_in_the_teams_time_zone(client, make_agent, app, monkeypatch):
    from datetime import datetime, timezone

    make_agent(email="boss@example.com", role="admin", name="Bea Boss")
    login(client, "boss@example.com", "correct horse battery")
    client.get("/agent/language?lang=pt_BR&next=/agent/kb")
    edited = datetime(2024, 5, 8, 1, 30, tzinfo=timezone.utc)  # 22:30 the day before in São Paulo
    db.session.add(Article(slug="payment-pix", language="pt", title="Pagamento com Pix", answer="Pague com Pix.",
                           published=True, updated_at=edited))
    db.session.commit()
    monkeypatch.setitem(app.config, "BUSINESS_TIMEZONE", "America/Sao_Paulo")
    page = client.get("/agent/kb").get_data(as_text=True)
    assert "07/05/2024 22:30" in page and "Horários em America/Sao_Paulo" in page
    monkeypatch.setitem(app.config, "BUSINESS_TIMEZONE", "Europe/Lisbon")
    page = client.get("/agent/kb").get_data(as_text=True)
    assert "08/05/2024 02:30" in page and "Horários em Europe/Lisbon" in page
