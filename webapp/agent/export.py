"""Export real conversations as Rasa training data (NLU examples or test
stories, personal data replaced): ``/agent/export``. Admins only: the export
holds what customers wrote, so it is for trusted staff who train the assistant."""
from __future__ import annotations

from datetime import date

from flask import Response, render_template, request
from flask_babel import gettext as _
from flask_jwt_extended import current_user

from ..auth import agent_required, csrf_token
from ..services import export as exporter
from ..services.errors import Invalid
from . import bp


def _page(values: dict, error: str | None = None, status: int = 200):
    body = render_template("agent/export.html", agent=current_user, csrf=csrf_token(), values=values,
                           error=error)
    return body, status


def _date(value: str, label: str) -> date | None:
    value = (value or "").strip()
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise Invalid(_("%(field)s is not a date (YYYY-MM-DD).", field=label)) from None


def _id(value: str, label: str) -> int | None:
    value = (value or "").strip().lstrip("#")
    if not value:
        return None
    if not value.isdigit() or len(value) > 12:
        raise Invalid(_("%(field)s must be a number.", field=label))
    return int(value)


@bp.get("/export")
@agent_required(admin=True)
def export_form():
    return _page({"format": "nlu", "language": "all", "start": "", "end": "", "customer": "", "ticket": ""})


@bp.post("/export")
@agent_required(admin=True)
def export_download():
    form = request.form
    values = {key: form.get(key, "")[:40] for key in ("format", "language", "start", "end", "customer", "ticket")}
    try:
        if values["format"] not in exporter.FORMATS:
            raise Invalid(_("Choose NLU examples or test stories."))
        filters = exporter.Filters(start=_date(values["start"], _("From")), end=_date(values["end"], _("To")),
                                   language=values["language"] or "all",
                                   customer_id=_id(values["customer"], _("Customer")),
                                   ticket_id=_id(values["ticket"], _("Ticket"))).validate()
        text = exporter.export(values["format"], filters)
    except Invalid as exc:
        return _page(values, exc.message, 422)
    parts = ["zapdesk", values["format"], filters.language, filters.start and filters.start.isoformat(),
             filters.end and filters.end.isoformat()]
    filename = "-".join(p for p in parts if p) + ".yml"
    response = Response(text, mimetype="application/x-yaml")
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    response.headers["Cache-Control"] = "no-store"
    return response
