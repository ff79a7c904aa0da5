"""Notifications: what a customer hears about their ticket, on WhatsApp and by email.

Events (``EVENTS``): an agent changed the status (``status_changed``), resolved
the ticket (``resolved``: on WhatsApp this is the closing question), or
replied (``agent_reply``: the reply itself goes on WhatsApp; by email the
customer gets a copy). ``NOTIFY_WHATSAPP_EVENTS`` and ``NOTIFY_EMAIL_EVENTS``
choose the channels per event; emails go to verified addresses only, and a
customer who wrote "parar" gets no WhatsApp notifications.

WhatsApp's customer-care window: free text reaches a customer only until 24
hours after their last message (``window``). Outside it:

- a notification goes as the approved template configured for its type
  (``TWILIO_TEMPLATE_<TYPE>``: a Twilio Content SID and variables; the row
  keeps both, and the message keeps the text the customer reads), or, when
  there is none, by email instead (the fallback);
- an agent's reply goes as the ``agent_reply`` template, or is refused with a
  clear message (``WindowClosed``); agents may also send ``follow_up``.

When Twilio fails a WhatsApp notification anyway (error 63016 in the status
callback, a template it refuses, a number it cannot reach),
``whatsapp_failed`` falls back: a template for 63016 if there is one, else an
email, once per failure. Every fallback is an internal event on the ticket's
timeline, so agents see what the customer got.

Everything here adds to the caller's transaction; nothing commits.
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app

from ..extensions import db
from ..models import Agent, Conversation, Message, Outbox, Ticket, TicketEvent, utcnow
from . import closing, outbox
from .errors import Invalid
from .texts import lang_or_default, render_email, render_text, status_label
from .tokens import status_url

EVENTS = ("status_changed", "resolved", "agent_reply")
# Notifications whose WhatsApp message falls back (to a template, then email) when it cannot go.
FALLBACK_EVENTS = ("status_changed", "resolved")
TEMPLATE_TYPES = ("status_changed", "resolved", "agent_reply", "follow_up")
AGENT_TEMPLATES = ("agent_reply", "follow_up")
WINDOW = timedelta(hours=24)
OUTSIDE_WINDOW = "63016"
# A template variable is one line (WhatsApp refuses line breaks in them), bounded.
VARIABLE_MAX = 900


class WindowClosed(Invalid):
    """Free text outside the 24-hour window (422, code window_closed)."""

    code = "window_closed"


# -- the 24-hour window ------------------------------------------------------------------

@dataclass(frozen=True)
class Window:
    is_open: bool
    last_inbound_at: datetime | None
    closes_at: datetime | None  # when free text stops being sent (24 h minus the margin)


def window(conversation: Conversation | None, now: datetime | None = None) -> Window:
    """Whether free text reaches this customer now, and until when."""
    if conversation is None or conversation.last_inbound_at is None:
        return Window(False, None, None)
    margin = timedelta(minutes=float(current_app.config["WHATSAPP_WINDOW_MARGIN_MINUTES"]))
    closes = conversation.last_inbound_at + WINDOW - margin
    return Window((now or utcnow()) < closes, conversation.last_inbound_at, closes)


# -- templates ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Template:
    type: str
    sid: str
    lang: str  # the approved template's language: its text is rendered in it

    @property
    def takes_text(self) -> bool:
        return self.type == "agent_reply"


def template_for(kind: str, lang: str | None) -> Template | None:
    """The template configured for ``kind`` in the customer's language
    (``TWILIO_TEMPLATE_<TYPE>_EN`` for English, else the Portuguese one)."""
    cfg = current_app.config
    lang = lang_or_default(lang)
    if lang != "pt":
        sid = (cfg.get(f"TWILIO_TEMPLATE_{kind.upper()}_{lang.upper()}") or "").strip()
        if sid:
            return Template(kind, sid, lang)
    sid = (cfg.get(f"TWILIO_TEMPLATE_{kind.upper()}") or "").strip()
    return Template(kind, sid, "pt") if sid else None


def one_line(text: str | None, limit: int = VARIABLE_MAX) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def template_variables(kind: str, ticket: Ticket, lang: str, *, agent: Agent | None = None,
                       text: str | None = None) -> dict[str, str]:
    """The values of the approved template's {{1}}, {{2}}... (strings, one line each)."""
    number, subject = str(ticket.number), one_line(ticket.subject, 200)
    if kind == "status_changed":
        return {"1": number, "2": subject, "3": status_label(ticket.status, lang)}
    if kind == "agent_reply":
        name = one_line(agent.name if agent else "", 60).split(" ")[0] or current_app.config["COMPANY_NAME"]
        return {"1": name, "2": number, "3": one_line(text)}
    return {"1": number, "2": subject}  # resolved, follow_up


