"""The ticket list: search documents kept current, the full-text index in use,
filters, sorting and keyset pagination."""
from datetime import date, datetime, timedelta, timezone

import pytest

from webapp.extensions import db
from webapp.models import Conversation, Message, Ticket, TicketSearch
from webapp.services import customers, inbound, ticket_list, ticket_search, tickets
from webapp.services.errors import Invalid
from webapp.services.ticket_list import Filters

from .test_workspace_service import make_ticket


def found(q, **filters):
    page = ticket_list.list_page(Filters(q=q, status="all", **filters), None, limit=200)
    return sorted(t.id for t in page.tickets)


@pytest.fixture
def two(ctx):
    maria = make_ticket(subject="Pedido quebrado", description="A tela chegou com rachadura",
                        name="Maria Conceição", email="maria.souza@example.com")
    joao = make_ticket(phone="+5521977776666", subject="Cobrança em dobro", description="Paguei 2 vezes 100%",
                       name="João Pereira", email="joao@example.org", first_message="boa tarde")
    return maria, joao


def test_search_covers_subject_description_customer_and_messages(two, make_agent):
    maria, joao = two
    assert found("quebrado") == [maria.id]  # subject
    assert found("RACHADURA") == [maria.id]  # description, any case
    assert found("conceicao") == [maria.id] and found("joão") == [joao.id]  # name, with or without accents
    assert found("maria.souza@example") == [maria.id]  # email
    assert found("98888-7777") == [maria.id] and found("(21) 97777-6666") == [joao.id]  # phone as typed
    assert found("chegou quebrado") == [maria.id]  # a message from before the ticket
    assert found("pedido dobro") == []  # every term must match
    assert found("quebr") == [maria.id] and found("ebrado") == []  # words are found by their start
    assert found("100%") == [joao.id] and found('"pix" OR *') == []  # query syntax is plain text
    assert found(f"#{joao.id}") == [joao.id]  # a ticket number
    agent = make_agent()
    tickets.add_note(joao, agent, "cliente pediu estorno")
    tickets.reply(joao, agent, "Vamos devolver o valor", client_key="k1")
    assert found("estorno") == [joao.id] and found("devolver valor") == [joao.id]


def test_documents_follow_later_changes(two):
    maria, joao = two
    # The customer's later messages on a handed-off ticket.
    conversation = db.session.scalar(db.select(Conversation).filter_by(customer_id=joao.customer_id))
    inbound.handoff(conversation, reason="customer_request", announce=False)
    db.session.add(Message(conversation=conversation, direction="in", author="customer", body="Número do pix XPTO",
                           status="received", ticket_id=conversation.handoff_ticket_id))
    db.session.commit()
    assert found("xpto") == [joao.id]
    # A renamed customer is found by the new name only.
    maria.customer.name, maria.customer.profile_name = "Maria Aparecida", "Cida"
    db.session.commit()
    assert found("aparecida") == [maria.id] and found("conceicao") == []
    # Nothing is left stale after a rollback.
    maria.subject = "Assunto que nunca existiu"
    db.session.flush()
    db.session.rollback()
    assert found("nunca existiu") == []
    doc = db.session.get(TicketSearch, maria.id).document
    assert doc == ticket_search.build_documents([maria.id])[maria.id]


def test_reindex_rebuilds_every_document(two):
    db.session.execute(db.delete(TicketSearch))
    db.session.commit()
    assert found("quebrado") == []
    assert ticket_search.reindex_all(batch=1) == 2
    assert found("quebrado") == [two[0].id]


def test_the_reindex_command(two, app):
    db.session.execute(db.delete(TicketSearch))
    db.session.commit()
    result = app.test_cli_runner().invoke(args=["agent", "reindex-tickets"])
    assert result.exit_code == 0 and "2 tickets indexed" in result.output
    assert found("cobranca") == [two[1].id]


def test_search_uses_the_index(two, app):
    """The matches come from the dialect's full-text index, not a scan of documents."""
    dialect = db.engine.dialect.name
    matches = ticket_search._matches(ticket_search.query_terms("rachadura"), dialect)
    sql = str(matches.compile(db.engine, compile_kwargs={"literal_binds": True}))
    if dialect == "sqlite":
        plan = " ".join(str(r[-1]) for r in db.session.execute(db.text("EXPLAIN QUERY PLAN " + sql)))
        assert "ticket_search_fts VIRTUAL TABLE INDEX" in plan, plan
    else:
        db.session.execute(db.text("SET LOCAL enable_seqscan = off"))
        plan = " ".join(r[0] for r in db.session.execute(db.text("EXPLAIN " + sql)))
        assert "ix_ticket_search_document_fts" in plan, plan
        db.session.rollback()
    assert list(db.session.scalars(matches)) == [two[0].id]


