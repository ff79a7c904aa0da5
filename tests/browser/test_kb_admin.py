"""An admin curates the knowledge base in a real browser: finds an article,
tries a customer's question, writes a new article, publishes it and sees the
assistant's search pick it up."""
import pytest

from webapp.extensions import db
from webapp.models import Article
from webapp.services import kb, kb_index

from .conftest import shot

pytestmark = pytest.mark.browser


def login(page, base, email, password="correct horse battery"):
    page.goto(f"{base}/agent/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def test_admin_writes_and_publishes_an_article(page, live_server, make_agent, ctx):
    kb_index.embedder().encode_query("warm up")
    kb.seed_from_files()
    make_agent(email="boss@example.com", name="Bea Boss", role="admin")
    login(page, live_server, "boss@example.com")
    page.get_by_role("link", name="Knowledge base").click()
    page.get_by_role("heading", name="Knowledge base").wait_for()

    page.get_by_label("Search", exact=True).fill("boleto")
    page.locator("#kb-language").select_option("pt")
    page.get_by_role("button", name="Apply filters").click()
    rows = page.locator("tr[data-article]")
    assert rows.count() >= 1 and page.get_by_role("link", name="Pagamento com boleto bancário").is_visible()
    assert set(rows.locator("td[data-label=Language]").all_inner_texts()) == {"Portuguese"}

    page.get_by_label("Customer's question").fill("vcs tem vale presente?")
    page.get_by_role("button", name="Search", exact=True).click()
    assert "No confident match" in page.locator("#kb-try-verdict").inner_text()
    shot(page, "kb-admin-list")

    page.get_by_role("link", name="New article").click()
    page.get_by_label("Title").fill("Vale-presente <b>digital</b>")
    page.get_by_label("Slug (shared by the translations of an article)").fill("gift-cards")
    page.get_by_label("Answer (sent as it is on WhatsApp)").fill(
        "Temos *vale-presente digital* de R$ 50 a R$ 1.000.\n\nCompre no site em Vale-presente; o código chega "
        "por e-mail e vale por 12 meses.")
    page.get_by_label("Tags (comma-separated: words customers use for this topic)").fill("vale-presente, gift card")
    page.get_by_role("button", name="Create").click()
    page.get_by_role("heading", name="Edit “Vale-presente <b>digital</b>”").wait_for()
    assert page.locator("#kb-status").inner_text() == "Draft"
    page.get_by_role("button", name="Publish").click()
    assert page.locator("#kb-status").inner_text() == "Published"
    shot(page, "kb-admin-edit")

    page.get_by_role("link", name="← Knowledge base").click()
    page.get_by_label("Customer's question").fill("vcs tem vale presente?")
    page.get_by_role("button", name="Search", exact=True).click()
    assert page.locator("#kb-try-results li").first.inner_text().startswith("Vale-presente <b>digital</b>")
    assert "would answer with the first article" in page.locator("#kb-try-verdict").inner_text()

    db.session.expire_all()
    gift = db.session.scalar(db.select(Article).filter_by(slug="gift-cards"))
    assert gift.published and gift.language == "pt" and gift.tags == ["vale-presente", "gift card"]
    assert kb.search("vocês vendem vale presente?", "pt").results[0].slug == "gift-cards"
