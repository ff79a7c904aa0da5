"""Who is calling: agents (cookie or header JWT) and the action server (service JWT)."""
from __future__ import annotations

from dataclasses import dataclass
from functools import wraps

from flask import jsonify, redirect, request, url_for
from flask_jwt_extended import create_access_token, current_user, get_jwt, verify_jwt_in_request

from .extensions import db, jwt
from .models import Agent

SERVICE_SCOPES = ("customers", "tickets", "conversations")


@dataclass(frozen=True)
class ServicePrincipal:
    name: str
    scopes: tuple[str, ...]


def agent_token(agent: Agent) -> str:
    return create_access_token(identity=str(agent.id),
                               additional_claims={"typ": "agent", "ver": agent.token_version})


def service_token(name: str = "actions", scopes=SERVICE_SCOPES) -> str:
    return create_access_token(identity=f"service:{name}", expires_delta=False,
                               additional_claims={"typ": "service", "scope": list(scopes)})


@jwt.user_lookup_loader
def _load_principal(_header, claims):
    if claims.get("typ") == "service":
        return ServicePrincipal(claims["sub"].removeprefix("service:"), tuple(claims.get("scope", ())))
    if claims.get("typ") == "agent" and str(claims.get("sub", "")).isdigit():
        agent = db.session.get(Agent, int(claims["sub"]))
        if agent and agent.active and agent.token_version == claims.get("ver"):
            return agent
    return None


def _wants_html() -> bool:
    return request.path.startswith("/agent")


def _unauthorized(reason: str):
    if _wants_html():
        return redirect(url_for("agent.login", next=request.path if request.method == "GET" else None))
    return jsonify(error={"code": "unauthorized", "message": reason}), 401


@jwt.unauthorized_loader
def _missing(reason):
    return _unauthorized(reason)


@jwt.invalid_token_loader
def _invalid(reason):
    return _unauthorized(reason)


@jwt.expired_token_loader
def _expired(_header, _claims):
    return _unauthorized("token expired")


@jwt.user_lookup_error_loader
def _lookup_failed(_header, _claims):
    return _unauthorized("session ended")


def agent_required(admin: bool = False):
    def decorator(view):
        @wraps(view)
        def wrapper(*args, **kwargs):
            verify_jwt_in_request()
            if not isinstance(current_user, Agent):
                return _unauthorized("agent login required")
            if admin and not current_user.is_admin:
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
