"""Knowledge-base admin pages: list, try a question, create, edit,
publish/unpublish and delete articles. Admins only."""
from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for
from flask_jwt_extended import current_user

from ..auth import agent_required, csrf_token
from ..services import kb
from ..services.errors import DomainError, NotFound
from . import bp

LANGUAGE_NAMES = {"pt": "Portuguese", "en": "English"}


def _page(template: str, status: int = 200, **context):
    body = render_template(template, agent=current_user, csrf=csrf_token(), kb_languages=kb.LANGUAGES,
                           language_names=LANGUAGE_NAMES, answer_max=kb.ANSWER_MAX, **context)
    return body, status


def _article(article_id: int):
    try:
        return kb.get(article_id)
    except NotFound:
        abort(404)


def _form_fields() -> dict:
    form = request.form
    return {"slug": form.get("slug", ""), "language": form.get("language", ""), "title": form.get("title", ""),
            "answer": form.get("answer", ""), "tags": form.get("tags", ""),
            "published": form.get("published") == "on"}


@bp.get("/kb")
@agent_required(admin=True)
def kb_articles():
    args = request.args
    language = args.get("language") if args.get("language") in kb.LANGUAGES else ""
    published = {"yes": True, "no": False}.get(args.get("published", ""))
    text = args.get("q", "")[:200]
    articles = kb.list_articles(language=language or None, published=published, text=text)
    filters = {"language": language, "published": args.get("published", ""), "q": text}
    # "Try a question": what the assistant would answer, with the scores.
    ask, ask_language, answer, ask_error = args.get("ask", ""), args.get("ask_language", "pt"), None, None
    if ask.strip():
        try:
            answer = kb.search(ask, ask_language, 3)
        except DomainError as exc:
            ask_error = exc.message
    return _page("agent/kb_list.html", articles=articles, filters=filters, ask=ask[:kb.QUERY_MAX],
                 ask_language=ask_language, answer=answer, ask_error=ask_error)


@bp.get("/kb/new")
@agent_required(admin=True)
def kb_new():
    values = {"language": request.args.get("language", "pt"), "slug": request.args.get("slug", ""),
              "tags": "", "published": False}
    return _page("agent/kb_form.html", article=None, values=values)


@bp.post("/kb/new")
@agent_required(admin=True)
def kb_create():
    fields = _form_fields()
    try:
        article = kb.create(**fields)
    except DomainError as exc:
        flash(exc.message, "error")
        return _page("agent/kb_form.html", exc.status, article=None, values=fields)
    flash("Article created." if not article.published else "Article created and published.", "info")
    return redirect(url_for("agent.kb_edit", article_id=article.id))


@bp.get("/kb/<int:article_id>")
@agent_required(admin=True)
def kb_edit(article_id):
    article = _article(article_id)
    values = {**article.to_dict(), "tags": ", ".join(article.tags or [])}
    translations = [a for a in kb.list_articles() if a.slug == article.slug and a.id != article.id]
    return _page("agent/kb_form.html", article=article, values=values, translations=translations,
                 missing=[lang for lang in kb.LANGUAGES
                          if lang != article.language and lang not in {t.language for t in translations}])


@bp.post("/kb/<int:article_id>")
@agent_required(admin=True)
def kb_update(article_id):
    article = _article(article_id)
    fields = _form_fields()
    version = request.form.get("version", "")
    try:
        changed = kb.update(article, expected_version=int(version) if version.isdigit() else None, **fields)
    except DomainError as exc:
        flash(exc.message, "error")
        return _page("agent/kb_form.html", exc.status, article=article, values={**fields, "version": version},
                     translations=[], missing=[])
    flash("Article saved." if changed else "Nothing changed.", "info")
    return redirect(url_for("agent.kb_edit", article_id=article.id))


@bp.post("/kb/<int:article_id>/publish")
@agent_required(admin=True)
def kb_publish(article_id):
    article = _article(article_id)
    publish = request.form.get("published") == "1"
    try:
        kb.set_published(article, publish)
    except DomainError as exc:
        flash(exc.message, "error")
    else:
        flash("Article published: the assistant can answer with it." if publish
              else "Article unpublished: the assistant no longer uses it.", "info")
    if request.form.get("back") == "list":
        return redirect(url_for("agent.kb_articles"))
    return redirect(url_for("agent.kb_edit", article_id=article.id))


@bp.post("/kb/<int:article_id>/delete")
@agent_required(admin=True)
def kb_delete(article_id):
    article = _article(article_id)
    if request.form.get("confirm") != "yes":
        flash("Tick the box to confirm the deletion.", "error")
        return redirect(url_for("agent.kb_edit", article_id=article.id))
    title = article.title
    kb.delete(article)
    flash(f"Article “{title}” deleted.", "info")
    return redirect(url_for("agent.kb_articles"))
