"""Canned responses: saved replies that agents insert into the reply box.
Everyone reads them; only admins write them."""
from __future__ import annotations

import re

from sqlalchemy.exc import IntegrityError

from ..extensions import db
from ..models import Agent, CannedResponse, Ticket
from .errors import Conflict, Forbidden, Invalid, NotFound
from .texts import LANGUAGES

TITLE_MAX = 120
BODY_MAX = 4000
PLACEHOLDERS = ("customer_name", "ticket_number", "ticket_subject", "agent_name")
_PLACEHOLDER = re.compile(r"\{(" + "|".join(PLACEHOLDERS) + r")\}")


def all_responses() -> list[CannedResponse]:
    return list(db.session.scalars(db.select(CannedResponse).order_by(CannedResponse.title)))


def for_language(language: str | None) -> list[CannedResponse]:
    """The responses in this language or in none, the language's own first."""
    rows = [r for r in all_responses() if r.language in (None, language)]
    return sorted(rows, key=lambda r: (r.language is None, r.title.lower()))


def get(response_id: int) -> CannedResponse:
    response = db.session.get(CannedResponse, response_id)
    if response is None:
        raise NotFound("canned response not found")
    return response


def _check(actor: Agent, title: str, body: str, language: str | None) -> tuple[str, str, str | None]:
    if not actor.is_admin:
        raise Forbidden("only admins manage canned responses")
    title = " ".join((title or "").split())
    body = (body or "").replace("\r\n", "\n").strip()
    language = language or None
    if not 0 < len(title) <= TITLE_MAX:
        raise Invalid(f"a title of 1 to {TITLE_MAX} characters is required", field="title")
    if not 0 < len(body) <= BODY_MAX:
        raise Invalid(f"a text of 1 to {BODY_MAX} characters is required", field="body")
    if language is not None and language not in LANGUAGES:
        raise Invalid("unknown language", field="language")
    return title, body, language


def create(actor: Agent, title: str, body: str, language: str | None = None) -> CannedResponse:
    title, body, language = _check(actor, title, body, language)
    response = CannedResponse(title=title, body=body, language=language, created_by_id=actor.id)
    db.session.add(response)
    _commit_unique()
    return response


def update(actor: Agent, response: CannedResponse, title: str, body: str,
           language: str | None = None) -> CannedResponse:
    response.title, response.body, response.language = _check(actor, title, body, language)
    _commit_unique()
    return response


def delete(actor: Agent, response: CannedResponse) -> None:
    if not actor.is_admin:
        raise Forbidden("only admins manage canned responses")
    db.session.delete(response)
    db.session.commit()


def _commit_unique() -> None:
    try:
        db.session.commit()
    except IntegrityError as exc:
        db.session.rollback()
        raise Conflict("a canned response with this title exists", field="title") from exc


def render(response: CannedResponse, ticket: Ticket, agent: Agent) -> str:
    """The text with its placeholders filled; unknown braces stay as written."""
    values = {"customer_name": ticket.customer.name or ticket.customer.profile_name or "",
              "ticket_number": str(ticket.number), "ticket_subject": ticket.subject,
              "agent_name": agent.name}
    return _PLACEHOLDER.sub(lambda m: values[m.group(1)], response.body)
