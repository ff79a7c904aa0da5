"""`make bench`: start the system as `make run` does and measure it; print one table.

The system is started with scripts/run.py (honcho, the Procfile, gunicorn.conf.py:
exactly what `make run` starts) on free ports, in a temporary var dir, on the
embedded default (SQLite, the built-in fake Twilio API, the local mail
catcher), or with ``--postgres`` (or ``BENCH_DB=postgres``) on a fresh
PostgreSQL database created next to ``test`` (dropped afterwards) with the
rate limits kept in Redis.

Sections (``--only`` runs a subset, comma-separated):
  tickets   ticket list and search latency with 100,000 tickets (scripts/bench_tickets.py)
  memory    RSS (with children) of each process at rest and under load
  webhook   signed webhook acknowledgement latency with 1, 10 and 50 concurrent senders
  e2e       webhook in -> first message at the fake Twilio API, against a bare Rasa REST turn
  rate      sustained messages per second before replies fall behind (ramped rate)
  kb        knowledge-base search latency and accuracy against BM25 (scripts/bench_kb.py)
  coldstart scripts/run.py until /healthz answers and the assistant answers; clean stop

Each figure is the median and the 95th percentile of its repetitions; a ratio
compares it with a baseline measured in the same run. ``--quick`` repeats
less (for development); ``--json FILE`` keeps the rows; ``--markdown`` prints
the table for docs/benchmarks.md.

    .venv/bin/python scripts/bench.py [--quick] [--only webhook,e2e] [--postgres] [--json FILE] [--markdown]
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

SECTIONS = ("tickets", "memory", "webhook", "e2e", "rate", "kb", "coldstart")
MODEL = ROOT / "models" / "zapdesk.tar.gz"
AUTH_TOKEN = "bench-twilio-auth-token"
SECRET_KEY = "bench-secret-key-0123456789-0123456789-abcdef"
PG_URL = os.environ.get("BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
# First messages of new customers, as they arrive: Portuguese and English.
MESSAGES = ("oi", "bom dia", "quero abrir um chamado", "hello", "I want to open a ticket",
            "qual o status do meu chamado?", "boa tarde, preciso de ajuda", "hi there")


# ---------------------------------------------------------------- pure parts (tests/bot/test_bench_script.py)

def percentile(samples: Iterable[float], q: float) -> float:
    """The q-th percentile (0-100) with linear interpolation between the
    closest ranks (numpy's default)."""
    values = sorted(samples)
    if not values:
        raise ValueError("no samples")
    if not 0 <= q <= 100:
        raise ValueError("q must be within 0..100")
    rank = (len(values) - 1) * q / 100
    low, high = math.floor(rank), math.ceil(rank)
    return values[low] + (values[high] - values[low]) * (rank - low)


@dataclass
class Row:
    section: str
    measure: str
    median: float | None
    p95: float | None
    unit: str
    n: int
    ratio: float | None = None
    baseline: str = ""  # what the ratio is against
    note: str = ""


def row(section: str, measure: str, samples: list[float], unit: str, **extra) -> Row:
    """A row from raw samples: their median and 95th percentile."""
    if not samples:
        return Row(section, measure, None, None, unit, 0, **extra)
    return Row(section, measure, statistics.median(samples), percentile(samples, 95), unit, len(samples), **extra)


def ratio(value: float | None, baseline: float | None) -> float | None:
    if value is None or not baseline:
        return None
    return value / baseline


def fmt_value(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit == "%":
        return f"{value:.1f} %"
    if unit == "ms":
        return f"{value:.2f} ms" if value < 10 else f"{value:.1f} ms"
    if unit == "s":
        return f"{value:.2f} s"
    if unit == "MB":
        return f"{value:.0f} MB"
    return f"{value:.1f} {unit}".strip()


def format_table(rows: list[Row], markdown: bool = False) -> str:
    """One table: section, measure, median, p95, n, ratio against its baseline, note."""
    header = ["section", "measure", "median", "p95", "n", "ratio", "note"]
    lines = [[r.section, r.measure, fmt_value(r.median, r.unit), fmt_value(r.p95, r.unit), str(r.n),
              f"{r.ratio:.2f}x {r.baseline}".strip() if r.ratio is not None else "", r.note] for r in rows]
    if markdown:
        def cell(text: str) -> str:
            return text.replace("|", "\\|")
        align = ["---", "---", "--:", "--:", "--:", "---", "---"]
        out = ["| " + " | ".join(header) + " |", "|" + "|".join(align) + "|"]
        out += ["| " + " | ".join(cell(c) for c in line) + " |" for line in lines]
        return "\n".join(out)
    widths = [max(len(h), *(len(line[i]) for line in lines)) if lines else len(h) for i, h in enumerate(header)]
    right = {2, 3, 4}

    def render(cells: list[str]) -> str:
        return "  ".join(c.rjust(w) if i in right else c.ljust(w)
                         for i, (c, w) in enumerate(zip(cells, widths, strict=True))).rstrip()
    out = [render(header), "  ".join("-" * w for w in widths)]
    previous = None
    for line in lines:
        out.append(render([line[0] if line[0] != previous else "", *line[1:]]))
        previous = line[0]
    return "\n".join(out)


def slope(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of y over x (0 when x does not vary)."""
    if len(points) < 2:
        return 0.0
    mean_x = statistics.fmean(x for x, _ in points)
    mean_y = statistics.fmean(y for _, y in points)
    var = sum((x - mean_x) ** 2 for x, _ in points)
    if var == 0:
        return 0.0
    return sum((x - mean_x) * (y - mean_y) for x, y in points) / var


# A rate is sustained when every message is answered and the reply latency
# does not keep growing while messages arrive: a backlog that grows makes the
# latency grow by (1 - capacity / rate) seconds per second.
MAX_LATENCY_GROWTH = 0.1  # seconds of extra latency per second of traffic


def sustained(sent: int, answered: int, latency_growth: float) -> bool:
    return sent > 0 and answered == sent and latency_growth < MAX_LATENCY_GROWTH


def classify(cmdline: str) -> str:
    """Which of the Procfile's processes a command line (with its children's) belongs to."""
    if "gunicorn" in cmdline:
        return "webapp (gunicorn)"
    if "mailcatcher" in cmdline:
        return "mail catcher"
    if "rasa" in cmdline and "actions" in cmdline:
        return "action server"
    if "rasa" in cmdline:
        return "rasa"
    if "worker" in cmdline:
        return "worker"
    return "other"


def machine() -> dict:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        mem_kb = int(next(line.split()[1] for line in Path("/proc/meminfo").read_text().splitlines()
                          if line.startswith("MemTotal")))
    except (OSError, StopIteration, ValueError):
        mem_kb = 0
    return {"cpu": cpu, "cores": os.cpu_count(), "ram_gb": round(mem_kb / 2**20, 1),
            "python": platform.python_version(), "load": os.getloadavg()}


# ---------------------------------------------------------------- the system

def free_port() -> int:
    from tests.conftest import free_port as port
    return port()


def sa_url(url: str) -> str:
    """The SQLAlchemy URL of a database URL (psycopg 3 is the installed driver)."""
    if url.startswith("postgresql://"):
        return "postgresql+psycopg://" + url[len("postgresql://"):]
    return url


def database_app(url: str):
    """A Flask app on the system's database, in this process: to prepare data
    with the services and to read what the fake Twilio API recorded."""
    from webapp import create_app
    return create_app({"SQLALCHEMY_DATABASE_URI": sa_url(url), "SECRET_KEY": SECRET_KEY,
                       "TWILIO_AUTH_TOKEN": AUTH_TOKEN})


class MakeRun:
    """scripts/run.py, what `make run` starts, on free ports in ``var``: its own
    process group, so that stopping it is Ctrl-C in a terminal."""

    def __init__(self, var: Path, database_url: str, extra: dict | None = None):
        from devenv import system_env
        self.var = var
        ports = {name: free_port() for name in ("web", "rasa", "actions", "smtp")}
        self.env = system_env(web_port=ports["web"], rasa_port=ports["rasa"], actions_port=ports["actions"],
                              smtp_port=ports["smtp"], var=var, extra={
                                  "ZAPDESK_VAR": str(var), "DATABASE_URL": database_url,
                                  "SECRET_KEY": SECRET_KEY, "TWILIO_AUTH_TOKEN": AUTH_TOKEN, **(extra or {})})
        self.base = f"http://127.0.0.1:{ports['web']}"
        self.rasa = f"http://127.0.0.1:{ports['rasa']}"
        self.actions = f"http://127.0.0.1:{ports['actions']}"
        self.proc: subprocess.Popen | None = None
        self.family: set[int] = set()

    def start(self) -> None:
        var = self.var
        var.mkdir(parents=True, exist_ok=True)
        self.log_path = var / f"run-{int(time.time() * 1000)}.log"
        log = open(self.log_path, "wb")
        self.proc = subprocess.Popen([str(ROOT / ".venv/bin/python"), str(ROOT / "scripts/run.py")], cwd=ROOT,
                                     env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def remember_family(self) -> None:
        import psutil
        try:
            self.family.update(p.pid for p in psutil.Process(self.proc.pid).children(recursive=True))
        except psutil.NoSuchProcess:
            pass

    def wait_for(self, url: str, timeout: float) -> float:
        """Seconds until ``url`` answers below 500 (perf_counter), or raise."""
        import requests
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            if not self.alive():
                raise RuntimeError(f"scripts/run.py exited:\n{self.log_tail()}")
            try:
                if requests.get(url, timeout=2).status_code < 500:
                    self.remember_family()
                    return time.perf_counter()
            except requests.RequestException:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"{url} did not answer in {timeout:.0f} s:\n{self.log_tail()}")

    def log_tail(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    def stop(self) -> tuple[float, bool]:
        """Ctrl-C to the whole process group; seconds until every process is gone,
        and whether they all went by themselves."""
        import psutil
        if self.proc is None:
            return 0.0, True
        self.remember_family()
        started = time.perf_counter()
        try:
            os.killpg(self.proc.pid, signal.SIGINT)
        except ProcessLookupError:
            pass
        clean = True
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            clean = False
        deadline = time.perf_counter() + 10
        left = self._left(psutil)
        while left and time.perf_counter() < deadline:
            time.sleep(0.1)
            left = self._left(psutil)
        elapsed = time.perf_counter() - started
        if left or self.proc.poll() is None:
            clean = False
            for pid in [*left, self.proc.pid]:  # our own processes only: the ones this object started
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        return elapsed, clean

    def _left(self, psutil) -> list[int]:
        left = []
        for pid in self.family:
            try:
                if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                    left.append(pid)
            except psutil.NoSuchProcess:
                pass
        return left

    def processes(self) -> dict[str, list]:
        """{name: [psutil.Process, ...]}: run.py and honcho, then each Procfile
        process with its children."""
        import psutil
        root = psutil.Process(self.proc.pid)
        groups: dict[str, list] = {"supervisor (run.py, honcho)": [root]}
        for honcho in root.children():
            groups["supervisor (run.py, honcho)"].append(honcho)
            for proc in honcho.children():
                family = [proc, *proc.children(recursive=True)]
                try:
                    name = classify(" ".join(" ".join(p.cmdline()) for p in family))
                except psutil.NoSuchProcess:
                    continue
                groups.setdefault(name, []).extend(family)
        return groups


def rss_mb(processes: list) -> float:
    import psutil
    total = 0
    for proc in processes:
        try:
            total += proc.memory_info().rss
        except psutil.NoSuchProcess:
            pass
    return total / 2**20


def cpu_seconds(system: MakeRun) -> dict[str, float]:
    """CPU seconds (user + system) used so far by each process group."""
    import psutil
    out = {}
    for name, procs in system.processes().items():
        total = 0.0
        for proc in procs:
            try:
                times = proc.cpu_times()
                total += times.user + times.system
            except psutil.NoSuchProcess:
                pass
        out[name] = total
    return out


def cpu_note(before: dict[str, float], after: dict[str, float], wall: float, top: int = 4) -> str:
    """The busiest processes between two ``cpu_seconds``, in cores."""
    used = {name: (after[name] - before.get(name, 0.0)) / wall for name in after if wall > 0}
    busiest = sorted(used.items(), key=lambda item: -item[1])[:top]
    short = {"webapp (gunicorn)": "web", "action server": "actions", "supervisor (run.py, honcho)": "honcho"}
    return "cpu " + ", ".join(f"{short.get(name, name)} {cores:.2f}" for name, cores in busiest)


class MemorySampler:
    """Samples every process's RSS once a second, under the current label."""

    def __init__(self, system: MakeRun):
        self.system = system
        self.label: str | None = None
        self.samples: dict[tuple[str, str], list[float]] = {}
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stop.wait(1.0):
            label = self.label
            if label is None or not self.system.alive():
                continue
            try:
                groups = self.system.processes()
            except Exception:  # a process came or went while we looked
                continue
            for name, procs in groups.items():
                self.samples.setdefault((name, label), []).append(rss_mb(procs))

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=5)


class Replies:
    """When the fake Twilio API recorded the first message to each address
    (its rows in the system's database, read every 0.1 s)."""

    def __init__(self, app):
        self.app = app
        self.first: dict[str, float] = {}
        self.last_id = 0
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        from webapp.extensions import db
        from webapp.models import SimulatedMessage
        while not self.stop.wait(0.1):
            with self.app.app_context():
                try:
                    rows = db.session.execute(
                        db.select(SimulatedMessage.id, SimulatedMessage.to, SimulatedMessage.created_at)
                        .where(SimulatedMessage.id > self.last_id, SimulatedMessage.direction == "out")
                        .order_by(SimulatedMessage.id)).all()
                except Exception:  # no schema yet, or the database is restarting
                    rows = []
                finally:
                    db.session.remove()
            with self.lock:
                for id_, to, at in rows:
                    self.first.setdefault(to, at.timestamp())
                    self.last_id = id_

    def at(self, number: str) -> float | None:
        with self.lock:
            return self.first.get(f"whatsapp:{number}")

    def wait(self, number: str, timeout: float) -> float | None:
        deadline = time.time() + timeout
        while time.time() < deadline:
            found = self.at(number)
            if found is not None:
                return found
            time.sleep(0.05)
        return None

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=5)


