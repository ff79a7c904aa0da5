"""Admin page of the outbox: messages that will not go out by themselves
(given up after their retries, or refused by Twilio), each with a retry."""
from __future__ import annotations

from flask import flash, redirect, url_for
from flask_babel import gettext

from ..auth import agent_required
from ..services import outbox
from ..services.errors import DomainError
from . import bp, i18n, render


@bp.get("/admin/outbox")
@agent_required(admin=True)
def outbox_admin():
    return render("agent/admin_outbox.html", rows=outbox.dead_rows(), describe=outbox.describe_error)


@bp.post("/admin/outbox/<int:row_id>/retry")
@agent_required(admin=True)
def outbox_retry(row_id):
    try:
        outbox.retry(row_id)
    except DomainError as exc:
        if exc.message == "only a message that was given up on can be retried":
            flash(gettext("This message is not given up on any more: it was retried already."), "error")
        else:
            flash(i18n.error_text(exc), "error")
    else:
        flash(gettext("Message %(id)s is queued again; the worker sends it shortly.", id=row_id), "info")
    return redirect(url_for("agent.outbox_admin"))
