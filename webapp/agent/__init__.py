"""Agent web interface: login, the ticket list, ticket detail (replies, notes,
status, assignment), customer history and canned responses.

One blueprint, ``bp``; its views live in one module per resource, imported at
the bottom of this file.
"""
from __future__ import annotations

import json

from flask import Blueprint, current_app, make_response, redirect, render_template, request, url_for
from flask_babel import format_datetime, refresh
from flask_jwt_extended import current_user

from ..auth import csrf_token
from ..models import TicketPriority, TicketStatus
from . import i18n

bp = Blueprint("agent", __name__, url_prefix="/agent")
bp.record_once(lambda state: i18n.init_app(state.app))
# Flask-Babel caches the locale on the app context, which a test (or a CLI
# command) may share between requests: choose it again for each request.
bp.before_request(refresh)


@bp.context_processor
def _helpers():
    return {"status_label": lambda s: i18n.STATUS_LABELS.get(s, s),
            "priority_label": lambda p: i18n.PRIORITY_LABELS.get(p, p),
            "category_label": lambda c: i18n.CATEGORY_LABELS.get(c, c) if c else "—",
            "delivery_label": lambda s: i18n.DELIVERY_LABELS.get(s, s),
            "transitions": TicketStatus.TRANSITIONS, "statuses": TicketStatus.ALL,
            "priorities": TicketPriority.ALL, "languages": i18n.LANGUAGES,
            "html_lang": "pt-BR" if str(i18n.select_locale()) == "pt_BR" else "en"}


@bp.app_template_filter("when")
def _when(value) -> str:
    return format_datetime(value, "short") if value else ""


@bp.app_template_filter("handoff_context")
def _handoff_context(body: str | None) -> dict | None:
    """The context the assistant attaches to a handoff (JSON), or None for free text."""
    try:
        data = json.loads(body or "")
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def _safe_next(target: str | None) -> str:
    # Only local paths: never redirect a login to another site.
    if target and target.startswith("/agent") and not target.startswith("//") and "\\" not in target:
        return target
    return url_for("agent.tickets")


@bp.get("/language")
def language():
    """The language switch: remembered in a cookie (a preference, not a secret)."""
    response = make_response(redirect(_safe_next(request.args.get("next"))))
    lang = request.args.get("lang", "")
    if lang in i18n.LANGUAGES:
        response.set_cookie(i18n.COOKIE, lang, max_age=365 * 24 * 3600, samesite="Lax", httponly=True,
                            secure=current_app.config.get("JWT_COOKIE_SECURE", False))
    return response


def render(template: str, **context):
    return render_template(template, agent=current_user, csrf=csrf_token(), **context)


# Views register on bp when imported: one line per feature module (isort off so
# each feature keeps its own line).
# isort: off
from . import account, admin  # noqa: E402,F401  (sign-in, accounts, admin pages)
from . import canned, customers, tickets  # noqa: E402,F401  (the ticket workspace)
from . import media  # noqa: E402,F401  (inbound media for agents: webapp/agent/media.py)
from . import outbox_admin  # noqa: E402,F401  (dead messages and their retry: webapp/agent/outbox_admin.py)
from . import kb  # noqa: E402,F401  (knowledge-base admin: webapp/agent/kb.py)
from . import export  # noqa: E402,F401  (training-data export for admins: webapp/agent/export.py)
# isort: on