class Numbers:
    """Fresh Brazilian mobile numbers: every one is a new customer."""

    def __init__(self, start: int = 0):
        self.next = start
        self.lock = threading.Lock()

    def take(self) -> str:
        with self.lock:
            self.next += 1
            return f"+55119{60_000_000 + self.next:08d}"


def send_webhook(session, base: str, number: str, text: str) -> tuple[int, float, float]:
    """A signed Twilio webhook like Twilio sends it: (status, wall-clock time
    it left, seconds until the answer)."""
    from bot.twilio_whatsapp import sign
    url = f"{base}/webhooks/twilio/whatsapp"
    params = {"MessageSid": "SM" + uuid.uuid4().hex, "AccountSid": "AC" + "0" * 32, "From": f"whatsapp:{number}",
              "To": "whatsapp:+14155238886", "Body": text, "ProfileName": "Bench", "WaId": number.lstrip("+"),
              "NumMedia": "0", "NumSegments": "1", "SmsStatus": "received", "ApiVersion": "2010-04-01"}
    headers = {"X-Twilio-Signature": sign(AUTH_TOKEN, url, params)}
    sent = time.time()
    started = time.perf_counter()
    try:
        status = session.post(url, data=params, headers=headers, timeout=30).status_code
    except Exception:
        status = 0
    return status, sent, time.perf_counter() - started


