"""Ticket list and search latency with 100,000 tickets, on SQLite and PostgreSQL.

Seeds a fresh database (a new SQLite file; a throw-away schema in PostgreSQL)
with customers, tickets and messages, builds the search documents with the
app's own code, then times the ticket list the agent UI uses: the default
view, filtered views, a deep page and searches. Prints median and p95.

    python scripts/bench_tickets.py [--tickets 100000] [--runs 30] [--no-pg]
    BENCH_PG_URL=postgresql://postgres@127.0.0.1:5432/test (the default)

``run(...)`` returns the rows, for ``make bench``.
"""
from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

PG_URL = os.environ.get("BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
PG_SCHEMA = "bench_tickets"
FIRST = ["Maria", "João", "Ana", "José", "Francisca", "Antônio", "Luiza", "Carlos", "Paula", "Pedro", "Lucas",
         "Juliana", "Marcos", "Fernanda", "Rafael", "Camila", "Bruno", "Letícia", "Gabriel", "Beatriz"]
LAST = ["Silva", "Santos", "Oliveira", "Souza", "Rodrigues", "Ferreira", "Alves", "Pereira", "Lima", "Gomes",
        "Costa", "Ribeiro", "Martins", "Carvalho", "Almeida", "Lopes", "Soares", "Fernandes", "Vieira", "Barbosa"]
SUBJECTS = ["Pedido não chegou", "Produto com defeito", "Cobrança em dobro", "Troca de tamanho", "Entrega atrasada",
            "Boleto não gerado", "Cancelar pedido", "Nota fiscal", "Senha da conta", "Reembolso do pix",
            "Order never arrived", "Refund request", "Wrong item delivered", "Cannot log in", "Change address"]
WORDS = ("pedido entrega produto prazo transportadora rastreio cobrança cartão boleto pix troca devolução "
         "tamanho cor defeito quebrado caixa nota fiscal endereço senha conta cadastro reembolso estorno "
         "cupom desconto frete atraso loja aplicativo site suporte atendimento urgente obrigado ainda "
         "order delivery refund package tracking card payment address password account").split()
STATUSES = ["new"] * 5 + ["open"] * 5 + ["in_progress"] * 5 + ["pending"] * 5 + ["resolved"] * 20 + ["closed"] * 60
PRIORITIES = ["low"] * 2 + ["normal"] * 6 + ["high"] * 15 + ["urgent"] * 5  # out of 28
CATEGORIES = ["order", "delivery", "payment", "product", "account", "other"]


def _text(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n))


