"""The agent UI in English and Brazilian Portuguese (Flask-Babel).

The language is the agent's choice (a cookie set by the switch in the page
header), else the browser's Accept-Language, else English. Catalogs live in
``webapp/translations`` and the compiled ``.mo`` files are committed, so a
clean clone needs no build step (``make translations`` refreshes them).
"""
from __future__ import annotations

from flask import Flask, current_app, request
from flask_babel import Babel, gettext, lazy_gettext

from ..services.tickets import InvalidTransitionError

LANGUAGES = {"en": "English", "pt_BR": "Português (Brasil)"}
COOKIE = "zapdesk_lang"
babel = Babel()

STATUS_LABELS = {
    "new": lazy_gettext("New"),
    "open": lazy_gettext("Open"),
    "in_progress": lazy_gettext("In progress"),
    "pending": lazy_gettext("Waiting on customer"),
    "resolved": lazy_gettext("Resolved"),
    "closed": lazy_gettext("Closed"),
}
PRIORITY_LABELS = {
    "low": lazy_gettext("Low"),
    "normal": lazy_gettext("Normal"),
    "high": lazy_gettext("High"),
    "urgent": lazy_gettext("Urgent"),
}
CATEGORY_LABELS = {
    "order": lazy_gettext("Order"),
    "delivery": lazy_gettext("Delivery"),
    "payment": lazy_gettext("Payment"),
    "product": lazy_gettext("Product"),
    "account": lazy_gettext("Account"),
    "other": lazy_gettext("Other"),
}
DELIVERY_LABELS = {
    "queued": lazy_gettext("Queued"),
    "sent": lazy_gettext("Sent"),
    "delivered": lazy_gettext("Delivered"),
    "read": lazy_gettext("Read"),
    "failed": lazy_gettext("Failed"),
    "pending": lazy_gettext("Queued"),
    "sending": lazy_gettext("Sending"),
    "dead": lazy_gettext("Failed"),
    "received": lazy_gettext("Received"),
    "processed": lazy_gettext("Received"),
}
# Service messages the agent UI shows as they are; listed so they are translated.
SERVICE_MESSAGES = {
    "the reply is empty": lazy_gettext("The reply is empty."),
    "the note is empty": lazy_gettext("The note is empty."),
    "the assistant already has this conversation": lazy_gettext("The assistant already has this conversation."),
    "this customer has no WhatsApp conversation": lazy_gettext("This customer has no WhatsApp conversation."),
    "only the assignee or an admin can reassign this ticket":
        lazy_gettext("Only the assignee or an admin can reassign this ticket."),
    "tickets go to active agents only": lazy_gettext("Tickets go to active agents only."),
    "only admins manage canned responses": lazy_gettext("Only admins manage canned responses."),
    "a canned response with this title exists": lazy_gettext("A canned response with this title exists."),
    "this page link is not valid any more": lazy_gettext("This page link is not valid any more."),
    "the start date is after the end date": lazy_gettext("The start date is after the end date."),
}


def select_locale() -> str:
    chosen = request.cookies.get(COOKIE)
    if chosen in LANGUAGES:
        return chosen
    best = request.accept_languages.best_match(["en", "pt_BR", "pt"], default="en")
    return "pt_BR" if best.startswith("pt") else "en"


def init_app(app: Flask) -> None:
    if "babel" not in app.extensions:
        # Times on agent pages in the team's own time zone (the one business
        # hours are in), as the customers' status page shows them.
        babel.init_app(app, locale_selector=select_locale,
                       timezone_selector=lambda: current_app.config["BUSINESS_TIMEZONE"])


def error_text(exc, messages: dict | None = None) -> str:
    """A service error in the agent's language: from a page's own table of its
    service's messages (``messages``), else from the shared one."""
    if isinstance(exc, InvalidTransitionError):
        return gettext("A ticket cannot go from %(old)s to %(new)s.",
                       old=STATUS_LABELS.get(exc.old, exc.old), new=STATUS_LABELS.get(exc.new, exc.new))
    known = (messages or {}).get(exc.message, SERVICE_MESSAGES.get(exc.message))
    if known is not None:
        return str(known)
    return exc.message[:1].upper() + exc.message[1:]