# ---------------------------------------------------------------- sections

@dataclass
class Settings:
    quick: bool
    postgres: bool

    @property
    def tickets(self) -> tuple[int, int]:
        return (2_000, 5) if self.quick else (100_000, 30)

    @property
    def webhook_requests(self) -> int:
        return 60 if self.quick else 400

    @property
    def e2e_pairs(self) -> int:
        return 4 if self.quick else 30

    @property
    def rates(self) -> tuple[list[float], float, float]:
        """(rates to try, seconds of traffic at each, seconds to wait for the last replies)"""
        if self.quick:
            return [1, 2], 8, 30
        return [0.5, 1, 1.5, 2, 3, 4, 6, 8], 30, 60

    @property
    def coldstarts(self) -> int:
        return 1 if self.quick else 3

    @property
    def kb_repeat(self) -> int:
        return 1 if self.quick else 3


def bench_tickets_rows(settings: Settings, pg_url: str | None, tmp: Path) -> list[Row]:
    import bench_tickets
    n, runs = settings.tickets
    rows = []
    for r in bench_tickets.run(n_tickets=n, runs=runs, pg_url=pg_url, sqlite_dir=str(tmp)):
        note = f"{r['rows']:,} rows" if r["rows"] is not None else ""
        if r["p95_ms"] is None:  # a one-off: seeding
            rows.append(Row(f"tickets ({r['backend']}, {n:,})", r["case"], r["median_ms"] / 1000, None, "s", 1,
                            note=note))
        else:
            rows.append(Row(f"tickets ({r['backend']}, {n:,})", r["case"], r["median_ms"], r["p95_ms"], "ms", runs,
                            note=note))
    for backend in dict.fromkeys(r.section for r in rows):
        cases = {r.measure: r for r in rows if r.section == backend}
        keyset = cases.get("all, deep page (keyset, row 50,000)")
        offset = cases.get("all, deep page (OFFSET 50,000; not used)")
        if keyset and offset:
            keyset.ratio, keyset.baseline = ratio(keyset.median, offset.median), "OFFSET"
    return rows


