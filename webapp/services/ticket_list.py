"""The ticket list: filters, search, sorting and keyset pagination.

Pages are cut by the sort key of the last row seen ("after") or the first
("before"), never by OFFSET, so page 4,000 costs what page 1 costs.
"""
from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone

from sqlalchemy import case, tuple_
from sqlalchemy.orm import joinedload

from ..extensions import db
from ..models import Agent, Conversation, Ticket, TicketPriority, TicketStatus
from . import ticket_search
from .errors import Invalid
from .tickets import CATEGORIES

PAGE_SIZE = 25
MAX_PAGE_SIZE = 200
COUNT_CAP = 10_000  # "10,000+" beyond this: an exact count of a huge match costs a full scan
STATUS_CHOICES = ("active", "all") + TicketStatus.ALL

PRIORITY_RANK = case(TicketPriority.RANK, value=Ticket.priority, else_=1)
SORTS = {
    "updated": ((Ticket.updated_at, True), (Ticket.id, True)),
    "newest": ((Ticket.created_at, True), (Ticket.id, True)),
    "oldest": ((Ticket.created_at, False), (Ticket.id, False)),
    "priority": ((PRIORITY_RANK, True), (Ticket.updated_at, True), (Ticket.id, True)),
}


@dataclass(frozen=True)
class Filters:
    status: str = "active"  # active | all | one status
    assignee: str = ""  # "" anyone | mine | none | an agent id
    priority: str = ""
    category: str = ""
    q: str = ""
    created_from: date | None = None
    created_to: date | None = None
    sort: str = "updated"

    def as_args(self) -> dict:
        """The non-default filters, as query-string arguments."""
        default = Filters()
        args = {}
        for name in ("status", "assignee", "priority", "category", "q", "sort"):
            if getattr(self, name) != getattr(default, name):
                args[name] = getattr(self, name)
        if self.created_from:
            args["from"] = self.created_from.isoformat()
        if self.created_to:
            args["to"] = self.created_to.isoformat()
        return args


@dataclass
class Page:
    tickets: list[Ticket]
    filters: Filters
    next_cursor: str | None = None
    prev_cursor: str | None = None
    total: int = 0
    total_capped: bool = False  # total is COUNT_CAP and there are more
    waiting: set[int] = field(default_factory=set)  # tickets whose conversation a person owns


def parse_filters(args) -> Filters:
    """Filters from query-string arguments; unknown values are refused."""
    def pick(name: str, choices, default: str = "") -> str:
        value = (args.get(name) or default).strip()
        if value and value not in choices:
            raise Invalid(f"unknown {name} '{value}'", field=name)
        return value

    assignee = (args.get("assignee") or "").strip()
    if assignee and assignee not in ("mine", "none") and not assignee.isdigit():
        raise Invalid("assignee is mine, none or an agent id", field="assignee")
    created_from, created_to = _date(args, "from"), _date(args, "to")
    if created_from and created_to and created_from > created_to:
        raise Invalid("the start date is after the end date", field="from")
    return Filters(
        status=pick("status", STATUS_CHOICES, "active"), assignee=assignee,
        priority=pick("priority", TicketPriority.ALL), category=pick("category", CATEGORIES),
        q=(args.get("q") or "").strip()[:200], created_from=created_from, created_to=created_to,
        sort=pick("sort", SORTS, "updated"))


def _date(args, name: str) -> date | None:
    value = (args.get(name) or "").strip()
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise Invalid(f"{name} must be a date (YYYY-MM-DD)", field=name) from exc


def _utc(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=timezone.utc)


