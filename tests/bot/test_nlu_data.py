"""The NLU training data and the held-out test set (tests/nlu/) stay apart and complete.

The held-out gate itself (`make test-nlu-heldout`) needs a trained model; these
checks only read the YAML files, so they run with the fast tests.
"""
from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("nlu_heldout", ROOT / "scripts" / "nlu_heldout.py")
nlu = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(nlu)

MIN_HELDOUT_PER_INTENT = 15
MIN_TRAINING_PER_INTENT = 20


def _domain_intents() -> set[str]:
    domain = yaml.safe_load((ROOT / "domain.yml").read_text(encoding="utf-8"))
    return {i if isinstance(i, str) else next(iter(i)) for i in domain["intents"]}


def _classified_intents() -> set[str]:
    return _domain_intents() - nlu.INJECTED_INTENTS


def test_normalise_ignores_case_accents_spacing_and_annotations():
    assert nlu.normalise("  Não   RECEBI meu pedido ") == "nao recebi meu pedido"
    assert nlu.normalise("cadê o chamado [12](ticket_number)?") == "cade o chamado 12?"
    assert nlu.normalise("você") == nlu.normalise("voce")
    assert nlu.normalise("👍🏽") == "👍🏽"


def test_no_heldout_example_is_in_the_training_data():
    leaked = nlu.leaked_examples()
    assert leaked == [], "copy nothing from tests/nlu/ into data/nlu/: " + repr(leaked[:10])


def test_leak_check_catches_a_copy_with_other_accents_and_case(tmp_path, monkeypatch):
    training = tmp_path / "nlu"
    training.mkdir()
    (training / "pt.yml").write_text('version: "3.1"\nnlu:\n  - intent: greet\n    examples: |\n'
                                     "      - Olá,  BOM dia\n", encoding="utf-8")
    heldout = tmp_path / "held.yml"
    heldout.write_text('version: "3.1"\nnlu:\n  - intent: greet\n    examples: |\n'
                       "      - ola, bom dia\n      - boa tarde\n", encoding="utf-8")
    monkeypatch.setattr(nlu, "TRAINING_DIR", training)
    monkeypatch.setattr(nlu, "HELDOUT", {"pt": heldout})
    assert nlu.leaked_examples() == [("pt", "greet", "ola, bom dia")]


@pytest.mark.parametrize("lang", sorted(nlu.HELDOUT))
def test_heldout_covers_every_intent_in_each_language(lang):
    counts: dict[str, int] = {}
    for intent, _ in nlu.heldout_examples()[lang]:
        counts[intent] = counts.get(intent, 0) + 1
    assert set(counts) == _classified_intents()
    thin = {intent: n for intent, n in counts.items() if n < MIN_HELDOUT_PER_INTENT}
    assert not thin, f"held-out {lang}: fewer than {MIN_HELDOUT_PER_INTENT} examples: {thin}"


@pytest.mark.parametrize("filename", ["pt.yml", "en.yml"])
def test_training_data_covers_every_classified_intent(filename):
    counts: dict[str, int] = {}
    for intent, _ in nlu.load_examples(ROOT / "data" / "nlu" / filename):
        counts[intent] = counts.get(intent, 0) + 1
    assert set(counts) == _classified_intents()
    thin = {intent: n for intent, n in counts.items() if n < MIN_TRAINING_PER_INTENT}
    assert not thin, f"{filename}: fewer than {MIN_TRAINING_PER_INTENT} examples: {thin}"


def test_no_example_is_listed_under_two_intents():
    assert nlu.conflicting_examples(nlu.training_examples()) == {}
    heldout = [ex for examples in nlu.heldout_examples().values() for ex in examples]
    assert nlu.conflicting_examples(heldout) == {}


def test_annotated_entities_have_the_shape_the_regexes_extract():
    regexes = {}
    for block in yaml.safe_load((ROOT / "data" / "nlu" / "regex.yml").read_text(encoding="utf-8"))["nlu"]:
        regexes[block["regex"]] = [line[2:].strip() for line in block["examples"].splitlines() if line.strip()]
    files = sorted((ROOT / "data" / "nlu").glob("*.yml")) + list(nlu.HELDOUT.values())
    annotations = [m for path in files for m in re.findall(r"\[([^\]]+)\]\((\w+)\)", path.read_text(encoding="utf-8"))]
    assert {entity for _, entity in annotations} == set(regexes)
    for value, entity in annotations:
        assert any(re.fullmatch(pattern, value) for pattern in regexes[entity]), (value, entity)


def test_scores_macro_f1_over_gold_intents_only():
    pairs = [("greet", "greet"), ("greet", "nlu_fallback"), ("deny", "deny"), ("deny", "greet")]
    result = nlu.scores(pairs)
    assert result["accuracy"] == 0.5
    # greet: P = 1/2, R = 1/2 -> F1 0.5; deny: P = 1, R = 1/2 -> F1 2/3
    assert result["intents"]["greet"]["f1"] == pytest.approx(0.5)
    assert result["intents"]["deny"]["f1"] == pytest.approx(2 / 3)
    assert result["macro_f1"] == pytest.approx((0.5 + 2 / 3) / 2)
    assert "nlu_fallback" not in result["intents"]
    assert result["intents"]["greet"]["confused_with"] == {"nlu_fallback": 1}


def _results(tmp_path, successes, errors):
    (tmp_path / "intent_successes.json").write_text(json.dumps(
        [{"text": t, "intent": i, "intent_prediction": {"name": i, "confidence": 0.9}} for t, i in successes]))
    (tmp_path / "intent_errors.json").write_text(json.dumps(
        [{"text": t, "intent": i, "intent_prediction": {"name": p, "confidence": 0.4}} for t, i, p in errors]))
    return tmp_path


def test_gate_fails_when_one_language_is_under_the_threshold(tmp_path, capsys):
    heldout = {"pt": [("greet", "oi"), ("deny", "não")], "en": [("greet", "hi"), ("deny", "no")]}
    results = _results(tmp_path, [("oi", "greet"), ("não", "deny"), ("hi", "greet")], [("no", "deny", "greet")])
    assert nlu.report(results, threshold=0.9, heldout=heldout) == 1
    out = capsys.readouterr().out
    assert "FAILED" in out and "en" in out.split("FAILED")[1]
    assert nlu.report(results, threshold=0.3, heldout=heldout) == 0


def test_gate_refuses_results_from_another_test_set(tmp_path):
    results = _results(tmp_path, [("oi", "greet")], [])
    with pytest.raises(SystemExit, match="no prediction"):
        nlu.report(results, heldout={"pt": [("greet", "olá")]})