def bench_kb_rows(settings: Settings, app) -> list[Row]:
    import bench_kb
    rows = []
    results = bench_kb.run(app, split="test", repeat=settings.kb_repeat)
    for language in dict.fromkeys(r["language"] for r in results if r["bench"] == "kb_search"):
        by_method = {r["method"]: r for r in results if r.get("language") == language}
        bm25 = by_method.get("bm25")
        for r in by_method.values():
            note = (f"top-1 {r['top1']:.0%}, top-3 {r['top3']:.0%}, confident+wrong {r['confident_wrong']:.0%}, "
                    f"unanswerable confident {r['no_answer_confident']:.0%} ({r['questions']}+"
                    f"{r['no_answer_questions']} questions)")
            rows.append(Row(f"kb search ({language})", r["label"], r["latency_median_ms"], r["latency_p95_ms"], "ms",
                            r["searches"], ratio(r["latency_median_ms"], bm25["latency_median_ms"]) if bm25 else None,
                            "BM25" if bm25 else "", note))
    for r in results:
        if r["bench"] == "kb_model":
            rows.append(Row("kb search", f"model load ({r['model']})", r["load_seconds"], None, "s", 1,
                            note=f"+{r['rss_mb_added']:.0f} MB RSS"))
    return rows


def prepare_handoff(app, numbers: list[str]) -> None:
    """Customers whose conversations people own: their messages are stored and
    marked processed without a Rasa turn (the worker keeps up, whatever the rate)."""
    from webapp.extensions import db
    from webapp.services import customers, inbound
    with app.app_context():
        for number in numbers:
            conversation = customers.get_or_create_for_whatsapp(f"whatsapp:{number}", number.lstrip("+"), "Bench")
            inbound.handoff(conversation, reason="customer_request", announce=False)
        db.session.remove()