def filtered_query(filters: Filters, agent: Agent | None):
    """SELECT tickets matching the filters (no order, no limit)."""
    query = db.select(Ticket)
    if filters.status == "active":
        query = query.where(Ticket.status.in_(TicketStatus.ACTIVE))
    elif filters.status != "all":
        query = query.where(Ticket.status == filters.status)
    if filters.assignee == "mine":
        query = query.where(Ticket.assignee_id == (agent.id if agent else -1))
    elif filters.assignee == "none":
        query = query.where(Ticket.assignee_id.is_(None))
    elif filters.assignee:
        query = query.where(Ticket.assignee_id == int(filters.assignee))
    if filters.priority:
        query = query.where(Ticket.priority == filters.priority)
    if filters.category:
        query = query.where(Ticket.category == filters.category)
    if filters.created_from:
        query = query.where(Ticket.created_at >= _utc(filters.created_from))
    if filters.created_to:
        query = query.where(Ticket.created_at < _utc(filters.created_to + timedelta(days=1)))
    found = ticket_search.condition(filters.q, db.engine.dialect.name)
    if found is not None:
        query = query.where(found)
    return query


def list_page(filters: Filters, agent: Agent | None, *, cursor: str | None = None, limit: int = PAGE_SIZE,
              count: bool = True) -> Page:
    """One page of tickets, with cursors to the next and previous pages."""
    limit = max(1, min(limit, MAX_PAGE_SIZE))
    keys = SORTS[filters.sort]
    columns = [column for column, _ in keys]
    descending = keys[0][1]
    direction, values = decode_cursor(cursor, keys) if cursor else ("after", None)
    backwards = direction == "before"
    query = filtered_query(filters, agent)
    if values is not None:
        # Rows after the cursor in the list's order (before it when going back).
        after_in_order = descending != backwards
        key = tuple_(*columns)
        bound = tuple_(*(db.literal(v, c.type) for c, v in zip(columns, values, strict=True)))
        query = query.where(key < bound if after_in_order else key > bound)
    ordered = [(c.asc() if (desc == backwards) else c.desc()) for c, desc in keys]
    rows = list(db.session.scalars(
        query.order_by(*ordered).limit(limit + 1)
        .options(joinedload(Ticket.customer), joinedload(Ticket.assignee))).unique())
    more = len(rows) > limit
    rows = rows[:limit]
    if backwards:
        rows.reverse()
    page = Page(tickets=rows, filters=filters)
    if rows:
        if more or backwards:
            page.next_cursor = encode_cursor("after", rows[-1], keys)
        if values is not None and (more or not backwards):
            page.prev_cursor = encode_cursor("before", rows[0], keys)
    if count:
        capped = db.select(db.func.count()).select_from(
            filtered_query(filters, agent).with_only_columns(Ticket.id).limit(COUNT_CAP + 1).subquery())
        page.total = db.session.scalar(capped)
        page.total_capped = page.total > COUNT_CAP
        page.total = min(page.total, COUNT_CAP)
    if rows:
        page.waiting = set(db.session.scalars(
            db.select(Conversation.handoff_ticket_id)
            .where(Conversation.handoff_ticket_id.in_([t.id for t in rows]))))
    return page


def _sort_values(ticket: Ticket, keys) -> list:
    values = []
    for column, _ in keys:
        if column is PRIORITY_RANK:
            values.append(TicketPriority.RANK.get(ticket.priority, 1))
        else:
            value = getattr(ticket, column.key)
            values.append(value.isoformat() if isinstance(value, datetime) else value)
    return values


def encode_cursor(direction: str, ticket: Ticket, keys) -> str:
    raw = json.dumps({"d": direction, "k": _sort_values(ticket, keys)}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str, keys) -> tuple[str, list]:
    try:
        data = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        direction, raw = data["d"], data["k"]
        if direction not in ("after", "before") or len(raw) != len(keys):
            raise ValueError(direction)
        values = []
        for (column, _), value in zip(keys, raw, strict=True):
            if column is PRIORITY_RANK or column.key == "id":
                if not isinstance(value, int):
                    raise ValueError(value)
                values.append(value)
            else:
                values.append(datetime.fromisoformat(value))
        return direction, values
    except (ValueError, KeyError, TypeError, binascii.Error, UnicodeDecodeError) as exc:
        raise Invalid("this page link is not valid any more", field="cursor") from exc
