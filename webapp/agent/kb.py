"""Knowledge-base admin pages: list, try a question, create, edit,
publish/unpublish and delete articles. Admins only."""
from __future__ import annotations

import re

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext, lazy_gettext
from flask_jwt_extended import current_user

from ..auth import agent_required, csrf_token
from ..services import kb
from ..services.errors import DomainError, NotFound
from . import bp, i18n

LANGUAGE_NAMES = {"pt": lazy_gettext("Portuguese"), "en": lazy_gettext("English")}

# The knowledge-base service's messages (webapp/services/kb.py) that these
# pages can show, in the agent's language; as in admin.py, any other message
# goes through i18n.error_text. The keys are built from the service's limits,
# so they stay equal to what it says.
_LANGUAGE_LIST = ", ".join(kb.LANGUAGES)
MESSAGES = {
    f"the slug must be 1 to {kb.SLUG_MAX} lower-case letters, digits and single hyphens":
        lazy_gettext("The slug must be 1 to %(max)s lower-case letters, digits and single hyphens.",
                     max=kb.SLUG_MAX),
    f"the language must be one of {_LANGUAGE_LIST}":
        lazy_gettext("The language must be one of %(languages)s.", languages=_LANGUAGE_LIST),
    f"a title of 1 to {kb.TITLE_MAX} characters is required":
        lazy_gettext("A title of 1 to %(max)s characters is required.", max=kb.TITLE_MAX),
    f"an answer of 1 to {kb.ANSWER_MAX} characters is required":
        lazy_gettext("An answer of 1 to %(max)s characters is required.", max=kb.ANSWER_MAX),
    f"a tag has at most {kb.TAG_MAX} characters":
        lazy_gettext("A tag has at most %(max)s characters.", max=kb.TAG_MAX),
    f"at most {kb.TAGS_MAX} tags": lazy_gettext("At most %(max)s tags.", max=kb.TAGS_MAX),
    "the article was changed by someone else meanwhile; reload it and try again":
        lazy_gettext("The article was changed by someone else meanwhile; reload it and try again."),
    "a question (q) is required": lazy_gettext("Type a question."),
    f"the question is limited to {kb.QUERY_MAX} characters":
        lazy_gettext("The question is limited to %(max)s characters.", max=kb.QUERY_MAX),
}
# The one message that names the article: "an article 'slug' in 'pt' exists already".
_EXISTS = re.compile(r"an article '(?P<slug>.*)' in '(?P<language>.*)' exists already")


def error_text(exc: DomainError) -> str:
    """A knowledge-base service error in the agent's language."""
    exists = _EXISTS.fullmatch(exc.message)
    if exists:
        language = exists["language"]
        return gettext("An article “%(slug)s” in %(language)s exists already.", slug=exists["slug"],
                       language=LANGUAGE_NAMES.get(language, language))
    return i18n.error_text(exc, MESSAGES)


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
            ask_error = error_text(exc)
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
        flash(error_text(exc), "error")
        return _page("agent/kb_form.html", exc.status, article=None, values=fields)
    flash(gettext("Article created and published.") if article.published else gettext("Article created."), "info")
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
        flash(error_text(exc), "error")
        return _page("agent/kb_form.html", exc.status, article=article, values={**fields, "version": version},
                     translations=[], missing=[])
    flash(gettext("Article saved.") if changed else gettext("Nothing changed."), "info")
    return redirect(url_for("agent.kb_edit", article_id=article.id))


@bp.post("/kb/<int:article_id>/publish")
@agent_required(admin=True)
def kb_publish(article_id):
    article = _article(article_id)
    publish = request.form.get("published") == "1"
    try:
        kb.set_published(article, publish)
    except DomainError as exc:
        flash(error_text(exc), "error")
    else:
        flash(gettext("Article published: the assistant can answer with it.") if publish
              else gettext("Article unpublished: the assistant no longer uses it."), "info")
    if request.form.get("back") == "list":
        return redirect(url_for("agent.kb_articles"))
    return redirect(url_for("agent.kb_edit", article_id=article.id))


@bp.post("/kb/<int:article_id>/delete")
@agent_required(admin=True)
def kb_delete(article_id):
    article = _article(article_id)
    if request.form.get("confirm") != "yes":
        flash(gettext("Tick the box to confirm the deletion."), "error")
        return redirect(url_for("agent.kb_edit", article_id=article.id))
    title = article.title
    kb.delete(article)
    flash(gettext("Article “%(title)s” deleted.", title=title), "info")
    return redirect(url_for("agent.kb_articles"))