def queued(app) -> int:
    from webapp.extensions import db
    from webapp.models import Message
    with app.app_context():
        try:
            return db.session.scalar(db.select(db.func.count()).select_from(Message)
                                     .where(Message.direction == "in", Message.status == "received"))
        finally:
            db.session.remove()


def wait_drained(app, timeout: float = 120) -> None:
    deadline = time.time() + timeout
    while queued(app) and time.time() < deadline:
        time.sleep(0.2)


def sender(base: str, number: str, count: int) -> list[tuple[int, float]]:
    """One customer sending ``count`` messages, one after another: [(status, seconds)]."""
    import requests
    session = requests.Session()
    out = []
    for i in range(count):
        status, _, seconds = send_webhook(session, base, number, f"mensagem {i} de teste")
        out.append((status, seconds))
    return out


def bench_webhook(settings: Settings, system: MakeRun, app, numbers: Numbers) -> list[Row]:
    import requests
    senders = [numbers.take() for _ in range(50)]
    prepare_handoff(app, senders)
    total = settings.webhook_requests
    session = requests.Session()
    for number in senders[:5]:  # warm up
        send_webhook(session, system.base, number, "warm up")
    health = []
    for _ in range(total):
        started = time.perf_counter()
        session.get(f"{system.base}/healthz", timeout=10)
        health.append((time.perf_counter() - started) * 1000)
    rows = [row("webhook ack", "GET /healthz, 1 client (floor)", health, "ms")]
    wait_drained(app)
    baseline = None
    for concurrency in (1, 10, 50):
        per_sender = max(2, math.ceil(total / concurrency))
        cpu = cpu_seconds(system)
        started = time.perf_counter()
        with ThreadPoolExecutor(concurrency) as pool:
            results = [r for batch in pool.map(lambda number, k=per_sender: sender(system.base, number, k),
                                               senders[:concurrency]) for r in batch]
        elapsed = time.perf_counter() - started
        cpu = cpu_note(cpu, cpu_seconds(system), elapsed, top=2)
        latencies = [seconds * 1000 for _, seconds in results]
        errors = [sum(status != 200 for status, _ in results)]
        r = row("webhook ack", f"{concurrency} concurrent sender{'s' if concurrency > 1 else ''}", latencies, "ms",
                note=f"{len(latencies) / elapsed:.0f} req/s, {cpu}" + (f", {errors[0]} not 200" if errors[0] else ""))
        if concurrency == 1:
            baseline = r.median
            r.ratio, r.baseline = ratio(r.median, rows[0].median), "healthz"
        else:
            r.ratio, r.baseline = ratio(r.median, baseline), "1 sender"
        rows.append(r)
        wait_drained(app)
    return rows


def rasa_turn(session, system: MakeRun, sender: str, text: str) -> float:
    """The bare Rasa REST round trip the worker makes, with the same metadata; seconds."""
    from bot.text import guess_language
    metadata = {"awaiting_close": [], "language": guess_language(text) or "pt", "profile_name": "Bench",
                "greeting_name": None, "media": [], "location": None, "message_sid": "SM" + uuid.uuid4().hex}
    started = time.perf_counter()
    response = session.post(f"{system.rasa}/webhooks/rest/webhook",
                            json={"sender": sender, "message": text, "metadata": metadata}, timeout=120)
    elapsed = time.perf_counter() - started
    if response.status_code != 200 or not response.json():
        raise RuntimeError(f"Rasa answered {response.status_code}: {response.text[:200]}")
    return elapsed


