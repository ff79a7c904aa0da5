"""Knowledge-base search benchmark: quality and speed, one table per language.

For the held-out questions of data/kb/eval/questions.yml (``test`` split) it
measures, for BM25 alone, the embeddings alone and the hybrid that ships:
top-1 and top-3 accuracy, how often the top hit is confident and right or
confident and wrong, how often a question the knowledge base cannot answer
gets a confident hit, and the latency of ``kb.search`` (median and p95, the
whole path: validation, index fingerprint query, query embedding, scoring).

The baselines' thresholds are chosen on the ``dev`` split with the same rule
as the shipped one (see ``objective``); the hybrid uses the configuration.
``--tune`` searches the hybrid's weight, floor and per-language thresholds on
the ``dev`` split and prints the best settings (KB_* variables).

    .venv/bin/python scripts/bench_kb.py [--split test|dev|all] [--repeat 5] [--tune] [--json]

``run(app)`` returns the rows for a combined ``make bench``.
"""
from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

QUESTIONS = ROOT / "data" / "kb" / "eval" / "questions.yml"
NONE = "_none"
METHODS = (("bm25", "BM25 only"), ("semantic", "embeddings only"), ("hybrid", "hybrid (shipped)"))
# A confident wrong answer (or a confident answer to a question we cannot
# answer) costs twice what a missed right answer costs: the customer reads a
# wrong article before being offered a person.
WRONG_COST = 2.0


def load_questions(path: Path = QUESTIONS) -> dict[str, list[dict]]:
    """{language: [{"q", "slug" (None when unanswerable), "split"}]}"""
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    out: dict[str, list[dict]] = {}
    for language, by_slug in data.items():
        rows = out.setdefault(language, [])
        for slug, splits in by_slug.items():
            for split, questions in splits.items():
                for q in questions:
                    rows.append({"q": q, "slug": None if slug == NONE else slug, "split": split})
    return out


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def objective(top_is_right: np.ndarray, answerable: np.ndarray, top_scores: np.ndarray, tau: float) -> float:
    confident = top_scores >= tau
    right = np.sum(confident & answerable & top_is_right)
    wrong = np.sum(confident & answerable & ~top_is_right) + np.sum(confident & ~answerable)
    return float(right - WRONG_COST * wrong)


def best_threshold(top_is_right, answerable, top_scores) -> float:
    candidates = np.unique(np.round(top_scores, 4))
    best = max(candidates, key=lambda tau: (objective(top_is_right, answerable, top_scores, tau), tau))
    return float(best)


def _score_matrix(index, questions: list[dict], mode: str, weight: float, floor: float) -> np.ndarray:
    from webapp.services import kb_index
    vectors = kb_index.embedder().encode_documents([q["q"] for q in questions]) if mode != "bm25" else None
    rows = []
    for i, q in enumerate(questions):
        rows.append(index.scores(q["q"], None if vectors is None else vectors[i], mode, weight, floor))
    return np.vstack(rows)


def _quality(index, questions: list[dict], scores: np.ndarray, tau: float) -> dict:
    slugs = [e.slug for e in index.entries]
    order = np.argsort(-scores, axis=1, kind="stable")
    top_scores = scores[np.arange(len(scores)), order[:, 0]]
    answerable = np.array([q["slug"] is not None for q in questions])
    gold = [slugs.index(q["slug"]) if q["slug"] else -1 for q in questions]
    top1 = np.array([order[i, 0] == g for i, g in enumerate(gold)])
    top3 = np.array([g in order[i, :3] for i, g in enumerate(gold)])
    confident = top_scores >= tau
    n, none = int(answerable.sum()), int((~answerable).sum())
    return {
        "questions": n, "no_answer_questions": none,
        "top1": float(top1[answerable].mean()), "top3": float(top3[answerable].mean()),
        "confident_right": float((confident & answerable & top1).sum() / n),
        "confident_wrong": float((confident & answerable & ~top1).sum() / n),
        "no_answer_confident": float((confident & ~answerable).sum() / none) if none else 0.0,
    }


def _prepared(app):
    from webapp.services import kb, kb_index
    model_row = None
    embedder = kb_index.embedder()
    if not embedder.loaded:
        before = _rss_mb()
        started = time.perf_counter()
        embedder.encode_query("warm up")
        model_row = {"bench": "kb_model", "model": embedder.name, "load_seconds": time.perf_counter() - started,
                     "rss_mb_added": _rss_mb() - before}
    kb.seed_from_files()
    return model_row


