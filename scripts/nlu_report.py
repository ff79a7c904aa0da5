"""Summarise a `rasa test nlu` report (intent_report.json) in the terminal."""
from __future__ import annotations

import json
import sys
from pathlib import Path


def main(folder: str) -> int:
    report = json.loads((Path(folder) / "intent_report.json").read_text())
    rows = [(name, v) for name, v in report.items() if isinstance(v, dict) and "support" in v
            and name not in ("micro avg", "macro avg", "weighted avg")]
    print(f"{'intent':<18} {'precision':>9} {'recall':>7} {'f1':>6} {'n':>5}  most confused with")
    for name, v in sorted(rows, key=lambda r: r[1]["f1-score"]):
        confused = ", ".join(f"{k} ({n})" for k, n in sorted((v.get("confused_with") or {}).items(),
                                                               key=lambda kv: -kv[1])[:2])
        scores = f"{v['precision']:>9.3f} {v['recall']:>7.3f} {v['f1-score']:>6.3f}"
        print(f"{name:<18} {scores} {v['support']:>5}  {confused}")
    for avg in ("macro avg", "weighted avg"):
        if avg in report:
            print(f"{avg:<18} {report[avg]['precision']:>9.3f} {report[avg]['recall']:>7.3f} "
                  f"{report[avg]['f1-score']:>6.3f}")
    if "accuracy" in report:
        print(f"accuracy           {report['accuracy']:.3f}")
    matrix = Path(folder) / "intent_confusion_matrix.png"
    if matrix.exists():
        print(f"confusion matrix: {matrix}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "var/nlu-results"))