def bench_e2e(settings: Settings, system: MakeRun, replies: Replies, numbers: Numbers) -> list[Row]:
    import requests
    session = requests.Session()
    e2e, bare, overhead, missing = [], [], [], 0
    for i in range(settings.e2e_pairs + 1):  # the first pair warms both paths up
        text = MESSAGES[i % len(MESSAGES)]
        number = numbers.take()
        status, sent, _ = send_webhook(session, system.base, number, text)
        got = replies.wait(number, 60) if status == 200 else None
        # The same message, from another new customer, straight to Rasa (the action server included).
        rasa_seconds = rasa_turn(session, system, numbers.take().lstrip("+"), text)
        if i == 0:
            continue
        if got is None:
            missing += 1
            continue
        e2e.append((got - sent) * 1000)
        bare.append(rasa_seconds * 1000)
        overhead.append(e2e[-1] - bare[-1])
        time.sleep(0.5)  # the turn's other messages leave the outbox
    rasa_row = row("e2e reply", "bare Rasa REST turn (same messages)", bare, "ms")
    note = f"overhead {statistics.median(overhead):.0f} ms (median of pairs)" if overhead else ""
    if missing:
        note += f"; {missing} without a reply in 60 s"
    e2e_row = row("e2e reply", "webhook in -> first message at Twilio", e2e, "ms", note=note)
    e2e_row.ratio, e2e_row.baseline = ratio(e2e_row.median, rasa_row.median), "bare Rasa"
    return [rasa_row, e2e_row]


def rasa_capacity(system: MakeRun, numbers: Numbers, count: int, concurrency: int = 8) -> tuple[float, list[float]]:
    """Bare Rasa's own ceiling: new customers' first messages straight to its
    REST channel from ``concurrency`` clients at once (the worker's default
    thread count). Returns (turns per second, turn latencies in ms)."""
    import requests
    local = threading.local()

    def turn(i: int) -> float:
        if not hasattr(local, "session"):
            local.session = requests.Session()
        return rasa_turn(local.session, system, numbers.take().lstrip("+"), MESSAGES[i % len(MESSAGES)]) * 1000
    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        latencies = list(pool.map(turn, range(count)))
    return count / (time.perf_counter() - started), latencies


def bench_rate(settings: Settings, system: MakeRun, app, replies: Replies, numbers: Numbers) -> list[Row]:
    import requests
    rates, seconds, drain = settings.rates
    rows, best = [], None
    capacity, capacity_latencies = rasa_capacity(system, numbers, 16 if settings.quick else 80)
    rasa_row = row("throughput", "bare Rasa REST, 8 concurrent clients: turn latency", capacity_latencies, "ms",
                   note=f"Rasa alone completes {capacity:.1f} turns/s")
    local = threading.local()

    def send(number: str, text: str) -> tuple[int, float, float]:
        if not hasattr(local, "session"):
            local.session = requests.Session()
        return send_webhook(local.session, system.base, number, text)

    for rate in rates:
        wait_drained(app)
        count = max(2, int(rate * seconds))
        sent: list[tuple[str, object]] = []
        cpu = cpu_seconds(system)
        start = time.time() + 0.2
        with ThreadPoolExecutor(64) as pool:
            for i in range(count):
                delay = start + i / rate - time.time()
                if delay > 0:
                    time.sleep(delay)
                number = numbers.take()
                sent.append((number, pool.submit(send, number, MESSAGES[i % len(MESSAGES)])))
            results = [(number, future.result()) for number, future in sent]
        last_sent = max(at for _, (_, at, _) in results)
        offered = (count - 1) / max(last_sent - start, 1e-9)
        deadline = time.time() + drain
        while time.time() < deadline and any(replies.at(n) is None for n, _ in results):
            time.sleep(0.2)
        points, latencies = [], []
        for number, (status, at, _) in results:
            got = replies.at(number)
            if status == 200 and got is not None:
                points.append((at - start, got - at))
                latencies.append((got - at) * 1000)
        cpu = cpu_note(cpu, cpu_seconds(system), time.time() - start, top=3)
        growth = slope(points)
        ok = sustained(count, len(latencies), growth)
        answered_by = max((replies.at(n) or 0) for n, _ in results)
        through = len(latencies) / max(answered_by - start, 1e-9) if latencies else 0.0
        rows.append(row("throughput", f"{rate:g} msg/s for {seconds:g} s: reply latency", latencies, "ms",
                        note=f"{'sustained' if ok else 'FALLS BEHIND'}: sent {offered:.1f}/s, "
                             f"{len(latencies)}/{count} answered, "
                             f"latency grows {growth * 1000:.0f} ms/s, replies {through:.1f}/s; {cpu}"))
        if not ok:
            break
        best = rate
    headline = Row("throughput", "sustained inbound rate (new customers' first messages)", best, None, "msg/s",
                   len(rows), ratio(best, capacity), "bare Rasa capacity",
                   note=f"highest tried rate with every message answered and latency growth "
                        f"< {MAX_LATENCY_GROWTH * 1000:.0f} ms/s" + ("" if best else "; none passed"))
    wait_drained(app, timeout=drain)
    return [headline, rasa_row, *rows]


