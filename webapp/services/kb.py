"""Knowledge base: articles (create, edit, publish, delete), seeding from
``data/kb/*.yml`` and search for the assistant.

An article's vector is recomputed only when its embedded text (title, tags,
answer) or the configured model changes, never per query. Search ranks the
published articles of one language by cosine similarity plus a share of their
BM25 score (see webapp/services/kb_index.py and scripts/bench_kb.py for why),
and marks a hit ``confident`` when its score reaches the language's threshold.
"""
from __future__ import annotations

import logging
import re
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import yaml
from flask import current_app
from sqlalchemy import or_
from sqlalchemy.orm.exc import StaleDataError

from ..extensions import db
from ..models import Article
from . import kb_index
from .errors import Conflict, DomainError, Invalid, NotFound

log = logging.getLogger(__name__)

LANGUAGES = ("pt", "en")
SLUG_RE = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
SLUG_MAX = 80
TITLE_MAX = 200
ANSWER_MAX = 1500  # WhatsApp's limit is 1600 per message; aim for under 900
TAGS_MAX = 20
TAG_MAX = 40
QUERY_MAX = 500
LIMIT_MAX = 10
FIELDS = ("slug", "language", "title", "answer", "tags", "published")


class BadSearch(DomainError):
    """A search request that cannot be answered (400)."""


# -- validation ---------------------------------------------------------------

def _clean_slug(value) -> str:
    slug = str(value or "").strip().lower()
    if not slug or len(slug) > SLUG_MAX or not SLUG_RE.match(slug):
        raise Invalid(f"the slug must be 1 to {SLUG_MAX} lower-case letters, digits and single hyphens",
                      field="slug")
    return slug


def _clean_language(value) -> str:
    language = str(value or "").strip().lower()
    if language not in LANGUAGES:
        raise Invalid(f"the language must be one of {', '.join(LANGUAGES)}", field="language")
    return language


def _clean_title(value) -> str:
    title = " ".join(str(value or "").split())
    if not 0 < len(title) <= TITLE_MAX:
        raise Invalid(f"a title of 1 to {TITLE_MAX} characters is required", field="title")
    return title


def _clean_answer(value) -> str:
    # Keep the paragraphs; drop trailing spaces and Windows line ends from forms.
    lines = [line.rstrip() for line in str(value or "").replace("\r\n", "\n").replace("\r", "\n").split("\n")]
    answer = "\n".join(lines).strip()
    answer = re.sub(r"\n{3,}", "\n\n", answer)
    if not 0 < len(answer) <= ANSWER_MAX:
        raise Invalid(f"an answer of 1 to {ANSWER_MAX} characters is required", field="answer")
    return answer


def clean_tags(value) -> list[str]:
    """Tags from a list or a comma-separated string: trimmed, lower case, no repeats."""
    if value is None:
        return []
    if isinstance(value, str):
        items = value.split(",")
    elif isinstance(value, (list, tuple)):
        items = value
    else:
        raise Invalid("tags must be a list of strings", field="tags")
    tags: list[str] = []
    for item in items:
        if not isinstance(item, str):
            raise Invalid("tags must be a list of strings", field="tags")
        tag = " ".join(item.split()).lower()
        if not tag:
            continue
        if len(tag) > TAG_MAX:
            raise Invalid(f"a tag has at most {TAG_MAX} characters", field="tags")
        if tag not in tags:
            tags.append(tag)
    if len(tags) > TAGS_MAX:
        raise Invalid(f"at most {TAGS_MAX} tags", field="tags")
    return tags


def _clean_published(value) -> bool:
    if not isinstance(value, bool):
        raise Invalid("published must be true or false", field="published")
    return value


def _clean(fields: dict) -> dict:
    cleaners = {"slug": _clean_slug, "language": _clean_language, "title": _clean_title,
                "answer": _clean_answer, "tags": clean_tags, "published": _clean_published}
    unknown = set(fields) - set(cleaners)
    if unknown:
        raise Invalid(f"unknown field(s): {', '.join(sorted(unknown))}")
    return {name: cleaners[name](value) for name, value in fields.items()}


# -- embeddings ---------------------------------------------------------------

def _model_name() -> str:
    return current_app.config["KB_MODEL"]