def run(app, *, split: str = "test", repeat: int = 5) -> list[dict]:
    """Benchmark rows (dicts) for every language and method, on ``app``'s
    database (the seed articles are added to it if missing)."""
    from webapp.services import kb, kb_index
    rows: list[dict] = []
    with app.app_context():
        model_row = _prepared(app)
        config = app.config
        weight, floor = config["KB_LEXICAL_WEIGHT"], config["KB_LEXICAL_FLOOR"]
        for language, all_questions in load_questions().items():
            index = kb_index.get_index(language)
            dev = [q for q in all_questions if q["split"] == "dev"]
            chosen = all_questions if split == "all" else [q for q in all_questions if q["split"] == split]
            for mode, label in METHODS:
                if mode == "hybrid":
                    tau = config["KB_MIN_SCORE"][language]
                else:
                    dev_scores = _score_matrix(index, dev, mode, weight, floor)
                    q = _quality(index, dev, dev_scores, 0)
                    order = np.argsort(-dev_scores, axis=1, kind="stable")
                    slugs = [e.slug for e in index.entries]
                    right = np.array([slugs[order[i, 0]] == d["slug"] for i, d in enumerate(dev)])
                    answerable = np.array([d["slug"] is not None for d in dev])
                    tau = best_threshold(right, answerable, dev_scores.max(axis=1))
                quality = _quality(index, chosen, _score_matrix(index, chosen, mode, weight, floor), tau)
                latencies = []
                for _ in range(repeat):
                    for q in chosen:
                        started = time.perf_counter()
                        kb.search(q["q"], language, 3, mode=mode, min_score=tau)
                        latencies.append((time.perf_counter() - started) * 1000)
                rows.append({"bench": "kb_search", "language": language, "split": split, "method": mode,
                             "label": label, "threshold": round(tau, 4), **quality,
                             "latency_median_ms": statistics.median(latencies),
                             "latency_p95_ms": float(np.percentile(latencies, 95)), "searches": len(latencies)})
        if model_row:
            rows.append(model_row)
    return rows


def tune(app) -> list[dict]:
    """Grid search on the dev split: weight, floor, then each language's threshold."""
    from webapp.services import kb_index
    with app.app_context():
        _prepared(app)
        data = {}
        for language, questions in load_questions().items():
            dev = [q for q in questions if q["split"] == "dev"]
            index = kb_index.get_index(language)
            cos = _score_matrix(index, dev, "semantic", 0, 0)
            lex = _score_matrix(index, dev, "bm25", 0, 0)
            slugs = [e.slug for e in index.entries]
            gold = np.array([slugs.index(q["slug"]) if q["slug"] else -1 for q in dev])
            data[language] = (cos, lex, gold)
    results = []
    for weight, floor in itertools.product(np.round(np.arange(0, 1.01, 0.1), 2), (0, 2, 4, 6, 8, 10)):
        entry = {"weight": float(weight), "floor": float(floor), "total": 0.0}
        for language, (cos, lex, gold) in data.items():
            scores = cos + weight * lex / np.maximum(lex.max(axis=1, keepdims=True), max(floor, 1e-9))
            order = np.argsort(-scores, axis=1, kind="stable")
            answerable = gold >= 0
            right = order[:, 0] == gold
            top = scores.max(axis=1)
            tau = best_threshold(right, answerable, top)
            value = objective(right, answerable, top, tau) / answerable.sum()
            top3 = np.mean([g in order[i, :3] for i, g in enumerate(gold) if g >= 0])
            entry[language] = {"threshold": round(tau, 4), "objective": round(value, 3),
                               "top1": round(float(right[answerable].mean()), 3), "top3": round(float(top3), 3)}
            entry["total"] += value + 0.5 * float(right[answerable].mean())
        results.append(entry)
    results.sort(key=lambda e: -e["total"])
    return results


def _app():
    """An app on a throw-away SQLite database holding only the seed articles."""
    from webapp import create_app
    from webapp.extensions import db
    path = Path(tempfile.mkdtemp(prefix="bench-kb-")) / "kb.db"
    app = create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{path}", "TESTING": True})
    with app.app_context():
        db.create_all()
    return app


def print_tables(rows: list[dict]) -> None:
    for language in dict.fromkeys(r["language"] for r in rows if r["bench"] == "kb_search"):
        lang_rows = [r for r in rows if r.get("language") == language]
        first = lang_rows[0]
        print(f"\nKnowledge-base search, language {language}: {first['questions']} questions with an answer, "
              f"{first['no_answer_questions']} without ({first['split']} split); {first['searches']} timed searches")
        print(f"{'method':<18} {'top-1':>6} {'top-3':>6} {'conf.right':>10} {'conf.wrong':>10} "
              f"{'no-answer conf.':>15} {'threshold':>9} {'median ms':>9} {'p95 ms':>7}")
        for r in lang_rows:
            print(f"{r['label']:<18} {r['top1']:>6.1%} {r['top3']:>6.1%} {r['confident_right']:>10.1%} "
                  f"{r['confident_wrong']:>10.1%} {r['no_answer_confident']:>15.1%} {r['threshold']:>9.3f} "
                  f"{r['latency_median_ms']:>9.1f} {r['latency_p95_ms']:>7.1f}")
    for r in rows:
        if r["bench"] == "kb_model":
            print(f"\nModel {r['model']}: loaded in {r['load_seconds']:.1f} s, "
                  f"process memory +{r['rss_mb_added']:.0f} MB (RSS)")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--split", choices=("test", "dev", "all"), default="test")
    parser.add_argument("--repeat", type=int, default=5, help="timed rounds over the questions")
    parser.add_argument("--tune", action="store_true", help="search weight, floor and thresholds on the dev split")
    parser.add_argument("--json", action="store_true", help="print the rows as JSON")
    args = parser.parse_args(argv)
    app = _app()
    if args.tune:
        results = tune(app)
        for e in results[:10]:
            print(json.dumps(e))
        best = results[0]
        print(f"\nsuggested: KB_LEXICAL_WEIGHT={best['weight']} KB_LEXICAL_FLOOR={best['floor']} "
              + " ".join(f"KB_MIN_SCORE_{lang.upper()}={best[lang]['threshold']}"
                         for lang in best if isinstance(best[lang], dict)))
        return 0
    rows = run(app, split=args.split, repeat=args.repeat)
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        print_tables(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
