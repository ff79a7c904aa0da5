"""Free-text search over tickets: one search document per ticket, kept current
on every commit, and the query condition over its index.

A document holds the subject, the description, the customer's name, WhatsApp
name, phone (and its shorter forms) and email, the ticket's messages (and the
conversation that led to it) and its internal notes: lowercase words and
numbers without accents. A query matches when each of its words starts a word
of the document ("pedi" finds "pedido"; "98888-7777" finds the phone). Documents are
rebuilt in the transaction that changed them (a session hook), so the worker,
the API and the agent UI never have to remember to do it.
"""
from __future__ import annotations

import re
import unicodedata
from collections import defaultdict
from collections.abc import Iterable

from flask_sqlalchemy.session import Session as AppSession
from sqlalchemy import event, inspect, or_

from ..extensions import db
from ..models import Customer, Message, Ticket, TicketEvent, TicketSearch
from ..models.workspace import FTS_TABLE, PG_VECTOR

MAX_DOCUMENT = 20_000
MAX_TERMS = 8
PROBE = 1000  # up to this many matches, a search is a list of ids
_DIRTY_TICKETS = "ticket_search.tickets"
_DIRTY_CUSTOMERS = "ticket_search.customers"
_WORD = re.compile(r"[^\W_]+")
# A phone written with separators ("(11) 98888-7777") is searched as its digits.
_PHONE = re.compile(r"\+?\d[\d\s().-]{4,}\d")


def _plain(text: str | None) -> str:
    decomposed = unicodedata.normalize("NFKD", text or "")
    return "".join(c for c in decomposed if not unicodedata.combining(c)).lower()


def normalize(text: str | None) -> str:
    """Lowercase words and numbers without accents, one space apart: what
    both databases' tokenizers split the same way."""
    return " ".join(_WORD.findall(_plain(text)))


def phone_suffixes(phone: str | None) -> str:
    """A phone's digits without the leading ones (country code, area code...),
    down to 8 digits, so a number typed without them is found too."""
    digits = re.sub(r"\D", "", phone or "")
    return " ".join(digits[i:] for i in range(1, max(1, len(digits) - 7)))


def email_token(email: str | None) -> str:
    """An address as one word ("maria.souza@example.com" -> "mariasouzaexamplecom"),
    so a typed address is one rare word, not "example" and "com"."""
    return "".join(_WORD.findall(_plain(email)))


def query_terms(query: str | None) -> list[str]:
    """The words of a search box query; a ticket matches when each of them
    starts a word of its document."""
    text = _PHONE.sub(lambda m: " " + re.sub(r"\D", "", m.group()) + " ", _plain(query))
    terms = []
    for raw in text.split():
        for term in [email_token(raw)] if "@" in raw else _WORD.findall(raw):
            if term and term not in terms:
                terms.append(term)
    return terms[:MAX_TERMS]


def _matches(terms: list[str], dialect: str):
    """SELECT the ids of the tickets whose document has every term."""
    if dialect == "sqlite":
        match = " ".join(f'"{t}"*' for t in terms)  # terms are letters and digits only
        return (db.select(db.literal_column("rowid").label("ticket_id")).select_from(db.table(FTS_TABLE))
                .where(db.literal_column(FTS_TABLE).op("MATCH")(match)))
    # Written into the SQL, not bound: a prepared statement's generic plan
    # cannot tell a rare word from a common one. Terms are letters and digits.
    tsquery = db.bindparam("tsquery", " & ".join(f"{t}:*" for t in terms), literal_execute=True)
    vector = db.literal_column(f"{TicketSearch.__tablename__}.{PG_VECTOR}")
    return db.select(TicketSearch.ticket_id).where(
        vector.op("@@")(db.func.to_tsquery(db.literal_column("'simple'::regconfig"), tsquery)))


def condition(query: str | None, dialect: str):
    """A WHERE clause on Ticket for a search query, or None for an empty query.

    The matches are counted first, up to PROBE. A rare query's ids go into
    the SQL as a list, so the page is a few primary-key look-ups. A common
    query's tickets are found by walking the list in its order and checking
    each against the index: neither database estimates a full-text match well
    enough to choose between the two on its own (measured: seconds either way)."""
    terms = query_terms(query)
    if not terms:
        return None
    matches = _matches(terms, dialect)
    ids = list(db.session.scalars(matches.limit(PROBE + 1)))
    if len(ids) <= PROBE:
        found = Ticket.id.in_(ids)
    elif dialect == "sqlite":
        found = (Ticket.id + 0).in_(matches)  # "+ 0": not a rowid look-up per match
    else:
        found = Ticket.id.in_(matches)
    number = query.strip().lstrip("#") if query else ""
    if number.isdigit() and len(number) < 10:
        return or_(Ticket.id == int(number), found)
    return found


# -- documents -----------------------------------------------------------------

