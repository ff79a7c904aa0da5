"""Who is calling: agents (cookie or header JWT) and the action server (service JWT).

Browser sessions of agents: the login sets an HttpOnly access-token cookie
(minutes) and an HttpOnly refresh-token cookie (path /agent, the session's
length). Both carry the agent's ``token_version`` and one CSRF value, which
state-changing requests must send back (form field ``csrf_token`` or the
``X-CSRF-TOKEN`` header; double submit with the ``csrf_access_token`` cookie).
When the access token has expired, an /agent request is renewed from the
refresh cookie and sent to the same URL again. Every request checks the
agent in the database: deactivation or logout (``token_version`` + 1) ends
every session at once, stolen cookies included.

The login form has its own CSRF check (a cookie and a signed form field), so
another site cannot sign a browser in to an account of its choosing.
"""
from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import timedelta
from functools import wraps
from hmac import compare_digest

from flask import Flask, current_app, jsonify, redirect, render_template, request, url_for
from flask_jwt_extended import (
    create_access_token,
    create_refresh_token,
    current_user,
    get_current_user,
    get_jwt,
    set_access_cookies,
    set_refresh_cookies,
    unset_jwt_cookies,
    verify_jwt_in_request,
)
from flask_jwt_extended.exceptions import CSRFError, JWTExtendedException
from itsdangerous import BadSignature, URLSafeTimedSerializer
from jwt.exceptions import PyJWTError

from .extensions import db, jwt, limiter
from .models import Agent

SERVICE_SCOPES = ("customers", "tickets", "conversations", "kb")
LOGIN_CSRF_COOKIE = "login_csrf"
LOGIN_CSRF_FIELD = "csrf_token"
LOGIN_CSRF_MAX_AGE = 2 * 3600


@dataclass(frozen=True)
class ServicePrincipal:
    name: str
    scopes: tuple[str, ...]


def init_app(app: Flask) -> None:
    # A missing or wrong CSRF value is a refusal (403), not a request to log in again.
    app.register_error_handler(CSRFError, _csrf_failed)


# --- tokens ---------------------------------------------------------------

def _agent_claims(agent: Agent, csrf: str | None = None) -> dict:
    claims = {"typ": "agent", "ver": agent.token_version}
    if csrf:
        claims["csrf"] = csrf
    return claims


def agent_token(agent: Agent) -> str:
    """A bearer token for API clients (no cookie, so no CSRF), for a working day."""
    return create_access_token(identity=str(agent.id), additional_claims=_agent_claims(agent),
                               expires_delta=timedelta(hours=current_app.config["AGENT_SESSION_HOURS"]))


def start_session(response, agent: Agent) -> None:
    """Sign the browser in: access and refresh cookies sharing one CSRF value
    (kept across renewals, so forms on open pages stay valid)."""
    claims = _agent_claims(agent, csrf=secrets.token_urlsafe(32))
    set_access_cookies(response, create_access_token(identity=str(agent.id), additional_claims=claims))
    set_refresh_cookies(response, create_refresh_token(identity=str(agent.id), additional_claims=claims))


def end_session(response) -> None:
    unset_jwt_cookies(response)


def service_token(name: str = "actions", scopes=SERVICE_SCOPES) -> str:
    return create_access_token(identity=f"service:{name}", expires_delta=False,
                               additional_claims={"typ": "service", "scope": list(scopes)})


@jwt.user_lookup_loader
def _load_principal(_header, claims):
    if claims.get("typ") == "service":
        return ServicePrincipal(claims["sub"].removeprefix("service:"), tuple(claims.get("scope", ())))
    if claims.get("typ") == "agent" and str(claims.get("sub", "")).isdigit():
        agent = db.session.get(Agent, int(claims["sub"]))
        # Checked on every request: a deactivated agent or an old token_version ends the session now.
        if agent and agent.active and agent.token_version == claims.get("ver"):
            return agent
    return None


# --- failures and silent renewal ------------------------------------------

def _wants_html() -> bool:
    return request.path.startswith("/agent") and request.path != "/agent/live"


def _unauthorized(reason: str):
    if _wants_html():
        return redirect(url_for("agent.login", next=request.full_path.rstrip("?") if request.method == "GET" else None))
    return jsonify(error={"code": "unauthorized", "message": reason}), 401


def _csrf_failed(_exc=None):
    if request.path.startswith("/agent") and request.path != "/agent/live":
        return render_template("agent/csrf_failed.html"), 403
    return jsonify(error={"code": "csrf_failed", "message": "missing or wrong CSRF token"}), 403