def _needs_embedding(article: Article) -> bool:
    text = kb_index.embedding_text(article.title, article.tags or [], article.answer)
    return (article.embedding is None or article.embedding_model != _model_name()
            or article.content_hash != kb_index.text_hash(text))


def _embed(articles: list[Article]) -> int:
    """Compute the vectors of the articles whose text or model changed; returns how many."""
    stale = [a for a in articles if _needs_embedding(a)]
    if not stale:
        return 0
    texts = [kb_index.embedding_text(a.title, a.tags or [], a.answer) for a in stale]
    vectors = kb_index.embedder().encode_documents(texts)
    for article, text, vector in zip(stale, texts, vectors, strict=True):
        article.embedding = kb_index.to_blob(vector)
        article.embedding_model = _model_name()
        article.content_hash = kb_index.text_hash(text)
    return len(stale)


def _commit() -> None:
    try:
        db.session.commit()
    except StaleDataError as exc:
        db.session.rollback()
        raise Conflict("the article was changed by someone else meanwhile; reload it and try again") from exc


# -- articles -----------------------------------------------------------------

def get(article_id: int) -> Article:
    article = db.session.get(Article, article_id)
    if article is None:
        raise NotFound("article not found")
    return article


def list_articles(*, language: str | None = None, published: bool | None = None,
                  text: str | None = None, limit: int = 500) -> list[Article]:
    """Articles for the admin list: by slug, then language."""
    query = db.select(Article).order_by(Article.slug, Article.language).limit(limit)
    if language:
        query = query.where(Article.language == language)
    if published is not None:
        query = query.where(Article.published.is_(published))
    text = " ".join((text or "").split())[:200]
    if text:
        pattern = "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        query = query.where(or_(Article.title.ilike(pattern, escape="\\"), Article.slug.ilike(pattern, escape="\\"),
                                Article.answer.ilike(pattern, escape="\\")))
    return list(db.session.scalars(query))


def _ensure_free(slug: str, language: str, article_id: int | None = None) -> None:
    existing = db.session.scalar(db.select(Article).filter_by(slug=slug, language=language))
    if existing is not None and existing.id != article_id:
        raise Conflict(f"an article '{slug}' in '{language}' exists already", field="slug")


def create(*, slug, language, title, answer, tags=None, published=False) -> Article:
    fields = _clean({"slug": slug, "language": language, "title": title, "answer": answer,
                     "tags": tags, "published": published})
    _ensure_free(fields["slug"], fields["language"])
    article = Article(**fields)
    _embed([article])
    db.session.add(article)
    _commit()
    return article


def update(article: Article, *, expected_version: int | None = None, **changes) -> bool:
    """Apply the given fields; returns whether anything changed. The vector is
    recomputed only when the title, tags or answer changed."""
    if expected_version is not None and expected_version != article.version:
        raise Conflict("the article was changed by someone else meanwhile; reload it and try again")
    fields = _clean(changes)
    slug, language = fields.get("slug", article.slug), fields.get("language", article.language)
    if (slug, language) != (article.slug, article.language):
        _ensure_free(slug, language, article.id)
    changed = False
    for name, value in fields.items():
        if getattr(article, name) != value:
            setattr(article, name, value)
            changed = True
    if not changed:
        return False
    _embed([article])
    _commit()
    return True


def set_published(article: Article, published: bool, *, expected_version: int | None = None) -> bool:
    return update(article, expected_version=expected_version, published=published)


def delete(article: Article) -> None:
    db.session.delete(article)
    _commit()


# -- seeding ------------------------------------------------------------------

def _read_seed_files(directory: Path) -> list[dict]:
    articles: list[dict] = []
    seen: set[tuple[str, str]] = set()
    files = sorted(directory.glob("*.yml"))
    if not files:
        raise Invalid(f"no knowledge base files (*.yml) in {directory}")
    for path in files:
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as exc:
            raise Invalid(f"{path.name}: not valid YAML ({exc})") from exc
        if not isinstance(data, dict) or not isinstance(data.get("articles"), list):
            raise Invalid(f"{path.name}: expected a mapping with a list of `articles`")
        for number, item in enumerate(data["articles"], 1):
            if not isinstance(item, dict):
                raise Invalid(f"{path.name}: article {number} is not a mapping")
            raw = {"language": data.get("language"), "published": True, "tags": [], **item}
            try:
                fields = _clean(raw)
            except Invalid as exc:
                raise Invalid(f"{path.name}: article {number} ({item.get('slug', '?')}): {exc.message}") from exc
            key = (fields["slug"], fields["language"])
            if key in seen:
                raise Invalid(f"{path.name}: article '{key[0]}' in '{key[1]}' appears twice")
            seen.add(key)
            articles.append(fields)
    return articles


