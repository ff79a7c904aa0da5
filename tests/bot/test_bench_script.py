"""The pure parts of scripts/bench.py (`make bench`): percentiles, the table,
the sustained-rate rule and naming the processes. No process is started."""
from __future__ import annotations

import importlib.util
import random
import sys
from pathlib import Path

import numpy as np
import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "bench.py"
spec = importlib.util.spec_from_file_location("zapdesk_bench", SCRIPT)
bench = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = bench  # dataclasses look their module up
spec.loader.exec_module(bench)


def test_percentile_matches_numpy_linear_interpolation():
    rng = random.Random(7)
    for size in (1, 2, 3, 10, 57, 400):
        samples = [rng.expovariate(1 / 20) for _ in range(size)]
        for q in (0, 5, 50, 90, 95, 99, 100):
            assert bench.percentile(samples, q) == pytest.approx(float(np.percentile(samples, q)))


def test_percentile_small_cases_and_bad_input():
    assert bench.percentile([4.0], 95) == 4.0
    assert bench.percentile(range(1, 11), 50) == 5.5
    assert bench.percentile(range(1, 11), 95) == pytest.approx(9.55)
    assert bench.percentile([3, 1, 2], 0) == 1  # order does not matter
    with pytest.raises(ValueError):
        bench.percentile([], 50)
    with pytest.raises(ValueError):
        bench.percentile([1, 2], 101)


def test_row_summarises_samples_and_survives_none():
    r = bench.row("webhook ack", "1 sender", [10, 30, 20, 40, 1000], "ms")
    assert (r.median, r.n) == (30, 5)
    assert r.p95 == pytest.approx(808.0)  # 40 + 0.8 * (1000 - 40)
    empty = bench.row("e2e reply", "nothing came back", [], "ms")
    assert (empty.median, empty.p95, empty.n) == (None, None, 0)
    assert bench.ratio(30, 10) == 3
    assert bench.ratio(None, 10) is None and bench.ratio(5, 0) is None


def test_table_has_one_line_per_row_aligned_columns_and_ratios():
    rows = [bench.Row("webhook ack", "GET /healthz", 1.234, 2.5, "ms", 400),
            bench.Row("webhook ack", "10 concurrent senders", 25.0, 80.25, "ms", 400, 2.5, "1 sender", "90 req/s"),
            bench.Row("memory (RSS)", "rasa, at rest", 812.4, 815.0, "MB", 15),
            bench.Row("throughput", "sustained inbound rate", None, None, "msg/s", 3, note="none passed")]
    lines = bench.format_table(rows).splitlines()
    assert len(lines) == 2 + len(rows)
    assert lines[0].split()[:4] == ["section", "measure", "median", "p95"]
    assert "1.23 ms" in lines[2] and "2.50 ms" in lines[2]
    assert "25.0 ms" in lines[3] and "80.2 ms" in lines[3] and "2.50x 1 sender" in lines[3]
    assert lines[3].startswith(" " * len("webhook ack"))  # the section is named once per group
    assert lines[4].startswith("memory (RSS)") and "812 MB" in lines[4]
    assert " - " in lines[5] and "none passed" in lines[5]
    # Right-aligned numbers end in the same column.
    assert lines[2].index("1.23 ms") + len("1.23 ms") == lines[3].index("25.0 ms") + len("25.0 ms")


def test_markdown_table_escapes_pipes_and_keeps_the_columns():
    rows = [bench.Row("e2e reply", "webhook | Twilio", 500.0, 900.0, "ms", 30, 1.25, "bare Rasa", "a|b")]
    lines = bench.format_table(rows, markdown=True).splitlines()
    assert lines[0] == "| section | measure | median | p95 | n | ratio | note |"
    assert lines[2].count(" | ") == 6 and "webhook \\| Twilio" in lines[2] and "1.25x bare Rasa" in lines[2]


def test_latency_growth_and_the_sustained_rule():
    assert bench.slope([(0, 1), (1, 3), (2, 5), (3, 7)]) == pytest.approx(2)
    assert bench.slope([(5, 1), (5, 9)]) == 0 and bench.slope([(1, 1)]) == 0
    steady = [(t, 0.8 + 0.05 * ((t * 7) % 3)) for t in range(30)]  # noisy but flat
    growing = [(t, 0.8 + 0.4 * t) for t in range(30)]  # a backlog: +0.4 s per second
    assert bench.sustained(30, 30, bench.slope(steady))
    assert not bench.sustained(30, 30, bench.slope(growing))
    assert not bench.sustained(30, 29, bench.slope(steady))  # a message never answered
    assert not bench.sustained(0, 0, 0.0)


def test_processes_are_named_after_the_procfile():
    assert bench.classify(".venv/bin/python .venv/bin/gunicorn --bind 127.0.0.1:5000 webapp.wsgi:app") \
        == "webapp (gunicorn)"
    assert bench.classify(".venv/bin/python .venv/bin/flask --app webapp.wsgi worker") == "worker"
    assert bench.classify(".venv-rasa/bin/python .venv-rasa/bin/rasa run --interface 127.0.0.1 --port 5005 "
                          "--endpoints endpoints.yml --model models/zapdesk.tar.gz") == "rasa"
    assert bench.classify(".venv-rasa/bin/python .venv-rasa/bin/rasa run actions --port 5055 --actions actions") \
        == "action server"
    assert bench.classify(".venv/bin/python -m webapp.dev.mailcatcher --port 8025 --maildir var/mailbox") \
        == "mail catcher"


def test_cpu_note_names_the_busiest_processes_in_cores():
    before = {"rasa": 10.0, "webapp (gunicorn)": 4.0, "worker": 1.0, "action server": 2.0}
    after = {"rasa": 25.0, "webapp (gunicorn)": 7.0, "worker": 1.5, "action server": 8.0, "mail catcher": 0.1}
    assert bench.cpu_note(before, after, 10.0, top=3) == "cpu rasa 1.50, actions 0.60, web 0.30"


def test_unknown_sections_are_refused(capsys):
    with pytest.raises(SystemExit) as exc:
        bench.main(["--only", "webhook,nonsense"])
    assert exc.value.code == 2
    assert "nonsense" in capsys.readouterr().err