def seed(db, n_tickets: int, rng: random.Random) -> dict:
    """Bulk-insert agents, customers, conversations, tickets and messages."""
    from webapp.models import Agent, Conversation, Customer, Message, Ticket

    n_customers = max(1, n_tickets // 2)
    epoch = datetime(2024, 1, 1, tzinfo=timezone.utc)
    span = 2 * 365 * 24 * 3600
    agents = [{"id": i, "email": f"agent{i}@example.com", "name": f"Agent {i}", "password_hash": "x",
               "role": "agent", "active": True, "token_version": 0, "created_at": epoch} for i in range(1, 11)]
    customers, conversations = [], []
    for i in range(1, n_customers + 1):
        first, last = rng.choice(FIRST), rng.choice(LAST)
        phone = f"+55{rng.randint(11, 99)}9{rng.randint(10_000_000, 99_999_999)}"
        customers.append({"id": i, "phone_key": f"{phone[1:]}{i}"[:20], "phone": phone, "wa_id": phone[1:],
                          "profile_name": first, "name": f"{first} {last}",
                          "email": f"{first.lower()}.{last.lower()}{i}@example.com".replace("ã", "a")
                          .replace("ô", "o").replace("é", "e").replace("í", "i").replace("ç", "c"),
                          "language": "pt", "language_chosen": False, "created_at": epoch})
        conversations.append({"id": i, "customer_id": i, "address": f"whatsapp:{phone}", "created_at": epoch})
    tickets, messages = [], []
    for i in range(1, n_tickets + 1):
        created = epoch + timedelta(seconds=rng.randint(0, span))
        customer = rng.randint(1, n_customers)
        tickets.append({"id": i, "customer_id": customer, "conversation_id": customer,
                        "subject": rng.choice(SUBJECTS), "description": _text(rng, 25),
                        "category": rng.choice(CATEGORIES), "status": rng.choice(STATUSES),
                        "priority": rng.choice(PRIORITIES), "assignee_id": rng.choice([None, *range(1, 11)]),
                        "source": "whatsapp", "created_at": created,
                        "updated_at": created + timedelta(seconds=rng.randint(0, 10 * 24 * 3600))})
        for k in range(3):
            messages.append({"conversation_id": customer, "ticket_id": i, "direction": "in" if k != 1 else "out",
                             "author": "customer" if k != 1 else "agent", "body": _text(rng, 15),
                             "status": "processed" if k != 1 else "read", "attempts": 0, "media": [],
                             "created_at": created + timedelta(minutes=k)})
    started = time.perf_counter()
    for model, rows in ((Agent, agents), (Customer, customers), (Conversation, conversations),
                        (Ticket, tickets), (Message, messages)):
        for start in range(0, len(rows), 5000):
            db.session.execute(model.__table__.insert(), rows[start:start + 5000])
    db.session.commit()
    inserted = time.perf_counter() - started
    from webapp.services import ticket_search
    _log(f"inserted {len(tickets)} tickets, {len(messages)} messages in {inserted:.0f} s; indexing")
    started = time.perf_counter()
    ticket_search.reindex_all(batch=2000)
    indexed = time.perf_counter() - started
    db.session.execute(db.text("ANALYZE"))
    db.session.commit()
    sample = customers[len(customers) // 3]
    return {"insert_s": inserted, "index_s": indexed, "customer": sample, "messages": len(messages)}


def _log(text: str) -> None:
    print(f"[bench] {text}", file=sys.stderr, flush=True)


def _time(fn, runs: int) -> tuple[float, float]:
    fn()  # warm the caches and the statement cache
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - started) * 1000)
    samples.sort()
    return statistics.median(samples), samples[min(len(samples) - 1, int(round(0.95 * (len(samples) - 1))))]