def memory_rows(sampler: MemorySampler) -> list[Row]:
    rows = []
    names = list(dict.fromkeys(name for name, _ in sampler.samples))
    for name in names:
        rest = sampler.samples.get((name, "rest"), [])
        load = sampler.samples.get((name, "load"), [])
        rest_row = row("memory (RSS)", f"{name}, at rest", rest, "MB")
        rows.append(rest_row)
        if load:
            load_row = row("memory (RSS)", f"{name}, under load", load, "MB")
            load_row.ratio, load_row.baseline = ratio(load_row.median, rest_row.median), "at rest"
            rows.append(load_row)
    rest_total = sum(r.median for r in rows if r.measure.endswith("at rest") and r.median)
    load_total = sum(r.median for r in rows if r.measure.endswith("under load") and r.median)
    rows.append(Row("memory (RSS)", "all processes, at rest", rest_total or None, None, "MB", 1))
    if load_total:
        rows.append(Row("memory (RSS)", "all processes, under load", load_total, None, "MB", 1,
                        ratio(load_total, rest_total), "at rest"))
    return rows


def start_timed(var: Path, database_url: str, extra: dict, replies: Replies, numbers: Numbers,
                ) -> tuple[MakeRun, dict]:
    """Start scripts/run.py; seconds until /healthz answers, until Rasa and the
    action server answer, and until the assistant's first reply to a message
    sent then has reached the fake Twilio API."""
    import requests
    system = MakeRun(var, database_url, extra)
    started = time.perf_counter()
    system.start()
    web = system.wait_for(f"{system.base}/healthz", 180) - started
    rasa = max(system.wait_for(f"{system.rasa}/", 600), system.wait_for(f"{system.actions}/health", 600)) - started
    number = numbers.take()
    status, sent, _ = send_webhook(requests.Session(), system.base, number, "oi")
    sent_perf = time.perf_counter() - (time.time() - sent)
    got = replies.wait(number, 180) if status == 200 else None
    if got is None:
        log = system.log_tail()
        system.stop()
        raise RuntimeError(f"the assistant did not answer a first message (webhook status {status}); "
                           f"the end of scripts/run.py's output:\n{log}")
    first = (got - sent) + sent_perf - started
    system.remember_family()
    return system, {"web": web, "assistant_ready": rasa, "first_reply": first}


def coldstart_rows(first: dict | None, later: list[dict]) -> list[Row]:
    rows = []
    if first:
        rows += [Row("cold start", "first start, empty var dir: /healthz", first["web"], None, "s", 1,
                     note="schema, demo admin, knowledge base seed"),
                 Row("cold start", "first start: assistant's first reply", first["first_reply"], None, "s", 1,
                     note=f"Rasa and actions answering at {first['assistant_ready']:.1f} s")]
    if later:
        rows.append(row("cold start", "make run once set up: /healthz", [r["web"] for r in later], "s"))
        rows.append(row("cold start", "Rasa + action server answering", [r["assistant_ready"] for r in later], "s"))
        replies = [r["first_reply"] for r in later if r["first_reply"] is not None]
        rows.append(row("cold start", "assistant's first reply (sent once ready)", replies, "s",
                        note="" if len(replies) == len(later) else f"{len(later) - len(replies)} without a reply"))
        stops = [r["stop"] for r in later]
        unclean = sum(not r["clean"] for r in later)
        rows.append(row("cold start", "Ctrl-C until every process is gone", stops, "s",
                        note="all stopped cleanly" if not unclean else f"{unclean} needed SIGKILL"))
    return rows


