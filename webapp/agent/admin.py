"""Admin pages of the agent interface: agent accounts (create, role, access, password)."""
from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext, lazy_gettext
from flask_jwt_extended import current_user

from ..auth import agent_required, csrf_token
from ..services import agents
from ..services.errors import DomainError
from . import bp, i18n

ROLE_LABELS = {"agent": lazy_gettext("Agent"), "admin": lazy_gettext("Admin")}
# Messages of services.agents, listed so they are translated.
MESSAGES = {
    "an agent with this email exists": lazy_gettext("An agent with this email exists."),
    "a name of 1 to 120 characters is required": lazy_gettext("A name of 1 to 120 characters is required."),
    "the password needs at least 10 characters": lazy_gettext("The password needs at least 10 characters."),
    "cannot deactivate the last active admin": lazy_gettext("The last active admin cannot be deactivated."),
    "cannot remove the admin role of the last active admin":
        lazy_gettext("The last active admin must stay an admin."),
    "you cannot deactivate your own account; ask another admin":
        lazy_gettext("You cannot deactivate your own account; ask another admin."),
    "you cannot remove the admin role of your own account; ask another admin":
        lazy_gettext("You cannot remove your own admin role; ask another admin."),
    "the current password is wrong": lazy_gettext("The current password is wrong."),
}


def error_text(exc: DomainError) -> str:
    return i18n.error_text(exc, MESSAGES)


@bp.get("/admin/agents")
@agent_required(admin=True)
def admin_agents():
    return render_template("agent/admin_agents.html", agent=current_user, csrf=csrf_token(),
                           agents=agents.list_all(), roles=agents.ROLES, role_labels=ROLE_LABELS,
                           min_password=agents.MIN_PASSWORD)


def _done(action, message: str):
    try:
        action()
    except DomainError as exc:
        flash(error_text(exc), "error")
    else:
        flash(message, "info")
    return redirect(url_for("agent.admin_agents"))


@bp.post("/admin/agents")
@agent_required(admin=True)
def admin_create_agent():
    form = request.form
    return _done(lambda: agents.create(email=form.get("email", ""), name=form.get("name", ""),
                                       password=form.get("password", ""), role=form.get("role", "agent")),
                 gettext("Agent added."))


@bp.post("/admin/agents/<int:agent_id>/role")
@agent_required(admin=True)
def admin_set_role(agent_id):
    target = agents.get(agent_id)
    return _done(lambda: agents.set_role(current_user, target, request.form.get("role", "")),
                 gettext("Role saved."))


@bp.post("/admin/agents/<int:agent_id>/deactivate")
@agent_required(admin=True)
def admin_deactivate(agent_id):
    target = agents.get(agent_id)
    return _done(lambda: agents.deactivate(current_user, target),
                 gettext("%(name)s was deactivated; their open sessions have ended.", name=target.name))


@bp.post("/admin/agents/<int:agent_id>/reactivate")
@agent_required(admin=True)
def admin_reactivate(agent_id):
    target = agents.get(agent_id)
    return _done(lambda: agents.reactivate(current_user, target),
                 gettext("%(name)s can sign in again.", name=target.name))


@bp.post("/admin/agents/<int:agent_id>/password")
@agent_required(admin=True)
def admin_reset_password(agent_id):
    target = agents.get(agent_id)
    if target.id == current_user.id:
        flash(gettext("Change your own password on your account page."), "error")
        return redirect(url_for("agent.admin_agents"))
    return _done(lambda: agents.reset_password(current_user, target, request.form.get("password", "")),
                 gettext("Password set; the open sessions of %(name)s have ended.", name=target.name))