def seed_from_files(directory: str | Path | None = None, *, update_existing: bool = False,
                    only_if_empty: bool = False) -> dict:
    """Load the seed articles: create the missing ones and store missing or
    stale vectors. Existing articles keep what admins changed unless
    ``update_existing``. Idempotent: a second run changes nothing. Every file
    is checked before anything is written."""
    counts = {"created": 0, "updated": 0, "unchanged": 0, "embedded": 0, "skipped": 0}
    if only_if_empty and db.session.scalar(db.select(Article.id).limit(1)) is not None:
        counts["skipped"] = 1
        return counts
    directory = Path(directory or current_app.config["KB_SEED_DIR"])
    wanted = _read_seed_files(directory)
    existing = {(a.slug, a.language): a for a in db.session.scalars(db.select(Article))}
    created: list[Article] = []
    for fields in wanted:
        article = existing.get((fields["slug"], fields["language"]))
        if article is None:
            article = Article(**fields)
            db.session.add(article)
            created.append(article)
        elif update_existing and any(getattr(article, k) != v for k, v in fields.items()):
            for name, value in fields.items():
                setattr(article, name, value)
            counts["updated"] += 1
        else:
            counts["unchanged"] += 1
    counts["created"] = len(created)
    # Every article, those created in the UI included, gets a current vector.
    counts["embedded"] = _embed(created + list(existing.values()))
    _commit()
    return counts


# -- search -------------------------------------------------------------------

@dataclass(frozen=True)
class Hit:
    id: int
    slug: str
    title: str
    answer: str
    score: float
    confident: bool

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class SearchResult:
    confident: bool
    results: list[Hit]

    def to_dict(self) -> dict:
        return {"confident": self.confident, "results": [h.to_dict() for h in self.results]}


def clean_query(query) -> str:
    text = " ".join(str(query or "").split())
    if not text:
        raise BadSearch("a question (q) is required", field="q")
    if len(text) > QUERY_MAX:
        raise BadSearch(f"the question is limited to {QUERY_MAX} characters", field="q")
    return text


def clean_search_language(language) -> str:
    value = str(language or "").strip().lower()
    if value not in LANGUAGES:
        raise BadSearch(f"the language must be one of {', '.join(LANGUAGES)}", field="language")
    return value


def clean_limit(limit) -> int:
    try:
        value = int(limit)
    except (TypeError, ValueError):
        value = 0
    if not 1 <= value <= LIMIT_MAX:
        raise BadSearch(f"limit must be a whole number from 1 to {LIMIT_MAX}", field="limit")
    return value


def search(query: str, language: str, limit: int = 3, *, mode: str | None = None,
           min_score: float | None = None) -> SearchResult:
    """The best published articles in ``language`` for a customer's question.

    ``mode`` (hybrid, semantic or bm25) and ``min_score`` default to the
    configuration; the benchmark passes them to compare the methods."""
    query = clean_query(query)
    language = clean_search_language(language)
    limit = clean_limit(limit)
    config = current_app.config
    mode = mode or config["KB_SEARCH_MODE"]
    if mode not in kb_index.MODES:
        raise ValueError(f"unknown search mode {mode!r}")
    if min_score is None:
        min_score = config["KB_MIN_SCORE"][language]
    index = kb_index.get_index(language)
    if not index.entries:
        return SearchResult(False, [])
    vector = None if mode == "bm25" else kb_index.embedder().encode_query(query)
    scores = index.scores(query, vector, mode, config["KB_LEXICAL_WEIGHT"], config["KB_LEXICAL_FLOOR"])
    order = np.argsort(-scores, kind="stable")[:limit]
    hits = []
    for i in order:
        entry, score = index.entries[int(i)], float(scores[int(i)])
        hits.append(Hit(entry.id, entry.slug, entry.title, entry.answer, round(score, 4), score >= min_score))
    return SearchResult(hits[0].confident, hits)
