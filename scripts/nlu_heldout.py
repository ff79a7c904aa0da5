"""Held-out NLU gate: the examples in tests/nlu/ are never used for training.

    python scripts/nlu_heldout.py check            # held-out examples must not be in data/nlu
    python scripts/nlu_heldout.py report DIR       # after `rasa test nlu --successes --out DIR`

`report` prints intent accuracy and macro F1, overall and per language, and a
per-intent F1 table, then exits 1 when a macro F1 (overall or of a language)
is under MACRO_F1_THRESHOLD. Macro F1 is the mean F1 of the intents in the
held-out set. `rasa test nlu` scores the classifier's top intent (it undoes the
FallbackClassifier), so the report also says how many predictions fall under
the fallback threshold of config.yml: in production those get `nlu_fallback`.
"""
from __future__ import annotations

import json
import re
import sys
import unicodedata
from collections import defaultdict
from pathlib import Path

import yaml

# The one place the gate's threshold lives (documented in docs/training.md).
MACRO_F1_THRESHOLD = 0.90

ROOT = Path(__file__).resolve().parent.parent
TRAINING_DIR = ROOT / "data" / "nlu"
# One file per language: the language of an example is the file it is in.
HELDOUT = {"pt": ROOT / "tests" / "nlu" / "test_nlu.yml", "en": ROOT / "tests" / "nlu" / "test_nlu_en.yml"}
# Injected by the webapp as "/share_media", "/share_location" and
# "/empty_message" (webapp/services/inbound.py): never classified, no examples.
INJECTED_INTENTS = {"share_media", "share_location", "empty_message"}

# `[123](ticket_number)` and `[text]{"entity": ...}` annotations.
_ANNOTATION = re.compile(r"\[([^\]]+)\](?:\([^)]*\)|\{[^}]*\})")


def plain_text(example: str) -> str:
    """The example as Rasa sees it: entity annotations replaced by their text."""
    return _ANNOTATION.sub(r"\1", example).strip()


def normalise(text: str) -> str:
    """Lowercase, accents stripped, whitespace collapsed: 'Não  recebi' == 'nao recebi'."""
    decomposed = unicodedata.normalize("NFKD", plain_text(text).casefold())
    stripped = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return " ".join(stripped.split())


def load_examples(path: Path) -> list[tuple[str, str]]:
    """(intent, plain text) for every example of a Rasa YAML NLU file."""
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    examples = []
    for block in data.get("nlu") or []:
        if "intent" not in block:
            continue  # regex, lookup and synonym blocks
        for line in str(block.get("examples") or "").splitlines():
            line = line.strip()
            if line.startswith("- "):
                examples.append((block["intent"], plain_text(line[2:])))
    return examples


def training_examples() -> list[tuple[str, str]]:
    return [ex for path in sorted(TRAINING_DIR.glob("*.yml")) for ex in load_examples(path)]


def heldout_examples() -> dict[str, list[tuple[str, str]]]:
    return {lang: load_examples(path) for lang, path in HELDOUT.items()}


def leaked_examples() -> list[tuple[str, str, str]]:
    """(language, intent, text) of held-out examples that also appear in the training data."""
    seen = {normalise(text) for _, text in training_examples()}
    return [(lang, intent, text) for lang, examples in heldout_examples().items()
            for intent, text in examples if normalise(text) in seen]


def conflicting_examples(examples: list[tuple[str, str]]) -> dict[str, set[str]]:
    """Normalised texts listed under more than one intent."""
    intents: dict[str, set[str]] = defaultdict(set)
    for intent, text in examples:
        intents[normalise(text)].add(intent)
    return {text: names for text, names in intents.items() if len(names) > 1}


def scores(pairs: list[tuple[str, str]]) -> dict:
    """Accuracy, per-intent precision/recall/F1 and macro F1 from (gold, predicted) pairs.

    Macro F1 averages over the gold intents only: a predicted label that is no
    gold intent (nlu_fallback) lowers the recall of the intent it took.
    """
    gold_intents = sorted({gold for gold, _ in pairs})
    per_intent = {}
    for intent in gold_intents:
        tp = sum(1 for g, p in pairs if g == intent and p == intent)
        fp = sum(1 for g, p in pairs if g != intent and p == intent)
        fn = sum(1 for g, p in pairs if g == intent and p != intent)
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / (tp + fn) if tp + fn else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        confused: dict[str, int] = defaultdict(int)
        for g, p in pairs:
            if g == intent and p != intent:
                confused[p] += 1
        per_intent[intent] = {"precision": precision, "recall": recall, "f1": f1, "support": tp + fn,
                              "confused_with": dict(confused)}
    return {
        "n": len(pairs),
        "accuracy": sum(1 for g, p in pairs if g == p) / len(pairs) if pairs else 0.0,
        "macro_f1": sum(v["f1"] for v in per_intent.values()) / len(per_intent) if per_intent else 0.0,
        "intents": per_intent,
    }