# ---------------------------------------------------------------- main

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions and smaller sizes (development)")
    parser.add_argument("--only", default=",".join(SECTIONS), help=f"comma-separated subset of {','.join(SECTIONS)}")
    parser.add_argument("--postgres", action="store_true", default=os.environ.get("BENCH_DB") == "postgres",
                        help="PostgreSQL (BENCH_PG_URL's server) and Redis (BENCH_REDIS_URL) instead of SQLite")
    parser.add_argument("--json", help="also write the rows to this file")
    parser.add_argument("--markdown", action="store_true", help="print the table in Markdown")
    parser.add_argument("--keep", action="store_true", help="keep the temporary var dir (logs, databases)")
    args = parser.parse_args(argv)
    only = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = set(only) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown sections: {', '.join(sorted(unknown))} (choose from {', '.join(SECTIONS)})")
    settings = Settings(quick=args.quick, postgres=args.postgres)
    # `timeout`, CI or kill: stop the system on the way out like on Ctrl-C.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    needs_system = set(only) & {"memory", "webhook", "e2e", "rate", "coldstart"}
    if needs_system and not MODEL.exists():
        print("no trained model in models/: run `make train` first", file=sys.stderr)
        return 2
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    info = machine()
    begun = datetime.now(timezone.utc)
    rows: list[Row] = []
    tmp = Path(tempfile.mkdtemp(prefix="zapdesk-bench-"))
    drop: Callable[[], None] | None = None
    extra: dict[str, str] = {}
    if settings.postgres:
        from tests.conftest import fresh_postgres_database
        database_url, drop = fresh_postgres_database(PG_URL, "bench")
        extra["RATELIMIT_STORAGE_URI"] = REDIS_URL
    else:
        database_url = f"sqlite:///{tmp / 'var' / 'zapdesk.db'}"
    (tmp / "var").mkdir()
    numbers = Numbers(int(time.time()) % 1000 * 10_000)
    system: MakeRun | None = None
    sampler = replies = None
    done = False
    try:
        if "tickets" in only:
            say("tickets: seeding and timing the ticket list")
            rows += bench_tickets_rows(settings, sa_url(database_url) if settings.postgres else None, tmp)
        app = database_app(database_url)
        first = None
        later: list[dict] = []
        if needs_system:
            replies = Replies(app)
            say("starting the system (scripts/run.py) in a fresh var dir")
            system, first = start_timed(tmp / "var", database_url, extra, replies, numbers)
            sampler = MemorySampler(system)
            if "memory" in only:
                sampler.label = "rest"
                time.sleep(5 if settings.quick else 15)
                sampler.label = None
            if "webhook" in only:
                say("webhook acknowledgements")
                sampler.label = "load"
                rows += bench_webhook(settings, system, app, numbers)
                sampler.label = None
            if "e2e" in only:
                say("end-to-end replies against bare Rasa turns")
                rows += bench_e2e(settings, system, replies, numbers)
            if "rate" in only:
                say("ramping the inbound rate")
                sampler.label = "load"
                rate_rows = bench_rate(settings, system, app, replies, numbers)
                sampler.label = None
                idle = next((r for r in rows if r.measure.startswith("webhook in ->")), None)
                for r in rate_rows[2:]:  # reply latency under load against the same path idle
                    if idle is not None:
                        r.ratio, r.baseline = ratio(r.median, idle.median), "idle e2e"
                rows += rate_rows
            sampler.close()
            if "memory" in only:
                rows += memory_rows(sampler)
            system.stop()
            system = None
        if "kb" in only:
            say("knowledge-base search")
            if not needs_system:
                from devenv import system_env
                from run import flask
                flask(system_env(var=tmp / "var", extra={"DATABASE_URL": database_url, "ZAPDESK_VAR": str(tmp)}),
                      "db", "upgrade", capture=True)
            rows += bench_kb_rows(settings, app)
        if "coldstart" in only:
            for i in range(settings.coldstarts):
                say(f"cold start {i + 1}/{settings.coldstarts}")
                system, result = start_timed(tmp / "var", database_url, extra, replies, numbers)
                result["stop"], result["clean"] = system.stop()
                system = None
                later.append(result)
            rows += coldstart_rows(first, later)
        elif first and needs_system:
            rows += coldstart_rows(first, [])
        done = True
    finally:
        if system is not None:
            system.stop()
        for watcher in (sampler, replies):
            if watcher is not None:
                watcher.close()
        if drop is not None:
            try:
                from webapp.extensions import db
                with app.app_context():
                    db.engine.dispose()
            except Exception:
                pass
            drop()
        if done and not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            say(f"logs and databases kept in {tmp}")
    info["load_after"] = os.getloadavg()
    header = (f"ZapDesk benchmarks, {begun:%Y-%m-%d %H:%M} UTC, "
              f"{'PostgreSQL + Redis' if settings.postgres else 'SQLite (embedded default)'}"
              f"{', quick' if settings.quick else ''}\n"
              f"machine: {info['cpu']}, {info['cores']} cores, {info['ram_gb']} GB RAM; "
              f"load average {info['load'][0]:.1f} before, {info['load_after'][0]:.1f} after")
    print(header)
    print(format_table(rows, markdown=args.markdown))
    if args.json:
        Path(args.json).write_text(json.dumps({"header": header, "machine": info, "date": begun.isoformat(),
                                               "rows": [asdict(r) for r in rows]}, indent=2))
    return 0


def say(text: str) -> None:
    print(f"[bench] {text}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