def template_text(template: Template, variables: dict[str, str]) -> str:
    """What the customer reads: the approved text, kept in
    ``templates/messages/<lang>/template_<type>.txt`` with the same variables."""
    return render_text(f"template_{template.type}", template.lang, v=variables)


def agent_templates(ticket: Ticket, agent: Agent | None = None) -> list[tuple[Template, str]]:
    """The templates an agent can send on this ticket, with a preview each."""
    lang = ticket.customer.language
    result = []
    for kind in AGENT_TEMPLATES:
        template = template_for(kind, lang)
        if template is not None:
            variables = template_variables(kind, ticket, template.lang, agent=agent, text="…")
            result.append((template, template_text(template, variables)))
    return result


def _queue_template(conversation: Conversation, ticket: Ticket, kind: str, *, author: str = "system",
                    key: str | None = None, agent: Agent | None = None, text: str | None = None,
                    fallback_for: Outbox | None = None, client_key: str | None = None) -> Message | None:
    template = template_for(kind, ticket.customer.language)
    if template is None:
        return None
    variables = template_variables(kind, ticket, template.lang, agent=agent, text=text)
    return outbox.queue_whatsapp(conversation, template_text(template, variables), author=author,
                                 agent_id=agent.id if agent else None, ticket_id=ticket.id, client_key=client_key,
                                 purpose=kind, notify_key=key, content_sid=template.sid,
                                 content_variables=variables, fallback_for=fallback_for)


# -- ticket events -----------------------------------------------------------------------

def wants(channel: str, event: str) -> bool:
    return event in current_app.config[f"NOTIFY_{channel.upper()}_EVENTS"]


def conversation_of(ticket: Ticket) -> Conversation | None:
    conversation = db.session.get(Conversation, ticket.conversation_id) if ticket.conversation_id else None
    return conversation or db.session.scalar(db.select(Conversation).filter_by(customer_id=ticket.customer_id))


def ticket_event(ticket: Ticket, event: str, *, agent: Agent | None = None, **context) -> None:
    """Tell the customer about ``event`` on the configured channels."""
    if event not in EVENTS:
        raise ValueError(f"unknown notification event {event!r}")
    customer = ticket.customer
    key = uuid.uuid4().hex
    missed = False  # wanted on WhatsApp but could not go (outside the window, no template)
    if event != "agent_reply" and wants("whatsapp", event) and customer.notify_whatsapp:
        conversation = conversation_of(ticket)
        if conversation is not None:
            missed = not _whatsapp(ticket, event, conversation, key, context)
    emailed = None
    if wants("email", event) or missed:
        emailed = _email(ticket, event, key, agent=agent, **context)
    if missed:
        _record(ticket, event, "email" if emailed is not None else "none", "window_closed",
                email=customer.email if emailed is not None else None)


def _whatsapp(ticket: Ticket, event: str, conversation: Conversation, key: str, context: dict) -> bool:
    """Queue the WhatsApp side of a notification; False when it cannot go."""
    queued: list[Message] = []

    def route(conversation: Conversation, body: str, **_) -> Message | None:
        if window(conversation).is_open:
            message = outbox.queue_whatsapp(conversation, body, author="system", ticket_id=ticket.id,
                                            purpose=event, notify_key=key)
        else:
            message = _queue_template(conversation, ticket, event, key=key)
        if message is not None:
            queued.append(message)
        return message

    if event == "resolved":
        # The closing question (closing.ask) is this notification's WhatsApp message.
        with outbox.routed(route):
            closing.ask(ticket)
    else:
        customer = ticket.customer
        route(conversation, render_text("status_changed", customer.language, ticket=ticket, customer=customer,
                                        old=context.get("old")))
    return bool(queued)


