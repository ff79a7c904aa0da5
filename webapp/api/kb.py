"""Knowledge base: search for the action server, article CRUD for admins."""
from flask import request

from ..auth import agent_required, principal_required
from ..services import kb
from ..services.errors import Invalid
from . import bp
from .auth import json_body


@bp.get("/kb/search")
@principal_required("kb")
def kb_search():
    """``?q=<question>&language=pt|en&limit=3`` -> {"confident", "results": [...]}"""
    result = kb.search(request.args.get("q", ""), request.args.get("language", ""),
                       request.args.get("limit", "3"))
    return result.to_dict()


def _published_filter(value: str | None) -> bool | None:
    if value in (None, "", "all"):
        return None
    if value in ("true", "1", "yes"):
        return True
    if value in ("false", "0", "no"):
        return False
    raise Invalid("published must be true, false or all", field="published")


@bp.get("/kb/articles")
@agent_required()
def kb_articles():
    language = request.args.get("language") or None
    if language is not None and language not in kb.LANGUAGES:
        raise Invalid(f"the language must be one of {', '.join(kb.LANGUAGES)}", field="language")
    articles = kb.list_articles(language=language, published=_published_filter(request.args.get("published")),
                                text=request.args.get("q"))
    return {"articles": [a.to_dict() for a in articles]}


@bp.post("/kb/articles")
@agent_required(admin=True)
def kb_create_article():
    body = json_body()
    article = kb.create(slug=body.get("slug"), language=body.get("language"), title=body.get("title"),
                        answer=body.get("answer"), tags=body.get("tags"), published=body.get("published", False))
    return {"article": article.to_dict()}, 201


@bp.get("/kb/articles/<int:article_id>")
@agent_required()
def kb_article(article_id):
    return {"article": kb.get(article_id).to_dict()}


@bp.patch("/kb/articles/<int:article_id>")
@agent_required(admin=True)
def kb_update_article(article_id):
    body = json_body()
    article = kb.get(article_id)
    expected = body.pop("version", None)
    if expected is not None and (isinstance(expected, bool) or not isinstance(expected, int)):
        raise Invalid("version must be a whole number", field="version")
    unknown = set(body) - set(kb.FIELDS)
    if unknown:
        raise Invalid(f"unknown field(s): {', '.join(sorted(unknown))}")
    changed = kb.update(article, expected_version=expected, **body)
    return {"article": article.to_dict(), "changed": changed}


@bp.delete("/kb/articles/<int:article_id>")
@agent_required(admin=True)
def kb_delete_article(article_id):
    kb.delete(kb.get(article_id))
    return "", 204