def _renewed(expired_claims: dict | None):
    """A fresh access cookie from the refresh cookie, and the same request
    again (302 for reads, 307 repeats a form post); None when the session is over."""
    if not request.path.startswith("/agent") or current_app.config["JWT_REFRESH_COOKIE_NAME"] not in request.cookies:
        return None
    try:
        verify_jwt_in_request(refresh=True, locations=["cookies"])
        agent = get_current_user()
    except CSRFError:
        return _csrf_failed()
    except (JWTExtendedException, PyJWTError):
        return None
    claims = get_jwt()
    if not isinstance(agent, Agent) or (expired_claims and expired_claims.get("sub") != claims["sub"]):
        return None
    target = request.full_path.rstrip("?")
    response = redirect(target, 302 if request.method in ("GET", "HEAD") else 307)
    access = create_access_token(identity=claims["sub"], additional_claims=_agent_claims(agent, claims.get("csrf")))
    set_access_cookies(response, access)
    return response


@jwt.unauthorized_loader
def _missing(reason):
    return _renewed(None) or _unauthorized(reason)


@jwt.invalid_token_loader
def _invalid(reason):
    return _unauthorized(reason)


@jwt.expired_token_loader
def _expired(_header, claims):
    if claims.get("type") == "access" and claims.get("typ") == "agent":
        renewed = _renewed(claims)
        if renewed is not None:
            return renewed
    return _unauthorized("token expired")


@jwt.user_lookup_error_loader
def _lookup_failed(_header, _claims):
    return _unauthorized("session ended")


# --- decorators ------------------------------------------------------------

def agent_required(admin: bool = False):
    def decorator(view):
        @wraps(view)
        def wrapper(*args, **kwargs):
            verify_jwt_in_request()
            if not isinstance(current_user, Agent):
                return _unauthorized("agent login required")
            if admin and not current_user.is_admin:
                if _wants_html():
                    return render_template("agent/admin_forbidden.html", agent=current_user,
                                           csrf=csrf_token()), 403
                return jsonify(error={"code": "forbidden", "message": "admins only"}), 403
            return view(*args, **kwargs)
        return wrapper
    return decorator


def principal_required(scope: str):
    """An agent, or a service token that carries ``scope``."""
    def decorator(view):
        @wraps(view)
        def wrapper(*args, **kwargs):
            verify_jwt_in_request()
            user = current_user
            if isinstance(user, ServicePrincipal) and scope in user.scopes:
                return view(*args, **kwargs)
            if isinstance(user, Agent):
                return view(*args, **kwargs)
            return jsonify(error={"code": "forbidden", "message": f"scope '{scope}' required"}), 403
        return wrapper
    return decorator


def is_service() -> bool:
    return isinstance(current_user, ServicePrincipal)


def csrf_token() -> str:
    """The double-submit CSRF value of the current cookie session, for forms."""
    return get_jwt().get("csrf", "")


# --- login rate limit per account ----------------------------------------

def login_account_key() -> str:
    """The rate-limit key of a login attempt: its account (form or JSON email)."""
    body = request.get_json(silent=True) if request.is_json else None
    email = body.get("email") if isinstance(body, dict) else request.form.get("email")
    return "login-account:" + str(email or "").strip().lower()[:254]


def login_account_limit(on_breach=None):
    """Failed logins per account from any address, one count for the login form
    and the API login (guessing one agent's password from many addresses)."""
    return limiter.shared_limit(lambda: current_app.config["LOGIN_ACCOUNT_RATE_LIMIT"], scope="login-account",
                                key_func=login_account_key, deduct_when=lambda response: response.status_code == 401,
                                on_breach=on_breach)


# --- login CSRF ------------------------------------------------------------

def _login_serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt="zapdesk-login-csrf")


def new_login_csrf() -> tuple[str, str]:
    """A login-CSRF pair: (cookie value, form value)."""
    nonce = secrets.token_urlsafe(32)
    return nonce, _login_serializer().dumps(nonce)


def set_login_csrf_cookie(response, nonce: str) -> None:
    response.set_cookie(LOGIN_CSRF_COOKIE, nonce, max_age=LOGIN_CSRF_MAX_AGE, path="/agent/login",
                        secure=current_app.config["JWT_COOKIE_SECURE"], httponly=True, samesite="Strict")


def login_csrf_valid() -> bool:
    """The login form's field is ours, recent, and matches this browser's cookie."""
    try:
        nonce = _login_serializer().loads(request.form.get(LOGIN_CSRF_FIELD, ""), max_age=LOGIN_CSRF_MAX_AGE)
    except BadSignature:
        return False
    cookie = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    return isinstance(nonce, str) and bool(cookie) and compare_digest(nonce, cookie)