def fallback_threshold() -> float | None:
    config = yaml.safe_load((ROOT / "config.yml").read_text(encoding="utf-8"))
    for component in config.get("pipeline") or []:
        if component.get("name") == "FallbackClassifier":
            return float(component.get("threshold", 0.3))
    return None


def predictions(results_dir: Path) -> dict[tuple[str, str], tuple[str, float]]:
    """(text, gold intent) -> (predicted intent, confidence), from rasa's successes and errors files."""
    found = {}
    for name in ("intent_successes.json", "intent_errors.json"):
        path = results_dir / name
        if not path.exists():
            if name == "intent_successes.json":
                raise SystemExit(f"{path} is missing: run `rasa test nlu` with --successes")
            continue  # no errors at all
        for row in json.loads(path.read_text(encoding="utf-8")):
            prediction = row.get("intent_prediction") or {}
            found[(row["text"].strip(), row["intent"])] = (prediction.get("name") or "None",
                                                           float(prediction.get("confidence") or 0.0))
    return found


def report(results_dir: Path, threshold: float = MACRO_F1_THRESHOLD,
           heldout: dict[str, list[tuple[str, str]]] | None = None) -> int:
    found = predictions(results_dir)
    by_language: dict[str, list[tuple[str, str]]] = {}
    for lang, examples in (heldout_examples() if heldout is None else heldout).items():
        pairs = []
        for intent, text in examples:
            if (text, intent) not in found:
                raise SystemExit(f"no prediction for {lang} example {text!r} ({intent}): "
                                 f"was {results_dir} made from the current tests/nlu?")
            pairs.append((intent, found[(text, intent)][0]))
        by_language[lang] = pairs
    overall = scores([pair for pairs in by_language.values() for pair in pairs])
    per_language = {lang: scores(pairs) for lang, pairs in by_language.items()}

    langs = list(per_language)
    print(f"{'intent':<22}" + "".join(f" {'F1 ' + lang:>7}" for lang in langs)
          + f" {'F1 all':>7} {'P':>6} {'R':>6} {'n':>4}  most confused with")
    for intent, v in sorted(overall["intents"].items(), key=lambda kv: kv[1]["f1"]):
        cells = "".join(f" {per_language[lang]['intents'].get(intent, {}).get('f1', float('nan')):>7.3f}"
                        for lang in langs)
        confused = ", ".join(f"{k} ({n})" for k, n in sorted(v["confused_with"].items(), key=lambda kv: -kv[1])[:2])
        print(f"{intent:<22}{cells} {v['f1']:>7.3f} {v['precision']:>6.3f} {v['recall']:>6.3f} "
              f"{v['support']:>4}  {confused}")
    print()
    failed = []
    for name, s in [("all", overall)] + list(per_language.items()):
        ok = s["macro_f1"] >= threshold
        failed += [] if ok else [name]
        print(f"{name:<4} n={s['n']:<5} accuracy {s['accuracy']:.3f}   macro F1 {s['macro_f1']:.3f}"
              f"   {'ok' if ok else 'UNDER'} (threshold {threshold:.2f})")
    unsure = fallback_threshold()
    if unsure is not None:
        rows = [(gold == predicted, confidence) for (_, gold), (predicted, confidence) in found.items()]
        right = [c for ok, c in rows if ok]
        wrong = [c for ok, c in rows if not ok]
        print(f"under the fallback threshold {unsure:.2f} (nlu_fallback in production): "
              f"{sum(c < unsure for c in right)} of {len(right)} right predictions, "
              f"{sum(c < unsure for c in wrong)} of {len(wrong)} wrong ones")
    entity_report = results_dir / "RegexEntityExtractor_report.json"
    if entity_report.exists():
        entities = json.loads(entity_report.read_text(encoding="utf-8"))
        line = ", ".join(f"{k} F1 {v['f1-score']:.3f} (n={v['support']})" for k, v in entities.items()
                         if isinstance(v, dict) and "support" in v and not k.endswith("avg"))
        print(f"entities (regex): {line}")
    if failed:
        print(f"held-out NLU gate FAILED: macro F1 under {threshold:.2f} for {', '.join(failed)}")
        return 1
    print("held-out NLU gate passed")
    return 0


def check() -> int:
    problems = []
    for lang, intent, text in leaked_examples():
        problems.append(f"held-out {lang} example of {intent} is also in data/nlu: {text!r}")
    for name, examples in [("data/nlu", training_examples()),
                           ("tests/nlu", [ex for exs in heldout_examples().values() for ex in exs])]:
        for text, intents in sorted(conflicting_examples(examples).items()):
            problems.append(f"{name}: {text!r} is listed under {', '.join(sorted(intents))}")
    for problem in problems:
        print(problem)
    if problems:
        return 1
    counts = {lang: len(examples) for lang, examples in heldout_examples().items()}
    print(f"held-out examples: {counts}; none of them is in data/nlu")
    return 0


def main(argv: list[str]) -> int:
    if argv[:1] == ["check"]:
        return check()
    if argv[:1] == ["report"] and len(argv) == 2:
        return report(Path(argv[1]))
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