def test_rare_and_common_searches_find_the_same(two, monkeypatch, make_agent):
    """Up to PROBE matches a search is a list of ids; past it, a subquery."""
    queries = ["quebrado", "joao", "pedido dobro", "maria.souza@example.com", "98888-7777", "a", f"#{two[1].id}"]
    rare = {q: found(q) for q in queries}
    monkeypatch.setattr(ticket_search, "PROBE", 0)
    assert {q: found(q) for q in queries} == rare
    assert rare["joao"] == [two[1].id] and rare["98888-7777"] == [two[0].id]


def test_filters(ctx, make_agent):
    ana, bia = make_agent(), make_agent(email="bia@example.com", name="Bia")
    a = make_ticket(subject="A")
    b = make_ticket(phone="+5521977776666", subject="B")
    c = make_ticket(phone="+5531966665555", subject="C")
    tickets.take(a, ana)
    tickets.take(b, bia)
    tickets.update(b, bia, priority="urgent", category="payment", status="open")
    tickets.update(c, ana, status="closed")
    c.created_at = datetime(2024, 1, 10, 12, tzinfo=timezone.utc)
    db.session.commit()

    def ids(**kwargs):
        return [t.id for t in ticket_list.list_page(Filters(**kwargs), ana, limit=50).tickets]

    assert sorted(ids()) == [a.id, b.id]  # active by default
    assert sorted(ids(status="all")) == [a.id, b.id, c.id]
    assert ids(status="closed") == [c.id] and ids(status="open") == [b.id]
    assert ids(assignee="mine") == [a.id] and ids(assignee=str(bia.id)) == [b.id]
    assert ids(assignee="none", status="all") == [c.id]
    assert ids(priority="urgent") == [b.id] and ids(category="payment") == [b.id]
    assert ids(status="all", created_to=date(2024, 1, 10)) == [c.id]
    assert sorted(ids(status="all", created_from=date(2024, 1, 11))) == [a.id, b.id]
    assert ids(status="all", created_from=date(2024, 1, 10), created_to=date(2024, 1, 10)) == [c.id]
    assert ids(sort="priority")[0] == b.id
    page = ticket_list.list_page(Filters(status="all"), ana)
    assert page.total == 3 and not page.total_capped


def test_parse_filters_refuses_unknown_values():
    parsed = ticket_list.parse_filters({"status": "pending", "assignee": "mine", "priority": "high",
                                        "category": "order", "q": "  oi ", "from": "2026-01-01",
                                        "to": "2026-01-31", "sort": "oldest"})
    assert parsed == Filters("pending", "mine", "high", "order", "oi", date(2026, 1, 1), date(2026, 1, 31), "oldest")
    assert ticket_list.parse_filters({}) == Filters()
    for bad in ({"status": "gone"}, {"assignee": "someone"}, {"priority": "max"}, {"category": "x"},
                {"from": "yesterday"}, {"sort": "random"}, {"from": "2026-02-01", "to": "2026-01-01"}):
        with pytest.raises(Invalid):
            ticket_list.parse_filters(bad)


@pytest.mark.parametrize("sort", sorted(ticket_list.SORTS))
def test_keyset_pages_walk_every_ticket_once_both_ways(ctx, sort):
    conversation = customers.get_or_create_for_whatsapp("whatsapp:+5511988887777")
    base = datetime(2026, 1, 1, tzinfo=timezone.utc)
    for i in range(23):
        # Ties on purpose: the id breaks them.
        db.session.add(Ticket(customer=conversation.customer, subject=f"T{i}", status="open",
                              priority=("low", "normal", "high", "urgent")[i % 4],
                              created_at=base + timedelta(hours=i // 3), updated_at=base + timedelta(hours=i // 2)))
    db.session.commit()
    filters = Filters(sort=sort)
    everything = [t.id for t in ticket_list.list_page(filters, None, limit=100).tickets]
    assert len(everything) == 23
    seen, cursor, pages = [], None, []
    while True:
        page = ticket_list.list_page(filters, None, cursor=cursor, limit=5)
        pages.append(page)
        seen += [t.id for t in page.tickets]
        if not page.next_cursor:
            break
        cursor = page.next_cursor
    assert seen == everything and len(pages) == 5
    assert pages[0].prev_cursor is None and pages[-1].next_cursor is None
    # And back from the last page to the first.
    back, page = [], pages[-1]
    while page.prev_cursor:
        page = ticket_list.list_page(filters, None, cursor=page.prev_cursor, limit=5)
        back = [t.id for t in page.tickets] + back
    assert back + [t.id for t in pages[-1].tickets] == everything


def test_a_broken_cursor_is_a_clear_error(ctx):
    for cursor in ("garbage", "eyJkIjoiYWZ0ZXIiLCJrIjpbMV19", "eyJkIjoic2lkZXdheXMiLCJrIjpbXX0"):
        with pytest.raises(Invalid, match="not valid"):
            ticket_list.list_page(Filters(), None, cursor=cursor)


def test_the_count_is_capped(ctx, monkeypatch):
    monkeypatch.setattr(ticket_list, "COUNT_CAP", 2)
    for phone in ("+5511988887777", "+5521977776666", "+5531966665555"):
        make_ticket(phone=phone)
    page = ticket_list.list_page(Filters(), None)
    assert page.total == 2 and page.total_capped