def build_documents(ticket_ids: Iterable[int]) -> dict[int, str]:
    """The search document of each ticket."""
    ids = sorted(set(ticket_ids))
    if not ids:
        return {}
    rows = db.session.execute(
        db.select(Ticket.id, Ticket.subject, Ticket.description, Ticket.conversation_id,
                  Ticket.context_from_message_id, Ticket.created_at, Customer.name, Customer.profile_name,
                  Customer.phone, Customer.phone_key, Customer.email)
        .join(Customer, Customer.id == Ticket.customer_id).where(Ticket.id.in_(ids))).all()
    texts: dict[int, list[str]] = defaultdict(list)
    for row in rows:
        texts[row.id] += [row.subject, row.description or "", row.name or "", row.profile_name or "",
                          row.phone or "", row.phone_key or "", row.email or "", email_token(row.email),
                          phone_suffixes(row.phone), phone_suffixes(row.phone_key)]
    # The conversation that led to the ticket (before it was opened)...
    for row in rows:
        if row.conversation_id and row.context_from_message_id:
            texts[row.id] += db.session.scalars(
                db.select(Message.body).where(
                    Message.conversation_id == row.conversation_id, Message.id >= row.context_from_message_id,
                    Message.ticket_id.is_(None), Message.created_at <= row.created_at)
                .order_by(Message.id).limit(200))
    # ...the messages that belong to it, and its internal notes.
    for ticket_id, body in db.session.execute(
            db.select(Message.ticket_id, Message.body).where(Message.ticket_id.in_(ids)).order_by(Message.id)):
        texts[ticket_id].append(body or "")
    for ticket_id, body in db.session.execute(
            db.select(TicketEvent.ticket_id, TicketEvent.body)
            .where(TicketEvent.ticket_id.in_(ids), TicketEvent.kind == "note").order_by(TicketEvent.id)):
        texts[ticket_id].append(body or "")
    return {ticket_id: normalize(" ".join(parts))[:MAX_DOCUMENT] for ticket_id, parts in texts.items()}


def refresh(ticket_ids: Iterable[int]) -> int:
    """Rebuild the documents of these tickets in the current transaction."""
    documents = build_documents(ticket_ids)
    if not documents:
        return 0
    ids = list(documents)
    unchanged = {ticket_id for ticket_id, document in db.session.execute(
        db.select(TicketSearch.ticket_id, TicketSearch.document).where(TicketSearch.ticket_id.in_(ids)))
        if documents[ticket_id] == document}
    stale = [ticket_id for ticket_id in ids if ticket_id not in unchanged]
    if stale:
        # Plain statements, not ORM objects: a bulk reindex writes thousands of rows.
        db.session.execute(db.delete(TicketSearch).where(TicketSearch.ticket_id.in_(stale)))
        db.session.execute(db.insert(TicketSearch), [{"ticket_id": t, "document": documents[t]} for t in stale])
    return len(documents)


def reindex_all(batch: int = 1000) -> int:
    """Rebuild every document (after a bulk import); commits per batch."""
    done, last = 0, 0
    while True:
        ids = list(db.session.scalars(db.select(Ticket.id).where(Ticket.id > last).order_by(Ticket.id).limit(batch)))
        if not ids:
            return done
        done += refresh(ids)
        db.session.commit()
        last = ids[-1]


# -- keeping documents current -------------------------------------------------

_TICKET_FIELDS = ("subject", "description", "customer_id", "conversation_id", "context_from_message_id")
_CUSTOMER_FIELDS = ("name", "profile_name", "phone", "phone_key", "email")


def _changed(obj, fields) -> bool:
    state = inspect(obj)
    return any(state.attrs[f].history.has_changes() for f in fields)


@event.listens_for(AppSession, "after_flush")
def _collect(session, _flush_context):
    """Note which tickets' documents a flush made stale."""
    tickets = session.info.setdefault(_DIRTY_TICKETS, set())
    customers = session.info.setdefault(_DIRTY_CUSTOMERS, set())
    for obj in session.new:
        if isinstance(obj, Ticket):
            tickets.add(obj.id)
        elif isinstance(obj, Message) and obj.ticket_id:
            tickets.add(obj.ticket_id)
        elif isinstance(obj, TicketEvent) and obj.kind == "note":
            tickets.add(obj.ticket_id)
    for obj in session.dirty:
        if isinstance(obj, Ticket) and _changed(obj, _TICKET_FIELDS):
            tickets.add(obj.id)
        elif isinstance(obj, Message) and obj.ticket_id and _changed(obj, ("ticket_id", "body")):
            tickets.add(obj.ticket_id)
            previous = inspect(obj).attrs.ticket_id.history.deleted
            tickets.update(t for t in previous if t)
        elif isinstance(obj, Customer) and _changed(obj, _CUSTOMER_FIELDS):
            customers.add(obj.id)


@event.listens_for(AppSession, "before_commit")
def _refresh_stale(session):
    if session.new or session.dirty or session.deleted:
        session.flush()  # commit would flush next; the hook above needs to see it first
    if not (session.info.get(_DIRTY_TICKETS) or session.info.get(_DIRTY_CUSTOMERS)):
        return
    tickets = session.info.pop(_DIRTY_TICKETS, set())
    customers = session.info.pop(_DIRTY_CUSTOMERS, set())
    if customers:
        tickets.update(session.scalars(db.select(Ticket.id).where(Ticket.customer_id.in_(customers))))
    tickets.discard(None)
    if tickets:
        refresh(tickets)


@event.listens_for(AppSession, "after_rollback")
def _forget(session):
    session.info.pop(_DIRTY_TICKETS, None)
    session.info.pop(_DIRTY_CUSTOMERS, None)