def _email(ticket: Ticket, event: str, key: str | None, *, agent: Agent | None = None,
           fallback_for: Outbox | None = None, **context) -> Outbox | None:
    customer = ticket.customer
    if not customer.verified:
        return None
    days = float(current_app.config["CLOSE_AFTER_DAYS"])
    subject, text, html = render_email(
        f"notify_{event}", customer.language, ticket=ticket, customer=customer, agent=agent,
        url=status_url(ticket.id), days=int(days) if days.is_integer() else days, **context)
    return outbox.queue_email(customer.email, subject, text, html, customer=customer, ticket=ticket,
                              purpose=event, notify_key=key, fallback_for=fallback_for)


def _record(ticket: Ticket, event: str, channel: str, reason: str, **data) -> None:
    """An internal timeline event: how the customer was told when WhatsApp could not."""
    db.session.add(TicketEvent(ticket=ticket, kind="notify_fallback", actor_type="system", public=False,
                               data={"event": event, "channel": channel, "reason": reason,
                                     **{k: v for k, v in data.items() if v is not None}}))


def whatsapp_failed(row: Outbox) -> None:
    """A WhatsApp row will not reach the phone (given up on, or Twilio's
    failed/undelivered callback): a notification falls back, once. Agent
    replies do not: they show as failed, with the reason, to the agent."""
    if row.purpose not in FALLBACK_EVENTS or row.ticket_id is None:
        return
    parts = row.message.parts if row.message is not None else []
    anchor = parts[0] if parts else row  # one fallback per message, whichever part failed
    db.session.flush()
    if db.session.scalar(db.select(Outbox.id).filter_by(fallback_for_id=anchor.id).limit(1)) is not None:
        return
    ticket = db.session.get(Ticket, row.ticket_id)
    reason = row.error_code or "failed"
    if not row.content_sid and row.error_code == OUTSIDE_WINDOW:
        conversation = conversation_of(ticket)
        if conversation is not None and _queue_template(conversation, ticket, row.purpose, key=row.notify_key,
                                                         fallback_for=anchor) is not None:
            _record(ticket, row.purpose, "template", reason)
            return
    if row.notify_key and db.session.scalar(db.select(Outbox.id).filter_by(
            notify_key=row.notify_key, channel="email").limit(1)) is not None:
        _record(ticket, row.purpose, "email", reason, already=True)  # its email went out with it
        return
    email = _email(ticket, row.purpose, row.notify_key, fallback_for=anchor)
    _record(ticket, row.purpose, "email" if email is not None else "none", reason,
            email=ticket.customer.email if email is not None else None)


# -- agents ------------------------------------------------------------------------------

def agent_message(conversation: Conversation, ticket: Ticket, agent: Agent, body: str, *,
                  template: str | None = None, client_key: str | None = None) -> Message:
    """An agent's WhatsApp message: free text inside the window; outside it,
    the ``agent_reply`` template with the text, or a clear refusal. With
    ``template``, that template (``agent_reply`` or ``follow_up``)."""
    if template is not None:
        if template not in AGENT_TEMPLATES:
            raise Invalid("unknown template", field="template")
        if template == "agent_reply" and not body:
            raise Invalid("the reply is empty", field="body")
        message = _queue_template(conversation, ticket, template, author="agent", agent=agent, text=body,
                                  client_key=client_key)
        if message is None:
            raise Invalid("this template is not configured", field="template")
        return message
    if window(conversation).is_open:
        return outbox.queue_whatsapp(conversation, body, author="agent", agent_id=agent.id, ticket_id=ticket.id,
                                     client_key=client_key, purpose="agent_reply")
    message = _queue_template(conversation, ticket, "agent_reply", author="agent", agent=agent, text=body,
                              client_key=client_key)
    if message is None:
        raise WindowClosed("the customer last wrote more than 24 hours ago: WhatsApp only takes an approved "
                           "template now, and none is configured for replies", field="body")
    return message
