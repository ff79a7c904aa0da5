"""Signing in and out of the agent interface, and the agent's own password."""
from __future__ import annotations

from flask import current_app, flash, make_response, redirect, render_template, request, url_for
from flask_babel import gettext
from flask_jwt_extended import current_user

from .. import auth
from ..extensions import limiter
from ..services import agents
from ..services.errors import DomainError
from . import admin, bp


def _safe_next(target: str | None) -> str:
    # Only local paths: never redirect a login to another site.
    if target and target.startswith("/agent") and not target.startswith("//") and "\\" not in target:
        return target
    return url_for("agent.tickets")


def _login_page(status: int = 200, error: str | None = None):
    nonce, token = auth.new_login_csrf()
    next_url = request.values.get("next", "")
    response = make_response(render_template("agent/login.html", error=error, next=next_url,
                                             login_csrf=token), status)
    auth.set_login_csrf_cookie(response, nonce)
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/login")
def login():
    return _login_page()


@bp.post("/login")
@limiter.limit(lambda: current_app.config["LOGIN_RATE_LIMIT"],
               on_breach=lambda _limit: _login_page(429, "rate_limited"))
@auth.login_account_limit(on_breach=lambda _limit: _login_page(429, "rate_limited"))
def login_post():
    if not auth.login_csrf_valid():
        return _login_page(403, "expired")
    agent = agents.authenticate(request.form.get("email", ""), request.form.get("password", ""))
    if agent is None:
        return _login_page(401, "invalid")
    response = redirect(_safe_next(request.form.get("next")))
    auth.start_session(response, agent)
    response.delete_cookie(auth.LOGIN_CSRF_COOKIE, path="/agent/login")
    return response


@bp.post("/logout")
@auth.agent_required()
def logout():
    # Ends every session of this agent: a copied cookie is dead too.
    agents.logout(current_user)
    response = redirect(url_for("agent.login"))
    auth.end_session(response)
    return response


@bp.get("/account")
@auth.agent_required()
def account():
    return render_template("agent/admin_account.html", agent=current_user, csrf=auth.csrf_token(),
                           min_password=agents.MIN_PASSWORD)


@bp.post("/account/password")
@auth.agent_required()
def change_password():
    try:
        agents.change_own_password(current_user, request.form.get("current_password", ""),
                                   request.form.get("new_password", ""))
    except DomainError as exc:
        flash(admin.error_text(exc), "error")
        return redirect(url_for("agent.account"))
    flash(gettext("Your password was changed; your other sessions have ended."), "info")
    response = redirect(url_for("agent.account"))
    auth.start_session(response, current_user)
    return response
