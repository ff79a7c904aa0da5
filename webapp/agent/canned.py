"""Canned responses: admins manage them here; every agent inserts them from
the reply box on a ticket."""
from __future__ import annotations

from flask import abort, flash, redirect, request, url_for
from flask_babel import gettext
from flask_jwt_extended import current_user

from ..auth import agent_required
from ..services import canned as canned_service
from ..services.errors import DomainError, NotFound
from . import bp, i18n, render


def _admin_only():
    if not current_user.is_admin:
        abort(403)


@bp.get("/canned")
@agent_required()
def canned_list():
    _admin_only()
    return render("agent/canned.html", responses=canned_service.all_responses(), editing=None,
                  placeholders=canned_service.PLACEHOLDERS)


@bp.get("/canned/<int:response_id>")
@agent_required()
def canned_edit(response_id):
    _admin_only()
    try:
        editing = canned_service.get(response_id)
    except NotFound:
        abort(404)
    return render("agent/canned.html", responses=canned_service.all_responses(), editing=editing,
                  placeholders=canned_service.PLACEHOLDERS)


@bp.post("/canned")
@agent_required()
def canned_save():
    _admin_only()
    form = request.form
    response_id = form.get("id", "")
    try:
        if response_id.isdigit():
            canned_service.update(current_user, canned_service.get(int(response_id)), form.get("title", ""),
                                  form.get("body", ""), form.get("language") or None)
        else:
            canned_service.create(current_user, form.get("title", ""), form.get("body", ""),
                                  form.get("language") or None)
    except DomainError as exc:
        flash(i18n.error_text(exc), "error")
        return render("agent/canned.html", responses=canned_service.all_responses(), editing=None,
                      placeholders=canned_service.PLACEHOLDERS, form=form), exc.status
    flash(gettext("Canned response saved."), "info")
    return redirect(url_for("agent.canned_list"))


@bp.post("/canned/<int:response_id>/delete")
@agent_required()
def canned_delete(response_id):
    _admin_only()
    try:
        canned_service.delete(current_user, canned_service.get(response_id))
    except NotFound:
        abort(404)
    flash(gettext("Canned response deleted."), "info")
    return redirect(url_for("agent.canned_list"))