def measure(db, info: dict, runs: int) -> list[tuple[str, float, float, int]]:
    from webapp.models import Agent, Ticket
    from webapp.services import ticket_list
    from webapp.services.ticket_list import Filters

    agent = db.session.get(Agent, 3)
    customer = info["customer"]
    deep = db.session.scalars(db.select(Ticket).order_by(Ticket.updated_at.desc(), Ticket.id.desc())
                              .offset(50_000 if info["tickets"] > 50_000 else info["tickets"] // 2).limit(1)).one()
    cursor = ticket_list.encode_cursor("after", deep, ticket_list.SORTS["updated"])

    def page(filters, **kwargs):
        def go():
            result = ticket_list.list_page(filters, agent, **kwargs)
            db.session.rollback()
            return result
        return go

    def offset_page():
        db.session.scalars(db.select(Ticket).order_by(Ticket.updated_at.desc(), Ticket.id.desc())
                           .offset(50_000).limit(25)).all()
        db.session.rollback()

    cases = [
        ("default view (active, last update, count)", page(Filters())),
        ("filter: mine + open", page(Filters(status="open", assignee="mine"))),
        ("filter: urgent + payment + 3 months", page(Filters(status="all", priority="urgent", category="payment",
                                                              created_from=datetime(2025, 1, 1).date(),
                                                              created_to=datetime(2025, 3, 31).date()))),
        ("filter: unassigned, priority sort", page(Filters(assignee="none", sort="priority"))),
        ("all, deep page (keyset, row 50,000)", page(Filters(status="all"), cursor=cursor, count=False)),
        ("all, deep page (OFFSET 50,000; not used)", offset_page),
        ("search: customer email", page(Filters(status="all", q=customer["email"]))),
        ("search: customer name + subject word", page(Filters(status="all",
                                                              q=f"{customer['name'].split()[0]} reembolso"))),
        ("search: phone as typed", page(Filters(status="all", q=customer["phone"][3:6] + " " +
                                                 customer["phone"][6:11] + "-" + customer["phone"][11:]))),
        ("search: common word, active", page(Filters(q="pedido"))),
        ("search: two common words, all", page(Filters(status="all", q="transportadora atraso"))),
    ]
    rows = []
    _log("measuring")
    for name, fn in cases:
        median, p95 = _time(fn, runs)
        found = None
        result = fn()
        if result is not None:
            found = result.total if result.total else len(result.tickets)
        rows.append((name, median, p95, found))
    return rows


def _bench(url: str, n_tickets: int, runs: int, label: str, engine_options: dict | None = None) -> list[dict]:
    from webapp import create_app
    from webapp.extensions import db

    config = {"SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": "bench-" + "x" * 40, "JWT_SECRET_KEY": "bench-" + "y" * 40}
    if engine_options:
        config["SQLALCHEMY_ENGINE_OPTIONS"] = engine_options
    app = create_app(config)
    rng = random.Random(42)
    _log(f"{label}: seeding {n_tickets} tickets")
    with app.app_context():
        db.create_all()
        info = seed(db, n_tickets, rng)
        info["tickets"] = n_tickets
        rows = measure(db, info, runs)
        db.session.remove()
        db.engine.dispose()
    out = [{"backend": label, "case": "seed: insert rows", "median_ms": info["insert_s"] * 1000, "p95_ms": None,
            "rows": n_tickets},
           {"backend": label, "case": "seed: build search documents", "median_ms": info["index_s"] * 1000,
            "p95_ms": None, "rows": n_tickets}]
    out += [{"backend": label, "case": name, "median_ms": median, "p95_ms": p95, "rows": found}
            for name, median, p95, found in rows]
    return out


def run(n_tickets: int = 100_000, runs: int = 30, pg_url: str | None = PG_URL,
        sqlite_dir: str | None = None, sqlite: bool = True) -> list[dict]:
    """Seed and measure on a fresh SQLite file and (when pg_url) a throw-away
    PostgreSQL schema; returns one row per case and backend."""
    rows = []
    if sqlite:
        with tempfile.TemporaryDirectory(dir=sqlite_dir) as tmp:
            rows += _bench(f"sqlite:///{Path(tmp) / 'bench.db'}", n_tickets, runs, "sqlite")
    if pg_url:
        import sqlalchemy as sa
        admin = sa.create_engine(pg_url)
        with admin.begin() as conn:
            conn.execute(sa.text(f"DROP SCHEMA IF EXISTS {PG_SCHEMA} CASCADE"))
            conn.execute(sa.text(f"CREATE SCHEMA {PG_SCHEMA}"))
        try:
            rows += _bench(pg_url, n_tickets, runs, "postgresql",
                           {"connect_args": {"options": f"-csearch_path={PG_SCHEMA},public"}})
        finally:
            with admin.begin() as conn:
                conn.execute(sa.text(f"DROP SCHEMA IF EXISTS {PG_SCHEMA} CASCADE"))
            admin.dispose()
    return rows


def print_table(rows: list[dict]) -> None:
    width = max(len(r["case"]) for r in rows)
    print(f"{'backend':<11} {'case':<{width}} {'median ms':>10} {'p95 ms':>9} {'rows':>8}")
    for r in rows:
        p95 = f"{r['p95_ms']:9.1f}" if r["p95_ms"] is not None else f"{'':>9}"
        found = "" if r["rows"] is None else r["rows"]
        print(f"{r['backend']:<11} {r['case']:<{width}} {r['median_ms']:10.1f} {p95} {found:>8}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--no-pg", action="store_true", help="SQLite only")
    parser.add_argument("--no-sqlite", action="store_true", help="PostgreSQL only")
    args = parser.parse_args()
    print_table(run(args.tickets, args.runs, None if args.no_pg else PG_URL, sqlite=not args.no_sqlite))


if __name__ == "__main__":
    main()
